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


"""The floor of a crash-safe plug, to measure sriov-vif against.

Whatever its design, a plug that journals a VF's state before changing it
pays at least one privileged round trip carrying one RTM_SETLINK, and one
durable journal write; an unplug the same round trip and the record's
removal. This module is that floor and nothing more: a privsep context
of the benchmark's own (CAP_NET_ADMIN, started by the same privsep-helper
as sriov-vif's), an entrypoint that does nothing (what one round trip
costs) and one that sends one RTM_SETLINK for one VF, encoded with
sriov_vif.rtnl's codec and sent on a plain netlink socket, timing itself
inside the daemon. The benchmark adds sriov_vif.journal's own save or
removal, in a directory on the same filesystem as the plugin's journal.

It checks nothing its caller gives it: it exists only inside the
benchmark's guest.
"""

from __future__ import annotations

import errno
import os
import socket
import struct
import time
from typing import Final

from oslo_privsep import capabilities as caps
from oslo_privsep import priv_context

from sriov_vif import rtnl
from sriov_vif.vf_state import VFSettings

CFG_SECTION: Final = "sriov_vif_bench_floor"
# linux/netlink.h, linux/rtnetlink.h
NLMSG_ERROR: Final = 2
NLM_F_REQUEST: Final = 0x1
NLM_F_ACK: Final = 0x4
RTM_SETLINK: Final = 19
_NLMSGHDR: Final = struct.Struct("=IHHII")

floor_pctxt = priv_context.PrivContext(
    "benchmarks",
    cfg_section=CFG_SECTION,
    pypath=__name__ + ".floor_pctxt",
    capabilities=[caps.CAP_NET_ADMIN],
)


def set_vf_message(pf_ifname: str, vf_index: int, mac: str, vlan: int,
                   trust: bool) -> bytes:
    """RTM_SETLINK with IFLA_VF_MAC, IFLA_VF_VLAN and IFLA_VF_TRUST.

    The attributes a plug asking for a MAC, a VLAN and trust sends, built
    by the codec sriov-vif sends them with.
    """
    body = rtnl.build_set_vf_message(pf_ifname, vf_index, VFSettings(
        mac=mac, vlan=vlan, qos=0, vlan_proto="802.1Q", trust=trust))
    return _NLMSGHDR.pack(_NLMSGHDR.size + len(body), RTM_SETLINK,
                          NLM_F_REQUEST | NLM_F_ACK, 1, 0) + body


def ack_error(reply: bytes) -> int:
    """The errno of the kernel's acknowledgement; 0 when it accepted."""
    _length, kind, _flags, _seq, _pid = _NLMSGHDR.unpack_from(reply)
    if kind != NLMSG_ERROR:
        raise OSError(errno.EPROTO, f"RTM_SETLINK: reply type {kind}, not "
                                    f"an acknowledgement")
    code: int = struct.unpack_from("=i", reply, _NLMSGHDR.size)[0]
    return -code


@floor_pctxt.entrypoint
def nothing() -> None:
    """One privileged round trip that does nothing."""


@floor_pctxt.entrypoint
def set_vf(pf_ifname: str, vf_index: int, mac: str, vlan: int,
           trust: bool) -> float:
    """One RTM_SETLINK for one VF; the milliseconds it took in the daemon.

    From encoding the request to the kernel's acknowledgement, a socket
    of its own included, as a plug's single request would pay it.
    """
    started = time.perf_counter()
    request = set_vf_message(pf_ifname, vf_index, mac, vlan, trust)
    with socket.socket(socket.AF_NETLINK, socket.SOCK_RAW,
                       socket.NETLINK_ROUTE) as sock:
        sock.sendall(request)
        reply = sock.recv(65536)
    elapsed = (time.perf_counter() - started) * 1000
    code = ack_error(reply)
    if code:
        raise OSError(code, f"RTM_SETLINK {pf_ifname} vf {vf_index}: "
                            f"{os.strerror(code)}")
    return elapsed


@floor_pctxt.entrypoint
def set_vf_with_rtnl(pf_ifname: str, vf_index: int, mac: str, vlan: int,
                     trust: bool) -> float:
    """The same request through sriov_vif.rtnl's transport; milliseconds.

    One rtnl.session(), as each of sriov-vif's entrypoints opens one,
    whatever that transport is in the installed version: the difference
    from set_vf is what it costs beyond the netlink request itself.
    """
    started = time.perf_counter()
    with rtnl.session() as session:
        rtnl.send_vf(session, pf_ifname, vf_index, VFSettings(
            mac=mac, vlan=vlan, qos=0, vlan_proto="802.1Q", trust=trust))
    return (time.perf_counter() - started) * 1000
