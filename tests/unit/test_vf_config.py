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

"""The unprivileged client: policy, validation, typed results.

The privileged entrypoint is replaced by a recorder that answers what
the daemon would, after the trip through privsep's msgpack channel
(tuples for lists), and the reads this process makes with rtnl by the
same recorder. tests/unit/test_privileged.py covers the entrypoint
itself and the two halves together.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import logging

import msgpack
from pyroute2.netlink.exceptions import NetlinkError
import pytest

from sriov_vif import discovery
from sriov_vif import exception
from sriov_vif import pf_drivers
from sriov_vif import privileged
from sriov_vif import rtnl
from sriov_vif import vf_config
from sriov_vif import vf_state
from sriov_vif.vf_state import VFSettings
from sriov_vif.vf_state import VFState

PF = "enp1s0f0"
PF_ADDRESS = "0000:81:00.0"
MAC = "52:54:00:12:34:56"


def address(index):
    return f"0000:81:{0x10 + index // 8:02x}.{index % 8}"


def index_of(vf_address):
    _domain, _bus, slot, function = vf_address.replace(".", ":").split(":")
    return (int(slot, 16) - 0x10) * 8 + int(function)


def make_vf(index, driver="netdevsim", ifname=None):
    pf = discovery.PhysicalFunction(
        pci_address=PF_ADDRESS, ifname=PF, driver=driver,
        numvfs=8, totalvfs=64)
    return discovery.VirtualFunction(
        pci_address=address(index), index=index, pf=pf, ifname=ifname,
        driver="iavf")


def wire(value):
    return msgpack.unpackb(msgpack.packb(value, use_bin_type=True),
                           use_list=False, raw=False, strict_map_key=False)


def vf(index, **changes):
    state = VFState(index=index, mac="00:00:00:00:00:00", vlan=0, qos=0,
                    vlan_proto="802.1Q", spoofchk=False, trust=False,
                    link_state="auto", min_tx_rate=0, max_tx_rate=0)
    return dataclasses.replace(state, **changes)


def refusal(attribute, code, vf_present=True, num_vfs=8):
    return {"refused": {
        "errno": code, "num_vfs": num_vfs, "vf_present": vf_present,
        "attribute": attribute,
        "fields": list(dict(rtnl.KERNEL_ORDER).get(attribute, ())),
        "rolled_back": []}}


@dataclasses.dataclass(frozen=True)
class FakeLookup:
    """rtnl.VFLookup's interface, without a netlink reply behind it."""

    num_vfs: int
    listed_vfs: int
    found: dict

    def listed(self):
        return self.listed_vfs


class Daemon:
    """Stands in for the privileged entrypoint and the reads of rtnl.

    Records every call: ("change_vfs", pf address, pf ifname, items) for
    the one privileged call, ("read", indexes), ("read_vfs",) and
    ("read_netdev", ifname) for the reads made in the caller's process.
    outcomes holds one answer per VF item, in the order they are sent;
    failures, an exception per call, raised instead of answering.
    """

    def __init__(self, vfs=(), num_vfs=None):
        self.vfs = list(vfs)
        self.num_vfs = len(self.vfs) if num_vfs is None else num_vfs
        self.calls = []
        self.outcomes = []
        self.failures = []
        self.tables = []

    def _table(self):
        return self.tables.pop(0) if self.tables else self.vfs

    def read_vfs(self, session, pf_ifname):
        assert pf_ifname == PF
        self.calls.append(("read_vfs",))
        return self.num_vfs, list(self._table())

    def read_some(self, session, pf_ifname, vf_indexes):
        assert pf_ifname == PF
        self.calls.append(("read", tuple(vf_indexes)))
        vfs = self._table()
        return FakeLookup(self.num_vfs, len(vfs), {
            v.index: v for v in vfs if v.index in vf_indexes})

    def read_netdev(self, session, ifname):
        self.calls.append(("read_netdev", ifname))
        return MAC, True

    def change_vfs(self, pf_address, pf_ifname, vfs):
        self.calls.append(("change_vfs", pf_address, pf_ifname, wire(vfs)))
        if self.failures:
            failure = self.failures.pop(0)
            if failure is not None:
                raise failure
        return wire([(self.outcomes.pop(0) if self.outcomes
                      else {"refused": None})["refused"] for _item in vfs])

    def items(self):
        return [item for call in self.calls if call[0] == "change_vfs"
                for item in call[3]]

    def applied(self):
        return [item["settings"] for item in self.items()]


@pytest.fixture
def daemon(monkeypatch):
    fake = Daemon(vfs=[vf(i) for i in range(8)])
    monkeypatch.setattr(privileged, "change_vfs", fake.change_vfs)
    for name in ("read_vfs", "read_some", "read_netdev"):
        monkeypatch.setattr(rtnl, name, getattr(fake, name))
    monkeypatch.setattr(rtnl, "session", contextlib.nullcontext)
    monkeypatch.setattr(vf_config, "MAC_READBACK_INTERVAL", 0)
    return fake


def apply(settings, current=None, driver="netdevsim", action="fail",
          index=1):
    return vf_config.apply_settings(
        make_vf(index, driver), settings, current or vf(index),
        unsupported_action=action)


# Reading.

def test_table_is_keyed_by_vf_index(daemon):
    daemon.vfs = [vf(3, vlan=3), vf(0), vf(1, trust=None), vf(2)]
    daemon.num_vfs = 4
    table = vf_config.vf_table(make_vf(0).pf)
    assert table == {v.index: v for v in daemon.vfs}


def test_a_truncated_table_is_an_error_not_a_short_answer(daemon):
    daemon.vfs = [vf(i) for i in range(35)]
    daemon.num_vfs = 256
    with pytest.raises(exception.VFTableIncomplete) as err:
        vf_config.vf_table(make_vf(0).pf)
    assert "reported 35 of the 256 VFs of enp1s0f0" in str(err.value)
    # a VF that made it into the list can still be read alone
    assert vf_config.vf_state_now(make_vf(34)) == vf(34)
    with pytest.raises(exception.VFTableIncomplete):
        vf_config.vf_state_now(make_vf(35))


def test_read_vf_past_the_count(daemon):
    with pytest.raises(exception.VFIndexOutOfRange) as err:
        vf_config.vf_state_now(make_vf(8))
    assert str(err.value) == ("VF 0000:81:11.0: index 8 does not exist on "
                              "enp1s0f0 (it has 8 VFs)")


# What is sent.

def test_everything_goes_in_one_request_and_the_state_is_computed(daemon):
    settings = VFSettings(mac=MAC, vlan=100, qos=3, vlan_proto="802.1ad",
                          spoofchk=True, trust=True, link_state="enable",
                          min_tx_rate=10, max_tx_rate=100)
    state = apply(settings)
    assert daemon.applied() == [settings.requested()]
    assert state == vf(1, **settings.requested())
    # no read-back for a driver that applies the MAC synchronously
    assert [c[0] for c in daemon.calls] == ["change_vfs"]
    assert daemon.calls[0][1:3] == (PF_ADDRESS, PF)


def test_groups_are_completed_and_equal_values_dropped(daemon):
    current = vf(1, vlan=7, qos=3, vlan_proto="802.1ad", min_tx_rate=10,
                 max_tx_rate=100, trust=True)
    apply(VFSettings(vlan=8, max_tx_rate=200, trust=True, spoofchk=False),
          current)
    assert daemon.applied() == [{
        "vlan": 8, "qos": 3, "vlan_proto": "802.1ad", "min_tx_rate": 10,
        "max_tx_rate": 200}]
    # the pre-request state travels along for the rollback
    assert daemon.items()[0]["before"] == current.to_primitive()


def test_nothing_to_change_sends_nothing(daemon):
    current = vf(1, mac=MAC, vlan=5)
    assert apply(VFSettings(mac=MAC, vlan=5, qos=0), current) is current
    assert daemon.calls == []


# Driver profiles.

def test_profile_gap_fails_before_any_request(daemon):
    with pytest.raises(exception.VFAttributeUnsupported) as err:
        apply(VFSettings(mac=MAC, link_state="enable"), driver="igb")
    assert str(err.value) == ("PF driver igb of enp1s0f0 cannot set "
                              "link_state=enable on VF 0000:81:10.1 (vf 1)")
    assert daemon.calls == []


def test_profile_gap_warns_and_applies_the_rest(daemon, caplog):
    caplog.set_level(logging.WARNING, logger="sriov_vif.vf_config")
    state = apply(VFSettings(mac=MAC, link_state="enable", min_tx_rate=10,
                             max_tx_rate=100),
                  driver="igb", action="warn")
    assert daemon.applied() == [{"mac": MAC, "min_tx_rate": 0,
                                 "max_tx_rate": 100}]
    assert state == vf(1, mac=MAC, max_tx_rate=100)
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 2
    assert ("VF 0000:81:10.1 (enp1s0f0 vf 1): PF driver igb cannot set "
            "link_state=enable" in messages[0])
    assert "min_tx_rate=10" in messages[1]


def test_unsupported_vlan_protocol_drops_the_whole_vlan(daemon, caplog):
    caplog.set_level(logging.WARNING, logger="sriov_vif.vf_config")
    apply(VFSettings(mac=MAC, vlan=5, qos=1, vlan_proto="802.1ad"),
          driver="mlx5_core", action="warn")
    assert daemon.applied() == [{"mac": MAC}]
    assert "vlan_proto=802.1ad" in caplog.records[0].getMessage()


def test_value_already_set_is_no_gap(daemon):
    # igb reports link state auto; restoring "auto" must not fail
    apply(VFSettings(mac=MAC, link_state="auto", min_tx_rate=0),
          driver="igb")
    assert daemon.applied() == [{"mac": MAC}]


def test_unknown_driver_gets_the_default_profile_and_a_mac_check(daemon):
    daemon.tables = [[vf(1)], [vf(1)], [vf(1, mac=MAC)]]
    daemon.num_vfs = 8
    state = apply(VFSettings(mac=MAC), driver="bnxt_en")
    assert state == vf(1, mac=MAC)
    assert [c[0] for c in daemon.calls] == [
        "change_vfs", "read", "read", "read"]


def test_async_mac_that_never_shows_up_is_an_error(daemon):
    with pytest.raises(exception.VFConfigError) as err:
        apply(VFSettings(mac=MAC), driver="i40e")
    assert "accepted MAC 52:54:00:12:34:56 but still reports " \
           "00:00:00:00:00:00" in str(err.value)
    assert len(daemon.calls) == 1 + vf_config.MAC_READBACK_ATTEMPTS


# Refusals at runtime.

def test_eopnotsupp_fails_naming_attribute_pf_driver_and_vf(daemon):
    daemon.outcomes = [refusal("rate", errno.EOPNOTSUPP)]
    with pytest.raises(exception.VFAttributeUnsupported) as err:
        apply(VFSettings(mac=MAC, max_tx_rate=100))
    assert str(err.value) == (
        "PF driver netdevsim of enp1s0f0 cannot set min_tx_rate=0, "
        "max_tx_rate=100 (the kernel answered Operation not supported "
        "(EOPNOTSUPP)) on VF 0000:81:10.1 (vf 1)")


@pytest.mark.parametrize("code", [errno.EOPNOTSUPP, errno.EPROTONOSUPPORT])
def test_unsupported_at_runtime_warns_and_retries_the_rest(daemon, caplog,
                                                          code):
    caplog.set_level(logging.WARNING, logger="sriov_vif.vf_config")
    daemon.outcomes = [refusal("vlan", code)]
    state = apply(VFSettings(mac=MAC, vlan=5, qos=0, vlan_proto="802.1ad",
                             trust=True), action="warn")
    assert daemon.applied() == [
        {"mac": MAC, "vlan": 5, "qos": 0, "vlan_proto": "802.1ad",
         "trust": True},
        {"mac": MAC, "trust": True},
    ]
    assert state == vf(1, mac=MAC, trust=True)
    (record,) = caplog.records
    assert "VF 0000:81:10.1 (enp1s0f0 vf 1): PF driver netdevsim " \
           "refused vlan=5, qos=0, vlan_proto=802.1ad" in record.getMessage()


def test_einval_is_refused_even_in_warn_mode(daemon):
    daemon.outcomes = [refusal("trust", errno.EINVAL)]
    with pytest.raises(exception.VFAttributeRefused) as err:
        apply(VFSettings(trust=True), action="warn")
    assert str(err.value) == (
        "PF enp1s0f0 (driver netdevsim) refused trust=True for VF "
        "0000:81:10.1 (vf 1): Invalid argument (EINVAL); the VF was left "
        "as it was")


def test_other_errors_are_refusals_with_the_errno(daemon):
    daemon.outcomes = [refusal("mac", errno.EAGAIN)]
    with pytest.raises(exception.VFAttributeRefused) as err:
        apply(VFSettings(mac=MAC), driver="i40e")
    assert "Resource temporarily unavailable (EAGAIN)" in str(err.value)


@pytest.mark.parametrize("num_vfs", [8, 0])
def test_a_vf_the_pf_does_not_have(daemon, num_vfs):
    daemon.outcomes = [refusal("mac", errno.EINVAL, vf_present=False,
                               num_vfs=num_vfs)]
    with pytest.raises(exception.VFIndexOutOfRange) as err:
        apply(VFSettings(mac=MAC), index=0 if num_vfs == 0 else 9)
    assert f"(it has {num_vfs} VFs)" in str(err.value)


def test_a_link_without_sriov_is_unsupported_and_never_retried(daemon):
    daemon.outcomes = [refusal("mac", errno.EOPNOTSUPP, vf_present=False,
                               num_vfs=0)]
    with pytest.raises(exception.VFAttributeUnsupported) as err:
        apply(VFSettings(mac=MAC, trust=True), action="warn", index=0)
    assert "cannot set mac=52:54:00:12:34:56" in str(err.value)
    assert len(daemon.applied()) == 1


def test_refusal_of_no_particular_attribute(daemon):
    daemon.outcomes = [refusal(None, errno.EBUSY)]
    with pytest.raises(exception.VFAttributeRefused) as err:
        apply(VFSettings(mac=MAC, trust=True))
    assert ("refused the request (mac=52:54:00:12:34:56, trust=True), "
            "though every attribute of it read back as requested"
            in str(err.value))


def test_retries_are_bounded(daemon):
    # a daemon that keeps refusing something the request does not hold
    daemon.outcomes = [refusal("link_state", errno.EOPNOTSUPP)] * 20
    with pytest.raises(exception.VFConfigError) as err:
        apply(VFSettings(trust=True), action="warn")
    assert "gave up after 7 requests" in str(err.value)
    assert len(daemon.applied()) == len(rtnl.KERNEL_ORDER) + 1


# Validation happens here, before anything privileged.

@pytest.mark.parametrize("kwargs, error", [
    ({"vf": dataclasses.replace(make_vf(1), pci_address="0000:81:10.1\n")},
     exception.InvalidPciAddress),
    ({"vf": dataclasses.replace(make_vf(1), index=-1)},
     exception.InvalidVFSetting),
    ({"settings": VFSettings(qos=8)}, exception.InvalidVFSetting),
    ({"settings": VFSettings(mac="01:00:00:00:00:01")},
     exception.InvalidVFSetting),
    ({"settings": VFSettings(max_tx_rate=5)}, exception.InvalidVFSetting),
    ({"current": vf(2)}, exception.InvalidVFSetting),
    ({"unsupported_action": "ignore"}, exception.InvalidVFSetting),
])
def test_bad_arguments_fail_before_the_daemon(daemon, kwargs, error):
    args = {"vf": make_vf(1), "settings": VFSettings(mac=MAC),
            "current": vf(1, min_tx_rate=10, max_tx_rate=20),
            "unsupported_action": "fail"}
    args.update(kwargs)
    with pytest.raises(error):
        vf_config.apply_settings(**args)
    assert daemon.calls == []


@pytest.mark.parametrize("call", [
    lambda: vf_config.vf_table(dataclasses.replace(
        make_vf(0).pf, pci_address="a/b")),
    lambda: vf_config.vf_state_now(dataclasses.replace(
        make_vf(0), pf=dataclasses.replace(make_vf(0).pf, ifname="a b"))),
    lambda: vf_config.netdev_state(make_vf(0), ""),
    lambda: vf_config.apply_settings(
        make_vf(0, ifname="m0"), VFSettings(), vf(0), "fail",
        vf_config.NetdevChange("m0", mac="00:00:00:00:00:00")),
    lambda: vf_config.apply_settings(
        make_vf(0, ifname="m0"), VFSettings(), vf(0), "fail",
        vf_config.NetdevChange("m0", up="yes")),  # type: ignore[arg-type]
    lambda: vf_config.apply_settings(
        make_vf(0, ifname="m0"), VFSettings(), vf(0), "fail",
        vf_config.NetdevChange("m/0", up=True)),
])
def test_bad_reads_and_netdev_changes_fail_before_the_daemon(daemon, call):
    with pytest.raises((exception.InvalidInterfaceName,
                        exception.InvalidPciAddress,
                        exception.InvalidVFSetting)):
        call()
    assert daemon.calls == []


# The VF's own netdev.

def test_netdev_state_is_read_here_and_its_change_rides_along(daemon):
    vf0 = make_vf(0, ifname="m0")
    assert vf_config.netdev_state(vf0, "m0") == vf_config.NetdevState(
        mac=MAC, up=True)
    with pytest.raises(exception.NotTheVFNetdev):
        vf_config.netdev_state(vf0, "lo")
    vf_config.apply_settings(vf0, VFSettings(mac=MAC), vf(0),
                             unsupported_action="fail",
                             netdev=vf_config.NetdevChange("m0", MAC, True))
    # the VF's settings and the netdev's change: one privileged call
    vf_config.apply_settings(vf0, VFSettings(mac=MAC), vf(0, mac=MAC),
                             unsupported_action="fail",
                             netdev=vf_config.NetdevChange("m0", up=False))
    assert [call[0] for call in daemon.calls] == [
        "read_netdev", "change_vfs", "change_vfs"]
    assert [(item["settings"], item["netdev"]) for item in daemon.items()
            ] == [({"mac": MAC}, {"ifname": "m0", "mac": MAC, "up": True}),
                  ({}, {"ifname": "m0", "mac": None, "up": False})]


def test_a_netdev_change_waits_for_a_refused_vf_to_be_retried(daemon):
    daemon.outcomes = [refusal("trust", errno.EOPNOTSUPP)]
    vf0 = make_vf(0, ifname="m0")
    vf_config.apply_settings(vf0, VFSettings(mac=MAC, trust=True), vf(0),
                             unsupported_action="warn",
                             netdev=vf_config.NetdevChange("m0", MAC, True))
    first, second = daemon.items()
    assert first["netdev"] == second["netdev"] == {
        "ifname": "m0", "mac": MAC, "up": True}
    assert second["settings"] == {"mac": MAC}


# Several VFs of a PF in one call (restore).

SET_MAC = VFSettings(mac=MAC)


def changes(*indexes, settings=SET_MAC):
    return [vf_config.Change(make_vf(i), settings, vf(i)) for i in indexes]


def test_several_vfs_go_in_one_call(daemon):
    outcomes = vf_config.apply_changes(changes(1, 2, 5), "warn")
    assert [call[0] for call in daemon.calls] == ["change_vfs"]
    assert [item["address"] for item in daemon.items()] == [
        address(1), address(2), address(5)]
    assert outcomes == {address(i): vf(i, mac=MAC) for i in (1, 2, 5)}


def test_one_refused_vf_fails_alone(daemon):
    daemon.outcomes = [{"refused": None},
                       refusal("mac", errno.EINVAL),
                       {"refused": None}]
    outcomes = vf_config.apply_changes(changes(1, 2, 5), "warn")
    assert isinstance(outcomes[address(2)], exception.VFAttributeRefused)
    assert outcomes[address(1)] == vf(1, mac=MAC)
    assert outcomes[address(5)] == vf(5, mac=MAC)
    assert len([c for c in daemon.calls if c[0] == "change_vfs"]) == 1


def test_an_unsupported_attribute_is_retried_for_that_vf_only(daemon):
    daemon.outcomes = [{"refused": None}, refusal("trust", errno.EOPNOTSUPP)]
    outcomes = vf_config.apply_changes(
        changes(1, 2, settings=VFSettings(mac=MAC, trust=True)), "warn")
    assert [[item["address"] for item in call[3]]
            for call in daemon.calls] == [[address(1), address(2)],
                                          [address(2)]]
    assert outcomes == {address(1): vf(1, mac=MAC, trust=True),
                        address(2): vf(2, mac=MAC)}


def test_a_call_that_fails_as_a_whole_is_made_per_vf(daemon, caplog):
    caplog.set_level(logging.WARNING, logger="sriov_vif.vf_config")
    busy = exception.VFsConfigError(address=PF_ADDRESS, pf_ifname=PF,
                                    count=3, reason="why")
    gone = exception.NetdevNotFound(ifname="m2")
    daemon.failures = [busy, None, gone, None]
    outcomes = vf_config.apply_changes(changes(1, 2, 5), "warn")
    assert [[item["address"] for item in call[3]]
            for call in daemon.calls] == [
        [address(1), address(2), address(5)],
        [address(1)], [address(2)], [address(5)]]
    assert outcomes[address(2)] is gone
    assert outcomes[address(1)] == vf(1, mac=MAC)
    assert "changing each on its own" in caplog.text


def test_errors_of_one_vf_before_the_call_leave_the_others(daemon):
    bad = vf_config.Change(make_vf(2), VFSettings(mac=MAC), vf(3))
    outcomes = vf_config.apply_changes([*changes(1), bad], "fail")
    assert isinstance(outcomes[address(2)], exception.InvalidVFSetting)
    assert [item["address"] for item in daemon.items()] == [address(1)]


def test_vfs_of_two_pfs_are_refused(daemon):
    other = dataclasses.replace(make_vf(2), pf=dataclasses.replace(
        make_vf(2).pf, pci_address="0000:82:00.0"))
    with pytest.raises(exception.InvalidVFSetting, match="not all VFs"):
        vf_config.apply_changes(
            [*changes(1), vf_config.Change(other, VFSettings(), vf(2))],
            "warn")
    assert daemon.calls == []


def test_several_vfs_are_read_with_one_request(daemon):
    daemon.num_vfs = 8
    states = vf_config.vf_states_now([make_vf(1), make_vf(6), make_vf(9)])
    assert daemon.calls == [("read", (1, 6, 9))]
    assert states[address(1)] == vf(1)
    assert states[address(6)] == vf(6)
    assert isinstance(states[address(9)], exception.VFIndexOutOfRange)


def test_unchanged_attributes_are_logged_at_debug(daemon, caplog):
    caplog.set_level(logging.DEBUG, logger="sriov_vif.vf_config")
    apply(VFSettings(mac=MAC, trust=False, spoofchk=False))
    assert ("VF 0000:81:10.1 (enp1s0f0 vf 1): not sending spoofchk, trust, "
            "already as requested") in caplog.text


def test_profiles_in_use_are_the_registered_ones():
    assert pf_drivers.load("netdevsim") is pf_drivers.NETDEVSIM


def test_both_sides_name_an_errno_as_the_kernel_does():
    # Python calls 95 ENOTSUP; drivers and rtnetlink say EOPNOTSUPP, and
    # so do the daemon's errors and the caller's.
    assert rtnl.errno_name(errno.EOPNOTSUPP) == "EOPNOTSUPP"
    assert rtnl.errno_name(errno.EINVAL) == "EINVAL"
    assert rtnl.errno_name(4242) == "4242"
    assert rtnl.describe(NetlinkError(errno.EOPNOTSUPP)) == (
        "Operation not supported (EOPNOTSUPP)")


@pytest.mark.parametrize("value", ["up", 1, 0, "true"])
def test_up_is_true_false_or_unset_on_both_sides(value):
    with pytest.raises(exception.InvalidVFSetting,
                       match="up=.*: must be true or false"):
        vf_state.validate_optional_bool("up", value)
    for fine in (True, False, None):
        assert vf_state.validate_optional_bool("up", fine) is fine
