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

"""rtnetlink for VFs and VF netdevs: the codec and a blocking transport.

Nothing here is privileged and nothing here is an entrypoint. Reading a
link needs no capability: the plugin reads VFs and VF netdevs in its own
process (nova-compute's), so that a plug or unplug makes one privileged
round trip, the change. The privileged entrypoint (sriov_vif.privileged)
runs the functions that change a link in the privsep daemon, after
checking their arguments and resolving the VFs from sysfs. Functions that
take a PF name trust it: only the privileged module calls the ones that
change a link.

The transport is a plain socket of the standard library, blocking, one
per operation. nova-compute runs either monkey-patched by eventlet or
with native threads (nova/monkey_patch.py); a socket works in both (a
green socket under eventlet, a blocking one per native thread), where an
asyncio event loop per call does not: under eventlet, green threads share
one OS thread, and a second loop started while another waits fails with
"Cannot run the event loop while another loop is running".

Requests and replies are packed and decoded here with struct, as the
kernel's structs, rather than with pyroute2's ifinfmsg. pyroute2 0.9.7
encodes ifla_vf_vlan_info in 14 bytes where the kernel's struct (three
__u32 and a __be16) is 16 and the kernel refuses anything shorter with
EINVAL, which breaks every 802.1ad request; patching pyroute2's classes
would change them for every other user of pyroute2 in the process
(nova-compute loads os-vif's other plugins). And pyroute2's generic
codec costs more than the kernel's work: decoding an RTM_NEWLINK
decodes every attribute of the link, and every attribute of a VF once
any is read (in the benchmark's guest, 15 ms of Python for a 5 ms
request on an 8-VF PF, 61 ms on a 256-VF one). Replies are read only
for the attributes sriov-vif uses, and only for the VFs asked for.

The kernel applies the attributes of one VF in a fixed order (MAC, VLAN,
VLAN list, TX rate, rate, spoof check, link state, RSS query, trust) and
stops at the first error without saying which one failed, leaving the
earlier ones applied; with several VFs in one request, the VFs before
the refused one stay applied and those after it are never tried.
apply_vf_request therefore reads the VF back after a failure, names the
first attribute in kernel order that did not take effect, and rolls back
the ones that did; apply_vf_requests sends each VF again on its own when
a request for several is refused.
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Iterator
from collections.abc import Sequence
import contextlib
import dataclasses
import errno
import os
import socket
import struct
from typing import Any
from typing import Final

from oslo_log import log as logging
from pyroute2.netlink import NETLINK_ROUTE
from pyroute2.netlink import NLM_F_ACK
from pyroute2.netlink import NLM_F_REQUEST
from pyroute2.netlink import NLMSG_DONE
from pyroute2.netlink import NLMSG_ERROR
from pyroute2.netlink.exceptions import NetlinkError
from pyroute2.netlink.rtnl import RTM_GETLINK
from pyroute2.netlink.rtnl import RTM_SETLINK
from pyroute2.netlink.rtnl.ifinfmsg import IFF_UP

from sriov_vif import exception
from sriov_vif.vf_state import VFSettings
from sriov_vif.vf_state import VFState

LOG = logging.getLogger(__name__)

RTEXT_FILTER_VF: Final = 1
RTEXT_FILTER_SKIP_STATS: Final = 8
# Without per-VF stats the VF list of a 256-VF PF still fits the 16-bit
# nla_len of IFLA_VFINFO_LIST; kernels that predate SKIP_STATS ignore it.
VF_TABLE_EXT_MASK: Final = RTEXT_FILTER_VF | RTEXT_FILTER_SKIP_STATS

# linux/if_link.h: the link attributes sriov-vif reads or sends.
IFLA_ADDRESS: Final = 1
IFLA_IFNAME: Final = 3
IFLA_NUM_VF: Final = 21
IFLA_VFINFO_LIST: Final = 22
IFLA_EXT_MASK: Final = 29
# IFLA_VF_INFO in IFLA_VFINFO_LIST, and the VF attributes in it; each
# struct starts with the u32 VF index.
IFLA_VF_INFO: Final = 1
IFLA_VF_MAC: Final = 1
IFLA_VF_VLAN: Final = 2
IFLA_VF_TX_RATE: Final = 3
IFLA_VF_SPOOFCHK: Final = 4
IFLA_VF_LINK_STATE: Final = 5
IFLA_VF_RATE: Final = 6
IFLA_VF_TRUST: Final = 9
IFLA_VF_VLAN_LIST: Final = 12
IFLA_VF_VLAN_INFO: Final = 1
NLA_TYPE_MASK: Final = 0x3FFF
_NLA_HEADER: Final = struct.Struct("=HH")
_U32: Final = struct.Struct("=I")
# struct ifinfomsg: family, pad, type, index, flags, change.
_IFINFOMSG: Final = struct.Struct("=BxHiII")
# The VF structs read: ifla_vf_mac (index, 32-byte address: the first
# six are an Ethernet MAC), ifla_vf_vlan, ifla_vf_tx_rate, ifla_vf_rate,
# and the {index, setting} of spoofchk, link state and trust.
_VF_MAC: Final = struct.Struct("=I6s")
# What a request sends: the whole 32-byte array, zero-padded.
_VF_MAC_SET: Final = struct.Struct("=I32s")
_U32X3: Final = struct.Struct("=III")
_U32X2: Final = struct.Struct("=II")
# struct ifla_vf_vlan_info: __u32 vf, vlan, qos; __be16 vlan_proto.
_VLAN_PROTO: Final = struct.Struct(">H")
_VLAN_PROTO_OFFSET: Final = 12
# The C compiler pads struct ifla_vf_vlan_info to 16 bytes, and since
# the fix for CVE-2024-36017 the kernel refuses an entry shorter than
# that (pyroute2 0.9.7 encodes 14).
_VLAN_INFO_PAD: Final = b"\0\0"
# struct nlmsghdr: length, type, flags, sequence number, port id; an
# NLMSG_ERROR payload starts with the negative errno (0 for an ACK).
_NLMSG_HEADER: Final = struct.Struct("=IHHII")
_NLMSG_ERRNO: Final = struct.Struct("=i")
# VFs per RTM_SETLINK: IFLA_VFINFO_LIST has a 16-bit length, and one VF
# takes at most 120 bytes (MAC 40, VLAN list 24, rate 16, three settings
# 36, its own header 4): 256 VFs stay under half of it.
MAX_VFS_PER_REQUEST: Final = 256

ETH_P_8021Q: Final = 0x8100
ETH_P_8021AD: Final = 0x88A8
VLAN_PROTO_CODES: Final = {"802.1Q": ETH_P_8021Q, "802.1ad": ETH_P_8021AD}
LINK_STATE_CODES: Final = {"auto": 0, "enable": 1, "disable": 2}
# spoofchk and trust of a driver that does not report them.
UNREPORTED: Final = 0xFFFFFFFF

# The attributes of do_setvfinfo() in the order the kernel applies them,
# each with the VFSettings fields it carries. IFLA_VF_VLAN and
# IFLA_VF_VLAN_LIST both carry the VLAN group and sit next to each
# other, so one entry stands for both.
KERNEL_ORDER: Final = (
    ("mac", ("mac",)),
    ("vlan", ("vlan", "qos", "vlan_proto")),
    ("rate", ("min_tx_rate", "max_tx_rate")),
    ("spoofchk", ("spoofchk",)),
    ("link_state", ("link_state",)),
    ("trust", ("trust",)),
)

# Errors that say the driver cannot do an attribute at all.
UNSUPPORTED_ERRNOS: Final = frozenset({errno.EOPNOTSUPP,
                                       errno.EPROTONOSUPPORT})


def _mac_bytes(mac: str) -> bytes:
    return bytes(int(part, 16) for part in mac.split(":"))


def _attr(kind: int, payload: bytes) -> bytes:
    """One netlink attribute: header, payload, padding to four bytes."""
    length = _NLA_HEADER.size + len(payload)
    return (_NLA_HEADER.pack(length, kind) + payload
            + b"\0" * (-length % 4))


def _link_body(ifname: str, flags: int = 0, change: int = 0) -> bytes:
    """struct ifinfomsg for ifname (index 0: by name) and IFLA_IFNAME."""
    return (_IFINFOMSG.pack(0, 0, 0, flags, change)
            + _attr(IFLA_IFNAME, ifname.encode() + b"\0"))


def vf_info(vf_index: int, settings: VFSettings) -> bytes:
    """The IFLA_VF_INFO that applies settings to one VF.

    The VLAN group and the rate group must be complete (see
    VFSettings.complete_with): their kernel structs have no "unset".
    802.1Q goes as IFLA_VF_VLAN, which every kernel and driver knows;
    only 802.1ad needs IFLA_VF_VLAN_LIST. Each attribute is packed as
    its kernel struct, in the order the kernel applies them.
    """
    requested = settings.requested()
    for _name, fields in KERNEL_ORDER:
        present = [f for f in fields if f in requested]
        if present and len(present) != len(fields):
            missing = sorted(set(fields) - set(present))
            raise exception.InvalidVFSetting(
                name=missing[0], value=None,
                reason=f"must be sent together with {', '.join(present)}")
    attrs: list[bytes] = []
    if settings.mac is not None:
        attrs.append(_attr(IFLA_VF_MAC, _VF_MAC_SET.pack(
            vf_index, _mac_bytes(settings.mac))))
    if settings.vlan is not None:
        if settings.vlan_proto == "802.1Q":
            attrs.append(_attr(IFLA_VF_VLAN, _U32X3.pack(
                vf_index, settings.vlan, settings.qos)))
        else:
            attrs.append(_attr(IFLA_VF_VLAN_LIST, _attr(
                IFLA_VF_VLAN_INFO,
                _U32X3.pack(vf_index, settings.vlan, settings.qos)
                + _VLAN_PROTO.pack(VLAN_PROTO_CODES[str(settings.vlan_proto)])
                + _VLAN_INFO_PAD)))
    if settings.max_tx_rate is not None:
        attrs.append(_attr(IFLA_VF_RATE, _U32X3.pack(
            vf_index, settings.min_tx_rate, settings.max_tx_rate)))
    if settings.spoofchk is not None:
        attrs.append(_attr(IFLA_VF_SPOOFCHK, _U32X2.pack(
            vf_index, int(settings.spoofchk))))
    if settings.link_state is not None:
        attrs.append(_attr(IFLA_VF_LINK_STATE, _U32X2.pack(
            vf_index, LINK_STATE_CODES[settings.link_state])))
    if settings.trust is not None:
        attrs.append(_attr(IFLA_VF_TRUST, _U32X2.pack(
            vf_index, int(settings.trust))))
    return _attr(IFLA_VF_INFO, b"".join(attrs))


def build_set_vfs_message(
        pf_ifname: str, requests: Sequence[tuple[int, VFSettings]]) -> bytes:
    """One RTM_SETLINK carrying every requested attribute of VFs of a PF.

    The message's body, what follows its nlmsghdr (Rtnl.request packs
    that). The kernel walks IFLA_VFINFO_LIST in order, one IFLA_VF_INFO
    per VF, and stops at the first attribute a driver refuses.
    """
    if not 0 < len(requests) <= MAX_VFS_PER_REQUEST:
        raise exception.InvalidVFSetting(
            name="vfs", value=len(requests),
            reason=f"one request carries 1 to {MAX_VFS_PER_REQUEST} VFs")
    return _link_body(pf_ifname) + _attr(IFLA_VFINFO_LIST, b"".join(
        vf_info(vf_index, settings) for vf_index, settings in requests))


def build_set_vf_message(pf_ifname: str, vf_index: int,
                         settings: VFSettings) -> bytes:
    """One RTM_SETLINK body carrying every requested attribute of one VF."""
    return build_set_vfs_message(pf_ifname, [(vf_index, settings)])


class DecodeError(ValueError):
    """The kernel reported something this codec cannot represent."""


def _link_state_name(code: int, pf_ifname: str, vf_index: int) -> str:
    for name, value in LINK_STATE_CODES.items():
        if value == code:
            return name
    raise DecodeError(f"{pf_ifname} reports an unknown link state {code} "
                      f"for vf {vf_index}")


def _vlan_proto_name(code: int, pf_ifname: str, vf_index: int) -> str:
    if code == ETH_P_8021AD:
        return "802.1ad"
    # netdevsim reports 0 for a VF whose VLAN was never set; the kernel
    # itself presets 802.1Q for drivers that report nothing.
    if code in (ETH_P_8021Q, 0):
        return "802.1Q"
    raise DecodeError(f"{pf_ifname} reports an unknown VLAN protocol "
                      f"{code:#06x} for vf {vf_index}")


def _optional_bool(value: int) -> bool | None:
    return None if value == UNREPORTED else bool(value)


def _nlas(data: bytes, start: int, end: int) -> Iterator[tuple[int, int, int]]:
    """(type, payload start, payload end) of each attribute in data[start:end].

    A truncated attribute ends the walk, as the kernel's nla_for_each
    does.
    """
    pos = start
    while pos + _NLA_HEADER.size <= end:
        length, kind = _NLA_HEADER.unpack_from(data, pos)
        if length < _NLA_HEADER.size or pos + length > end:
            return
        yield kind & NLA_TYPE_MASK, pos + _NLA_HEADER.size, pos + length
        pos += (length + 3) & ~3


@dataclasses.dataclass(frozen=True)
class Link:
    """What sriov-vif reads of one RTM_NEWLINK, decoded from its bytes.

    vf_list is (start, end) of IFLA_VFINFO_LIST's payload in data, or
    None: the VFs are decoded only when asked for, and only those asked.
    """

    data: bytes
    ifname: str | None
    flags: int
    address: str | None
    num_vfs: int
    vf_list: tuple[int, int] | None


def decode_link(data: bytes) -> Link:
    """The Link of one RTM_NEWLINK message (header included)."""
    length = _NLMSG_HEADER.unpack_from(data)[0]
    if length > len(data):
        raise DecodeError(f"RTM_NEWLINK of {length} bytes in {len(data)}")
    flags = _IFINFOMSG.unpack_from(data, _NLMSG_HEADER.size)[3]
    ifname = address = vf_list = None
    num_vfs = 0
    for kind, start, end in _nlas(
            data, _NLMSG_HEADER.size + _IFINFOMSG.size, length):
        if kind == IFLA_IFNAME:
            ifname = data[start:end].split(b"\0", 1)[0].decode(
                "utf-8", "replace")
        elif kind == IFLA_ADDRESS:
            address = data[start:end].hex(":")
        elif kind == IFLA_NUM_VF:
            num_vfs = _U32.unpack_from(data, start)[0]
        elif kind == IFLA_VFINFO_LIST:
            vf_list = (start, end)
    return Link(data=data, ifname=ifname, flags=flags, address=address,
                num_vfs=num_vfs, vf_list=vf_list)


def _vf_info_spans(link: Link) -> list[tuple[int, int]]:
    """(start, end) of each IFLA_VF_INFO's payload, in list order.

    Only the attribute headers are read. A read of a few VFs walks the
    list only when a VF is not where the kernel puts it (_vf_info_at).
    """
    if link.vf_list is None:
        return []
    return [(start, end) for kind, start, end
            in _nlas(link.data, *link.vf_list) if kind == IFLA_VF_INFO]


def _vf_index(data: bytes, start: int, end: int) -> int | None:
    """The VF index of an IFLA_VF_INFO: the first u32 of IFLA_VF_MAC.

    The kernel puts IFLA_VF_MAC first (rtnl_fill_vfinfo()): it is read
    in place, and the VF's attributes are walked only when it is not.
    """
    if start + _NLA_HEADER.size + _U32.size <= end:
        length, kind = _NLA_HEADER.unpack_from(data, start)
        if (kind & NLA_TYPE_MASK == IFLA_VF_MAC
                and length >= _NLA_HEADER.size + _U32.size):
            return int(_U32.unpack_from(data, start + _NLA_HEADER.size)[0])
    for kind, value, value_end in _nlas(data, start, end):
        if kind == IFLA_VF_MAC and value + _U32.size <= value_end:
            return int(_U32.unpack_from(data, value)[0])
    return None


def _decode_vf(data: bytes, start: int, end: int,
               pf_ifname: str) -> VFState:
    """The VFState of one IFLA_VF_INFO payload.

    An attribute shorter than its kernel struct raises struct.error,
    which the callers report as an undecodable answer.
    """
    attrs = {kind: value for kind, value, _end in _nlas(data, start, end)}
    if IFLA_VF_MAC not in attrs:
        raise DecodeError(f"{pf_ifname} lists a VF without IFLA_VF_MAC")
    index, mac = _VF_MAC.unpack_from(data, attrs[IFLA_VF_MAC])
    vlan = qos = 0
    if IFLA_VF_VLAN in attrs:
        _vf, vlan, qos = _U32X3.unpack_from(data, attrs[IFLA_VF_VLAN])
    proto = ETH_P_8021Q
    if IFLA_VF_VLAN_LIST in attrs:
        list_start = attrs[IFLA_VF_VLAN_LIST]
        list_end = list_start - _NLA_HEADER.size + _NLA_HEADER.unpack_from(
            data, list_start - _NLA_HEADER.size)[0]
        for kind, value, _end in _nlas(data, list_start, list_end):
            if kind == IFLA_VF_VLAN_INFO:
                proto = _VLAN_PROTO.unpack_from(
                    data, value + _VLAN_PROTO_OFFSET)[0]
                break
    if IFLA_VF_RATE in attrs:
        _vf, min_rate, max_rate = _U32X3.unpack_from(
            data, attrs[IFLA_VF_RATE])
    else:
        min_rate = max_rate = 0
        if IFLA_VF_TX_RATE in attrs:
            max_rate = _U32X2.unpack_from(data, attrs[IFLA_VF_TX_RATE])[1]

    def setting(kind: int) -> int | None:
        if kind not in attrs:
            return None
        return int(_U32X2.unpack_from(data, attrs[kind])[1])

    spoofchk = setting(IFLA_VF_SPOOFCHK)
    trust = setting(IFLA_VF_TRUST)
    link_state = setting(IFLA_VF_LINK_STATE)
    return VFState(
        index=index,
        mac=mac.hex(":"),
        vlan=vlan,
        qos=qos,
        vlan_proto=_vlan_proto_name(proto, pf_ifname, index),
        spoofchk=_optional_bool(spoofchk) if spoofchk is not None else None,
        trust=_optional_bool(trust) if trust is not None else None,
        link_state=(_link_state_name(link_state, pf_ifname, index)
                    if link_state is not None else "auto"),
        min_tx_rate=min_rate,
        max_tx_rate=max_rate,
    )


def decode_vf_table(link: Link, pf_ifname: str) -> tuple[int, list[VFState]]:
    """(IFLA_NUM_VF, the VFs) of an RTM_NEWLINK reply for a PF.

    Each VF is identified by the index the kernel put inside its structs,
    never by its position in the list.
    """
    return link.num_vfs, [_decode_vf(link.data, start, end, pf_ifname)
                          for start, end in _vf_info_spans(link)]


@dataclasses.dataclass(frozen=True)
class VFLookup:
    """The VFs asked for in one RTM_NEWLINK reply of a PF, by index.

    A VF the PF does not list is absent from found.
    """

    link: Link
    found: dict[int, VFState]

    @property
    def num_vfs(self) -> int:
        """IFLA_NUM_VF: how many VFs the PF says it has."""
        return self.link.num_vfs

    def listed(self) -> int:
        """How many VFs the reply lists; walks the list, for errors only."""
        return len(_vf_info_spans(self.link))


def _vf_info_at(link: Link, position: int) -> tuple[int, int] | None:
    """(start, end) of the IFLA_VF_INFO at position, read in place.

    The kernel fills every VF of a PF with the same attributes
    (rtnl_fill_vfinfo()), so each IFLA_VF_INFO has the first one's
    length and VF i starts i lengths into the list: one header read,
    not a walk of 256 of them. The answer is a guess, which the caller
    confirms by the index inside the VF's struct; None when the list is
    shorter or not what the first VF says it is.
    """
    if link.vf_list is None or position < 0:
        return None
    data = link.data
    start, end = link.vf_list
    if start + _NLA_HEADER.size > end:
        return None
    length, kind = _NLA_HEADER.unpack_from(data, start)
    if length < _NLA_HEADER.size:
        return None
    pos = start + position * ((length + 3) & ~3)
    if pos + length > end:
        return None
    if _NLA_HEADER.unpack_from(data, pos) != (length, kind) or (
            kind & NLA_TYPE_MASK != IFLA_VF_INFO):
        return None
    return pos + _NLA_HEADER.size, pos + length


def find_vfs(link: Link, pf_ifname: str,
             vf_indexes: Sequence[int]) -> VFLookup:
    """The VFs at vf_indexes in an RTM_NEWLINK reply of a PF.

    Only the VFs asked for are decoded, and each is looked for first
    where the kernel puts VF i (at position i, see _vf_info_at), by the
    index in its own struct: reading a VF costs the same on a PF with
    256 VFs as on one with 8. Only a VF not found there is looked for in
    the whole list.
    """
    found: dict[int, VFState] = {}
    spans: list[tuple[int, int]] | None = None
    for index in vf_indexes:
        if index in found:
            continue
        guess = _vf_info_at(link, index)
        if guess is not None and _vf_index(link.data, *guess) == index:
            found[index] = _decode_vf(link.data, *guess, pf_ifname)
            continue
        if spans is None:
            spans = _vf_info_spans(link)
        for start, end in spans:
            if _vf_index(link.data, start, end) == index:
                found[index] = _decode_vf(link.data, start, end, pf_ifname)
                break
    return VFLookup(link=link, found=found)


def find_vf(link: Link, pf_ifname: str,
            vf_index: int) -> tuple[int, VFState | None]:
    """(IFLA_NUM_VF, the VF or None) of an RTM_NEWLINK reply."""
    lookup = find_vfs(link, pf_ifname, [vf_index])
    return lookup.num_vfs, lookup.found.get(vf_index)


def first_unapplied(request: VFSettings, after: VFState) -> str | None:
    """The first kernel attribute of request that after does not show."""
    requested = request.requested()
    for name, fields in KERNEL_ORDER:
        if any(f in requested and getattr(after, f) != requested[f]
               for f in fields):
            return name
    return None


def rollback_settings(request: VFSettings, before: VFState,
                      after: VFState) -> VFSettings:
    """The settings that undo what of request took effect.

    Whole kernel attributes, taken from before: a VLAN or rate struct
    cannot be sent half.
    """
    requested = request.requested()
    restore = before.restorable().requested()
    undo: dict[str, Any] = {}
    for _name, fields in KERNEL_ORDER:
        if not any(f in requested for f in fields):
            continue
        if any(getattr(after, f) != getattr(before, f) for f in fields):
            undo.update({f: restore[f] for f in fields if f in restore})
    return VFSettings(**undo)


def _fields_of(attribute: str | None) -> tuple[str, ...]:
    return dict(KERNEL_ORDER).get(attribute or "", ())


# Transport: a blocking netlink socket.

class Rtnl:
    """Blocking rtnetlink requests on a socket of the standard library.

    One Rtnl serves one operation, in whatever thread (or green thread)
    runs it. Requests are sent with NLM_F_ACK: the kernel answers each
    with its replies, if any, then an NLMSG_ERROR carrying 0 or the
    errno, which ends the request. Replies come back as bytes, for
    decode_link; pyroute2's own sockets are not used (see the module
    docstring).
    """

    def __init__(self) -> None:
        self._sock = socket.socket(
            socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC,
            NETLINK_ROUTE)
        self._sequence = 0
        try:
            self._sock.bind((0, 0))  # the kernel picks the port id
        except BaseException:
            self._sock.close()
            raise

    def _receive(self) -> bytes:
        """One datagram, whole: its size is peeked first (MSG_TRUNC)."""
        probe = bytearray(_NLMSG_HEADER.size)
        size = self._sock.recv_into(probe, len(probe),
                                    socket.MSG_PEEK | socket.MSG_TRUNC)
        buffer = bytearray(max(size, len(probe)))
        received = self._sock.recv_into(buffer, len(buffer))
        return bytes(buffer[:received])

    def request(self, msg_type: int, body: bytes) -> list[bytes]:
        """Send body (what follows the nlmsghdr) as msg_type.

        Returns each reply message whole (header included); raises
        NetlinkError on an error.
        """
        self._sequence += 1
        self._sock.sendto(_NLMSG_HEADER.pack(
            _NLMSG_HEADER.size + len(body), msg_type,
            NLM_F_REQUEST | NLM_F_ACK, self._sequence, 0) + body, (0, 0))
        replies: list[bytes] = []
        while True:
            data = self._receive()
            offset = 0
            while offset + _NLMSG_HEADER.size <= len(data):
                length, kind, _flags, sequence, _port = (
                    _NLMSG_HEADER.unpack_from(data, offset))
                if length < _NLMSG_HEADER.size:
                    raise DecodeError(f"netlink message of length {length}")
                payload = offset + _NLMSG_HEADER.size
                if sequence == self._sequence:
                    if kind == NLMSG_ERROR:
                        code = -_NLMSG_ERRNO.unpack_from(data, payload)[0]
                        if code:
                            raise NetlinkError(code)
                        return replies
                    if kind == NLMSG_DONE:
                        return replies
                    replies.append(data[offset:offset + length])
                offset += (length + 3) & ~3

    def close(self) -> None:
        self._sock.close()


@contextlib.contextmanager
def session() -> Iterator[Rtnl]:
    """An Rtnl for the calls of one operation, closed afterwards."""
    rtnl = Rtnl()
    try:
        yield rtnl
    finally:
        rtnl.close()


def get_link(rtnl: Rtnl, ifname: str, ext_mask: int) -> Link:
    """The RTM_NEWLINK reply for ifname; NetdevNotFound if there is none."""
    LOG.debug("RTM_GETLINK %(dev)s ext_mask %(mask)d",
              {"dev": ifname, "mask": ext_mask})
    try:
        replies = rtnl.request(RTM_GETLINK, _link_body(ifname) + _attr(
            IFLA_EXT_MASK, _U32.pack(ext_mask)))
    except NetlinkError as exc:
        if exc.code == errno.ENODEV:
            raise exception.NetdevNotFound(ifname=ifname) from None
        raise
    for reply in replies:
        link = decode_link(reply)
        if link.ifname == ifname:
            return link
    raise exception.NetdevNotFound(ifname=ifname)


def read_vfs(rtnl: Rtnl, pf_ifname: str) -> tuple[int, list[VFState]]:
    """(IFLA_NUM_VF, every VF) of a PF."""
    return decode_vf_table(get_link(rtnl, pf_ifname, VF_TABLE_EXT_MASK),
                           pf_ifname)


def read_some(rtnl: Rtnl, pf_ifname: str,
              vf_indexes: Sequence[int]) -> VFLookup:
    """The VFs at vf_indexes of a PF: one request."""
    return find_vfs(get_link(rtnl, pf_ifname, VF_TABLE_EXT_MASK),
                    pf_ifname, vf_indexes)


def read_one(rtnl: Rtnl, pf_ifname: str,
             vf_index: int) -> tuple[int, VFState | None]:
    """(IFLA_NUM_VF, the VF or None) of a PF."""
    lookup = read_some(rtnl, pf_ifname, [vf_index])
    return lookup.num_vfs, lookup.found.get(vf_index)


def read_netdev(rtnl: Rtnl, ifname: str) -> tuple[str, bool]:
    """(MAC, up) of a netdev."""
    link = get_link(rtnl, ifname, 0)
    return str(link.address), bool(link.flags & IFF_UP)


def send_vf(rtnl: Rtnl, pf_ifname: str, vf_index: int,
            settings: VFSettings) -> None:
    """One RTM_SETLINK with settings for one VF; NetlinkError if refused."""
    if LOG.isEnabledFor(logging.DEBUG):  # arguments cost a plug
        LOG.debug("RTM_SETLINK %(pf)s vf %(vf)d: %(attrs)s",
                  {"pf": pf_ifname, "vf": vf_index,
                   "attrs": settings.requested()})
    rtnl.request(RTM_SETLINK,
                 build_set_vf_message(pf_ifname, vf_index, settings))


def send_vfs(rtnl: Rtnl, pf_ifname: str,
             requests: Sequence[tuple[int, VFSettings]]) -> None:
    """One RTM_SETLINK with settings for VFs of a PF; NetlinkError if not."""
    if LOG.isEnabledFor(logging.DEBUG):  # arguments cost a restore
        LOG.debug("RTM_SETLINK %(pf)s, %(count)d VFs: %(attrs)s",
                  {"pf": pf_ifname, "count": len(requests),
                   "attrs": {index: settings.requested()
                             for index, settings in requests}})
    rtnl.request(RTM_SETLINK, build_set_vfs_message(pf_ifname, requests))


def missing_cap_reason() -> str:
    return ("the kernel refused the request (EPERM): the privsep daemon "
            "lacks CAP_NET_ADMIN")


def errno_name(code: int) -> str:
    """EOPNOTSUPP, EINVAL, ...: the names the kernel's sources use."""
    # Linux gives EOPNOTSUPP and ENOTSUP the same number, and Python
    # names it ENOTSUP; drivers and rtnetlink say EOPNOTSUPP.
    if code == errno.EOPNOTSUPP:
        return "EOPNOTSUPP"
    return errno.errorcode.get(code, str(code))


def describe(exc: NetlinkError) -> str:
    """The errno of a refused request, as the errors of sriov-vif say it."""
    if exc.code == errno.EPERM:
        return missing_cap_reason()
    return f"{os.strerror(exc.code)} ({errno_name(exc.code)})"


@contextlib.contextmanager
def reported_as(error: Callable[..., exception.SriovVifError]
                ) -> Iterator[None]:
    """Any netlink or decoding failure below as error(reason=...).

    error names the VFs concerned (their PCI address, PF and index), as
    every error of sriov-vif about a VF does.
    """
    try:
        yield
    except exception.SriovVifError:
        raise
    except NetlinkError as exc:
        raise error(reason=describe(exc)) from None
    except (RollbackFailed, DecodeError, struct.error) as exc:
        raise error(reason=str(exc)) from None


class RollbackFailed(Exception):
    """A refused request left part of itself applied, and stays so."""


def apply_vf_request(rtnl: Rtnl, pf_ifname: str, vf_index: int,
                     request: VFSettings,
                     before: VFState) -> dict[str, Any] | None:
    """Send request; on a refusal locate it, roll back, describe it.

    Returns None when the kernel accepted the request, else the refusal
    ({"errno", "num_vfs", "vf_present", "attribute", "fields",
    "rolled_back"}) after the VF was put back to before. Raises
    NetdevNotFound, RollbackFailed, or NetlinkError for EPERM.
    """
    try:
        send_vf(rtnl, pf_ifname, vf_index, request)
        return None
    except NetlinkError as exc:
        code = exc.code
        if code in (errno.ENODEV, errno.EPERM):
            if code == errno.ENODEV:
                raise exception.NetdevNotFound(ifname=pf_ifname) from None
            raise
    num_vfs, after = read_one(rtnl, pf_ifname, vf_index)
    refusal: dict[str, Any] = {
        "errno": code,
        "num_vfs": num_vfs,
        "vf_present": after is not None,
        "attribute": None,
        "fields": [],
        "rolled_back": [],
    }
    if after is None:
        # Nothing can have been applied to a VF the PF does not report
        # (no SR-IOV, or an index past the VF count): the kernel refused
        # the first attribute.
        first = next(name for name, fields in KERNEL_ORDER
                     if any(f in request.requested() for f in fields))
        refusal["attribute"] = first
        refusal["fields"] = list(_fields_of(first))
        return refusal
    attribute = first_unapplied(request, after)
    refusal["attribute"] = attribute
    refusal["fields"] = list(_fields_of(attribute))
    undo = rollback_settings(request, before, after)
    if undo.is_empty():
        return refusal
    LOG.info("PF %(pf)s refused %(attr)s of vf %(vf)d (%(err)s); rolling "
             "back %(undo)s",
             {"pf": pf_ifname, "attr": attribute, "vf": vf_index,
              "err": os.strerror(code), "undo": undo.requested()})
    undo = undo.complete_with(before)
    try:
        send_vf(rtnl, pf_ifname, vf_index, undo)
    except NetlinkError as exc:
        raise RollbackFailed(
            f"the kernel refused {attribute} ({os.strerror(code)}) after "
            f"applying part of the request, and refused the rollback of "
            f"{sorted(undo.requested())} too ({os.strerror(exc.code)}); "
            f"the VF is now {after}") from None
    _num, restored = read_one(rtnl, pf_ifname, vf_index)
    left = (first_unapplied(undo, restored) if restored is not None
            else "the VF")
    if left is not None:
        raise RollbackFailed(
            f"the kernel refused {attribute} ({os.strerror(code)}) after "
            f"applying part of the request; the rollback was accepted but "
            f"{left} did not return to {before}")
    refusal["rolled_back"] = sorted(undo.requested())
    return refusal


def apply_vf_requests(
        rtnl: Rtnl, pf_ifname: str,
        requests: Sequence[tuple[int, VFSettings, VFState]]
) -> list[dict[str, Any] | None]:
    """Apply requests (vf index, settings, state before) to VFs of a PF.

    All of them go in one RTM_SETLINK. When the kernel refuses it, it has
    applied the VFs before the one it refused, part of that one and
    nothing after it, and does not say which: each VF is then sent again
    on its own (apply_vf_request), so that the refused one is located
    and rolled back to its state before and none of the others is held
    back by it. Returns one refusal (or None) per request, in order.
    Raises as apply_vf_request does.
    """
    if len(requests) > 1:
        try:
            for first in range(0, len(requests), MAX_VFS_PER_REQUEST):
                send_vfs(rtnl, pf_ifname, [
                    (index, request) for index, request, _before
                    in requests[first:first + MAX_VFS_PER_REQUEST]])
            return [None] * len(requests)
        except NetlinkError as exc:
            if exc.code == errno.ENODEV:
                raise exception.NetdevNotFound(ifname=pf_ifname) from None
            if exc.code == errno.EPERM:
                raise
            LOG.info("PF %(pf)s refused a request for %(count)d VFs "
                     "(%(err)s); sending each VF on its own",
                     {"pf": pf_ifname, "count": len(requests),
                      "err": os.strerror(exc.code)})
    return [apply_vf_request(rtnl, pf_ifname, index, request, before)
            for index, request, before in requests]


def set_link(rtnl: Rtnl, ifname: str, mac: str | None,
             up: bool | None) -> None:
    """Set a netdev's MAC and/or up state in one RTM_SETLINK."""
    LOG.debug("RTM_SETLINK %(dev)s: address %(mac)s, up %(up)s",
              {"dev": ifname, "mac": mac, "up": up})
    body = (_link_body(ifname, flags=IFF_UP if up else 0,
                       change=0 if up is None else IFF_UP)
            + (b"" if mac is None else _attr(IFLA_ADDRESS, _mac_bytes(mac))))
    rtnl.request(RTM_SETLINK, body)


def set_netdev(rtnl: Rtnl, ifname: str, mac: str | None,
               up: bool | None) -> None:
    """Set a netdev's MAC and/or up state; None leaves one be.

    The kernel changes the address before the flags within one request,
    which is the right order to bring a device up with a new MAC; taking
    it down comes first, as a request of its own, so the MAC never
    changes on a device that is up and on its way down.
    """
    if up is False:
        set_link(rtnl, ifname, None, False)
        up = None
        if mac is None:
            return
    set_link(rtnl, ifname, mac, up)
