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

"""The privileged entrypoint on the host's kernel, through the real daemon.

Everything the host kernel can do without SR-IOV hardware: the netdev
side of a direct VIF on veth and macvtap (stand-in VF netdevs named by a
sysfs tree under the daemon's sysfs_root), the reads this process makes
itself, without privilege, the errors of VF requests on a device without
VFs and on a missing one, and the daemon refusing bad arguments and any
interface that is not the named VF's by itself. Each change is read back
with iproute2. The VF attributes themselves are proven on netdevsim in
tests/kernel.
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
import subprocess
import sys

import pytest

from sriov_vif import exception
from sriov_vif import privileged
from sriov_vif import vf_config
from sriov_vif.vf_state import VFSettings
from sriov_vif.vf_state import VFState
from tests.functional import conftest
from tests.functional.conftest import GONE_VF_ADDRESS
from tests.functional.conftest import PF_ADDRESS
from tests.functional.conftest import VF_ADDRESSES

CAP_NET_ADMIN = 12
MAC = "52:54:00:12:34:56"
REPO = Path(__file__).resolve().parents[2]
NO_SUCH_LINK = "nlnope0"

pytestmark = pytest.mark.usefixtures("nl_privsep_daemon")


def vf_zero():
    return VFState(index=0, mac="00:00:00:00:00:00", vlan=0, qos=0,
                   vlan_proto="802.1Q", spoofchk=None, trust=None,
                   link_state="auto", min_tx_rate=0, max_tx_rate=0)


def vf0():
    return conftest.find_vf(VF_ADDRESSES[0])  # netdev nlva


def vf1():
    return conftest.find_vf(VF_ADDRESSES[1])  # netdev nlm0 (macvtap)


def set_netdev(vf, ifname, mac=None, up=None):
    """A direct VIF's netdev change, alone in its privileged call."""
    vf_config.apply_settings(
        vf, VFSettings(), dataclasses.replace(vf_zero(), index=vf.index),
        unsupported_action="fail",
        netdev=vf_config.NetdevChange(ifname, mac=mac, up=up))


def item(vf_address, settings, before=None, netdev=None):
    return {"address": vf_address, "settings": settings,
            "before": GOOD_BEFORE if before is None else before,
            "netdev": netdev}


def change(vf_address, settings, before=None, netdev=None,
           pf_address=PF_ADDRESS, pf_ifname="nlvb"):
    """The entrypoint, called directly: through the channel to the daemon."""
    return privileged.change_vfs(pf_address, pf_ifname,
                                 [item(vf_address, settings, before, netdev)])


def netdev(ifname="nlva", mac=None, up=False):
    return {"ifname": ifname, "mac": mac, "up": up}


def test_daemon_runs_in_our_netns_with_only_cap_net_admin(nl_veth,
                                                          nl_privsep_daemon,
                                                          nl_private_netns):
    set_netdev(vf0(), nl_veth.name, up=False)  # launches the daemon

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
    for vf, ifname in ((vf0(), nl_veth.name), (vf1(), nl_veth.macvtap)):
        link = nl_ip_link(ifname)
        assert vf_config.netdev_state(vf, ifname) == vf_config.NetdevState(
            mac=link["address"], up="UP" in link["flags"])


def test_set_netdev_changes_mac_and_brings_it_up(nl_veth, nl_ip_link):
    set_netdev(vf0(), nl_veth.name, mac=MAC, up=True)

    link = nl_ip_link(nl_veth.name)
    assert link["address"] == MAC
    assert "UP" in link["flags"]
    assert vf_config.netdev_state(vf0(), nl_veth.name) == (
        vf_config.NetdevState(mac=MAC, up=True))


def test_set_netdev_takes_it_down_and_changes_mac(nl_veth, nl_ip_link):
    set_netdev(vf0(), nl_veth.name, up=True)
    assert "UP" in nl_ip_link(nl_veth.name)["flags"]

    set_netdev(vf0(), nl_veth.name, mac="52:54:00:00:00:02", up=False)

    link = nl_ip_link(nl_veth.name)
    assert link["address"] == "52:54:00:00:00:02"
    assert "UP" not in link["flags"]


def test_set_netdev_on_macvtap(nl_veth, nl_ip_link):
    set_netdev(vf1(), nl_veth.macvtap, mac=MAC, up=True)
    link = nl_ip_link(nl_veth.macvtap)
    assert link["address"] == MAC
    assert "UP" in link["flags"]
    # only the MAC, leaving the state alone
    set_netdev(vf1(), nl_veth.macvtap, mac="52:54:00:00:00:03")
    link = nl_ip_link(nl_veth.macvtap)
    assert link["address"] == "52:54:00:00:00:03"
    assert "UP" in link["flags"]


def test_a_device_without_vfs_has_an_empty_table(nl_veth):
    assert vf_config.vf_table(vf0().pf) == {}
    with pytest.raises(exception.VFIndexOutOfRange) as err:
        vf_config.vf_state_now(vf0())
    assert str(err.value) == ("VF 0000:81:10.0: index 0 does not exist on "
                              "nlvb (it has 0 VFs)")


@pytest.mark.parametrize("action", ["fail", "warn"])
def test_vf_request_on_a_device_without_sriov(nl_veth, nl_ip_link, action):
    # The host kernel answers EOPNOTSUPP: veth has no ndo_set_vf_*.
    before = nl_ip_link(nl_veth.peer)
    with pytest.raises(exception.VFAttributeUnsupported) as err:
        vf_config.apply_settings(
            vf0(), VFSettings(mac=MAC, vlan=5, qos=1, vlan_proto="802.1ad",
                              trust=True),
            vf_zero(), unsupported_action=action)
    assert str(err.value) == (
        "PF driver veth of nlvb cannot set mac=52:54:00:12:34:56 (the "
        "kernel answered Operation not supported (EOPNOTSUPP)) on VF "
        "0000:81:10.0 (vf 0)")
    assert nl_ip_link(nl_veth.peer) == before


def test_missing_device_is_netdev_not_found():
    gone = conftest.find_vf(GONE_VF_ADDRESS)
    calls = [
        (lambda: vf_config.vf_table(gone.pf), "nlnope0"),
        (lambda: vf_config.vf_state_now(gone), "nlnope0"),
        (lambda: vf_config.apply_settings(
            gone, VFSettings(trust=True), vf_zero(),
            unsupported_action="fail"), "nlnope0"),
        (lambda: vf_config.netdev_state(gone, "nlnope1"), "nlnope1"),
        (lambda: set_netdev(gone, "nlnope1", mac=MAC), "nlnope1"),
    ]
    for call, ifname in calls:
        with pytest.raises(exception.SriovVifError) as err:
            call()
        assert f"{ifname}" in str(err.value)


GOOD_BEFORE = vf_zero().to_primitive()


@pytest.mark.parametrize("call, error, message", [
    (lambda: change(VF_ADDRESSES[0],
                    {"vlan": 5000, "qos": 0, "vlan_proto": "802.1Q"}),
     exception.InvalidVFSetting,
     "Invalid VF setting vlan=5000: must be from 0 to 4094"),
    (lambda: change(VF_ADDRESSES[0], {"mac": "01:00:5e:00:00:01"}),
     exception.InvalidVFSetting,
     "Invalid VF setting mac='01:00:5e:00:00:01': is a multicast address; "
     "a VF needs a unicast MAC"),
    (lambda: change(VF_ADDRESSES[0],
                    {"max_tx_rate": 2**32, "min_tx_rate": 0}),
     exception.InvalidVFSetting,
     "Invalid VF setting max_tx_rate=4294967296: must be from 0 to "
     "4294967295"),
    (lambda: change(VF_ADDRESSES[0], {"owner": "x"}),
     exception.InvalidVFSetting,
     "Invalid VF setting owner='x': not a VF attribute sriov-vif knows"),
    (lambda: change(VF_ADDRESSES[0], {"trust": True},
                    dict(GOOD_BEFORE, index=3)),
     exception.VFNotEnabled,
     "PCI device 0000:81:10.0 is not an enabled VF of PF 0000:81:00.0: it "
     "is VF 0 of PF 0000:81:00.0, not VF 3 of PF 0000:81:00.0"),
    (lambda: change("0000:81:10.0\n", {}),
     exception.InvalidPciAddress,
     "Invalid PCI address '0000:81:10.0\\n': must be domain:bus:slot."
     "function in hex, like 0000:81:10.2"),
    (lambda: change(VF_ADDRESSES[0], {}, pf_address="nlva/.."),
     exception.InvalidPciAddress,
     "Invalid PCI address 'nlva/..': must be domain:bus:slot.function in "
     "hex, like 0000:81:10.2"),
    (lambda: change(VF_ADDRESSES[0], {},
                    netdev=netdev(mac="00:00:00:00:00:00", up=True)),
     exception.InvalidVFSetting,
     "Invalid VF setting mac='00:00:00:00:00:00': must not be all zeros"),
    (lambda: change(VF_ADDRESSES[0], {}, netdev=netdev(up="up")),
     exception.InvalidVFSetting,
     "Invalid VF setting up='up': must be true or false"),
])
def test_daemon_refuses_bad_arguments_itself(nl_veth, nl_ip_link,
                                             nl_privsep_daemon, call, error,
                                             message):
    # The entrypoints called directly: this goes through the channel to
    # the daemon, whose own validation must answer.
    assert nl_privsep_daemon.client_mode
    before = nl_ip_link(nl_veth.name)
    with pytest.raises(error) as err:
        call()
    assert str(err.value) == message
    assert nl_ip_link(nl_veth.name) == before


# Issue 15 item 4: a caller that reaches the socket cannot touch host
# networking. Each call is what the old entrypoints accepted (any
# interface, any PF): the daemon now refuses it itself.

@pytest.mark.parametrize("call, error", [
    (lambda: change(VF_ADDRESSES[0], {}, netdev=netdev("lo")),
     exception.NotTheVFNetdev),
    (lambda: change(VF_ADDRESSES[0], {}, netdev=netdev("nlm0")),
     exception.NotTheVFNetdev),
    (lambda: change(PF_ADDRESS, {}, netdev=netdev("nlvb")),
     exception.NotAVirtualFunction),
    (lambda: change("0000:00:1f.6", {}, netdev=netdev("lo")),
     exception.PciDeviceNotFound),
    (lambda: change("0000:00:1f.6", {"trust": True}),
     exception.PciDeviceNotFound),
    (lambda: change(PF_ADDRESS, {"trust": True}),
     exception.NotAVirtualFunction),
    # the PF netdev is the daemon's to find, never the caller's to name
    (lambda: change(VF_ADDRESSES[0], {"trust": True}, pf_ifname="lo"),
     exception.PFUnusable),
    # a VF where the PF is wanted: it has no virtfn link to the VF
    (lambda: change(VF_ADDRESSES[0], {}, netdev=netdev(),
                    pf_address=VF_ADDRESSES[1]),
     exception.VFNotEnabled),
])
def test_daemon_refuses_anything_but_the_vfs_sysfs_names(
        nl_veth, nl_ip_link, nl_privsep_daemon, call, error):
    before = {name: nl_ip_link(name) for name in ("lo", nl_veth.name,
                                                   nl_veth.peer,
                                                   nl_veth.macvtap)}
    assert "UP" in before["lo"]["flags"]
    with pytest.raises(error):
        call()
    assert {name: nl_ip_link(name) for name in before} == before


def test_errors_arrive_as_our_classes_with_their_message(nl_veth):
    with pytest.raises(exception.NotTheVFNetdev) as err:
        change(VF_ADDRESSES[0], {}, netdev=netdev("lo"))
    assert type(err.value) is exception.NotTheVFNetdev
    assert err.value.format_message() == (
        "Refusing to touch network device lo: it is not the netdev of VF "
        "0000:81:10.0 (sysfs shows nlva)")


def test_results_come_back_as_primitives(nl_veth, nl_ip_link):
    # msgpack: lists are tuples
    assert change(VF_ADDRESSES[0], {}, netdev=netdev(mac=MAC)) == (None,)
    (refused,) = change(VF_ADDRESSES[0], {"trust": True})
    assert refused["attribute"] == "trust"
    assert refused["fields"] == ("trust",)
    assert nl_ip_link(nl_veth.name)["address"] == MAC


# Reading needs no privilege: nova-compute reads in its own process, in
# either of its two modes (harness/nova_compute.py, as nova 34's
# nova/monkey_patch.py sets them), as its own user.

READER = """
import sys
from harness import nova_compute
nova_compute.enter_mode(sys.argv[1])
import json, threading
from sriov_vif import discovery, vf_config
root, vf_address, ifname, uid = sys.argv[2:6]
vf = discovery.find_vf(root, vf_address)
nova_compute.drop_to(int(uid), int(uid))
results, errors = [], []

def read():
    try:
        for _ in range(20):
            results.append((vf_config.vf_table(vf.pf),
                            vf_config.netdev_state(vf, ifname)))
    except Exception as exc:
        errors.append(repr(exc))

threads = [threading.Thread(target=read) for _ in range(8)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
table, state = results[0]
print(json.dumps({"capabilities": nova_compute.capabilities(),
                  "errors": errors, "reads": len(results),
                  "same": all(r == results[0] for r in results),
                  "table": len(table), "mac": state.mac, "up": state.up,
                  **nova_compute.describe_mode()}))
"""


@pytest.mark.parametrize("mode", ["eventlet", "native"])
def test_reads_work_unprivileged_in_both_nova_compute_modes(
        nl_veth, nl_ip_link, nl_sysfs, mode):
    # A process of its own as nova's user, in this netns (forked from the
    # thread that entered it), 8 threads (green or native) at once.
    result = subprocess.run(
        [sys.executable, "-c", READER, mode, nl_sysfs.root,
         VF_ADDRESSES[0], nl_veth.name, str(conftest.NOVA_UID)],
        capture_output=True, text=True, check=False, cwd=REPO)
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout)
    link = nl_ip_link(nl_veth.name)
    assert answer == {
        "capabilities": 0, "errors": [], "reads": 160, "same": True,
        "table": 0, "mac": link["address"], "up": "UP" in link["flags"],
        "socket": ("eventlet.greenio.base" if mode == "eventlet"
                   else "socket"),
        "threads": ("eventlet.green.thread" if mode == "eventlet"
                    else "_thread"),
        "eventlet_loaded": mode == "eventlet"}
