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


"""Counting the rtnetlink requests the kernel receives, with nlmon.

The goal is one read and one change request per VF operation, so the
count has to come from the kernel, not from our own code. nlmon is the
kernel's netlink tap: every netlink message any socket exchanges with the
kernel is also sent out of an nlmon device, where a packet socket
receives it. Requests are told from replies and notifications by
NLM_F_REQUEST, which the kernel never sets on what it sends. The tap
does not say which process sent a request, so a count is only taken
while nothing else talks rtnetlink, which the benchmark checks with an
idle window; the packet socket's drop counter is checked after every
window so that a full receive buffer cannot shrink a count.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from collections.abc import Iterator
import socket
import struct
import subprocess
import time
from typing import Final

# linux/netlink.h, linux/rtnetlink.h, linux/if_packet.h, linux/if_ether.h
NETLINK_ROUTE: Final = 0
NLM_F_REQUEST: Final = 0x1
RTM_NEWLINK: Final = 16
RTM_GETLINK: Final = 18
RTM_SETLINK: Final = 19
ETH_P_ALL: Final = 0x0003
SOL_PACKET: Final = 263
PACKET_STATISTICS: Final = 6
# asm-generic/socket.h; root may exceed rmem_max with it.
SO_RCVBUFFORCE: Final = 33
_NLMSGHDR: Final = struct.Struct("=IHHII")
_IFINFOMSG_SIZE: Final = 16
_TPACKET_STATS: Final = struct.Struct("=II")
_RCVBUF: Final = 16 << 20
# The tap copies a request before the kernel handles it, so it is queued
# by the time the sender has its reply; this quiet time only guards
# against a reply-less sender.
_QUIET: Final = 0.05

READ: Final = "read"
CHANGE: Final = "change"
PROBE: Final = "probe"


def classify(msg_type: int, length: int) -> str:
    """What an rtnetlink request asks for.

    A link request with no attribute changes nothing: iproute2 sends one
    (RTM_NEWLINK, ifindex 0) to learn whether the kernel has NEWLINK.
    """
    if msg_type == RTM_GETLINK:
        return READ
    if msg_type in (RTM_NEWLINK, RTM_SETLINK):
        if length <= _NLMSGHDR.size + _IFINFOMSG_SIZE:
            return PROBE
        return CHANGE
    return f"type {msg_type}"


def requests_in(packet: bytes) -> Iterator[str]:
    """Classified requests among the netlink messages of one tap packet."""
    offset = 0
    while offset + _NLMSGHDR.size <= len(packet):
        length, msg_type, flags, _seq, _pid = _NLMSGHDR.unpack_from(
            packet, offset)
        if length < _NLMSGHDR.size:
            break
        if flags & NLM_F_REQUEST:
            yield classify(msg_type, length)
        offset += (length + 3) & ~3


class DroppedMessages(RuntimeError):
    pass


class RtnlRequestCounter:
    """An nlmon device and a packet socket on it; count() takes a window.

    Needs root and the nlmon module (CONFIG_NLMON, =m in Debian's kernel).
    """

    def __init__(self, ifname: str) -> None:
        self.ifname = ifname
        subprocess.run(["modprobe", "nlmon"], check=True)
        subprocess.run(["ip", "link", "add", "name", ifname, "type",
                        "nlmon"], check=True)
        try:
            subprocess.run(["ip", "link", "set", ifname, "up"], check=True)
            self._sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW,
                                       socket.htons(ETH_P_ALL))
        except BaseException:
            subprocess.run(["ip", "link", "del", ifname], check=False)
            raise
        self._sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE,
                              _RCVBUF)
        self._sock.bind((ifname, 0))
        self._sock.setblocking(False)

    def _drain(self) -> list[bytes]:
        packets = []
        deadline = time.monotonic() + _QUIET
        while time.monotonic() < deadline:
            try:
                data, address = self._sock.recvfrom(1 << 20)
            except BlockingIOError:
                time.sleep(0.005)
                continue
            # (ifname, protocol, pkttype, hatype, addr): nlmon puts the
            # netlink family in the protocol.
            if address[1] == NETLINK_ROUTE:
                packets.append(data)
            deadline = time.monotonic() + _QUIET
        return packets

    def _dropped(self) -> int:
        raw = self._sock.getsockopt(SOL_PACKET, PACKET_STATISTICS,
                                    _TPACKET_STATS.size)
        return int(_TPACKET_STATS.unpack(raw)[1])

    def count(self, action: Callable[[], object]) -> Counter[str]:
        """The rtnetlink requests made while action ran, by kind."""
        self._drain()
        self._dropped()  # reading the statistics resets them
        action()
        packets = self._drain()
        dropped = self._dropped()
        if dropped:
            raise DroppedMessages(
                f"the packet socket on {self.ifname} dropped {dropped} "
                f"netlink messages: the count is incomplete")
        return Counter(kind for packet in packets
                       for kind in requests_in(packet))

    def close(self) -> None:
        self._sock.close()
        subprocess.run(["ip", "link", "del", self.ifname], check=False)
