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

"""Restore of many VFs across two PFs: one call, one RTM_SETLINK per PF.

`sriov-vif restore --all` (devstack's unstack) puts every journaled VF of
a PF back with one privileged call carrying one RTM_SETLINK. On netdevsim
in switchdev mode the kernel refuses a VF's rate halfway through that
request; the daemon then sends each VF on its own, rolls the refused one
back, and the client sends that VF again without the rate. A VF the
kernel does not have fails alone. Read back with iproute2.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from pathlib import Path
import subprocess

import os_vif
from os_vif.objects import instance_info as osv_instance
from os_vif.objects import network as osv_network
from os_vif.objects import vif as osv_vif
from oslo_config import cfg
import pytest

from sriov_vif import config
from sriov_vif import journal
from sriov_vif import objects
from sriov_vif import plugin
from sriov_vif import privileged

INSTANCE = osv_instance.InstanceInfo(
    uuid="0f0e0d0c-1111-4222-8333-444455556666", name="instance-r")
PF_A, PF_B = "0000:84:00.0", "0000:86:00.0"
NUMVFS = 8
RATED = 3  # the VF of PF B whose rate switchdev mode refuses to restore


@pytest.fixture
def two_pfs(privsep_daemon, daemon_tree, netdevsim_pf_factory, tmp_path):
    """PF A (sysfs shows a ninth VF the kernel lacks) and PF B, plugged."""
    pfs = {}
    for address, shown in ((PF_A, NUMVFS + 1), (PF_B, NUMVFS)):
        ifname = netdevsim_pf_factory(NUMVFS)
        pfs[address] = (ifname, daemon_tree.add_pf(
            address, [ifname], driver="netdevsim", numvfs=shown,
            totalvfs=shown, vf_driver="vfio-pci"))
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    os_vif.initialize()
    cfg.CONF.set_override("state_path", str(state), config.GROUP)
    cfg.CONF.set_override("released_vf_mac", "restore", config.GROUP)
    yield pfs, str(state)
    for name in ("state_path", "released_vf_mac"):
        cfg.CONF.clear_override(name, config.GROUP)


def _devlink(pf: str) -> str:
    return "netdevsim/" + Path(f"/sys/class/net/{pf}/device").resolve().name


def _vif(address: str, n: int, rated: bool) -> osv_vif.VIFHostDevice:
    profile = dict(trusted=bool(n % 2), link_state="enable")
    if rated:
        profile.update(max_tx_rate=100)
    return osv_vif.VIFHostDevice(
        id=f"e0000000-0000-4000-8000-{n:012d}",
        address=f"fa:16:3e:00:0e:{n:02x}", plugin="sriov",
        dev_type="ethernet", dev_address=address,
        network=osv_network.Network(vlan=500 + n),
        port_profile=objects.VIFPortProfileSRIOV(**profile))


def test_restore_of_two_pfs_with_one_refused_vf(two_pfs, ip_link_json,
                                                monkeypatch, caplog):
    pfs, state = two_pfs
    caplog.set_level(logging.WARNING, logger="sriov_vif")
    # distinctive original states, written by iproute2
    for ifname, _built in pfs.values():
        for index in range(NUMVFS):
            subprocess.run(
                ["ip", "link", "set", ifname, "vf", str(index), "mac",
                 f"52:54:00:00:{index:02x}:01", "vlan", str(7 + index),
                 "spoofchk", "on" if index % 2 else "off"], check=True)
    originals = {ifname: ip_link_json(ifname)["vfinfo_list"]
                 for ifname, _built in pfs.values()}
    n = 0
    for address, (_name, built) in pfs.items():
        for vf in built.vfs[:NUMVFS]:
            n += 1
            os_vif.plug(_vif(vf.pci_address, n,
                             rated=address == PF_B and vf.index == RATED),
                        INSTANCE)
    ifname_a, built_a = pfs[PF_A]
    ifname_b, built_b = pfs[PF_B]
    assert ip_link_json(ifname_b)["vfinfo_list"][RATED]["rate"][
        "max_tx"] == 100
    # a record for the ninth VF of PF A, which the kernel does not have
    missing = built_a.vf(NUMVFS)
    records = journal.Journal(state)
    template = records.load(built_a.vf(0).pci_address)
    assert template is not None
    records.save(dataclasses.replace(
        template, pci_address=missing.pci_address, vf_index=NUMVFS,
        original=dataclasses.replace(template.original, index=NUMVFS),
        owner=journal.Owner(vif_id="e0000000-0000-4000-8000-0000000000ff")))
    # rates are devlink's in switchdev mode: the kernel refuses them
    subprocess.run(["devlink", "dev", "eswitch", "set", _devlink(ifname_b),
                    "mode", "switchdev"], check=True)
    calls = []
    real = privileged.change_vfs

    def counted(pf_address, pf_ifname, vfs):
        calls.append((pf_address, len(vfs)))
        return real(pf_address, pf_ifname, vfs)

    monkeypatch.setattr(privileged, "change_vfs", counted)
    try:
        result = plugin.SriovPlugin(cfg.CONF[config.GROUP]).restore()
    finally:
        subprocess.run(["devlink", "dev", "eswitch", "set",
                        _devlink(ifname_b), "mode", "legacy"], check=False)

    # one call per PF, and the refused VF once more without its rate
    assert calls == [(PF_A, NUMVFS), (PF_B, NUMVFS), (PF_B, 1)]
    assert list(result.failed) == [missing.pci_address]
    assert "index 8 does not exist" in result.failed[missing.pci_address]
    assert sorted(result.restored) == sorted(
        vf.pci_address for _name, built in pfs.values()
        for vf in built.vfs[:NUMVFS])
    assert ip_link_json(ifname_a)["vfinfo_list"] == originals[ifname_a]
    after_b = ip_link_json(ifname_b)["vfinfo_list"]
    for index in range(NUMVFS):
        expected = dict(originals[ifname_b][index])
        if index == RATED:  # all but the rate it could not put back
            expected["rate"] = dict(expected["rate"], max_tx=100)
            expected["tx_rate"] = 100  # iproute2 shows it when not 0
        assert after_b[index] == expected, index
    assert any("refused min_tx_rate=0, max_tx_rate=0" in r.getMessage()
               for r in caplog.records)
    assert sorted(name for name in os.listdir(state)
                  if name != "locks") == [missing.pci_address + ".json"]
