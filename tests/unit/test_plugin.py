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

"""Plug, unplug and restore logic against an in-memory kernel.

The kernel tier proves the same behaviour on netdevsim; these tests pin the
orchestration rules (journal first, replug keeps the original, stale
owners, failures undo) where every failure can be injected at will.
"""

import contextlib
import dataclasses
import logging
import os
import threading

import os_vif.objects
from os_vif.objects import instance_info as osv_instance
from os_vif.objects import network as osv_network
from os_vif.objects import vif as osv_vif
from oslo_config import cfg
import pytest

from harness import sysfs_tree
from sriov_vif import config
from sriov_vif import exception
from sriov_vif import journal as journal_module
from sriov_vif import objects
from sriov_vif import plugin
from sriov_vif import vf_config
from sriov_vif import vf_state

os_vif.objects.register_all()

PF = "0000:81:00.0"
PF_IFNAME = "enp129s0f0"
INSTANCE = osv_instance.InstanceInfo(
    uuid="8f8e7a2b-1111-4444-8888-000000000001", name="instance-0001")
VIF_A = "aaaaaaaa-0000-4000-8000-000000000001"
VIF_B = "bbbbbbbb-0000-4000-8000-000000000002"


class FakeKernel:
    """VF tables and netdevs with the semantics vf_config promises.

    trips counts the privileged calls vf_config would make: one per
    apply_settings or apply_changes that has anything to send.
    """

    def __init__(self, numvfs):
        self.vfs = {
            i: vf_state.VFState(
                index=i, mac="00:00:00:00:00:00", vlan=0, qos=0,
                vlan_proto="802.1Q", spoofchk=False, trust=False,
                link_state="auto", min_tx_rate=0, max_tx_rate=0)
            for i in range(numvfs)}
        self.netdevs = {}
        self.applied = []
        self.batches = []
        self.trips = 0
        self.sent = False
        self.refuse = None   # attribute name the "driver" refuses
        self.refuse_vf = None  # only on this VF index, if set
        self.crash_after_apply = False
        self.fail_set_netdev = False
        self.lock = threading.Lock()

    def vf_state_now(self, vf):
        assert vf.pf.ifname == PF_IFNAME
        return self.vfs[vf.index]

    def vf_states_now(self, vfs):
        return {vf.pci_address: self.vf_state_now(vf) for vf in vfs}

    def _apply(self, vf, settings, current, netdev):
        assert vf.pf.ifname == PF_IFNAME
        pf_ifname, vf_index, pf_driver = PF_IFNAME, vf.index, vf.pf.driver
        request = settings.complete_with(current).differing_from(current)
        if self.refuse in request.requested() and self.refuse_vf in (
                None, vf_index):
            raise exception.VFAttributeRefused(
                pf_ifname=pf_ifname, driver=pf_driver, vf_index=vf_index,
                address=vf.pci_address, attribute=self.refuse,
                reason="Invalid argument")
        if request.is_empty() and netdev is None:
            return current  # vf_config sends nothing then
        self.sent = True
        with self.lock:
            self.vfs[vf_index] = dataclasses.replace(
                self.vfs[vf_index], **request.requested())
            if not request.is_empty():
                self.applied.append((vf_index, request.requested()))
        if self.crash_after_apply:
            raise SystemExit("nova-compute killed")
        if netdev is not None:
            assert vf.ifname == netdev.ifname
            if self.fail_set_netdev:
                raise exception.NetdevNotFound(ifname=netdev.ifname)
            old_mac, old_up = self.netdevs[netdev.ifname]
            self.netdevs[netdev.ifname] = (
                netdev.mac or old_mac,
                old_up if netdev.up is None else netdev.up)
        return self.vfs[vf_index]

    @contextlib.contextmanager
    def _trip(self):
        self.sent = False
        try:
            yield
        finally:
            self.trips += self.sent

    def apply_settings(self, vf, settings, current, unsupported_action,
                       netdev=None):
        with self._trip():
            return self._apply(vf, settings, current, netdev)

    def apply_changes(self, changes, unsupported_action):
        with self._trip():
            return self._apply_changes(changes)

    def _apply_changes(self, changes):
        self.batches.append([change.vf.index for change in changes])
        outcomes = {}
        for change in changes:
            try:
                outcomes[change.vf.pci_address] = self._apply(
                    change.vf, change.settings, change.current,
                    change.netdev)
            except exception.SriovVifError as exc:
                outcomes[change.vf.pci_address] = exc
        return outcomes

    def netdev_state(self, vf, ifname):
        assert vf.ifname == ifname
        mac, up = self.netdevs[ifname]
        return vf_config.NetdevState(mac=mac, up=up)


@pytest.fixture
def kernel(monkeypatch):
    fake = FakeKernel(numvfs=16)
    for name in ("vf_state_now", "vf_states_now", "apply_settings",
                 "apply_changes", "netdev_state"):
        monkeypatch.setattr(vf_config, name, getattr(fake, name))
    return fake


@pytest.fixture
def tree(tmp_path):
    return sysfs_tree.SysfsTree(str(tmp_path / "sys"))


@pytest.fixture
def host(tree, kernel):
    built = tree.add_pf(PF, [PF_IFNAME], driver="ice", numvfs=16,
                        vf_driver="iavf")
    for vf in built.vfs:
        kernel.netdevs[vf.ifname] = (f"52:54:00:00:00:{vf.index:02x}", False)
    tree.bind(built.vf(1).pci_address, "vfio-pci")
    return built


@pytest.fixture
def conf(tmp_path):
    conf = cfg.ConfigOpts()
    conf.register_opts(config.CONFIG_OPTS, group=config.GROUP)
    conf([])
    conf.set_override("sysfs_root", str(tmp_path / "sys"), config.GROUP)
    conf.set_override("state_path", str(tmp_path / "state"), config.GROUP)
    return conf


@pytest.fixture
def sriov(conf, host):
    return plugin.SriovPlugin(conf[config.GROUP])


def _hostdev(host, index, vif_id=VIF_A, vlan=100, **profile):
    return osv_vif.VIFHostDevice(
        id=vif_id, address=f"fa:16:3e:00:00:{index:02x}", plugin="sriov",
        dev_type="ethernet", dev_address=host.vf(index).pci_address,
        network=osv_network.Network(vlan=vlan),
        port_profile=objects.VIFPortProfileSRIOV(**profile))


def _direct(host, index, vif_id=VIF_A):
    return osv_vif.VIFDirect(
        id=vif_id, address=f"fa:16:3e:00:01:{index:02x}", plugin="sriov",
        dev_address=host.vf(index).pci_address, mode="passthrough",
        vif_name="macvtap0", network=osv_network.Network(vlan=200))


def test_plug_applies_policy_and_unplug_restores(sriov, host, kernel):
    original = kernel.vfs[1]
    vif = _hostdev(host, 1, trusted=True, vlan_qos=3, vlan_proto="802.1ad",
                   max_tx_rate=100)
    sriov.plug(vif, INSTANCE)
    assert kernel.vfs[1] == dataclasses.replace(
        original, mac="fa:16:3e:00:00:01", vlan=100, qos=3,
        vlan_proto="802.1ad", trust=True, max_tx_rate=100)
    record = sriov.state_journal.load(host.vf(1).pci_address)
    assert record.original == original
    assert record.owner.vif_id == VIF_A
    assert record.owner.instance_uuid == INSTANCE.uuid
    sriov.unplug(vif, INSTANCE)
    assert kernel.vfs[1] == original
    assert sriov.state_journal.addresses() == []


def test_unplug_restores_only_what_plug_changed(sriov, host, kernel):
    vif = _hostdev(host, 2, trusted=True)
    sriov.plug(vif, INSTANCE)
    # Someone else changes an attribute plug never touched.
    kernel.vfs[2] = dataclasses.replace(kernel.vfs[2], spoofchk=True)
    sriov.unplug(vif, INSTANCE)
    assert kernel.vfs[2].spoofchk is True
    assert kernel.vfs[2].trust is False and kernel.vfs[2].vlan == 0


def test_released_mac_is_zeroed_or_restored(conf, sriov, host, kernel):
    kernel.vfs[3] = dataclasses.replace(kernel.vfs[3],
                                        mac="52:54:00:12:34:56")
    vif = _hostdev(host, 3)
    sriov.plug(vif, INSTANCE)
    sriov.unplug(vif, INSTANCE)
    assert kernel.vfs[3].mac == vf_state.ZERO_MAC
    conf.set_override("released_vf_mac", "restore", config.GROUP)
    sriov.plug(vif, INSTANCE)
    sriov.unplug(vif, INSTANCE)
    assert kernel.vfs[3].mac == vf_state.ZERO_MAC  # the original now
    kernel.vfs[3] = dataclasses.replace(kernel.vfs[3],
                                        mac="52:54:00:12:34:56")
    sriov.plug(vif, INSTANCE)
    sriov.unplug(vif, INSTANCE)
    assert kernel.vfs[3].mac == "52:54:00:12:34:56"


def test_replug_after_restart_keeps_the_original(conf, sriov, host, kernel):
    original = kernel.vfs[4]
    vif = _hostdev(host, 4, trusted=True)
    sriov.plug(vif, INSTANCE)
    restarted = plugin.SriovPlugin(conf[config.GROUP])
    restarted.plug(vif, INSTANCE)
    restarted.plug(vif, INSTANCE)
    assert restarted.state_journal.load(
        host.vf(4).pci_address).original == original
    assert len(kernel.applied) == 1  # nothing left to change on replug
    restarted.unplug(vif, INSTANCE)
    assert kernel.vfs[4] == original


def test_unknown_and_repeated_unplug_are_logged_noops(sriov, host, kernel,
                                                      caplog):
    caplog.set_level(logging.INFO)
    vif = _hostdev(host, 5)
    sriov.unplug(vif, INSTANCE)
    assert "nothing to restore" in caplog.text
    assert kernel.applied == []
    sriov.plug(vif, INSTANCE)
    sriov.unplug(vif, INSTANCE)
    applied = len(kernel.applied)
    sriov.unplug(vif, INSTANCE)
    assert len(kernel.applied) == applied


def test_stale_owner_cannot_reset_a_vf_with_a_new_owner(sriov, host, kernel,
                                                        caplog):
    original = kernel.vfs[6]
    old = _hostdev(host, 6, vif_id=VIF_A, vlan=10)
    new = _hostdev(host, 6, vif_id=VIF_B, vlan=20, trusted=True)
    sriov.plug(old, INSTANCE)
    sriov.plug(new, INSTANCE)
    assert "takes it over" in caplog.text
    sriov.unplug(old, INSTANCE)
    assert "now belongs to VIF " + VIF_B in caplog.text
    assert (kernel.vfs[6].vlan, kernel.vfs[6].trust) == (20, True)
    sriov.unplug(new, INSTANCE)
    assert kernel.vfs[6] == original


def test_refused_attribute_leaves_vf_and_journal_clean(sriov, host, kernel):
    original = kernel.vfs[7]
    kernel.refuse = "max_tx_rate"
    with pytest.raises(exception.VFAttributeRefused, match="max_tx_rate"):
        sriov.plug(_hostdev(host, 7, max_tx_rate=100000), INSTANCE)
    assert kernel.vfs[7] == original
    assert sriov.state_journal.addresses() == []


def test_crash_after_the_change_is_repaired_by_restore(conf, sriov, host,
                                                       kernel):
    original = kernel.vfs[8]
    kernel.crash_after_apply = True
    with pytest.raises(SystemExit):
        sriov.plug(_hostdev(host, 8, trusted=True), INSTANCE)
    assert kernel.vfs[8] != original
    kernel.crash_after_apply = False
    restarted = plugin.SriovPlugin(conf[config.GROUP])
    assert restarted.restore() == plugin.RestoreResult(
        restored=[host.vf(8).pci_address])
    assert kernel.vfs[8] == original
    assert restarted.restore() == plugin.RestoreResult()


def test_direct_configures_and_restores_the_vf_netdev(sriov, host, kernel):
    netdev = host.vf(9).ifname
    before = kernel.netdevs[netdev]
    vif = _direct(host, 9)
    sriov.plug(vif, INSTANCE)
    assert kernel.netdevs[netdev] == ("fa:16:3e:00:01:09", True)
    assert kernel.vfs[9].vlan == 200
    sriov.unplug(vif, INSTANCE)
    assert kernel.netdevs[netdev] == before


def test_direct_netdev_failure_undoes_the_vf(sriov, host, kernel):
    original = kernel.vfs[10]
    kernel.fail_set_netdev = True
    with pytest.raises(exception.NetdevNotFound):
        sriov.plug(_direct(host, 10), INSTANCE)
    assert kernel.vfs[10] == original
    assert sriov.state_journal.addresses() == []


def test_direct_on_vfio_vf_fails_before_any_change(sriov, host, kernel):
    with pytest.raises(exception.VFNetdevNotFound,
                       match=host.vf(1).pci_address):
        sriov.plug(_direct(host, 1), INSTANCE)
    assert kernel.applied == []
    assert sriov.state_journal.addresses() == []


def test_bad_input_changes_nothing(sriov, host, kernel):
    with pytest.raises(exception.UnsupportedVIF):
        sriov.plug(_hostdev(host, 11, vlan_qos=9), INSTANCE)
    gone = osv_vif.VIFHostDevice(
        id=VIF_A, address="fa:16:3e:00:00:01", plugin="sriov",
        dev_type="ethernet", dev_address="0000:99:00.1")
    with pytest.raises(exception.PciDeviceNotFound):
        sriov.plug(gone, INSTANCE)
    assert kernel.applied == []
    assert sriov.state_journal.addresses() == []


def test_corrupt_journal_on_unplug_is_logged(sriov, host, kernel, caplog):
    caplog.set_level(logging.INFO)
    vif = _hostdev(host, 12)
    sriov.plug(vif, INSTANCE)
    # the record's file, named after the VF as the journal documents
    path = os.path.join(sriov.state_journal.state_path,
                        f"{host.vf(12).pci_address}.json")
    with open(path, "w") as f:
        f.write("{")
    sriov.unplug(vif, INSTANCE)
    assert "unreadable" in caplog.text and "nothing to restore" in caplog.text


def test_concurrent_plugs_on_one_pf(sriov, host, kernel):
    vifs = [_hostdev(host, i, vif_id=f"cccccccc-0000-4000-8000-{i:012d}",
                     vlan=100 + i) for i in range(16)]
    errors = []

    def plug(vif):
        try:
            sriov.plug(vif, INSTANCE)
        except Exception as exc:  # noqa: BLE001 - collected for the assert
            errors.append(exc)

    threads = [threading.Thread(target=plug, args=(v,)) for v in vifs]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert [kernel.vfs[i].vlan for i in range(16)] == [
        100 + i for i in range(16)]
    assert len(sriov.state_journal.addresses()) == 16


def test_generic_hostdev_of_a_whole_pf_configures_nothing(sriov, host,
                                                          kernel):
    vif = osv_vif.VIFHostDevice(
        id=VIF_A, address="fa:16:3e:00:00:99", plugin="sriov",
        dev_type="generic", dev_address=PF)
    sriov.plug(vif, INSTANCE)
    sriov.unplug(vif, INSTANCE)
    assert kernel.applied == []
    assert sriov.state_journal.addresses() == []
    ethernet = osv_vif.VIFHostDevice(
        id=VIF_A, address="fa:16:3e:00:00:99", plugin="sriov",
        dev_type="ethernet", dev_address=PF)
    with pytest.raises(exception.NotAVirtualFunction, match=PF):
        sriov.plug(ethernet, INSTANCE)


def test_restore_goes_on_past_a_vf_it_cannot_restore(sriov, host, kernel):
    originals = dict(kernel.vfs)
    for index in (2, 3):
        sriov.plug(_hostdev(host, index, vif_id=f"dddddddd-0000-4000-8000-"
                            f"{index:012d}", trusted=True), INSTANCE)
    # VF 2's record no longer matches the device: another VF now sits at
    # that address (as after a firmware or numvfs change).
    records = sriov.state_journal
    record = records.load(host.vf(2).pci_address)
    records.save(dataclasses.replace(record, vf_index=9))
    result = sriov.restore()
    assert result.restored == [host.vf(3).pci_address]
    assert list(result.failed) == [host.vf(2).pci_address]
    assert "is now VF 2" in result.failed[host.vf(2).pci_address]
    assert kernel.vfs[3] == originals[3]
    assert kernel.vfs[9] == originals[9]  # never written with VF 2's state
    assert records.addresses() == [host.vf(2).pci_address]


def test_a_vf_that_no_longer_exists_drops_its_record(sriov, host, tree,
                                                     kernel, caplog):
    vif = _hostdev(host, 14)
    sriov.plug(vif, INSTANCE)
    applied = len(kernel.applied)
    tree.set_numvfs(PF, 4)
    sriov.unplug(vif, INSTANCE)
    assert len(kernel.applied) == applied
    assert sriov.state_journal.addresses() == []
    assert "no longer exists" in caplog.text


def test_a_netdev_mac_that_cannot_be_set_again_is_left_alone(sriov, host,
                                                            kernel):
    netdev = host.vf(11).ifname
    kernel.netdevs[netdev] = ("00:00:00:00:00:00", False)
    vif = _direct(host, 11)
    sriov.plug(vif, INSTANCE)
    assert sriov.state_journal.load(host.vf(11).pci_address).netdev.mac \
        is None
    sriov.unplug(vif, INSTANCE)
    # Up state restored; the MAC stays, rather than an unplug that fails
    # forever on a MAC the kernel refuses.
    assert kernel.netdevs[netdev] == ("fa:16:3e:00:01:0b", False)
    assert sriov.state_journal.addresses() == []


def _elsewhere(vif, host, index):
    """The same VIF as nova sees it with another host's binding."""
    moved = vif.obj_clone()
    moved.dev_address = host.vf(index).pci_address
    return moved


def test_unplug_with_another_hosts_binding_restores_the_vif_own_vf(
        sriov, host, kernel, caplog):
    caplog.set_level(logging.INFO)
    original, other = kernel.vfs[2], kernel.vfs[9]
    vif = _hostdev(host, 2, trusted=True)
    sriov.plug(vif, INSTANCE)
    sriov.unplug(_elsewhere(vif, host, 9), INSTANCE)
    assert kernel.vfs[2] == dataclasses.replace(original,
                                                mac=vf_state.ZERO_MAC)
    assert kernel.vfs[9] == other
    assert sriov.state_journal.addresses() == []
    assert "was plugged on VF " + host.vf(2).pci_address in caplog.text


def test_unplug_with_a_binding_naming_another_vifs_vf(sriov, host, kernel):
    mine, theirs = _hostdev(host, 3), _hostdev(host, 4, vif_id=VIF_B,
                                               vlan=40, trusted=True)
    original = kernel.vfs[3]
    sriov.plug(mine, INSTANCE)
    sriov.plug(theirs, INSTANCE)
    sriov.unplug(_elsewhere(mine, host, 4), INSTANCE)
    assert kernel.vfs[3] == dataclasses.replace(original,
                                                mac=vf_state.ZERO_MAC)
    assert (kernel.vfs[4].vlan, kernel.vfs[4].trust) == (40, True)
    assert sriov.state_journal.addresses() == [host.vf(4).pci_address]


def test_unplug_by_vif_also_restores_a_direct_vfs_netdev(sriov, host,
                                                         kernel):
    netdev = host.vf(5).ifname
    before = kernel.netdevs[netdev]
    vif = _direct(host, 5)
    sriov.plug(vif, INSTANCE)
    assert kernel.netdevs[netdev] != before
    sriov.unplug(_elsewhere(vif, host, 6), INSTANCE)
    assert kernel.netdevs[netdev] == before
    assert sriov.state_journal.addresses() == []


def test_unplug_of_an_unknown_vif_elsewhere_is_a_logged_noop(
        sriov, host, kernel, caplog):
    caplog.set_level(logging.INFO)
    sriov.plug(_hostdev(host, 7, vif_id=VIF_B), INSTANCE)
    applied = len(kernel.applied)
    sriov.unplug(_hostdev(host, 8), INSTANCE)
    assert "no VF has a journal record for it" in caplog.text
    assert len(kernel.applied) == applied
    assert sriov.state_journal.addresses() == [host.vf(7).pci_address]


def test_restore_by_vif_id(sriov, host, kernel):
    original = kernel.vfs[10]
    sriov.plug(_hostdev(host, 10, trusted=True), INSTANCE)
    sriov.plug(_hostdev(host, 11, vif_id=VIF_B), INSTANCE)
    unknown = "cccccccc-0000-4000-8000-000000000003"
    result = sriov.restore(vif_ids=[VIF_A, unknown])
    assert result == plugin.RestoreResult(
        restored=[host.vf(10).pci_address], not_found=[unknown])
    assert kernel.vfs[10] == dataclasses.replace(original,
                                                 mac=vf_state.ZERO_MAC)
    assert sriov.state_journal.addresses() == [host.vf(11).pci_address]


def test_restore_goes_on_past_any_error_and_any_record(sriov, host, kernel,
                                                       monkeypatch):
    originals = dict(kernel.vfs)
    for index in (2, 3, 4):
        sriov.plug(_hostdev(host, index, vif_id=f"dddddddd-0000-4000-8000-"
                            f"{index:012d}", trusted=True), INSTANCE)
    state = sriov.state_journal.state_path
    # VF 2: a record that parses as JSON but is not one.
    with open(f"{state}/{host.vf(2).pci_address}.json", "w") as f:
        f.write("[]")
    # VF 3: something no SriovVifError describes.
    real = plugin.SriovPlugin._restore_target

    def broken(self, record, release):
        if record.pci_address == host.vf(3).pci_address:
            raise RuntimeError("driver exploded")
        return real(self, record, release)

    monkeypatch.setattr(plugin.SriovPlugin, "_restore_target", broken)
    result = sriov.restore()
    # VF 2's record was moved aside and logged: nothing left to restore
    assert result.restored == [host.vf(4).pci_address]
    left = sorted(name for name in os.listdir(state) if name != "locks")
    assert left[0].startswith(host.vf(2).pci_address + ".json.corrupt-")
    assert left[1:] == [host.vf(3).pci_address + ".json"]
    assert result.failed == {
        host.vf(3).pci_address: "RuntimeError: driver exploded"}
    assert kernel.vfs[4] == dataclasses.replace(
        originals[4], mac=vf_state.ZERO_MAC)


def test_warnings_and_errors_name_vf_pf_index_and_vif(sriov, host, kernel,
                                                      caplog):
    """Issue 15 item 12: every line says which VF, PF, index and VIF."""
    caplog.set_level(logging.INFO, logger="sriov_vif")
    netdev = host.vf(9).ifname
    kernel.netdevs[netdev] = ("00:00:00:00:00:00", False)
    sriov.plug(_direct(host, 9), INSTANCE)
    [line] = [r.getMessage() for r in caplog.records
              if "cannot be set again" in r.getMessage()]
    assert host.vf(9).pci_address in line
    assert f"{PF_IFNAME} vf 9" in line
    assert netdev in line and VIF_A in line

    caplog.clear()
    kernel.refuse = "trust"
    with pytest.raises(exception.VFAttributeRefused):
        sriov.plug(_hostdev(host, 4, vif_id=VIF_B, trusted=True), INSTANCE)
    errors = [r.getMessage() for r in caplog.records
              if r.levelno >= logging.WARNING]
    assert errors
    for message in errors:
        assert host.vf(4).pci_address in message, message
        assert f"{PF_IFNAME} vf 4" in message, message
        assert VIF_B in message, message


def test_a_plug_killed_while_saving_leaves_nothing_after_repair(
        sriov, host, kernel):
    state = sriov.state_journal.state_path
    os.makedirs(state, exist_ok=True)
    for index in (2, 3):
        leftover = f"{state}/.{host.vf(index).pci_address}.json.0a1b.tmp"
        with open(leftover, "w") as f:
            f.write('{"version": 1, "pci_add')
    sriov.unplug(_hostdev(host, 2), INSTANCE)
    assert sriov.restore([host.vf(3).pci_address]).failed == {}
    assert sorted(os.listdir(state)) == ["locks"]


# One privileged round trip per operation; one per PF for a restore.

def test_plug_and_unplug_make_one_privileged_call_each(sriov, host, kernel):
    for vif in (_hostdev(host, 2, trusted=True), _direct(host, 3)):
        kernel.trips = 0
        sriov.plug(vif, INSTANCE)
        assert kernel.trips == 1
        sriov.unplug(vif, INSTANCE)
        assert kernel.trips == 2


def test_a_replug_that_finds_everything_in_place_changes_nothing(
        conf, sriov, host, kernel, monkeypatch):
    # nova-compute replugs every VIF when it starts
    vif = _direct(host, 3)
    sriov.plug(vif, INSTANCE)
    saves = []
    monkeypatch.setattr(journal_module.Journal, "save",
                        lambda self, record: saves.append(record))
    kernel.trips = 0
    plugin.SriovPlugin(conf[config.GROUP]).plug(vif, INSTANCE)
    assert (kernel.trips, saves) == (0, [])
    # a VIF that lost its netdev MAC gets it back, in one call
    netdev = host.vf(3).ifname
    kernel.netdevs[netdev] = ("52:54:00:00:00:99", True)
    plugin.SriovPlugin(conf[config.GROUP]).plug(vif, INSTANCE)
    assert kernel.trips == 1 and saves == []
    assert kernel.netdevs[netdev] == ("fa:16:3e:00:01:03", True)


def test_restore_puts_back_the_vfs_of_a_pf_with_one_call(sriov, host,
                                                         kernel):
    originals = dict(kernel.vfs)
    indexes = (0, 2, 3, 5, 9)
    for index in indexes:
        vif = (_direct(host, index, vif_id=f"dddddddd-0000-4000-8000-"
                       f"{index:012d}") if index == 5 else
               _hostdev(host, index, vif_id=f"dddddddd-0000-4000-8000-"
                        f"{index:012d}", trusted=True))
        sriov.plug(vif, INSTANCE)
    netdev = host.vf(5).ifname
    kernel.trips = 0
    kernel.refuse, kernel.refuse_vf = "mac", 3
    result = sriov.restore()
    assert kernel.batches == [[0, 2, 3, 5, 9]]
    # the batch, then VF 3 on its own: an error of its own is kept
    assert result.restored == [host.vf(i).pci_address
                               for i in (0, 2, 5, 9)]
    assert list(result.failed) == [host.vf(3).pci_address]
    assert sriov.state_journal.addresses() == [host.vf(3).pci_address]
    for index in (0, 2, 5, 9):
        assert kernel.vfs[index] == dataclasses.replace(
            originals[index], mac=vf_state.ZERO_MAC)
    assert kernel.netdevs[netdev] == ("52:54:00:00:00:05", False)


def test_restore_removes_the_records_with_one_directory_fsync(
        sriov, host, kernel, monkeypatch):
    for index in range(6):
        sriov.plug(_hostdev(host, index, vif_id=f"dddddddd-0000-4000-8000-"
                            f"{index:012d}"), INSTANCE)
    fsyncs = []
    real_fsync = os.fsync

    def counting(fd):
        fsyncs.append(os.path.realpath(f"/proc/self/fd/{fd}"))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", counting)
    assert len(sriov.restore().restored) == 6
    assert fsyncs == [sriov.state_journal.state_path]
