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

"""The netlink layer on the host's kernel, through the real privsep daemon.

Everything the host kernel can do without SR-IOV hardware: the netdev
side of a direct VIF on veth and macvtap, the errors of VF requests on a
device without VFs and on a missing one, and the privileged side refusing
bad arguments by itself. Each change is read back with iproute2. The VF
attributes themselves are proven on netdevsim in tests/kernel.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import pytest

from sriov_vif import exception
from sriov_vif import netlink
from sriov_vif import vf_config
from sriov_vif.vf_state import VFSettings
from sriov_vif.vf_state import VFState
from tests.functional import conftest

CAP_NET_ADMIN = 12
MAC = "52:54:00:12:34:56"
NO_SUCH_LINK = "nlnope0"

pytestmark = pytest.mark.usefixtures("nl_privsep_daemon")


def vf_zero():
    return VFState(index=0, mac="00:00:00:00:00:00", vlan=0, qos=0,
                   vlan_proto="802.1Q", spoofchk=None, trust=None,
                   link_state="auto", min_tx_rate=0, max_tx_rate=0)


def test_daemon_runs_in_our_netns_with_only_cap_net_admin(nl_veth,
                                                          nl_privsep_daemon,
                                                          nl_private_netns):
    vf_config.read_netdev(nl_veth.name)  # launches the daemon if needed

    assert nl_privsep_daemon.channel is not None
    ours = [pid for pid in conftest.privsep_daemon_pids()
            if conftest.netns_inode(pid) == nl_private_netns]
    assert len(ours) == 1, ours
    assert ours[0] != os.getpid()
    status = dict(line.split(":\t", 1) for line in Path(
        f"/proc/{ours[0]}/status").read_text().splitlines() if ":\t" in line)
    assert int(status["CapEff"], 16) == 1 << CAP_NET_ADMIN
    assert int(status["CapPrm"], 16) == 1 << CAP_NET_ADMIN


def test_read_netdev_matches_iproute2(nl_veth, nl_ip_link):
    for ifname in (nl_veth.name, nl_veth.macvtap):
        link = nl_ip_link(ifname)
        assert vf_config.read_netdev(ifname) == vf_config.NetdevState(
            mac=link["address"], up="UP" in link["flags"])


def test_set_netdev_changes_mac_and_brings_it_up(nl_veth, nl_ip_link):
    vf_config.set_netdev(nl_veth.name, mac=MAC, up=True)

    link = nl_ip_link(nl_veth.name)
    assert link["address"] == MAC
    assert "UP" in link["flags"]
    assert vf_config.read_netdev(nl_veth.name) == vf_config.NetdevState(
        mac=MAC, up=True)


def test_set_netdev_takes_it_down_and_changes_mac(nl_veth, nl_ip_link):
    vf_config.set_netdev(nl_veth.name, up=True)
    assert "UP" in nl_ip_link(nl_veth.name)["flags"]

    vf_config.set_netdev(nl_veth.name, mac="52:54:00:00:00:02", up=False)

    link = nl_ip_link(nl_veth.name)
    assert link["address"] == "52:54:00:00:00:02"
    assert "UP" not in link["flags"]


def test_set_netdev_on_macvtap(nl_veth, nl_ip_link):
    vf_config.set_netdev(nl_veth.macvtap, mac=MAC, up=True)
    link = nl_ip_link(nl_veth.macvtap)
    assert link["address"] == MAC
    assert "UP" in link["flags"]
    # only the MAC, leaving the state alone
    vf_config.set_netdev(nl_veth.macvtap, mac="52:54:00:00:00:03")
    link = nl_ip_link(nl_veth.macvtap)
    assert link["address"] == "52:54:00:00:00:03"
    assert "UP" in link["flags"]


def test_a_device_without_vfs_has_an_empty_table(nl_veth):
    assert vf_config.read_vf_table(nl_veth.name) == {}
    with pytest.raises(exception.VFIndexOutOfRange) as err:
        vf_config.read_vf(nl_veth.name, 0)
    assert str(err.value) == "VF 0 does not exist on nlva (it has 0 VFs)"


@pytest.mark.parametrize("action", ["fail", "warn"])
def test_vf_request_on_a_device_without_sriov(nl_veth, nl_ip_link, action):
    # The host kernel answers EOPNOTSUPP: veth has no ndo_set_vf_*.
    before = nl_ip_link(nl_veth.name)
    with pytest.raises(exception.VFAttributeUnsupported) as err:
        vf_config.apply_vf_settings(
            nl_veth.name, 0, VFSettings(mac=MAC, vlan=5, qos=1,
                                        vlan_proto="802.1ad", trust=True),
            vf_zero(), pf_driver="veth", unsupported_action=action)
    assert str(err.value) == (
        "PF driver veth of nlva cannot set mac=52:54:00:12:34:56 (the "
        "kernel answered Operation not supported (EOPNOTSUPP)) on VF 0")
    assert nl_ip_link(nl_veth.name) == before


def test_missing_device_is_netdev_not_found():
    calls = [
        lambda: vf_config.read_vf_table(NO_SUCH_LINK),
        lambda: vf_config.read_vf(NO_SUCH_LINK, 0),
        lambda: vf_config.apply_vf_settings(
            NO_SUCH_LINK, 0, VFSettings(trust=True), vf_zero(),
            pf_driver="", unsupported_action="fail"),
        lambda: vf_config.read_netdev(NO_SUCH_LINK),
        lambda: vf_config.set_netdev(NO_SUCH_LINK, mac=MAC),
    ]
    for call in calls:
        with pytest.raises(exception.NetdevNotFound) as err:
            call()
        assert str(err.value) == "Network device nlnope0 does not exist"


GOOD_BEFORE = vf_zero().to_primitive()


@pytest.mark.parametrize("call, error, message", [
    (lambda dev: netlink.apply_vf_settings(
        dev, 0, {"vlan": 5000, "qos": 0, "vlan_proto": "802.1Q"},
        GOOD_BEFORE),
     exception.InvalidVFSetting,
     "Invalid VF setting vlan=5000: must be from 0 to 4094"),
    (lambda dev: netlink.apply_vf_settings(
        dev, 0, {"mac": "01:00:5e:00:00:01"}, GOOD_BEFORE),
     exception.InvalidVFSetting,
     "Invalid VF setting mac='01:00:5e:00:00:01': is a multicast address; "
     "a VF needs a unicast MAC"),
    (lambda dev: netlink.apply_vf_settings(
        dev, 4096, {"trust": True}, GOOD_BEFORE),
     exception.InvalidVFSetting,
     "Invalid VF setting vf_index=4096: must be an integer from 0 to 4095"),
    (lambda dev: netlink.apply_vf_settings(
        dev, 0, {"owner": "x"}, GOOD_BEFORE),
     exception.InvalidVFSetting,
     "Invalid VF setting owner='x': not a VF attribute sriov-vif knows"),
    (lambda dev: netlink.apply_vf_settings(
        dev, 0, {"trust": True}, dict(GOOD_BEFORE, index=3)),
     exception.InvalidVFSetting,
     "Invalid VF setting before.index=3: is the state of another VF than 0"),
    (lambda dev: netlink.read_vf(dev, -1),
     exception.InvalidVFSetting,
     "Invalid VF setting vf_index=-1: must be an integer from 0 to 4095"),
    (lambda dev: netlink.read_vf_table(dev + "/.."),
     exception.InvalidInterfaceName,
     "Invalid interface name 'nlva/..': must be 1-15 letters, digits or "
     "one of '_.@-'"),
    (lambda dev: netlink.set_netdev(dev, "00:00:00:00:00:00", True),
     exception.InvalidVFSetting,
     "Invalid VF setting mac='00:00:00:00:00:00': must not be all zeros"),
    (lambda dev: netlink.set_netdev(dev, None, "up"),
     exception.InvalidVFSetting,
     "Invalid VF setting up='up': must be true, false or null"),
])
def test_daemon_refuses_bad_arguments_itself(nl_veth, nl_ip_link,
                                             nl_privsep_daemon, call, error,
                                             message):
    # The entrypoints called directly: this goes through the channel to
    # the daemon, whose own validation must answer.
    assert nl_privsep_daemon.client_mode
    before = nl_ip_link(nl_veth.name)
    with pytest.raises(error) as err:
        call(nl_veth.name)
    assert str(err.value) == message
    assert nl_ip_link(nl_veth.name) == before


def test_errors_arrive_as_our_classes_with_their_message(nl_veth):
    with pytest.raises(exception.NetdevNotFound) as err:
        netlink.read_netdev(NO_SUCH_LINK)
    assert type(err.value) is exception.NetdevNotFound
    assert err.value.format_message() == (
        "Network device nlnope0 does not exist")


def test_results_come_back_as_primitives(nl_veth, nl_ip_link):
    table = netlink.read_vf_table(nl_veth.name)
    assert table == {"num_vfs": 0, "vfs": ()}  # msgpack: lists are tuples
    state = netlink.read_netdev(nl_veth.name)
    assert state == {"mac": nl_ip_link(nl_veth.name)["address"],
                     "up": False}
    assert dataclasses.asdict(vf_config.read_netdev(nl_veth.name)) == state
