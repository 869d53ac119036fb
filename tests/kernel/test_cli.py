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

"""sriov-vif plug, unplug, restore and inventory on netdevsim VFs.

The command runs in this process (cli.main): a process of its own would
import os-vif and oslo anew, some 20 s under software emulation, for each
call. test_faults.py runs it as separate processes, killed at random.
iproute2 reads back.
"""

from __future__ import annotations

import dataclasses
import io
import json
import logging
import sys

import os_vif.objects
from os_vif.objects import network as osv_network
from os_vif.objects import vif as osv_vif
import pytest

from harness import kernel_guest
from harness import netdevsim_host
from sriov_vif import cli as sriov_vif_cli
from sriov_vif import objects
from sriov_vif import privsep

os_vif.objects.register_all()

PF_ADDRESS = "0000:82:00.0"


@dataclasses.dataclass
class Result:
    returncode: int
    stdout: str
    stderr: str


@pytest.fixture
def cli(capsys, monkeypatch):
    """run(conf, *args, stdin=None) -> Result of cli.main in this process.

    Each call ends as the command's process would: its privsep daemon is
    stopped (the next call forks a new one). The command sets up logging
    for itself: the root logger is put back afterwards so that later
    tests log as before.
    """
    root = logging.getLogger()
    level, handlers = root.level, list(root.handlers)

    def run(conf, *args, stdin=None):
        if stdin is not None:
            monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
        capsys.readouterr()
        try:
            status = sriov_vif_cli.main(["--config-file", conf, *args])
        finally:
            privsep.vif_plug.stop()
        out, err = capsys.readouterr()
        return Result(status, out, err)

    yield run
    root.setLevel(level)
    root.handlers[:] = handlers


@pytest.fixture
def cli_host(tmp_path, daemon_tree):
    """(the 8-VF PF's tree entry, its netdev, a sriov-vif config file).

    The tree is at the session daemon's sysfs_root: a command in this
    process uses that daemon once it runs.
    """
    host = netdevsim_host.NetdevsimHost(tmp_path, daemon_tree)
    built = host.add_pf(kernel_guest.free_netdevsim_id(), PF_ADDRESS, 8)
    yield built, built.ifnames[0], host.write_config()
    host.release()


def _vif_json(tmp_path, built, index, vif_id):
    vif = osv_vif.VIFHostDevice(
        id=vif_id, address=f"fa:16:3e:00:0c:{index:02x}", plugin="sriov",
        dev_type="ethernet", dev_address=built.vf(index).pci_address,
        network=osv_network.Network(vlan=77),
        port_profile=objects.VIFPortProfileSRIOV(trusted=True))
    path = tmp_path / f"vif{index}.json"
    path.write_text(json.dumps(vif.obj_to_primitive()))
    return str(path)


def _vfs(ip_link_json, pf):
    return {vf["vf"]: vf for vf in ip_link_json(pf)["vfinfo_list"]}


def test_plug_inventory_unplug(tmp_path, cli_host, cli, ip_link_json):
    built, netdevsim_pf, conf = cli_host
    before = _vfs(ip_link_json, netdevsim_pf)
    vif = _vif_json(tmp_path, built, 3,
                    "c1100000-0000-4000-8000-000000000003")
    result = cli(conf, "plug", vif, "--instance-uuid",
                  "9d9d9d9d-0000-4000-8000-000000000009",
                  "--instance-name", "instance-cli")
    assert result.returncode == 0, result.stderr
    assert result.stdout == (f"plugged VIF c1100000-0000-4000-8000-"
                             f"000000000003 on VF {built.vf(3).pci_address}"
                             "\n")
    vf = _vfs(ip_link_json, netdevsim_pf)[3]
    assert vf["address"] == "fa:16:3e:00:0c:03"
    assert vf["vlan_list"][0]["vlan"] == 77 and vf["trust"] is True

    inventory = cli(conf, "inventory", "--json")
    assert inventory.returncode == 0, inventory.stderr
    [pf] = json.loads(inventory.stdout)["pfs"]
    assert pf["ifname"] == netdevsim_pf and pf["numvfs"] == 8
    entry = pf["vfs"][3]
    assert (entry["mac"], entry["vlan"], entry["trust"]) == (
        "fa:16:3e:00:0c:03", 77, True)
    assert entry["owner"] == {
        "vif_id": "c1100000-0000-4000-8000-000000000003",
        "instance_uuid": "9d9d9d9d-0000-4000-8000-000000000009",
        "instance_name": "instance-cli"}
    assert [vf["owner"] for vf in pf["vfs"] if vf["index"] != 3] == [
        None] * 7

    result = cli(conf, "unplug", "-", stdin=open(vif).read())
    assert result.returncode == 0, result.stderr
    assert _vfs(ip_link_json, netdevsim_pf) == before


def test_restore_after_a_crash(tmp_path, cli_host, cli, ip_link_json):
    built, netdevsim_pf, conf = cli_host
    before = _vfs(ip_link_json, netdevsim_pf)
    for index in (1, 2):
        result = cli(conf, "plug", _vif_json(
            tmp_path, built, index, f"c2200000-0000-4000-8000-00000000000"
                                    f"{index}"))
        assert result.returncode == 0, result.stderr
    # nova-compute and its instances are gone: the operator restores.
    result = cli(conf, "restore", built.vf(2).pci_address)
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"restored VF {built.vf(2).pci_address}\n"
    assert _vfs(ip_link_json, netdevsim_pf)[2] == before[2]
    assert _vfs(ip_link_json, netdevsim_pf)[1] != before[1]
    result = cli(conf, "restore", "--all")
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"restored VF {built.vf(1).pci_address}\n"
    assert _vfs(ip_link_json, netdevsim_pf) == before
    result = cli(conf, "restore", "--all")
    assert result.stdout == "no VF needed restoring\n"


def test_errors_are_one_line(tmp_path, cli_host, cli):
    built, _, conf = cli_host
    vif = _vif_json(tmp_path, built, 4,
                    "c3300000-0000-4000-8000-000000000004")
    bad = tmp_path / "bad.json"
    data = json.loads(open(vif).read())
    data["versioned_object.data"]["dev_address"] = "0000:82:1f.7"
    bad.write_text(json.dumps(data))
    result = cli(conf, "plug", str(bad))
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "0000:82:1f.7" in lines[0]
