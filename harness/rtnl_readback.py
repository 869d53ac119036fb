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

"""A reader of a PF's VF table that shares no code with sriov_vif.

iproute2 is the independent reader of choice, but it asks the kernel for
the VF stats as well, and with them the VF list of a PF with more than
about 220 VFs no longer fits one netlink attribute (its length is 16
bits): `ip link show` truncates it. This reader asks with
RTEXT_FILTER_SKIP_STATS, which Debian's 6.1 kernel honours, and decodes
the VF attributes with struct straight from linux/if_link.h, so a decoding
bug in pyroute2 (which sriov_vif uses) cannot hide in both the code under
test and its proof.
"""

from __future__ import annotations

from collections.abc import Iterator
import dataclasses
import errno
import os
import socket
import struct

# linux/netlink.h, linux/rtnetlink.h, linux/if_link.h
NLMSG_ERROR = 2
NLM_F_REQUEST = 1
RTM_NEWLINK = 16
RTM_GETLINK = 18
IFLA_NUM_VF = 21
IFLA_VFINFO_LIST = 22
IFLA_EXT_MASK = 29
IFLA_VF_INFO = 1
IFLA_VF_MAC = 1
IFLA_VF_VLAN = 2
IFLA_VF_SPOOFCHK = 4
IFLA_VF_LINK_STATE = 5
IFLA_VF_RATE = 6
IFLA_VF_TRUST = 9
IFLA_VF_VLAN_LIST = 12
IFLA_VF_VLAN_INFO = 1
RTEXT_FILTER_VF = 1
RTEXT_FILTER_SKIP_STATS = 8
_NLA_TYPE_MASK = 0x3FFF  # strips NLA_F_NESTED and NLA_F_NET_BYTEORDER
_NLMSGHDR = struct.Struct("=IHHII")
_IFINFOMSG = struct.Struct("=BxHiII")
_NLATTR = struct.Struct("=HH")

LINK_STATE_NAMES = {0: "auto", 1: "enable", 2: "disable"}


@dataclasses.dataclass(frozen=True)
class VFReading:
    """One VF as the kernel reports it.

    link_state is auto/enable/disable; vlan_proto the ethertype (0x8100
    or 0x88a8; netdevsim says 0 for a VF whose VLAN was never set).
    """

    vf: int
    mac: str
    vlan: int
    qos: int
    vlan_proto: int
    spoofchk: bool
    trust: bool
    link_state: str
    min_tx_rate: int
    max_tx_rate: int


@dataclasses.dataclass(frozen=True)
class VFTable:
    """IFLA_NUM_VF and the VFs.

    The VFs are keyed by the index the kernel put in each VF's structs,
    never by their position in the list.
    """

    num_vf: int
    vfs: dict[int, VFReading]


def _attributes(data: bytes) -> Iterator[tuple[int, bytes]]:
    offset = 0
    while offset + _NLATTR.size <= len(data):
        length, kind = _NLATTR.unpack_from(data, offset)
        if length < _NLATTR.size:
            raise ValueError(f"netlink attribute of length {length}")
        yield kind & _NLA_TYPE_MASK, data[offset + _NLATTR.size:
                                          offset + length]
        offset += (length + 3) & ~3


def _setting(attrs: dict[int, bytes], kind: int) -> int:
    """The value of a {u32 vf; u32 setting} attribute."""
    value: int = struct.unpack_from("=II", attrs[kind])[1]
    return value


def _vlan_proto(vlan_list: bytes) -> int:
    for kind, vlan_info in _attributes(vlan_list):
        if kind == IFLA_VF_VLAN_INFO:
            # {u32 vf; u32 vlan; u32 qos; __be16 vlan_proto}
            proto: int = struct.unpack_from(">H", vlan_info, 12)[0]
            return proto
    raise ValueError("IFLA_VF_VLAN_LIST without IFLA_VF_VLAN_INFO")


def _vf_reading(info: bytes) -> VFReading:
    attrs = dict(_attributes(info))
    vf, raw_mac = struct.unpack_from("=I32s", attrs[IFLA_VF_MAC])
    _, vlan, qos = struct.unpack_from("=III", attrs[IFLA_VF_VLAN])
    _, min_tx_rate, max_tx_rate = struct.unpack_from("=III",
                                                     attrs[IFLA_VF_RATE])
    link_state = _setting(attrs, IFLA_VF_LINK_STATE)
    return VFReading(
        vf=vf, mac=":".join(f"{byte:02x}" for byte in raw_mac[:6]),
        vlan=vlan, qos=qos,
        vlan_proto=_vlan_proto(attrs[IFLA_VF_VLAN_LIST]),
        spoofchk=_setting(attrs, IFLA_VF_SPOOFCHK) == 1,
        trust=_setting(attrs, IFLA_VF_TRUST) == 1,
        link_state=LINK_STATE_NAMES.get(link_state, str(link_state)),
        min_tx_rate=min_tx_rate, max_tx_rate=max_tx_rate)


def _request(ifindex: int) -> bytes:
    ext_mask = struct.pack("=HHI", 8, IFLA_EXT_MASK,
                           RTEXT_FILTER_VF | RTEXT_FILTER_SKIP_STATS)
    body = _IFINFOMSG.pack(socket.AF_UNSPEC, 0, ifindex, 0, 0) + ext_mask
    header = _NLMSGHDR.pack(_NLMSGHDR.size + len(body), RTM_GETLINK,
                            NLM_F_REQUEST, 1, 0)
    return header + body


def vf_table_reply(ifname: str) -> bytes:
    """The kernel's undecoded answer to RTM_GETLINK with VFs, no stats.

    Apart from read_vf_table so that the benchmarks can time what the
    kernel takes to report a PF's VFs without this module's decoding.
    """
    ifindex = socket.if_nametoindex(ifname)
    with socket.socket(socket.AF_NETLINK, socket.SOCK_RAW,
                       socket.NETLINK_ROUTE) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 22)
        sock.sendall(_request(ifindex))
        return sock.recv(1 << 22)


def read_vf_table(ifname: str) -> VFTable:
    """RTM_GETLINK for ifname with VFs and without stats, decoded."""
    reply = vf_table_reply(ifname)
    length, kind, _, _, _ = _NLMSGHDR.unpack_from(reply)
    message = reply[_NLMSGHDR.size:length]
    if kind == NLMSG_ERROR:
        (code,) = struct.unpack_from("=i", message)
        raise OSError(-code, f"RTM_GETLINK {ifname}: "
                             f"{os.strerror(-code)}")
    if kind != RTM_NEWLINK:
        raise OSError(errno.EPROTO, f"RTM_GETLINK {ifname}: reply type "
                                    f"{kind}")
    num_vf = 0
    vfs: dict[int, VFReading] = {}
    for attr, payload in _attributes(message[_IFINFOMSG.size:]):
        if attr == IFLA_NUM_VF:
            (num_vf,) = struct.unpack_from("=I", payload)
        elif attr == IFLA_VFINFO_LIST:
            for info_kind, info in _attributes(payload):
                if info_kind == IFLA_VF_INFO:
                    reading = _vf_reading(info)
                    vfs[reading.vf] = reading
    return VFTable(num_vf=num_vf, vfs=vfs)
