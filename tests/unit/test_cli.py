#    Licensed under the Apache License, Version 2.0 (the "License"); you may
#    not use this file except in compliance with the License. You may obtain
#    a copy of the License at
#
#         http://www.apache.org/licenses/LICENSE-2.0
#
#    Unless required by applicable law or agreed to in writing, software
#    distributed under the License is distributed on an "AS IS" BASIS, WITHOUT
#    WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied. See the
#    License for the specific language governing permissions and limitations
#    under the License.

"""The sriov-vif command: output shapes and one-line errors.

inventory reads the kernel's VF tables itself, with no privsep daemon;
here a fake table stands in for it (the kernel tier runs the real one),
everything else is the real code on sysfs-shaped trees.
"""

import json

from os_vif.objects import base as osv_base
from oslo_config import cfg
import pytest

from harness import sysfs_tree
from sriov_vif import cli
from sriov_vif import exception
from sriov_vif import journal
from sriov_vif import libvirt_xml
from sriov_vif import vf_config
from sriov_vif import vf_state
from tests.nova_ports import PORT_ID
from tests.nova_ports import nova_vif

PF = "0000:81:00.0"
VF_KEYS = {"index", "pci_address", "ifname", "driver", "mac", "vlan", "qos",
           "proto", "trust", "spoofchk", "link_state", "min_tx_rate",
           "max_tx_rate", "owner"}


@pytest.fixture(autouse=True)
def fresh_config():
    yield
    cfg.CONF.reset()


def _run(capsys, *argv):
    status = cli.main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


def _table(numvfs):
    return {i: vf_state.VFState(
        index=i, mac="00:00:00:00:00:00", vlan=i * 10, qos=0,
        vlan_proto="802.1Q", spoofchk=True, trust=False, link_state="auto",
        min_tx_rate=0, max_tx_rate=0) for i in range(numvfs)}


@pytest.fixture
def tree(tmp_path, monkeypatch):
    t = sysfs_tree.SysfsTree(str(tmp_path / "sys"))
    t.add_pf(PF, ["enp129s0f0"], driver="ice", numvfs=4, totalvfs=64)
    t.bind("0000:81:10.1", "vfio-pci")
    asked = []

    def vf_table(pf):
        asked.append(pf.ifname)
        return _table(4)

    monkeypatch.setattr(vf_config, "vf_table", vf_table)

    def no_daemon():
        raise AssertionError("inventory started the privileged daemon")

    monkeypatch.setattr(cli, "_start_privsep", no_daemon)
    conf = tmp_path / "sriov.conf"
    conf.write_text(f"[os_vif_sriov]\nsysfs_root = {t.root}\n"
                    f"state_path = {tmp_path / 'state'}\n")
    return t, str(conf), asked, tmp_path


def test_inventory_json_has_the_documented_shape(tree, capsys):
    t, conf, asked, tmp_path = tree
    journal.Journal(str(tmp_path / "state")).save(journal.VFRecord(
        pci_address="0000:81:10.2", pf_pci_address=PF,
        pf_ifname="enp129s0f0", vf_index=2,
        owner=journal.Owner("vif-2", "uuid-2", "instance-2"),
        original=_table(4)[2], changed=("mac",)))
    status, out, err = _run(capsys, "--config-file", conf, "inventory",
                            "--json")
    assert status == 0, err
    data = json.loads(out)
    [pf] = data["pfs"]
    assert {k: pf[k] for k in ("pci_address", "ifname", "driver", "numvfs",
                               "totalvfs")} == {
        "pci_address": PF, "ifname": "enp129s0f0", "driver": "ice",
        "numvfs": 4, "totalvfs": 64}
    assert [vf["index"] for vf in pf["vfs"]] == [0, 1, 2, 3]
    for vf in pf["vfs"]:
        assert set(vf) == VF_KEYS
        assert vf["vlan"] == vf["index"] * 10
    assert pf["vfs"][1]["driver"] == "vfio-pci"
    assert pf["vfs"][1]["ifname"] is None
    assert pf["vfs"][0]["ifname"] == "enp129s0f0v0"
    assert pf["vfs"][2]["owner"] == {
        "vif_id": "vif-2", "instance_uuid": "uuid-2",
        "instance_name": "instance-2"}
    assert pf["vfs"][3]["owner"] is None
    assert asked == ["enp129s0f0"]  # one table read per PF


def test_inventory_text_and_no_sriov_host(tree, capsys, tmp_path):
    t, conf, asked, _ = tree
    status, out, _ = _run(capsys, "--config-file", conf, "inventory")
    assert status == 0
    assert out.splitlines()[0] == (
        f"PF {PF} enp129s0f0 driver ice VFs 4/64")
    assert "0000:81:10.3" in out
    empty = tmp_path / "empty.conf"
    (tmp_path / "nosys" / "bus" / "pci" / "devices").mkdir(parents=True)
    empty.write_text(f"[os_vif_sriov]\nsysfs_root = {tmp_path / 'nosys'}\n")
    status, out, _ = _run(capsys, "--config-file", str(empty), "inventory")
    assert status == 0
    assert out == "No SR-IOV physical function found on this host.\n"


def test_convert_then_xml_golden(tmp_path, capsys):
    binding = tmp_path / "port.json"
    binding.write_text(json.dumps(nova_vif()))
    status, out, err = _run(capsys, "convert", str(binding))
    assert status == 0, err
    primitive = json.loads(out)
    assert primitive["versioned_object.name"] == "VIFHostDevice"
    vif = osv_base.VersionedObject.obj_from_primitive(primitive)
    assert (vif.dev_address, vif.network.vlan, vif.plugin) == (
        "0000:81:10.2", 100, "sriov")
    os_vif_json = tmp_path / "vif.json"
    os_vif_json.write_text(out)
    status, xml, err = _run(capsys, "xml", str(os_vif_json))
    assert status == 0, err
    assert xml == libvirt_xml.interface_xml(vif) + "\n"
    assert '<tag id="100" />' in xml


def test_xml_of_a_direct_vif_finds_the_netdev(tree, capsys):
    t, conf, _, tmp_path = tree
    binding = tmp_path / "port.json"
    binding.write_text(json.dumps(nova_vif("macvtap")))
    _, out, _ = _run(capsys, "convert", str(binding))
    (tmp_path / "vif.json").write_text(out)
    status, xml, err = _run(capsys, "--config-file", conf, "xml",
                            str(tmp_path / "vif.json"))
    assert status == 0, err
    assert '<source dev="enp129s0f0v2" mode="passthrough" />' in xml


@pytest.mark.parametrize("argv, content, reason", [
    (["convert"], "{not json", "Expecting"),
    (["convert"], json.dumps({"id": PORT_ID, "vnic_type": "normal"}),
     PORT_ID),
    (["xml"], json.dumps({"versioned_object.name": "VIFBridge"}), "VIF"),
    (["plug"], json.dumps({"nope": 1}), "versioned_object"),
    (["restore"], None, "--all, --vif or one or more"),
    (["restore", "0000:81:10.2/../x"], None, "0000:81:10.2/../x"),
])
def test_errors_are_one_line_and_non_zero(tmp_path, capsys, argv, content,
                                          reason, monkeypatch):
    monkeypatch.setattr(cli, "_start_privsep", lambda: None)
    args = list(argv)
    if content is not None:
        path = tmp_path / "in.json"
        path.write_text(content)
        args.append(str(path))
    args = ["--config-file", _state_conf(tmp_path)] + args
    status, out, err = _run(capsys, *args)
    assert status == 1
    assert out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("sriov-vif: error: ")
    assert reason in lines[0]
    assert "Traceback" not in err


def _state_conf(tmp_path):
    conf = tmp_path / "state.conf"
    conf.write_text(f"[os_vif_sriov]\nstate_path = {tmp_path / 'state'}\n"
                    f"sysfs_root = {tmp_path}\n")
    return str(conf)


def test_missing_file_is_named(capsys, tmp_path):
    status, _, err = _run(capsys, "convert", str(tmp_path / "absent.json"))
    assert status == 1 and "absent.json" in err


def test_stdin_is_read_for_dash(capsys, monkeypatch):
    monkeypatch.setattr("sys.stdin", __import__("io").StringIO(
        json.dumps(nova_vif("direct-physical"))))
    status, out, err = _run(capsys, "convert", "-")
    assert status == 0, err
    assert json.loads(out)["versioned_object.data"]["dev_type"] == "generic"


def test_attach_without_libvirt_says_so(capsys, tmp_path, monkeypatch):
    monkeypatch.setitem(__import__("sys").modules, "libvirt", None)
    (tmp_path / "vif.json").write_text(json.dumps(
        osv_base.VersionedObject.obj_from_primitive(json.loads(
            _convert(capsys, tmp_path))).obj_to_primitive()))
    status, _, err = _run(capsys, "attach", "--domain", "d1",
                          str(tmp_path / "vif.json"))
    assert status == 1
    assert "libvirt-python is not installed" in err


def _convert(capsys, tmp_path):
    (tmp_path / "port.json").write_text(json.dumps(nova_vif()))
    status, out, _ = _run(capsys, "convert", str(tmp_path / "port.json"))
    assert status == 0
    return out


def test_usage_errors_exit_two(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["frobnicate"])
    assert exit_info.value.code == 2


def test_restore_by_vif_id_without_a_record(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(cli, "_start_privsep", lambda: None)
    (tmp_path / "state").mkdir(mode=0o700)  # as root it is never created
    status, out, err = _run(capsys, "--config-file", _state_conf(tmp_path),
                            "restore", "--vif", PORT_ID)
    assert (status, err) == (0, "")
    assert out.splitlines() == [f"no VF is journaled for VIF {PORT_ID}",
                                "no VF needed restoring"]


@pytest.mark.parametrize("failure", [
    exception.NetdevNotFound(ifname="enp130s0f0"),
    exception.VFTableIncomplete(pf_ifname="enp130s0f0", count=35,
                                numvfs=256),
    exception.PFUnusable(address="0000:82:00.0", reason="driver refuses"),
])
def test_inventory_reports_every_pf_when_one_cannot_be_read(
        tree, capsys, monkeypatch, failure):
    t, conf, asked, _ = tree
    t.add_pf("0000:82:00.0", ["enp130s0f0"], driver="ice", numvfs=2,
             totalvfs=8)
    good = vf_config.vf_table

    def one_bad(pf):
        if pf.ifname == "enp130s0f0":
            raise failure
        return good(pf)

    monkeypatch.setattr(vf_config, "vf_table", one_bad)
    status, out, err = _run(capsys, "--config-file", conf, "inventory")
    assert status == 1
    lines = out.splitlines()
    assert lines[0] == f"PF {PF} enp129s0f0 driver ice VFs 4/64"
    bad = lines.index("PF 0000:82:00.0 enp130s0f0 driver ice VFs 2/8")
    assert lines[bad + 1] == (
        "  kernel columns unknown (?): " + " ".join(str(failure).split()))
    rows = [line.split() for line in lines[bad + 3:bad + 5]]
    assert [row[1] for row in rows] == ["0000:82:10.0", "0000:82:10.1"]
    assert all(row[4:13] == ["?"] * 9 for row in rows), rows
    # the good PF's kernel columns are all there
    assert "0000:81:10.3" in out and "?" not in "\n".join(lines[:bad])
    assert len(err.splitlines()) == 1
    assert "0000:82:00.0" in err

    status, out, err = _run(capsys, "--config-file", conf, "inventory",
                            "--json")
    assert status == 1
    data = json.loads(out)
    errors = {pf["pci_address"]: pf["error"] for pf in data["pfs"]}
    assert errors[PF] is None
    assert errors["0000:82:00.0"] == " ".join(str(failure).split())
    [bad_pf] = [pf for pf in data["pfs"] if pf["error"]]
    assert [vf["mac"] for vf in bad_pf["vfs"]] == [None, None]
