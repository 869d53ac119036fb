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

"""os_vif.plug and os_vif.unplug on netdevsim VFs, read back by iproute2.

The PCI view is a sysfs tree mapping VF addresses onto the real netdevsim
PF (netdevsim VFs have no PCI functions); veths stand in for the VF
netdevs of direct VIFs. Everything else is real: the kernel's VF table,
the privsep daemon and netlink, the journal on disk.
"""

from __future__ import annotations

import concurrent.futures
import glob
import itertools
import logging
import os
import subprocess

import os_vif
from os_vif import exception as osv_exception
from os_vif.objects import instance_info as osv_instance
from os_vif.objects import network as osv_network
from os_vif.objects import vif as osv_vif
from oslo_config import cfg
import pytest

from harness import iproute
from harness import kernel_guest
from harness import netdevsim_host
from sriov_vif import config
from sriov_vif import journal
from sriov_vif import libvirt_xml
from sriov_vif import nova_integration
from sriov_vif import objects
from sriov_vif import plugin
from sriov_vif import privsep
from sriov_vif import vf_config
from tests.nova_ports import nova_vif

PF_ADDRESS = "0000:81:00.0"
INSTANCE = osv_instance.InstanceInfo(
    uuid="0f0e0d0c-1111-4222-8333-444455556666", name="instance-k")
_veth_ids = itertools.count()


class Host:
    """A netdevsim PF seen through a sysfs tree, with the plugin loaded."""

    def __init__(self, pf_ifname, tree, built, state_path, ip_link_json):
        self.pf_ifname = pf_ifname
        self.tree = tree
        self.built = built
        self.state_path = state_path
        self._ip_link_json = ip_link_json

    def vf(self, index):
        """VF index as iproute2 shows it: the independent read-back."""
        vfs = self._ip_link_json(self.pf_ifname)["vfinfo_list"]
        return next(vf for vf in vfs if vf["vf"] == index)

    def all_vfs(self):
        return self._ip_link_json(self.pf_ifname)["vfinfo_list"]

    def address(self, index):
        return self.built.vf(index).pci_address

    def journal(self):
        return journal.Journal(self.state_path)


def _veth():
    return iproute.add_veth(f"kvf{os.getpid() % 1000}x{next(_veth_ids)}")


@pytest.fixture
def host(privsep_daemon, daemon_tree, ip_link_json, tmp_path):
    veths = {2: _veth(), 3: _veth()}
    # the tree at the daemon's sysfs_root
    netdevsim = netdevsim_host.NetdevsimHost(tmp_path, daemon_tree)
    built = netdevsim.add_pf(
        kernel_guest.free_netdevsim_id(), PF_ADDRESS, 16,
        vf_driver="netdevsim", vf_ifnames=lambda i: veths.get(i))
    netdevsim.tree.bind(built.vf(1).pci_address, "vfio-pci")
    netdevsim.configure_plugin()
    yield Host(built.ifnames[0], netdevsim.tree, built,
               netdevsim.state_path, ip_link_json)
    for name in veths.values():
        subprocess.run(["ip", "link", "del", name], check=False)
    netdevsim.release()


def _hostdev(host, index, vif_id="a0000000-0000-4000-8000-000000000001",
             vlan=100, dev_type="ethernet", **profile):
    return osv_vif.VIFHostDevice(
        id=vif_id, address=f"fa:16:3e:00:00:{index:02x}", plugin="sriov",
        dev_type=dev_type, dev_address=host.address(index),
        network=osv_network.Network(vlan=vlan),
        port_profile=objects.VIFPortProfileSRIOV(**profile))


def _direct(host, index, vif_id="d0000000-0000-4000-8000-000000000001"):
    return osv_vif.VIFDirect(
        id=vif_id, address=f"fa:16:3e:00:01:{index:02x}", plugin="sriov",
        dev_address=host.address(index), mode="passthrough",
        vif_name="macvtap0", network=osv_network.Network(vlan=300))


FULL_POLICY = dict(trusted=True, spoofchk=True, link_state="enable",
                   min_tx_rate=10, max_tx_rate=100, vlan_qos=5,
                   vlan_proto="802.1ad")


def test_hostdev_plug_sets_every_attribute_and_unplug_restores(host):
    before = host.all_vfs()
    vif = _hostdev(host, 1, **FULL_POLICY)
    os_vif.plug(vif, INSTANCE)
    vf = host.vf(1)
    assert vf["address"] == "fa:16:3e:00:00:01"
    assert vf["vlan_list"] == [
        {"vlan": 100, "qos": 5, "protocol": "802.1ad"}]
    assert (vf["trust"], vf["spoofchk"], vf["link_state"]) == (
        True, True, "enable")
    assert vf["rate"] == {"max_tx": 100, "min_tx": 10}
    # Only VF 1 changed.
    assert [v for v in host.all_vfs() if v["vf"] != 1] == [
        v for v in before if v["vf"] != 1]
    os_vif.unplug(vif, INSTANCE)
    assert host.all_vfs() == before
    assert host.journal().addresses() == []


@pytest.mark.parametrize("make", [_hostdev, _direct])
def test_one_privileged_round_trip_per_plug_and_unplug(host, make,
                                                       monkeypatch):
    # Counted on the privsep channel itself: every call that crosses it.
    channel = privsep.vif_plug.channel
    trips = []
    real = channel.remote_call

    def counted(name, *args, **kwargs):
        trips.append(name)
        return real(name, *args, **kwargs)

    monkeypatch.setattr(channel, "remote_call", counted)
    before = host.all_vfs()
    vif = make(host, 3) if make is _direct else make(host, 8, trusted=True)
    os_vif.plug(vif, INSTANCE)
    assert trips == ["sriov_vif.privileged.change_vfs"]
    os_vif.unplug(vif, INSTANCE)
    assert trips == ["sriov_vif.privileged.change_vfs"] * 2
    assert host.all_vfs() == before


def test_generic_hostdev_gets_mac_and_vlan_from_the_plugin(host):
    vif = _hostdev(host, 4, vlan=42, dev_type="generic")
    os_vif.plug(vif, INSTANCE)
    vf = host.vf(4)
    assert vf["address"] == "fa:16:3e:00:00:04"
    assert vf["vlan_list"][0]["vlan"] == 42
    assert libvirt_xml.interface_element(vif).tag == "hostdev"
    os_vif.unplug(vif, INSTANCE)
    assert host.vf(4)["address"] == "00:00:00:00:00:00"


def test_direct_plug_configures_vf_and_its_netdev(host):
    netdev = host.built.vf(2).ifname
    netdev_before = iproute.mac_and_up(netdev)
    before = host.vf(2)
    vif = _direct(host, 2)
    os_vif.plug(vif, INSTANCE)
    assert host.vf(2)["address"] == "fa:16:3e:00:01:02"
    assert host.vf(2)["vlan_list"][0]["vlan"] == 300
    assert iproute.mac_and_up(netdev) == ("fa:16:3e:00:01:02", True)
    os_vif.unplug(vif, INSTANCE)
    assert host.vf(2) == before
    assert iproute.mac_and_up(netdev) == netdev_before


def test_original_state_is_restored_exactly_not_reset(host):
    subprocess.run(["ip", "link", "set", host.pf_ifname, "vf", "5", "mac",
                    "52:54:00:aa:bb:cc", "vlan", "7", "qos", "2", "trust",
                    "on", "spoofchk", "on", "state", "disable",
                    "max_tx_rate", "50"], check=True)
    before = host.vf(5)
    cfg.CONF.set_override("released_vf_mac", "restore", config.GROUP)
    vif = _hostdev(host, 5, vlan=900, trusted=False, link_state="auto")
    os_vif.plug(vif, INSTANCE)
    # The QoS was not asked for: it stays (iproute2 omits 802.1Q).
    assert host.vf(5)["vlan_list"] == [{"vlan": 900, "qos": 2}]
    assert host.vf(5)["trust"] is False
    # Unset fields were left alone while plugged.
    assert host.vf(5)["spoofchk"] is True
    assert host.vf(5)["rate"]["max_tx"] == 50
    os_vif.unplug(vif, INSTANCE)
    assert host.vf(5) == before


def test_replug_after_nova_compute_restart(host):
    before = host.vf(6)
    vif = _hostdev(host, 6, trusted=True)
    os_vif.plug(vif, INSTANCE)
    plugged = host.vf(6)
    # A restarted nova-compute loads a new plugin and replugs every VIF.
    os_vif.initialize(reset=True)
    os_vif.plug(vif, INSTANCE)
    assert host.vf(6) == plugged
    record = host.journal().load(host.address(6))
    assert record.original.mac == before["address"]
    assert record.original.trust is False
    os_vif.unplug(vif, INSTANCE)
    assert host.vf(6) == before


def test_unplug_by_a_stale_owner_leaves_the_new_owner_alone(host):
    before = host.vf(7)
    old = _hostdev(host, 7, vif_id="01d00000-0000-4000-8000-000000000001",
                   vlan=10)
    new = _hostdev(host, 7, vif_id="aee00000-0000-4000-8000-000000000002",
                   vlan=20, trusted=True)
    os_vif.plug(old, INSTANCE)
    os_vif.plug(new, INSTANCE)
    os_vif.unplug(old, INSTANCE)
    assert host.vf(7)["vlan_list"][0]["vlan"] == 20
    assert host.vf(7)["trust"] is True
    os_vif.unplug(new, INSTANCE)
    assert host.vf(7) == before


def test_sixteen_concurrent_plugs_on_one_pf(host):
    before = host.all_vfs()
    vifs = [_hostdev(host, i, vif_id=f"c0000000-0000-4000-8000-{i:012d}",
                     vlan=200 + i, trusted=bool(i % 2))
            for i in range(16)]
    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda v: os_vif.plug(v, INSTANCE), vifs))
    vfs = {vf["vf"]: vf for vf in host.all_vfs()}
    for i in range(16):
        assert vfs[i]["address"] == f"fa:16:3e:00:00:{i:02x}"
        assert vfs[i]["vlan_list"][0]["vlan"] == 200 + i
        assert vfs[i]["trust"] is bool(i % 2)
    assert len(host.journal().addresses()) == 16
    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda v: os_vif.unplug(v, INSTANCE), vifs))
    assert host.all_vfs() == before


@pytest.mark.parametrize("step", ["read", "netdev", "journal", "apply"])
def test_failure_at_each_step_leaves_nothing_changed(host, step,
                                                     monkeypatch):
    before = host.all_vfs()
    netdev = host.built.vf(3).ifname
    netdev_before = iproute.mac_and_up(netdev)

    # the reads (the VF, its netdev), the journal, the one privileged
    # call that changes the VF and its netdev
    owner, name = {"read": (vf_config, "vf_state_now"),
                   "netdev": (vf_config, "netdev_state"),
                   "journal": (journal.Journal, "save"),
                   "apply": (vf_config, "apply_settings")}[step]
    real = getattr(owner, name)
    calls = []

    def fail_first(*args, **kwargs):  # the plug's call, not the undo's
        calls.append(args)
        if len(calls) == 1:
            raise RuntimeError(f"injected failure at {step}")
        return real(*args, **kwargs)

    monkeypatch.setattr(owner, name, fail_first)
    with pytest.raises(osv_exception.PlugException, match="injected"):
        os_vif.plug(_direct(host, 3), INSTANCE)
    monkeypatch.undo()
    assert host.all_vfs() == before
    assert iproute.mac_and_up(netdev) == netdev_before
    assert host.journal().addresses() == []


def test_crash_after_journal_write_is_restored(host, monkeypatch):
    before = host.all_vfs()
    real_apply = vf_config.apply_settings

    def apply_then_die(*args, **kwargs):
        real_apply(*args, **kwargs)
        raise SystemExit("nova-compute killed")

    monkeypatch.setattr(vf_config, "apply_settings", apply_then_die)
    with pytest.raises(SystemExit):
        os_vif.plug(_hostdev(host, 9, **FULL_POLICY), INSTANCE)
    monkeypatch.undo()
    assert host.vf(9) != [v for v in before if v["vf"] == 9][0]
    assert host.journal().addresses() == [host.address(9)]
    restarted = plugin.SriovPlugin(cfg.CONF[config.GROUP])
    assert restarted.restore().restored == [host.address(9)]
    assert host.all_vfs() == before


def test_corrupt_and_missing_journal_are_logged(host, caplog):
    caplog.set_level(logging.INFO)
    vif = _hostdev(host, 10, trusted=True)
    os_vif.unplug(vif, INSTANCE)  # never plugged
    assert "nothing to restore" in caplog.text
    os_vif.plug(vif, INSTANCE)
    path = os.path.join(host.state_path, host.address(10) + ".json")
    with open(path, "w") as f:
        f.write("{garbage")
    os_vif.unplug(vif, INSTANCE)
    assert "unreadable" in caplog.text
    assert glob.glob(path + ".corrupt-*")
    # The VF stays as plugged: nothing trustworthy says what it was.
    assert host.vf(10)["trust"] is True


def test_port_binding_end_to_end(host):
    """neutron binding -> os-vif object -> plug -> XML -> unplug."""
    before = host.all_vfs()
    binding = nova_vif("direct", vlan="321", pci_slot=host.address(11),
                       id="e2e00000-0000-4000-8000-000000000001",
                       address="fa:16:3e:e2:e2:01")
    binding["profile"]["trusted"] = True
    vif = nova_integration.port_to_vif(binding)
    info = nova_integration.instance_info(INSTANCE.uuid, INSTANCE.name)
    os_vif.plug(vif, info)
    vf = host.vf(11)
    assert vf["address"] == "fa:16:3e:e2:e2:01"
    assert vf["vlan_list"][0]["vlan"] == 321
    assert vf["trust"] is True
    xml = nova_integration.device_xml(vif)
    assert 'type="hostdev"' in xml and '<tag id="321"' in xml
    os_vif.unplug(vif, info)
    assert host.all_vfs() == before


@pytest.fixture
def switchdev(host):
    """netdevsim in switchdev mode refuses VF rates, after MAC and VLAN."""
    device = os.path.basename(os.path.realpath(
        f"/sys/class/net/{host.pf_ifname}/device"))
    devlink = f"netdevsim/{device}"
    subprocess.run(["devlink", "dev", "eswitch", "set", devlink, "mode",
                    "switchdev"], check=True)
    yield host
    subprocess.run(["devlink", "dev", "eswitch", "set", devlink, "mode",
                    "legacy"], check=False)


def test_driver_refusal_mid_request_leaves_the_vf_as_it_was(switchdev):
    host = switchdev
    before = host.all_vfs()
    vif = _hostdev(host, 12, trusted=True, max_tx_rate=100)
    with pytest.raises(osv_exception.PlugException, match="max_tx_rate"):
        os_vif.plug(vif, INSTANCE)
    # The kernel had applied MAC and VLAN before it refused the rate.
    assert host.all_vfs() == before
    assert host.journal().addresses() == []


def test_warn_mode_skips_what_the_driver_refuses(switchdev):
    host = switchdev
    before = host.vf(13)
    cfg.CONF.set_override("unsupported_attribute_action", "warn",
                          config.GROUP)
    vif = _hostdev(host, 13, trusted=True, max_tx_rate=100)
    os_vif.plug(vif, INSTANCE)
    vf = host.vf(13)
    assert (vf["address"], vf["trust"]) == ("fa:16:3e:00:00:0d", True)
    assert vf["vlan_list"][0]["vlan"] == 100
    assert vf["rate"]["max_tx"] == before["rate"]["max_tx"]
    os_vif.unplug(vif, INSTANCE)
    assert host.vf(13) == before


def test_macvtap_port_binding_end_to_end(host):
    """A macvtap port: conversion, plug, XML naming the VF netdev, unplug."""
    before = host.all_vfs()
    netdev = host.built.vf(2).ifname
    netdev_before = iproute.mac_and_up(netdev)
    binding = nova_vif("macvtap", vlan="0", pci_slot=host.address(2),
                       id="e2e00000-0000-4000-8000-000000000002",
                       address="fa:16:3e:e2:e2:02")
    vif = nova_integration.port_to_vif(binding)
    info = nova_integration.instance_info(INSTANCE.uuid, INSTANCE.name)
    os_vif.plug(vif, info)
    assert host.vf(2)["address"] == "fa:16:3e:e2:e2:02"
    assert iproute.mac_and_up(netdev) == ("fa:16:3e:e2:e2:02", True)
    xml = nova_integration.device_xml(vif)
    assert f'<source dev="{netdev}" mode="passthrough" />' in xml
    assert "<vlan>" not in xml  # flat network: no <tag id="0"/>
    os_vif.unplug(vif, info)
    assert host.all_vfs() == before
    assert iproute.mac_and_up(netdev) == netdev_before
