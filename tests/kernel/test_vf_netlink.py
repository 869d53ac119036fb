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

"""VF configuration on a real kernel driver (netdevsim), through privsep.

Every change goes through vf_config and the real privsep daemon (which
finds each VF in the sysfs tree at its sysfs_root that maps PCI
addresses onto the netdevsim PF's VFs), and is
read back independently: with iproute2 (`ip -j -d link show`) where it
can, and with harness/rtnl_readback.py (struct, no pyroute2) for a
PF with more VFs than iproute2 shows.
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Iterator
import errno
import itertools
from pathlib import Path
import subprocess
from typing import Any

from oslo_config import cfg
from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkError
import pytest

from harness import rtnl_readback
from harness import sysfs_tree
from sriov_vif import config
from sriov_vif import discovery
from sriov_vif import exception
from sriov_vif import privileged
from sriov_vif import rtnl
from sriov_vif import vf_config
from sriov_vif.vf_state import VFSettings
from sriov_vif.vf_state import VFState
from tests.kernel import conftest

IpLinkJson = Callable[[str], dict[str, Any]]
VFTableReader = Callable[[str], rtnl_readback.VFTable]

MAC = "52:54:00:12:34:56"
ZERO_MAC = "00:00:00:00:00:00"

pytestmark = pytest.mark.usefixtures("privsep_daemon")

# Two buses per PF: 256 VFs at offset 0x80 spill into the next bus.
_buses = itertools.count(0x10, 2)
_mapped: dict[str, str] = {}  # PF ifname -> its PCI address in the tree


@pytest.fixture
def netdevsim_pf_factory(
        netdevsim_pf_factory: conftest.NetdevsimFactory,
        daemon_tree: sysfs_tree.SysfsTree) -> conftest.NetdevsimFactory:
    """The kernel tier's factory, each PF also mapped into the tree."""
    _mapped.clear()

    def make(numvfs: int, max_vfs: int | None = None,
             sysfs_numvfs: int | None = None) -> str:
        pf = netdevsim_pf_factory(numvfs, max_vfs)
        shown = numvfs if sysfs_numvfs is None else sysfs_numvfs
        address = f"0000:{next(_buses) % 0xF0:02x}:00.0"
        daemon_tree.add_pf(address, [pf], driver="netdevsim", numvfs=shown,
                           totalvfs=max(shown, max_vfs or 0),
                           vf_driver="vfio-pci")
        _mapped[pf] = address
        return pf

    return make


def vf_of(pf: str, index: int) -> discovery.VirtualFunction:
    """VF index of netdevsim PF pf, as discovery finds it in the tree."""
    root = str(cfg.CONF[config.GROUP].sysfs_root)
    pf_dir = Path(root, "bus", "pci", "devices", _mapped[pf])
    address = Path(pf_dir, f"virtfn{index}").resolve().name
    return discovery.find_vf(root, address)


def pf_of(pf: str) -> discovery.PhysicalFunction:
    return vf_of(pf, 0).pf


def _ip(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *args], capture_output=True, text=True,
                          check=False)


def ip_vf(ip_link_json: IpLinkJson, pf: str, index: int) -> dict[str, Any]:
    """VF index of pf as iproute2 reports it, in VFState's terms."""
    vfs = {vf["vf"]: vf for vf in ip_link_json(pf)["vfinfo_list"]}
    raw = vfs[index]
    (vlan,) = raw["vlan_list"]
    return {
        "mac": raw["address"],
        "vlan": vlan.get("vlan", 0),
        "qos": vlan.get("qos", 0),
        # iproute2 names the protocol only when it is 802.1ad
        "vlan_proto": vlan.get("protocol", "802.1Q"),
        "spoofchk": raw["spoofchk"],
        "trust": raw["trust"],
        "link_state": raw["link_state"],
        "min_tx_rate": raw["rate"]["min_tx"],
        "max_tx_rate": raw["rate"]["max_tx"],
    }


def state_fields(state: VFState) -> dict[str, Any]:
    fields = state.to_primitive()
    del fields["index"]
    return fields


def reading_as_state(reading: rtnl_readback.VFReading) -> VFState:
    return VFState(
        index=reading.vf, mac=reading.mac, vlan=reading.vlan,
        qos=reading.qos,
        vlan_proto="802.1ad" if reading.vlan_proto == 0x88A8 else "802.1Q",
        spoofchk=reading.spoofchk, trust=reading.trust,
        link_state=reading.link_state, min_tx_rate=reading.min_tx_rate,
        max_tx_rate=reading.max_tx_rate)


def apply(pf: str, index: int, settings: VFSettings,
          action: str = "fail") -> VFState:
    vf = vf_of(pf, index)
    return vf_config.apply_settings(
        vf, settings, vf_config.vf_state_now(vf), unsupported_action=action)


# Reading.

def test_read_vf_table_agrees_with_iproute2(netdevsim_pf: str,
                                            ip_link_json: IpLinkJson) -> None:
    # written by iproute2, read by us
    for args in (["vf", "2", "mac", MAC, "vlan", "7", "qos", "2"],
                 ["vf", "5", "vlan", "9", "proto", "802.1ad", "trust", "on",
                  "state", "disable", "max_tx_rate", "50"],
                 ["vf", "7", "spoofchk", "on", "min_tx_rate", "5"]):
        result = _ip("link", "set", netdevsim_pf, *args)
        assert result.returncode == 0, result.stderr

    table = vf_config.vf_table(pf_of(netdevsim_pf))

    assert sorted(table) == list(range(8))
    for index, state in table.items():
        assert state.index == index
        assert state_fields(state) == ip_vf(ip_link_json, netdevsim_pf,
                                            index)
    assert table[5].vlan_proto == "802.1ad"
    assert table[5].link_state == "disable"


def test_read_vf_past_the_count(
        netdevsim_pf_factory: conftest.NetdevsimFactory) -> None:
    # sysfs (changed since) shows a ninth VF the kernel does not have
    pf = netdevsim_pf_factory(8, sysfs_numvfs=9)
    vf = vf_of(pf, 8)
    with pytest.raises(exception.VFIndexOutOfRange) as err:
        vf_config.vf_state_now(vf)
    assert (f"VF {vf.pci_address}: index 8 does not exist on {pf} (it has "
            "8 VFs)") == str(err.value)


# Every attribute reaches the kernel.

def test_every_attribute_in_one_request(netdevsim_pf: str,
                                        ip_link_json: IpLinkJson) -> None:
    settings = VFSettings(mac=MAC, vlan=100, qos=3, vlan_proto="802.1ad",
                          spoofchk=True, trust=True, link_state="enable",
                          min_tx_rate=10, max_tx_rate=100)

    state = apply(netdevsim_pf, 1, settings)

    expected = settings.requested()
    assert ip_vf(ip_link_json, netdevsim_pf, 1) == expected
    assert state_fields(state) == expected
    assert vf_config.vf_state_now(vf_of(netdevsim_pf, 1)) == state
    # nothing leaked to the other VFs
    for index in (0, 2, 7):
        assert ip_vf(ip_link_json, netdevsim_pf, index)["mac"] == ZERO_MAC


def test_8021q_with_qos_then_8021ad_then_back(
        netdevsim_pf: str, ip_link_json: IpLinkJson) -> None:
    apply(netdevsim_pf, 3, VFSettings(vlan=200, qos=5))
    vf3 = ip_vf(ip_link_json, netdevsim_pf, 3)
    assert (vf3["vlan"], vf3["qos"], vf3["vlan_proto"]) == (200, 5, "802.1Q")

    apply(netdevsim_pf, 3, VFSettings(vlan_proto="802.1ad"))
    vf3 = ip_vf(ip_link_json, netdevsim_pf, 3)
    assert (vf3["vlan"], vf3["qos"], vf3["vlan_proto"]) == (
        200, 5, "802.1ad")

    apply(netdevsim_pf, 3, VFSettings(vlan=0, qos=0, vlan_proto="802.1Q"))
    vf3 = ip_vf(ip_link_json, netdevsim_pf, 3)
    assert (vf3["vlan"], vf3["qos"], vf3["vlan_proto"]) == (0, 0, "802.1Q")


def test_plain_pyroute2_8021ad_is_refused_by_this_kernel(
        netdevsim_pf: str, ip_link_json: IpLinkJson) -> None:
    # Why rtnl.py has its own message classes: pyroute2 0.9.7's
    # 14-byte ifla_vf_vlan_info, as this kernel answers it.
    with IPRoute() as ipr:
        (index,) = ipr.link_lookup(ifname=netdevsim_pf)
        with pytest.raises(NetlinkError) as err:
            ipr.link("set", index=index, vf={
                "vf": 1, "vlan": [{"vlan": 100, "qos": 3, "proto": 0x88A8}]})
    assert err.value.code == errno.EINVAL
    assert ip_vf(ip_link_json, netdevsim_pf, 1)["vlan"] == 0

    apply(netdevsim_pf, 1, VFSettings(vlan=100, qos=3, vlan_proto="802.1ad"))
    vf1 = ip_vf(ip_link_json, netdevsim_pf, 1)
    assert (vf1["vlan"], vf1["qos"], vf1["vlan_proto"]) == (
        100, 3, "802.1ad")


def test_toggles_and_link_states(netdevsim_pf: str,
                                 ip_link_json: IpLinkJson) -> None:
    for settings in (
            VFSettings(spoofchk=True, trust=True, link_state="disable"),
            VFSettings(spoofchk=False, trust=False, link_state="enable"),
            VFSettings(link_state="auto", trust=True)):
        apply(netdevsim_pf, 4, settings)
        vf4 = ip_vf(ip_link_json, netdevsim_pf, 4)
        for name, value in settings.requested().items():
            assert vf4[name] == value, name


def test_rates_change_together_and_apart(netdevsim_pf: str,
                                         ip_link_json: IpLinkJson) -> None:
    apply(netdevsim_pf, 6, VFSettings(min_tx_rate=20, max_tx_rate=400))
    apply(netdevsim_pf, 6, VFSettings(max_tx_rate=300))  # min stays 20
    vf6 = ip_vf(ip_link_json, netdevsim_pf, 6)
    assert (vf6["min_tx_rate"], vf6["max_tx_rate"]) == (20, 300)
    apply(netdevsim_pf, 6, VFSettings(min_tx_rate=0, max_tx_rate=0))
    vf6 = ip_vf(ip_link_json, netdevsim_pf, 6)
    assert (vf6["min_tx_rate"], vf6["max_tx_rate"]) == (0, 0)


def test_zero_mac_clears_a_vf(netdevsim_pf: str,
                              ip_link_json: IpLinkJson) -> None:
    apply(netdevsim_pf, 0, VFSettings(mac=MAC))
    assert ip_vf(ip_link_json, netdevsim_pf, 0)["mac"] == MAC
    apply(netdevsim_pf, 0, VFSettings(mac=ZERO_MAC))
    assert ip_vf(ip_link_json, netdevsim_pf, 0)["mac"] == ZERO_MAC


# A refused attribute, after others were applied: rollback.

def _devlink_name(pf: str) -> str:
    return "netdevsim/" + Path(f"/sys/class/net/{pf}/device").resolve().name


@pytest.fixture
def switchdev_pf(netdevsim_pf: str) -> Iterator[str]:
    """The PF in switchdev mode, where netdevsim refuses VF rates.

    nsim_set_vf_rate() answers EOPNOTSUPP in switchdev mode (rates are
    set through devlink there) while MAC and VLAN still work: a real
    driver refusal that comes after the kernel applied earlier
    attributes of the same request.
    """
    devlink = _devlink_name(netdevsim_pf)
    result = subprocess.run(["devlink", "dev", "eswitch", "set", devlink,
                             "mode", "switchdev"], capture_output=True,
                            text=True, check=False)
    assert result.returncode == 0, result.stderr
    yield netdevsim_pf
    subprocess.run(["devlink", "dev", "eswitch", "set", devlink, "mode",
                    "legacy"], capture_output=True, check=False)


def test_kernel_keeps_what_it_applied_before_a_refusal(
        switchdev_pf: str, ip_link_json: IpLinkJson) -> None:
    # The behaviour rollback exists for, shown with iproute2 alone: one
    # request with MAC, VLAN and rate; the rate is refused, the MAC and
    # VLAN stay.
    result = _ip("link", "set", switchdev_pf, "vf", "2", "mac", MAC,
                 "vlan", "10", "max_tx_rate", "100")
    assert result.returncode != 0
    assert "Operation not supported" in result.stderr
    vf2 = ip_vf(ip_link_json, switchdev_pf, 2)
    assert (vf2["mac"], vf2["vlan"], vf2["max_tx_rate"]) == (MAC, 10, 0)


def test_refused_rate_is_named_and_the_rest_rolled_back(
        switchdev_pf: str, ip_link_json: IpLinkJson) -> None:
    apply(switchdev_pf, 2, VFSettings(trust=True, vlan=7))
    before = ip_vf(ip_link_json, switchdev_pf, 2)

    with pytest.raises(exception.VFAttributeUnsupported) as err:
        apply(switchdev_pf, 2, VFSettings(
            mac=MAC, vlan=100, qos=3, vlan_proto="802.1ad", max_tx_rate=100,
            spoofchk=True))

    assert str(err.value) == (
        f"PF driver netdevsim of {switchdev_pf} cannot set min_tx_rate=0, "
        "max_tx_rate=100 (the kernel answered Operation not supported "
        f"(EOPNOTSUPP)) on VF {vf_of(switchdev_pf, 2).pci_address} (vf 2)")
    assert ip_vf(ip_link_json, switchdev_pf, 2) == before


def test_refused_rate_is_skipped_in_warn_mode(
        switchdev_pf: str, ip_link_json: IpLinkJson) -> None:
    state = apply(switchdev_pf, 3, VFSettings(
        mac=MAC, vlan=100, qos=3, vlan_proto="802.1ad", max_tx_rate=100,
        spoofchk=True), action="warn")

    vf3 = ip_vf(ip_link_json, switchdev_pf, 3)
    assert vf3 == state_fields(state)
    assert (vf3["mac"], vf3["vlan"], vf3["qos"], vf3["vlan_proto"],
            vf3["spoofchk"], vf3["max_tx_rate"]) == (
        MAC, 100, 3, "802.1ad", True, 0)


def test_vf_past_the_count_is_refused_without_change(
        netdevsim_pf_factory: conftest.NetdevsimFactory,
        ip_link_json: IpLinkJson) -> None:
    pf = netdevsim_pf_factory(8, sysfs_numvfs=9)
    before = ip_link_json(pf)["vfinfo_list"]
    current = VFState(index=8, mac=ZERO_MAC, vlan=0, qos=0,
                      vlan_proto="802.1Q", spoofchk=False, trust=False,
                      link_state="auto", min_tx_rate=0, max_tx_rate=0)
    with pytest.raises(exception.VFIndexOutOfRange):
        vf_config.apply_settings(vf_of(pf, 8), VFSettings(mac=MAC), current,
                                 unsupported_action="warn")
    assert ip_link_json(pf)["vfinfo_list"] == before


# Issue 15 item 4: the daemon changes only the VF the tree names.

def test_the_daemon_refuses_what_sysfs_does_not_name(
        netdevsim_pf: str, ip_link_json: IpLinkJson) -> None:
    before = ip_link_json(netdevsim_pf)["vfinfo_list"]
    lo = ip_link_json("lo")
    good_before = vf_config.vf_state_now(vf_of(netdevsim_pf, 0))

    def change(vf_address, netdev=None, pf_address=None):
        return privileged.change_vfs(
            pf_address or _mapped[netdevsim_pf], netdevsim_pf, [{
                "address": vf_address, "settings": {"mac": MAC},
                "before": good_before.to_primitive(), "netdev": netdev}])

    vf0 = vf_of(netdevsim_pf, 0).pci_address
    calls = [
        # the PF itself, a VF address no PF has, lo or the PF as the
        # VF's netdev, the PF named by the VF's address
        lambda: change(_mapped[netdevsim_pf]),
        lambda: change("0000:ee:10.0"),
        lambda: change(vf0, {"ifname": "lo", "mac": None, "up": False}),
        lambda: change(vf0, {"ifname": netdevsim_pf, "mac": None,
                             "up": False}),
        lambda: change(vf0, pf_address=vf0),
    ]
    for call in calls:
        with pytest.raises(exception.SriovVifError):
            call()
    assert ip_link_json(netdevsim_pf)["vfinfo_list"] == before
    assert ip_link_json("lo") == lo


# Several VFs in one RTM_SETLINK (restore).

def test_one_request_sets_many_vfs(netdevsim_pf: str,
                                   ip_link_json: IpLinkJson) -> None:
    with rtnl.session() as session:
        rtnl.send_vfs(session, netdevsim_pf, [
            (index, VFSettings(mac=f"52:54:00:00:00:{index:02x}",
                               vlan=10 + index, qos=index % 8,
                               vlan_proto="802.1Q", trust=True))
            for index in range(8)])
    for index in range(8):
        vf = ip_vf(ip_link_json, netdevsim_pf, index)
        assert (vf["mac"], vf["vlan"], vf["qos"], vf["trust"]) == (
            f"52:54:00:00:00:{index:02x}", 10 + index, index % 8, True)


def test_the_kernel_stops_a_vf_list_at_the_refused_vf(
        switchdev_pf: str, ip_link_json: IpLinkJson) -> None:
    # What apply_vf_requests assumes: the VFs before the refused one are
    # applied, the refused one partly, those after it not at all.
    with rtnl.session() as session, pytest.raises(NetlinkError) as err:
        rtnl.send_vfs(session, switchdev_pf, [
            (0, VFSettings(mac="52:54:00:00:00:01")),
            (1, VFSettings(mac="52:54:00:00:00:02", min_tx_rate=0,
                           max_tx_rate=100)),
            (2, VFSettings(mac="52:54:00:00:00:03"))])
    assert err.value.code == errno.EOPNOTSUPP
    assert [ip_vf(ip_link_json, switchdev_pf, i)["mac"]
            for i in range(3)] == [
        "52:54:00:00:00:01", "52:54:00:00:00:02", ZERO_MAC]


def test_a_refused_vf_in_a_batch_is_rolled_back_alone(
        switchdev_pf: str, ip_link_json: IpLinkJson) -> None:
    before = [vf_config.vf_state_now(vf_of(switchdev_pf, i))
              for i in range(3)]
    rated = VFSettings(mac="52:54:00:00:00:02", max_tx_rate=100)
    outcomes = vf_config.apply_changes([
        vf_config.Change(vf_of(switchdev_pf, i), settings, before[i])
        for i, settings in enumerate([
            VFSettings(mac="52:54:00:00:00:01", trust=True), rated,
            VFSettings(mac="52:54:00:00:00:03", trust=True)])],
        unsupported_action="fail")
    assert isinstance(outcomes[vf_of(switchdev_pf, 1).pci_address],
                      exception.VFAttributeUnsupported)
    assert ip_vf(ip_link_json, switchdev_pf, 1) == state_fields(before[1])
    for index in (0, 2):
        vf = ip_vf(ip_link_json, switchdev_pf, index)
        assert (vf["mac"], vf["trust"]) == (
            f"52:54:00:00:00:0{index + 1}", True)


# A PF with 256 VFs.

def test_256_vfs_read_back_complete_and_keyed_right(
        netdevsim_pf_factory: conftest.NetdevsimFactory,
        vf_table: VFTableReader) -> None:
    pf = netdevsim_pf_factory(256)
    for index in (0, 130, 219, 220, 255):
        apply(pf, index, VFSettings(
            mac=f"52:54:00:00:{index >> 8:02x}:{index & 0xFF:02x}",
            vlan=index + 1, qos=index % 8, trust=True))

    ours = vf_config.vf_table(pf_of(pf))
    theirs = vf_table(pf)

    assert theirs.num_vf == 256
    assert sorted(ours) == sorted(theirs.vfs) == list(range(256))
    assert ours == {index: reading_as_state(reading)
                    for index, reading in theirs.vfs.items()}
    # One VF alone, past where iproute2 truncates, keyed the same way.
    for index in (0, 220, 255):
        assert vf_config.vf_state_now(vf_of(pf, index)) == ours[index]
    assert ours[255].mac == "52:54:00:00:00:ff"
    assert ours[255].vlan == 256
    assert ours[254].mac == ZERO_MAC
    # All 256 in one RTM_SETLINK (a restore's batch): the kernel takes
    # the whole list.
    with rtnl.session() as session:
        rtnl.send_vfs(session, pf, [
            (index, VFSettings(vlan=1000 + index, qos=0,
                               vlan_proto="802.1Q", trust=False))
            for index in range(256)])
    after = vf_table(pf).vfs
    assert sorted(after) == list(range(256))
    assert all((after[i].vlan, after[i].trust) == (1000 + i, False)
               for i in range(256))
    assert after[255].mac == "52:54:00:00:00:ff"
