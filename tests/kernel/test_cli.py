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

The command runs as a separate process, as an operator would run it, and
forks its own privsep daemon (it is root here); iproute2 reads back.
"""

from __future__ import annotations

import json
import subprocess
import sys

import os_vif.objects
from os_vif.objects import network as osv_network
from os_vif.objects import vif as osv_vif

from sriov_vif import objects
from sriov_vif import sysfs_tree

os_vif.objects.register_all()

PF_ADDRESS = "0000:82:00.0"


def _cli(conf, *args, stdin=None):
    return subprocess.run(
        [sys.executable, "-m", "sriov_vif.cli", "--config-file", conf,
         *args], capture_output=True, text=True, input=stdin, timeout=300,
        check=False)


def _setup(tmp_path, pf_ifname):
    tree = sysfs_tree.SysfsTree(str(tmp_path / "sys"))
    built = tree.add_pf(PF_ADDRESS, [pf_ifname], driver="netdevsim",
                        numvfs=8, totalvfs=8, vf_driver="vfio-pci")
    conf = tmp_path / "sriov.conf"
    # as root the CLI never creates state_path: the deployment does
    (tmp_path / "state").mkdir(mode=0o700)
    conf.write_text(f"[os_vif_sriov]\nsysfs_root = {tree.root}\n"
                    f"state_path = {tmp_path / 'state'}\n")
    return built, str(conf)


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


def test_plug_inventory_unplug(tmp_path, netdevsim_pf, ip_link_json):
    built, conf = _setup(tmp_path, netdevsim_pf)
    before = _vfs(ip_link_json, netdevsim_pf)
    vif = _vif_json(tmp_path, built, 3,
                    "c1100000-0000-4000-8000-000000000003")
    result = _cli(conf, "plug", vif, "--instance-uuid",
                  "9d9d9d9d-0000-4000-8000-000000000009",
                  "--instance-name", "instance-cli")
    assert result.returncode == 0, result.stderr
    assert result.stdout == (f"plugged VIF c1100000-0000-4000-8000-"
                             f"000000000003 on VF {built.vf(3).pci_address}"
                             "\n")
    vf = _vfs(ip_link_json, netdevsim_pf)[3]
    assert vf["address"] == "fa:16:3e:00:0c:03"
    assert vf["vlan_list"][0]["vlan"] == 77 and vf["trust"] is True

    inventory = _cli(conf, "inventory", "--json")
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

    result = _cli(conf, "unplug", "-", stdin=open(vif).read())
    assert result.returncode == 0, result.stderr
    assert _vfs(ip_link_json, netdevsim_pf) == before


def test_restore_after_a_crash(tmp_path, netdevsim_pf, ip_link_json):
    built, conf = _setup(tmp_path, netdevsim_pf)
    before = _vfs(ip_link_json, netdevsim_pf)
    for index in (1, 2):
        result = _cli(conf, "plug", _vif_json(
            tmp_path, built, index, f"c2200000-0000-4000-8000-00000000000"
                                    f"{index}"))
        assert result.returncode == 0, result.stderr
    # nova-compute and its instances are gone: the operator restores.
    result = _cli(conf, "restore", built.vf(2).pci_address)
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"restored VF {built.vf(2).pci_address}\n"
    assert _vfs(ip_link_json, netdevsim_pf)[2] == before[2]
    assert _vfs(ip_link_json, netdevsim_pf)[1] != before[1]
    result = _cli(conf, "restore", "--all")
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"restored VF {built.vf(1).pci_address}\n"
    assert _vfs(ip_link_json, netdevsim_pf) == before
    result = _cli(conf, "restore", "--all")
    assert result.stdout == "no VF needed restoring\n"


def test_errors_are_one_line(tmp_path, netdevsim_pf):
    built, conf = _setup(tmp_path, netdevsim_pf)
    vif = _vif_json(tmp_path, built, 4,
                    "c3300000-0000-4000-8000-000000000004")
    bad = tmp_path / "bad.json"
    data = json.loads(open(vif).read())
    data["versioned_object.data"]["dev_address"] = "0000:82:1f.7"
    bad.write_text(json.dumps(data))
    result = _cli(conf, "plug", str(bad))
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "0000:82:1f.7" in lines[0]
