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

"""The privileged netlink layer, without root: encoding, decoding, logic.

The one entrypoint, change_vfs, runs in this process (the in_process
fixture), on FakeKernel.

Messages are checked against byte layouts written here from
linux/if_link.h with struct, never against pyroute2's view of them, so a
pyroute2 encoding bug cannot hide in both the code and its test. The
logic of refusals and rollback runs against FakeKernel, which applies a
request's VF attributes in the kernel's order and stops at the first one
it is told to refuse, like do_setvfinfo() in net/core/rtnetlink.c.
"""

from __future__ import annotations

import dataclasses
import errno
import logging
import struct
from typing import Any

import msgpack
from oslo_config import cfg
from pyroute2.netlink.exceptions import NetlinkError
from pyroute2.netlink.rtnl import RTM_GETLINK
from pyroute2.netlink.rtnl import RTM_SETLINK
from pyroute2.netlink.rtnl.ifinfmsg import ifinfmsg
import pytest

from harness import sysfs_tree
from sriov_vif import config
from sriov_vif import discovery
from sriov_vif import exception
from sriov_vif import privileged
from sriov_vif import privsep
from sriov_vif import rtnl
from sriov_vif import vf_config
from sriov_vif.vf_state import VFSettings
from sriov_vif.vf_state import VFState

# linux/if_link.h
IFLA_ADDRESS = 1
IFLA_IFNAME = 3
IFLA_NUM_VF = 21
IFLA_VFINFO_LIST = 22
IFLA_EXT_MASK = 29
IFLA_VF_INFO = 1
IFLA_VF_MAC = 1
IFLA_VF_VLAN = 2
IFLA_VF_TX_RATE = 3
IFLA_VF_SPOOFCHK = 4
IFLA_VF_LINK_STATE = 5
IFLA_VF_RATE = 6
IFLA_VF_RSS_QUERY_EN = 7
IFLA_VF_TRUST = 9
IFLA_VF_VLAN_LIST = 12
IFLA_VF_BROADCAST = 13
IFLA_VF_VLAN_INFO = 1
RTM_NEWLINK = 16
IFF_UP = 1
NLMSGHDR = struct.Struct("=IHHII")
IFINFOMSG = struct.Struct("=BxHiII")
# struct ifla_vf_vlan_info {__u32 vf, vlan, qos; __be16 vlan_proto;}
SIZEOF_IFLA_VF_VLAN_INFO = 16
UNREPORTED = 0xFFFFFFFF
ZERO_MAC = "00:00:00:00:00:00"

PF = "enp1s0f0"
PF_ADDRESS = "0000:81:00.0"
VF_NETDEVS = ("m0", "m1", "m2", "m3")


def A(index):  # noqa: N802  (the VF's PCI address, as tests write it)
    return f"0000:81:10.{index}"


def nla(kind, payload):
    length = 4 + len(payload)
    return struct.pack("=HH", length, kind) + payload + b"\0" * (-length % 4)


def parse_nlas(data):
    """[(type, payload)] of a chain of netlink attributes."""
    attrs = []
    offset = 0
    while offset + 4 <= len(data):
        length, kind = struct.unpack_from("=HH", data, offset)
        assert length >= 4, f"attribute of length {length} at {offset}"
        attrs.append((kind & 0x3FFF, bytes(data[offset + 4:offset + length])))
        offset += (length + 3) & ~3
    assert offset == len(data) or offset - len(data) < 4
    return attrs


def parse_link_message(data):
    """(nlmsghdr, ifinfomsg, [(type, payload)]) of an RTM_*LINK message."""
    header = NLMSGHDR.unpack_from(data)
    assert header[0] == len(data)
    ifi = IFINFOMSG.unpack_from(data, NLMSGHDR.size)
    return header, ifi, parse_nlas(data[NLMSGHDR.size + IFINFOMSG.size:])


def encode(msg):
    """A pyroute2 message, encoded."""
    msg.encode()
    return bytes(msg.data)


def message(body, msg_type=RTM_SETLINK):
    """A request body of sriov_vif.rtnl with the nlmsghdr Rtnl adds."""
    # flags NLM_F_REQUEST | NLM_F_ACK, as Rtnl sends them
    return NLMSGHDR.pack(NLMSGHDR.size + len(body), msg_type, 1 | 4, 1,
                         0) + body


def vf_info_bytes(state, proto=None, spoofchk=None, trust=None):
    """One IFLA_VF_INFO as Linux 6.1's rtnl_fill_vfinfo() writes it."""
    vf = state.index
    mac = bytes.fromhex(state.mac.replace(":", "")).ljust(32, b"\0")
    if proto is None:
        proto = rtnl.VLAN_PROTO_CODES[state.vlan_proto]
    if spoofchk is None:
        spoofchk = UNREPORTED if state.spoofchk is None else state.spoofchk
    if trust is None:
        trust = UNREPORTED if state.trust is None else state.trust
    link = rtnl.LINK_STATE_CODES[state.link_state]
    vlan_info = (struct.pack("=III", vf, state.vlan, state.qos)
                 + struct.pack(">H", proto) + b"\0\0")
    return nla(IFLA_VF_INFO, b"".join([
        nla(IFLA_VF_MAC, struct.pack("=I", vf) + mac),
        nla(IFLA_VF_VLAN, struct.pack("=III", vf, state.vlan, state.qos)),
        nla(IFLA_VF_VLAN_LIST, nla(IFLA_VF_VLAN_INFO, vlan_info)),
        nla(IFLA_VF_TX_RATE, struct.pack("=II", vf, state.max_tx_rate)),
        nla(IFLA_VF_SPOOFCHK, struct.pack("=II", vf, spoofchk)),
        nla(IFLA_VF_LINK_STATE, struct.pack("=II", vf, link)),
        nla(IFLA_VF_RATE, struct.pack("=III", vf, state.min_tx_rate,
                                      state.max_tx_rate)),
        nla(IFLA_VF_RSS_QUERY_EN, struct.pack("=II", vf, UNREPORTED)),
        nla(IFLA_VF_TRUST, struct.pack("=II", vf, trust)),
        nla(IFLA_VF_BROADCAST, b"\xff" * 6 + b"\0" * 26),
    ]))


def link_message(ifname, num_vfs=None, vf_infos=None, flags=0,
                 address="52:54:00:00:00:01"):
    """An RTM_NEWLINK reply as the kernel sends it, as bytes."""
    attrs = nla(IFLA_IFNAME, ifname.encode() + b"\0")
    attrs += nla(IFLA_ADDRESS, bytes.fromhex(address.replace(":", "")))
    if num_vfs is not None:
        attrs += nla(IFLA_NUM_VF, struct.pack("=I", num_vfs))
    if vf_infos is not None:
        attrs += nla(IFLA_VFINFO_LIST, b"".join(vf_infos))
    body = IFINFOMSG.pack(0, 1, 7, flags, 0) + attrs
    data = NLMSGHDR.pack(NLMSGHDR.size + len(body), RTM_NEWLINK, 0, 1, 0)
    return data + body


def link_reply(*args, **kwargs):
    """link_message(...), decoded by sriov_vif.rtnl."""
    return rtnl.decode_link(link_message(*args, **kwargs))


def vf(index, **changes):
    """A VF at netdevsim's defaults, with changes."""
    state = VFState(index=index, mac="00:00:00:00:00:00", vlan=0, qos=0,
                    vlan_proto="802.1Q", spoofchk=False, trust=False,
                    link_state="auto", min_tx_rate=0, max_tx_rate=0)
    return dataclasses.replace(state, **changes)


class FakeKernel:
    """Links and VFs, changed by the requests Rtnl would send.

    Requests are parsed from their bytes. A SETLINK applies the VF
    attributes in do_setvfinfo() order and stops at the first attribute
    named in refuse (by KERNEL_ORDER name), as the kernel does; a VLAN
    list entry shorter than the kernel's struct is refused with EINVAL
    as Linux does since the CVE-2024-36017 fix.
    """

    def __init__(self, vfs=(), links=(PF,), num_vfs=None):
        self.vfs = {state.index: state for state in vfs}
        self.num_vfs = len(self.vfs) if num_vfs is None else num_vfs
        self.links: dict[str, dict[str, Any]] = {
            name: {"mac": "52:54:00:00:00:01", "up": False}
                      for name in links}
        self.refuse = {}
        self.refuse_always = False
        self.refuse_only_vf = None  # refuse only this VF's attributes
        self.errno_all = None
        # errno for every SETLINK after the first (refuses a rollback)
        self.refuse_later_setlinks = None
        self.requests = []
        self.opened = 0
        self.closed = 0

    def rtnl_class(self):
        kernel = self

        class FakeRtnl:
            def __init__(self):
                kernel.opened += 1

            def request(self, msg_type, body):
                return kernel.handle(message(body, msg_type), msg_type)

            def close(self):
                kernel.closed += 1

        return FakeRtnl

    def setlink_requests(self):
        return [data for kind, data in self.requests if kind == RTM_SETLINK]

    def handle(self, data, msg_type):
        self.requests.append((msg_type, data))
        _header, ifi, attrs = parse_link_message(data)
        attrs_by_type = dict(attrs)
        assert ifi[2] == 0, "requests address links by name"
        ifname = attrs_by_type[IFLA_IFNAME].rstrip(b"\0").decode()
        if ifname not in self.links:
            raise NetlinkError(errno.ENODEV)
        if self.errno_all is not None:
            raise NetlinkError(self.errno_all)
        if msg_type == RTM_GETLINK:
            return [self._reply(ifname, attrs_by_type)]
        assert msg_type == RTM_SETLINK
        if (self.refuse_later_setlinks is not None
                and len(self.setlink_requests()) > 1):
            raise NetlinkError(self.refuse_later_setlinks)
        if IFLA_VFINFO_LIST in attrs_by_type:
            self._set_vfs(attrs_by_type[IFLA_VFINFO_LIST])
        else:
            self._set_link(ifname, ifi, attrs_by_type)
        return []

    def _reply(self, ifname, attrs):
        (ext_mask,) = struct.unpack("=I", attrs[IFLA_EXT_MASK])
        link = self.links[ifname]
        if ext_mask & 1 and ifname == PF:
            infos = [vf_info_bytes(state) for state in self.vfs.values()]
            return link_message(ifname, self.num_vfs, infos,
                                flags=int(link["up"]), address=link["mac"])
        return link_message(ifname, flags=int(link["up"]),
                            address=link["mac"])

    def _set_link(self, ifname, ifi, attrs):
        if IFLA_ADDRESS in attrs:
            self.links[ifname]["mac"] = attrs[IFLA_ADDRESS].hex(":")
        if ifi[4] & IFF_UP:
            self.links[ifname]["up"] = bool(ifi[3] & IFF_UP)

    def _set_vfs(self, vfinfo_list):
        for kind, info in parse_nlas(vfinfo_list):
            assert kind == IFLA_VF_INFO
            attrs = dict(parse_nlas(info))
            for attr_type in (IFLA_VF_MAC, IFLA_VF_VLAN, IFLA_VF_VLAN_LIST,
                              IFLA_VF_RATE, IFLA_VF_SPOOFCHK,
                              IFLA_VF_LINK_STATE, IFLA_VF_TRUST):
                if attr_type in attrs:
                    self._apply(attr_type, attrs[attr_type])

    def _apply(self, attr_type, payload):
        if not self.vfs:
            raise NetlinkError(errno.EOPNOTSUPP)
        if attr_type == IFLA_VF_VLAN_LIST:
            (kind, payload), = parse_nlas(payload)
            assert kind == IFLA_VF_VLAN_INFO
            if len(payload) < SIZEOF_IFLA_VF_VLAN_INFO:
                raise NetlinkError(errno.EINVAL)
        (index,) = struct.unpack_from("=I", payload)
        if index not in self.vfs:
            raise NetlinkError(errno.EINVAL)
        name = {IFLA_VF_MAC: "mac", IFLA_VF_VLAN: "vlan",
                IFLA_VF_VLAN_LIST: "vlan", IFLA_VF_RATE: "rate",
                IFLA_VF_SPOOFCHK: "spoofchk", IFLA_VF_LINK_STATE: "link_state",
                IFLA_VF_TRUST: "trust"}[attr_type]
        if name in self.refuse and self.refuse_only_vf in (None, index):
            code = self.refuse[name]
            if not self.refuse_always:
                del self.refuse[name]
            raise NetlinkError(code)
        self.vfs[index] = dataclasses.replace(
            self.vfs[index], **self._change(attr_type, payload))

    @staticmethod
    def _change(attr_type, payload):
        """The VFState fields one VF attribute sets."""
        if attr_type == IFLA_VF_MAC:
            return {"mac": payload[4:10].hex(":")}
        if attr_type == IFLA_VF_VLAN:
            _, vlan, qos = struct.unpack("=III", payload)
            return {"vlan": vlan, "qos": qos, "vlan_proto": "802.1Q"}
        if attr_type == IFLA_VF_VLAN_LIST:
            _, vlan, qos = struct.unpack_from("=III", payload)
            (proto,) = struct.unpack_from(">H", payload, 12)
            names = {v: k for k, v in rtnl.VLAN_PROTO_CODES.items()}
            return {"vlan": vlan, "qos": qos, "vlan_proto": names[proto]}
        if attr_type == IFLA_VF_RATE:
            _, low, high = struct.unpack("=III", payload)
            return {"min_tx_rate": low, "max_tx_rate": high}
        (_, setting) = struct.unpack("=II", payload)
        if attr_type == IFLA_VF_LINK_STATE:
            names = {v: k for k, v in rtnl.LINK_STATE_CODES.items()}
            return {"link_state": names[setting]}
        if attr_type == IFLA_VF_SPOOFCHK:
            return {"spoofchk": bool(setting)}
        return {"trust": bool(setting)}


@pytest.fixture
def in_process():
    """Entrypoints run in this process, as the daemon would run them."""
    privsep.vif_plug.set_client_mode(False)
    yield
    privsep.vif_plug.set_client_mode(True)


@pytest.fixture
def sysfs(tmp_path):
    """The daemon's sysfs_root: PF enp1s0f0 with VFs 0-3 on netdevs m0-m3."""
    tree = sysfs_tree.SysfsTree(str(tmp_path / "sys"))
    tree.add_pf(PF_ADDRESS, [PF], driver="netdevsim", numvfs=4, totalvfs=8,
                vf_driver="netdevsim", vf_ifnames=list(VF_NETDEVS))
    cfg.CONF.set_override("sysfs_root", tree.root, config.GROUP)
    yield tree
    cfg.CONF.clear_override("sysfs_root", config.GROUP)


@pytest.fixture
def kernel(monkeypatch, in_process, sysfs):
    fake = FakeKernel(vfs=[vf(i) for i in range(4)],
                      links=(PF, *VF_NETDEVS))
    monkeypatch.setattr(rtnl, "Rtnl", fake.rtnl_class())
    return fake


def item(vf_address, settings, before, netdev=None):
    return {"address": vf_address, "settings": settings,
            "before": before, "netdev": netdev}


def apply_one(vf_address, settings, before, netdev=None):
    """change_vfs for one VF, as a plug or an unplug calls it."""
    (refused,) = privileged.change_vfs(
        PF_ADDRESS, PF, [item(vf_address, settings, before, netdev)])
    return refused


def wire(value):
    """value after a trip through privsep's msgpack channel."""
    return msgpack.unpackb(msgpack.packb(value, use_bin_type=True),
                           use_list=False, raw=False, strict_map_key=False)


# Encoding: the 802.1ad fix.

def vlan_info_entries(data):
    """The IFLA_VF_VLAN_INFO payloads in an encoded RTM_SETLINK."""
    _header, _ifi, attrs = parse_link_message(data)
    entries: list[bytes] = []
    for kind, vfinfo_list in attrs:
        if kind != IFLA_VFINFO_LIST:
            continue
        for _info_kind, info in parse_nlas(vfinfo_list):
            for vf_kind, payload in parse_nlas(info):
                if vf_kind == IFLA_VF_VLAN_LIST:
                    entries.extend(p for _k, p in parse_nlas(payload))
    return entries


def test_vlan_list_entry_has_the_kernels_16_bytes():
    msg = rtnl.build_set_vf_message(PF, 3, VFSettings(
        vlan=100, qos=5, vlan_proto="802.1ad"))

    (entry,) = vlan_info_entries(message(msg))

    assert len(entry) == SIZEOF_IFLA_VF_VLAN_INFO
    assert entry == (struct.pack("=III", 3, 100, 5)
                     + struct.pack(">H", 0x88A8) + b"\0\0")


def _pyroute2_vlan_message(vf_index):
    """pyroute2's own RTM_SETLINK for an 802.1ad VLAN, unfixed struct."""
    plain = ifinfmsg()
    plain["index"] = 0
    plain["attrs"] = [("IFLA_IFNAME", PF), ("IFLA_VFINFO_LIST", {"attrs": [
        ("IFLA_VF_INFO", {"attrs": [("IFLA_VF_VLAN_LIST", {"attrs": [
            ("IFLA_VF_VLAN_INFO",
             {"vf": vf_index, "vlan": 100, "qos": 5, "proto": 0x88A8}),
        ]})]}),
    ]})]
    return plain


def test_pyroute2_itself_is_left_with_its_14_bytes():
    # Build ours first, then pyroute2's own: nothing of ours may change
    # pyroute2's classes, which other code in nova-compute uses.
    message(rtnl.build_set_vf_message(PF, 3, VFSettings(
        vlan=100, qos=5, vlan_proto="802.1ad")))
    plain = _pyroute2_vlan_message(vf_index=3)

    (entry,) = vlan_info_entries(encode(plain))

    # If this fails, pyroute2 fixed its struct (or someone patched it
    # globally): either way our own encoder deserves a second look.
    assert len(entry) == 14
    assert ifinfmsg.vflist.vfinfo.vf_vlist.ivvi.fields[-1] == ("proto", ">H")


def test_fake_kernel_refuses_the_unfixed_encoding_as_linux_does():
    # The check the 16-byte test guards against, on the fake: the same
    # rule as do_setvfinfo() (nla_len < sizeof(struct ifla_vf_vlan_info)).
    fake = FakeKernel(vfs=[vf(0)])
    plain = _pyroute2_vlan_message(vf_index=0)
    with pytest.raises(NetlinkError) as err:
        fake.handle(encode(plain), RTM_SETLINK)
    assert err.value.code == errno.EINVAL
    fake.handle(message(rtnl.build_set_vf_message(PF, 0, VFSettings(
        vlan=100, qos=5, vlan_proto="802.1ad"))), RTM_SETLINK)
    assert fake.vfs[0].vlan_proto == "802.1ad"


def test_all_attributes_of_a_vf_go_in_one_message_as_kernel_structs():
    settings = VFSettings(
        mac="52:54:00:12:34:56", vlan=100, qos=3, vlan_proto="802.1ad",
        min_tx_rate=10, max_tx_rate=100, spoofchk=False, trust=True,
        link_state="disable")

    header, ifi, attrs = parse_link_message(
        message(rtnl.build_set_vf_message(PF, 7, settings)))

    assert ifi == (0, 0, 0, 0, 0)
    assert attrs[0] == (IFLA_IFNAME, PF.encode() + b"\0")
    assert [kind for kind, _ in attrs] == [IFLA_IFNAME, IFLA_VFINFO_LIST]
    (info,) = parse_nlas(attrs[1][1])
    assert info[0] == IFLA_VF_INFO
    vf_attrs = parse_nlas(info[1])
    mac = bytes.fromhex("525400123456") + b"\0" * 26
    assert vf_attrs == [
        (IFLA_VF_MAC, struct.pack("=I", 7) + mac),
        (IFLA_VF_VLAN_LIST, nla(IFLA_VF_VLAN_INFO, struct.pack(
            "=III", 7, 100, 3) + struct.pack(">H", 0x88A8) + b"\0\0")),
        (IFLA_VF_RATE, struct.pack("=III", 7, 10, 100)),
        (IFLA_VF_SPOOFCHK, struct.pack("=II", 7, 0)),
        (IFLA_VF_LINK_STATE, struct.pack("=II", 7, 2)),
        (IFLA_VF_TRUST, struct.pack("=II", 7, 1)),
    ]


def test_the_struct_encoding_is_pyroute2s_for_the_structs_it_gets_right():
    # pyroute2's ifinfmsg is an independent encoder of the kernel's
    # layout; only its VLAN list entry is short, so 802.1Q is compared.
    settings = VFSettings(mac="fa:16:3e:00:00:2a", vlan=100, qos=3,
                          vlan_proto="802.1Q", min_tx_rate=10,
                          max_tx_rate=1000, spoofchk=True, trust=False,
                          link_state="enable")
    theirs = ifinfmsg()
    theirs["index"] = 0
    theirs["attrs"] = [("IFLA_IFNAME", PF), ("IFLA_VFINFO_LIST", {"attrs": [
        ("IFLA_VF_INFO", {"attrs": [
            ("IFLA_VF_MAC", {"vf": 5, "mac": "fa:16:3e:00:00:2a"}),
            ("IFLA_VF_VLAN", {"vf": 5, "vlan": 100, "qos": 3}),
            ("IFLA_VF_RATE", {"vf": 5, "min_tx_rate": 10,
                              "max_tx_rate": 1000}),
            ("IFLA_VF_SPOOFCHK", {"vf": 5, "spoofchk": 1}),
            ("IFLA_VF_LINK_STATE", {"vf": 5, "link_state": 1}),
            ("IFLA_VF_TRUST", {"vf": 5, "trust": 0}),
        ]})]})]
    theirs["header"]["type"] = RTM_SETLINK
    theirs["header"]["flags"] = 1 | 4
    theirs["header"]["sequence_number"] = 1

    ours = message(rtnl.build_set_vf_message(PF, 5, settings))

    assert ours == encode(theirs)


def test_8021q_goes_as_the_plain_vlan_attribute():
    _h, _i, attrs = parse_link_message(message(rtnl.build_set_vf_message(
        PF, 2, VFSettings(vlan=42, qos=0, vlan_proto="802.1Q"))))
    (info,) = parse_nlas(attrs[1][1])
    assert parse_nlas(info[1]) == [
        (IFLA_VF_VLAN, struct.pack("=III", 2, 42, 0))]


@pytest.mark.parametrize("settings", [
    VFSettings(vlan=5),
    VFSettings(qos=1, vlan_proto="802.1ad"),
    VFSettings(max_tx_rate=100),
    VFSettings(min_tx_rate=10),
])
def test_half_a_kernel_struct_is_never_encoded(settings):
    with pytest.raises(exception.InvalidVFSetting) as err:
        rtnl.build_set_vf_message(PF, 0, settings)
    assert "must be sent together with" in str(err.value)


# Decoding.

def test_vf_table_is_keyed_by_the_index_in_the_structs():
    states = [
        vf(5, mac="52:54:00:00:00:05", vlan=100, qos=3,
           vlan_proto="802.1ad", spoofchk=True, trust=True,
           link_state="enable", min_tx_rate=10, max_tx_rate=100),
        vf(0, spoofchk=None, trust=None, link_state="disable"),
        vf(2, mac="52:54:00:00:00:02", vlan=7),
    ]
    reply = link_reply(PF, 6, [vf_info_bytes(s) for s in states])

    num_vfs, vfs = rtnl.decode_vf_table(reply, PF)

    assert num_vfs == 6
    assert {v.index: v for v in vfs} == {s.index: s for s in states}


def test_unreported_spoofchk_and_trust_decode_as_none():
    reply = link_reply(PF, 1, [vf_info_bytes(vf(0), spoofchk=UNREPORTED,
                                             trust=UNREPORTED)])
    (state,) = rtnl.decode_vf_table(reply, PF)[1]
    assert state.spoofchk is None and state.trust is None


def test_vlan_protocol_zero_of_a_fresh_netdevsim_vf_is_8021q():
    # netdevsim's vfconfigs are zeroed: it reports protocol 0 until set.
    reply = link_reply(PF, 1, [vf_info_bytes(vf(0), proto=0)])
    (state,) = rtnl.decode_vf_table(reply, PF)[1]
    assert state.vlan_proto == "802.1Q"


def test_unknown_vlan_protocol_is_an_error_naming_the_vf():
    reply = link_reply(PF, 1, [vf_info_bytes(vf(3), proto=0x9100)])
    with pytest.raises(rtnl.DecodeError) as err:
        rtnl.decode_vf_table(reply, PF)
    assert "enp1s0f0 reports" in str(err.value)
    assert "0x9100 for vf 3" in str(err.value)


def test_the_daemon_names_the_vf_of_an_undecodable_answer(kernel,
                                                         monkeypatch):
    real = rtnl._vlan_proto_name

    def odd(code, pf_ifname, vf_index):
        return real(0x9100, pf_ifname, vf_index)

    monkeypatch.setattr(rtnl, "_vlan_proto_name", odd)
    kernel.refuse = {"trust": errno.EINVAL}  # the daemon reads back
    with pytest.raises(exception.VFConfigError) as err:
        apply_one(A(3), {"trust": True}, vf(3).to_primitive())
    assert "VF 0000:81:10.3 (enp1s0f0 vf 3)" in str(err.value)
    assert "0x9100" in str(err.value)


def _pyroute2_vf(info):
    """A VFState from pyroute2's own decoding of an IFLA_VF_INFO."""
    mac = info.get("IFLA_VF_MAC")
    vlan = info.get("IFLA_VF_VLAN")
    (entry,) = info.get("IFLA_VF_VLAN_LIST").get_attrs("IFLA_VF_VLAN_INFO")
    rate = info.get("IFLA_VF_RATE")

    def optional(name, key):
        value = info.get(name)[key]
        return None if value == UNREPORTED else bool(value)

    return VFState(
        index=mac["vf"], mac=mac["mac"], vlan=vlan["vlan"], qos=vlan["qos"],
        vlan_proto={0x8100: "802.1Q", 0x88A8: "802.1ad"}[entry["proto"]],
        spoofchk=optional("IFLA_VF_SPOOFCHK", "spoofchk"),
        trust=optional("IFLA_VF_TRUST", "trust"),
        link_state={0: "auto", 1: "enable", 2: "disable"}[
            info.get("IFLA_VF_LINK_STATE")["link_state"]],
        min_tx_rate=rate["min_tx_rate"], max_tx_rate=rate["max_tx_rate"])


def test_the_struct_decoder_agrees_with_pyroute2s_on_the_same_bytes():
    # pyroute2's ifinfmsg is an independent decoder of the kernel's
    # layout: both must read the same link and VFs from one message.
    states = [
        vf(0),
        vf(7, mac="fa:16:3e:01:02:03", vlan=4094, qos=7,
           vlan_proto="802.1ad", spoofchk=True, trust=None,
           link_state="disable", min_tx_rate=5, max_tx_rate=10000),
        vf(255, mac="52:54:00:ab:cd:ef", vlan=100, spoofchk=None,
           trust=True, link_state="enable", max_tx_rate=1),
    ]
    data = link_message(PF, 256, [vf_info_bytes(s) for s in states],
                        flags=IFF_UP, address="52:54:00:12:34:56")
    theirs = ifinfmsg(bytearray(data))
    theirs.decode()

    ours = rtnl.decode_link(data)

    assert (ours.ifname, ours.address, ours.flags, ours.num_vfs) == (
        theirs.get("IFLA_IFNAME"), theirs.get("IFLA_ADDRESS"),
        theirs["flags"], theirs.get("IFLA_NUM_VF"))
    expected = [_pyroute2_vf(info) for info in
                theirs.get("IFLA_VFINFO_LIST").get_attrs("IFLA_VF_INFO")]
    assert expected == states
    assert rtnl.decode_vf_table(ours, PF) == (256, states)


def test_a_vf_attribute_shorter_than_its_struct_is_refused():
    info = nla(IFLA_VF_INFO, nla(IFLA_VF_MAC, struct.pack("=I", 1) + mac6())
               + nla(IFLA_VF_VLAN, struct.pack("=II", 1, 5)))
    with pytest.raises(struct.error):
        rtnl.decode_vf_table(link_reply(PF, 2, [info]), PF)


def test_a_vf_without_its_mac_attribute_is_refused_naming_the_pf():
    info = nla(IFLA_VF_INFO, nla(IFLA_VF_VLAN, struct.pack("=III", 1, 5, 0)))
    with pytest.raises(rtnl.DecodeError) as err:
        rtnl.decode_vf_table(link_reply(PF, 2, [info]), PF)
    assert "enp1s0f0 lists a VF without IFLA_VF_MAC" in str(err.value)


def test_a_truncated_vf_list_ends_where_the_last_whole_vf_ends():
    whole = vf_info_bytes(vf(0))
    cut = vf_info_bytes(vf(1))[:-8]
    data = bytearray(link_message(PF, 2, [whole]))
    # IFLA_VFINFO_LIST is last: append a VF whose length overruns it.
    list_at = data.rindex(struct.pack("=H", IFLA_VFINFO_LIST)) - 2
    data += cut
    struct.pack_into("=HH", data, list_at, len(data) - list_at,
                     IFLA_VFINFO_LIST)
    struct.pack_into("=I", data, 0, len(data))
    lookup = rtnl.find_vfs(rtnl.decode_link(bytes(data)), PF, [1])
    assert (lookup.num_vfs, lookup.listed(), lookup.found) == (2, 1, {})


def mac6():
    return b"\x52\x54\x00\x00\x00\x01" + b"\0" * 26


def test_link_without_vfs_decodes_to_an_empty_table():
    assert rtnl.decode_vf_table(link_reply("veth0"), "veth0") == (0, [])


# Refused attributes and rollback (logic, on FakeKernel).

def test_first_unapplied_follows_kernel_order():
    request = VFSettings(mac="52:54:00:00:00:01", vlan=5, qos=0,
                         vlan_proto="802.1Q", trust=True)
    after = vf(0, mac="52:54:00:00:00:01")
    assert rtnl.first_unapplied(request, after) == "vlan"
    after = vf(0, mac="52:54:00:00:00:01", vlan=5)
    assert rtnl.first_unapplied(request, after) == "trust"
    assert rtnl.first_unapplied(request, dataclasses.replace(
        after, trust=True)) is None


def test_rollback_restores_whole_structs_from_before():
    before = vf(0, vlan=9, qos=2, vlan_proto="802.1ad", min_tx_rate=5,
                max_tx_rate=50)
    request = VFSettings(mac="52:54:00:00:00:01", vlan=5, qos=2,
                         vlan_proto="802.1ad", min_tx_rate=5,
                         max_tx_rate=60, trust=True)
    after = dataclasses.replace(before, mac="52:54:00:00:00:01", vlan=5)

    undo = rtnl.rollback_settings(request, before, after)

    assert undo == VFSettings(mac="00:00:00:00:00:00", vlan=9, qos=2,
                              vlan_proto="802.1ad")


def test_accepted_request_is_one_setlink(kernel):
    request = VFSettings(mac="52:54:00:12:34:56", vlan=100, qos=3,
                         vlan_proto="802.1ad", spoofchk=True,
                         link_state="enable", min_tx_rate=10,
                         max_tx_rate=100, trust=True)

    settings, before = request.to_primitive(), vf(1).to_primitive()

    outcome = apply_one(A(1), settings, before)

    assert outcome is None
    assert len(kernel.setlink_requests()) == 1
    # pyroute2 pops keys from dicts it encodes: ours were never handed over
    assert settings == request.to_primitive()
    assert before == vf(1).to_primitive()
    assert kernel.vfs[1] == vf(1, **request.requested())
    assert kernel.opened == kernel.closed == 1


def test_half_groups_are_completed_from_the_state_before(kernel):
    kernel.vfs[1] = vf(1, vlan=9, qos=4, vlan_proto="802.1ad",
                       min_tx_rate=20, max_tx_rate=200)
    apply_one(
        A(1), {"vlan": 10, "max_tx_rate": 300},
                              kernel.vfs[1].to_primitive())
    assert kernel.vfs[1] == vf(1, vlan=10, qos=4, vlan_proto="802.1ad",
                               min_tx_rate=20, max_tx_rate=300)


def test_refusal_is_located_and_rolled_back(kernel):
    kernel.refuse = {"rate": errno.EOPNOTSUPP}
    before = kernel.vfs[2]
    request = VFSettings(mac="52:54:00:12:34:56", vlan=100, qos=3,
                         vlan_proto="802.1ad", max_tx_rate=100,
                         min_tx_rate=0, trust=True)

    outcome = apply_one(A(2), request.to_primitive(),
                                           before.to_primitive())

    assert outcome == {
        "errno": errno.EOPNOTSUPP, "num_vfs": 4, "vf_present": True,
        "attribute": "rate", "fields": ["min_tx_rate", "max_tx_rate"],
        "rolled_back": ["mac", "qos", "vlan", "vlan_proto"],
    }
    assert kernel.vfs[2] == before
    # the request, then the rollback: nothing else was sent
    assert len(kernel.setlink_requests()) == 2


def test_refused_first_attribute_needs_no_rollback(kernel):
    kernel.refuse = {"mac": errno.EINVAL}
    outcome = apply_one(
        A(0), {"mac": "52:54:00:12:34:56", "trust": True},
        vf(0).to_primitive())
    assert outcome["attribute"] == "mac"
    assert outcome["rolled_back"] == []
    assert len(kernel.setlink_requests()) == 1


def test_failed_rollback_says_what_state_the_vf_is_in(kernel):
    kernel.refuse = {"trust": errno.EINVAL}
    kernel.refuse_later_setlinks = errno.EBUSY
    with pytest.raises(exception.VFConfigError) as err:
        apply_one(
        A(0), {"mac": "52:54:00:12:34:56", "trust": True},
            vf(0).to_primitive())
    message = str(err.value)
    assert "refused trust (Invalid argument)" in message
    assert "rollback of ['mac'] too (Device or resource busy)" in message
    assert "mac='52:54:00:12:34:56'" in message


def test_request_to_a_link_without_vfs_reports_the_first_attribute(
        monkeypatch, in_process, sysfs):
    fake = FakeKernel(vfs=[], links=(PF,))
    monkeypatch.setattr(rtnl, "Rtnl", fake.rtnl_class())
    outcome = apply_one(
        A(0), {"trust": True, "link_state": "enable"}, vf(0).to_primitive())
    assert outcome == {
        "errno": errno.EOPNOTSUPP, "num_vfs": 0, "vf_present": False,
        "attribute": "link_state", "fields": ["link_state"],
        "rolled_back": []}


def test_missing_pf_is_netdev_not_found(kernel):
    del kernel.links[PF]  # sysfs still names it: renamed or gone since
    with pytest.raises(exception.NetdevNotFound) as err:
        apply_one(A(0), {"trust": True},
                                     vf(0).to_primitive())
    assert str(err.value) == "Network device enp1s0f0 does not exist"
    # the caller's read of the VF table says the same
    with pytest.raises(exception.SriovVifError, match="enp1s0f0"):
        vf_config.vf_table(client_vf(0).pf)


def test_eperm_says_cap_net_admin_is_missing(kernel):
    kernel.errno_all = errno.EPERM
    with pytest.raises(exception.VFConfigError) as err:
        apply_one(A(0), {"trust": True},
                                     vf(0).to_primitive())
    assert "CAP_NET_ADMIN" in str(err.value)
    assert "VF 0000:81:10.0 (enp1s0f0 vf 0)" in str(err.value)
    with pytest.raises(exception.NetdevConfigError) as err:
        apply_one(A(0), {}, vf(0).to_primitive(),
                  {"ifname": "m0", "mac": None, "up": True})
    assert "CAP_NET_ADMIN" in str(err.value)
    assert "m0 of VF 0000:81:10.0" in str(err.value)


def test_reads_are_made_in_the_callers_process(kernel, monkeypatch):
    # Reading needs no capability: no read goes through privsep.
    def no_privsep(*args, **kwargs):
        raise AssertionError("a read went through privsep")

    monkeypatch.setattr(privileged, "change_vfs", no_privsep)
    kernel.vfs[3] = vf(3, spoofchk=None, trust=None, vlan_proto="802.1ad",
                       vlan=4)
    kernel.links["m0"] = {"mac": "52:54:00:00:00:09", "up": True}
    assert vf_config.vf_table(client_vf(0).pf) == kernel.vfs
    assert vf_config.vf_state_now(client_vf(3)) == kernel.vfs[3]
    assert vf_config.netdev_state(client_vf(0), "m0") == (
        vf_config.NetdevState(mac="52:54:00:00:00:09", up=True))
    assert kernel.setlink_requests() == []


def test_netdev_mac_and_state(kernel):
    netdev = {"ifname": "m0", "mac": "52:54:00:aa:bb:cc", "up": False}
    assert apply_one(A(0), {}, GOOD_BEFORE, netdev) is None
    assert kernel.links["m0"] == {"mac": "52:54:00:aa:bb:cc", "up": False}
    # down first, on its own, then the MAC
    first, second = kernel.setlink_requests()
    assert IFLA_ADDRESS not in dict(parse_link_message(first)[2])
    assert IFLA_ADDRESS in dict(parse_link_message(second)[2])
    apply_one(A(0), {}, GOOD_BEFORE, dict(netdev, mac=None, up=True))
    assert kernel.links["m0"]["up"] is True
    del kernel.links["m0"]
    with pytest.raises(exception.NetdevNotFound, match="m0"):
        apply_one(A(0), {}, GOOD_BEFORE, dict(netdev, mac=None, up=True))


def test_the_vf_and_its_netdev_change_in_one_call(kernel):
    outcome = apply_one(A(1), {"mac": "52:54:00:aa:bb:01"},
                        vf(1).to_primitive(),
                        {"ifname": "m1", "mac": "52:54:00:aa:bb:01",
                         "up": True})
    assert outcome is None
    assert kernel.vfs[1].mac == "52:54:00:aa:bb:01"
    assert kernel.links["m1"] == {"mac": "52:54:00:aa:bb:01", "up": True}
    vf_change, netdev_change = kernel.setlink_requests()
    assert IFLA_VFINFO_LIST in dict(parse_link_message(vf_change)[2])
    assert kernel.opened == kernel.closed == 1


def test_a_refused_vf_leaves_its_netdev_alone(kernel):
    kernel.refuse = {"trust": errno.EINVAL}
    outcome = apply_one(A(1), {"mac": "52:54:00:aa:bb:01", "trust": True},
                        vf(1).to_primitive(),
                        {"ifname": "m1", "mac": "52:54:00:aa:bb:01",
                         "up": True})
    assert outcome["attribute"] == "trust"
    assert kernel.vfs[1] == vf(1)
    assert kernel.links["m1"]["up"] is False


# Several VFs of one PF: one request (restore).

def vf_infos_of(data):
    _header, _ifi, attrs = parse_link_message(data)
    (vfinfo_list,) = [p for kind, p in attrs if kind == IFLA_VFINFO_LIST]
    return parse_nlas(vfinfo_list)


def test_several_vfs_go_in_one_setlink(kernel):
    items = [item(A(i), {"mac": f"52:54:00:00:00:0{i}", "trust": True},
                  vf(i).to_primitive(),
                  {"ifname": f"m{i}", "mac": None, "up": True} if i == 2
                  else None)
             for i in (0, 2, 3)]
    assert privileged.change_vfs(PF_ADDRESS, PF, items) == [None] * 3
    vfs_request, netdev_request = kernel.setlink_requests()
    assert [kind for kind, _ in vf_infos_of(vfs_request)] == [
        IFLA_VF_INFO] * 3
    for i in (0, 2, 3):
        assert kernel.vfs[i] == vf(i, mac=f"52:54:00:00:00:0{i}",
                                   trust=True)
    assert kernel.vfs[1] == vf(1)
    assert kernel.links["m2"]["up"] is True
    assert kernel.opened == 1


def test_a_refused_vf_is_rolled_back_and_holds_back_no_other(kernel):
    # The kernel stops at VF 2's trust, after VF 0 and VF 2's MAC, and
    # never reaches VF 3: each is sent again alone.
    kernel.refuse = {"trust": errno.EOPNOTSUPP}
    kernel.refuse_always = True
    kernel.refuse_only_vf = 2
    items = [item(A(i), {"mac": f"52:54:00:00:00:0{i}", "trust": True},
                  vf(i).to_primitive(),
                  {"ifname": f"m{i}", "mac": None, "up": True})
             for i in (0, 2, 3)]
    refusals = privileged.change_vfs(PF_ADDRESS, PF, items)
    assert refusals[0] is None and refusals[2] is None
    assert refusals[1]["attribute"] == "trust"
    assert refusals[1]["rolled_back"] == ["mac"]
    assert kernel.vfs[2] == vf(2)
    for i in (0, 3):
        assert kernel.vfs[i] == vf(i, mac=f"52:54:00:00:00:0{i}",
                                   trust=True)
    # the refused VF's netdev is left alone, the others' are changed
    assert [kernel.links[f"m{i}"]["up"] for i in (0, 2, 3)] == [
        True, False, True]
    # batch, then VF 0, VF 2, its rollback, VF 3, then two netdevs
    assert len(kernel.setlink_requests()) == 7


def test_every_vf_must_be_a_vf_of_the_pf_in_the_daemons_sysfs(kernel,
                                                             sysfs):
    sysfs.add_pf("0000:82:00.0", ["eth9"], driver="netdevsim", numvfs=1,
                 vf_driver="netdevsim", vf_ifnames=["m9"])
    with pytest.raises(exception.VFNotEnabled) as err:
        privileged.change_vfs(PF_ADDRESS, PF, [
            item(A(0), {"trust": True}, GOOD_BEFORE),
            item("0000:82:10.0", {"trust": True}, GOOD_BEFORE)])
    assert "it is VF 0 of PF 0000:82:00.0" in str(err.value)
    assert kernel.requests == []


def test_the_pf_netdev_must_be_the_one_the_caller_found(kernel):
    with pytest.raises(exception.PFUnusable) as err:
        privileged.change_vfs(PF_ADDRESS, "eth9", [
            item(A(0), {"trust": True}, GOOD_BEFORE)])
    assert "finds its netdev as enp1s0f0, not eth9" in str(err.value)
    assert kernel.requests == []


def test_failures_of_a_call_for_several_vfs_name_the_pf(kernel):
    kernel.errno_all = errno.EPERM
    with pytest.raises(exception.VFsConfigError) as err:
        privileged.change_vfs(PF_ADDRESS, PF, [
            item(A(i), {"trust": True}, vf(i).to_primitive())
            for i in (0, 1)])
    assert str(err.value).startswith(
        "Cannot configure 2 VFs of PF enp1s0f0 (0000:81:00.0): the kernel "
        "refused the request (EPERM)")


def test_a_batch_is_split_at_the_netlink_limit(kernel, monkeypatch):
    monkeypatch.setattr(rtnl, "MAX_VFS_PER_REQUEST", 3)
    with rtnl.session() as session:
        refusals = rtnl.apply_vf_requests(session, PF, [
            (i, VFSettings(trust=True), vf(i)) for i in range(4)])
    assert refusals == [None] * 4
    assert [len(vf_infos_of(r)) for r in kernel.setlink_requests()] == [3, 1]


# The whole client path, through the entrypoints, on FakeKernel.

def client_vf(index):
    return discovery.find_vf(cfg.CONF[config.GROUP].sysfs_root, A(index))


def test_vf_config_rolls_back_and_names_the_refused_attribute(kernel):
    kernel.refuse = {"spoofchk": errno.EINVAL}
    before = kernel.vfs[1]
    with pytest.raises(exception.VFAttributeRefused) as err:
        vf_config.apply_settings(
            client_vf(1), VFSettings(mac="52:54:00:12:34:56", spoofchk=True),
            before, unsupported_action="fail")
    assert str(err.value) == (
        "PF enp1s0f0 (driver netdevsim) refused spoofchk=True for VF "
        "0000:81:10.1 (vf 1): "
        "Invalid argument (EINVAL); the VF was left as it was")
    assert kernel.vfs[1] == before


def test_vf_config_warn_skips_what_the_kernel_does_not_support(kernel):
    kernel.refuse = {"rate": errno.EOPNOTSUPP}
    kernel.refuse_always = True
    state = vf_config.apply_settings(
        client_vf(1), VFSettings(mac="52:54:00:12:34:56", max_tx_rate=100,
                                 trust=True),
        kernel.vfs[1], unsupported_action="warn")
    expected = vf(1, mac="52:54:00:12:34:56", trust=True)
    assert state == expected == kernel.vfs[1]
    # request, rollback of the MAC, request without the rate
    assert len(kernel.setlink_requests()) == 3


# Validation: bad arguments reach no netlink call.

GOOD_BEFORE = vf(0).to_primitive()

BAD_APPLY_CALLS = [
    ("0000:81:10.0/../x", {"trust": True}, GOOD_BEFORE),
    ("", {"trust": True}, GOOD_BEFORE),
    ("0000:81:10.0\n", {"trust": True}, GOOD_BEFORE),
    ("0000:81:10.A", {"trust": True}, GOOD_BEFORE),
    (5, {"trust": True}, GOOD_BEFORE),
    (None, {"trust": True}, GOOD_BEFORE),
    (PF, {"trust": True}, GOOD_BEFORE),
    ("lo", {"trust": True}, GOOD_BEFORE),
    (A(0), {"mac": "01:00:5e:00:00:01"}, GOOD_BEFORE),
    (A(0), {"mac": "52:54:00:12:34:5G"}, GOOD_BEFORE),
    (A(0), {"vlan": 4095, "qos": 0, "vlan_proto": "802.1Q"}, GOOD_BEFORE),
    (A(0), {"qos": 8}, GOOD_BEFORE),
    (A(0), {"vlan_proto": "802.1x"}, GOOD_BEFORE),
    (A(0), {"link_state": "up"}, GOOD_BEFORE),
    (A(0), {"spoofchk": 1}, GOOD_BEFORE),
    (A(0), {"min_tx_rate": -1}, GOOD_BEFORE),
    (A(0), {"min_tx_rate": 0, "max_tx_rate": 2**32}, GOOD_BEFORE),
    (A(0), {"min_tx_rate": 10, "max_tx_rate": 5}, GOOD_BEFORE),
    # completed from before: max 5 with the VF's min 10
    (A(0), {"max_tx_rate": 5}, vf(0, min_tx_rate=10,
                                  max_tx_rate=20).to_primitive()),
    (A(0), {"guid": "1"}, GOOD_BEFORE),
    (A(0), [("trust", True)], GOOD_BEFORE),
    (A(0), {1: True}, GOOD_BEFORE),
    (A(0), {"trust": True}, None),
    (A(0), {"trust": True}, {"index": 0}),
    (A(0), {"trust": True}, vf(0, mac="ff:ff:ff:ff:ff:ff").to_primitive()),
    (A(0), {"trust": True}, vf(0, max_tx_rate=2**32).to_primitive()),
    (A(0), {"trust": True}, dict(GOOD_BEFORE, extra=1)),
]


@pytest.mark.parametrize("args", BAD_APPLY_CALLS)
def test_bad_apply_arguments_reach_no_netlink_call(kernel, args):
    with pytest.raises((exception.InvalidPciAddress,
                        exception.InvalidVFSetting)):
        apply_one(*args)
    assert kernel.opened == 0 and kernel.requests == []


GOOD_ITEM = item(A(0), {"trust": True}, GOOD_BEFORE)


def netdev(**changes):
    return dict({"ifname": "m0", "mac": None, "up": True}, **changes)


@pytest.mark.parametrize("call", [
    lambda: privileged.change_vfs("../eth0", PF, [GOOD_ITEM]),
    lambda: privileged.change_vfs(["eth0"], PF, [GOOD_ITEM]),
    lambda: privileged.change_vfs(PF_ADDRESS, "a/b", [GOOD_ITEM]),
    lambda: privileged.change_vfs(PF_ADDRESS, None, [GOOD_ITEM]),
    lambda: privileged.change_vfs(PF_ADDRESS, PF, []),
    lambda: privileged.change_vfs(PF_ADDRESS, PF, GOOD_ITEM),
    lambda: privileged.change_vfs(PF_ADDRESS, PF, "vfs"),
    lambda: privileged.change_vfs(PF_ADDRESS, PF, [GOOD_ITEM] * 2),
    lambda: privileged.change_vfs(PF_ADDRESS, PF, [GOOD_ITEM] * 257),
    lambda: privileged.change_vfs(PF_ADDRESS, PF, [dict(GOOD_ITEM, x=1)]),
    lambda: privileged.change_vfs(PF_ADDRESS, PF, [["address", A(0)]]),
    lambda: apply_one(A(0), {}, GOOD_BEFORE, netdev(ifname="m 0")),
    lambda: apply_one(A(0), {}, GOOD_BEFORE, netdev(ifname="..")),
    lambda: apply_one(A(0), {}, GOOD_BEFORE, netdev(mac=ZERO_MAC)),
    lambda: apply_one(A(0), {}, GOOD_BEFORE,
                      netdev(mac="03:00:00:00:00:01")),
    lambda: apply_one(A(0), {}, GOOD_BEFORE, netdev(up="yes")),
    lambda: apply_one(A(0), {}, GOOD_BEFORE, netdev(up=1)),
    lambda: apply_one(A(0), {}, GOOD_BEFORE, {"ifname": "m0"}),
    lambda: apply_one(A(0), {}, GOOD_BEFORE, "m0"),
])
def test_bad_call_and_netdev_arguments_reach_no_netlink_call(kernel, call):
    with pytest.raises((exception.InvalidInterfaceName,
                        exception.InvalidPciAddress,
                        exception.InvalidVFSetting)):
        call()
    assert kernel.opened == 0 and kernel.requests == []


def test_empty_requests_send_nothing(kernel):
    assert apply_one(A(0), {}, GOOD_BEFORE) is None
    assert apply_one(A(0), {}, GOOD_BEFORE, netdev(up=None)) is None
    assert kernel.opened == 0 and kernel.requests == []


# Item 4 of issue 15: the daemon acts on the VF sysfs names, nothing else.

@pytest.mark.parametrize("call, error", [
    # any interface that is not the VF's own netdev: lo, the uplink, the
    # PF, another VF's netdev
    (lambda: apply_one(A(0), {}, GOOD_BEFORE, netdev(ifname="lo")),
     exception.NotTheVFNetdev),
    (lambda: apply_one(A(0), {}, GOOD_BEFORE, netdev(ifname=PF)),
     exception.NotTheVFNetdev),
    (lambda: apply_one(A(0), {"trust": True}, GOOD_BEFORE,
                       netdev(ifname="m1", mac="52:54:00:00:00:01")),
     exception.NotTheVFNetdev),
    # a device that is no VF of sysfs_root: the PF, an absent address
    (lambda: apply_one(PF_ADDRESS, {"trust": True},
                                          GOOD_BEFORE),
     exception.NotAVirtualFunction),
    (lambda: apply_one("0000:81:10.7", {"trust": True},
                                          GOOD_BEFORE),
     exception.PciDeviceNotFound),
    (lambda: apply_one("0000:00:1f.6", {"trust": True}, GOOD_BEFORE),
     exception.PciDeviceNotFound),
    # a VF where a PF is wanted: it has no virtfn link to the VF
    (lambda: privileged.change_vfs(A(0), PF, [GOOD_ITEM]),
     exception.VFNotEnabled),
    # the VF under the index of another: the index in "before" names the
    # VF acted on, and the PF's virtfn1 link is not this VF
    (lambda: apply_one(A(0), {"trust": True}, vf(1).to_primitive()),
     exception.VFNotEnabled),
    (lambda: apply_one(A(1), {"trust": True}, vf(0).to_primitive()),
     exception.VFNotEnabled),
])
def test_the_daemon_touches_only_what_sysfs_names_for_the_vf(kernel, call,
                                                             error):
    with pytest.raises(error):
        call()
    assert kernel.opened == 0 and kernel.requests == []
    assert kernel.links["m0"]["up"] is False


def test_a_vf_disabled_since_the_caller_looked_is_refused(kernel, sysfs):
    sysfs.set_numvfs(PF_ADDRESS, 2)
    with pytest.raises(exception.SriovVifError):
        apply_one(A(3), {"trust": True},
                                     vf(3).to_primitive())
    assert kernel.requests == []


def test_the_vf_and_pf_come_from_the_daemons_sysfs_root(kernel, tmp_path):
    # The caller's idea of sysfs does not matter: only the configured one.
    other = sysfs_tree.SysfsTree(str(tmp_path / "other"))
    other.add_pf("0000:82:00.0", ["eth0"], driver="netdevsim", numvfs=1,
                 vf_driver="netdevsim", vf_ifnames=["lo"])
    with pytest.raises(exception.PciDeviceNotFound):
        privileged.change_vfs("0000:82:00.0", "eth0", [item(
            "0000:82:10.0", {}, GOOD_BEFORE, netdev(ifname="lo"))])
    assert apply_one(A(2), {"trust": True}, vf(2).to_primitive()) is None


# Item 12: daemon failures name the VF; each request is logged at debug.

def test_netlink_errors_name_the_vf_pf_and_index(kernel):
    kernel.errno_all = errno.EBUSY
    with pytest.raises(exception.VFConfigError) as err:
        apply_one(A(2), {"trust": True}, vf(2).to_primitive())
    assert str(err.value) == (
        "Cannot configure VF 0000:81:10.2 (enp1s0f0 vf 2): Device or "
        "resource busy (EBUSY)")


def test_struct_errors_name_the_vf(kernel, monkeypatch):
    def broken(*args):
        raise struct.error("argument out of range")

    monkeypatch.setattr(rtnl, "build_set_vfs_message", broken)
    with pytest.raises(exception.VFConfigError) as err:
        apply_one(A(1), {"trust": True},
                                     vf(1).to_primitive())
    assert "VF 0000:81:10.1 (enp1s0f0 vf 1)" in str(err.value)
    assert "argument out of range" in str(err.value)


def test_each_request_is_logged_at_debug(kernel, caplog):
    caplog.set_level(logging.DEBUG, logger="sriov_vif")
    apply_one(A(1), {"trust": True}, vf(1).to_primitive())
    assert "RTM_SETLINK enp1s0f0 vf 1: {'trust': True}" in caplog.text
    assert "VF 0000:81:10.1 (enp1s0f0 vf 1): applying" in caplog.text


# Item 8: only sriov_vif.privileged may declare entrypoints.

def test_privsep_refuses_entrypoints_outside_the_privileged_module():
    def escalate():
        return "root"

    for module in ("sriov_vif.vf_config", "sriov_vif.rtnl", "sriov_vif",
                   "tests.unit.test_privileged", "sriov_vif.privsep"):
        escalate.__module__ = module
        with pytest.raises(AssertionError, match="entrypoints must be"):
            privsep.vif_plug.entrypoint(escalate)


def test_no_other_module_name_passes_the_prefix():
    import pkgutil

    import sriov_vif
    names = [f"sriov_vif.{info.name}"
             for info in pkgutil.iter_modules(sriov_vif.__path__)]
    assert [name for name in names if name.startswith(
        privsep.vif_plug.prefix)] == ["sriov_vif.privileged"]


def test_the_privileged_module_holds_only_entrypoints():
    public = {name for name, value in vars(privileged).items()
              if callable(value) and not name.startswith("_")
              and getattr(value, "__module__", None) == privileged.__name__}
    entrypoints = {name for name, value in vars(privileged).items()
                   if privsep.vif_plug.is_entrypoint(value)}
    assert public <= entrypoints
    assert entrypoints == {"change_vfs"}
    # the pypath rootwrap filters name stays
    assert privsep.vif_plug.pypath == "sriov_vif.privsep.vif_plug"


# Exceptions through privsep: the client rebuilds them as type(*args).

@pytest.mark.parametrize("error", [
    exception.NetdevNotFound(ifname="eth9"),
    exception.NetdevConfigError(ifname="m0", address=A(0), reason="x"),
    exception.NotTheVFNetdev(ifname="lo", address=A(0), actual="m0"),
    exception.PFUnusable(address=A(0), reason="it is not an SR-IOV PF"),
    exception.VFConfigError(address=A(1), pf_ifname=PF, vf_index=1,
                            reason="why"),
    exception.VFAttributeRefused(address=A(1), pf_ifname=PF, vf_index=1,
                                 driver="igb", attribute="mac=x",
                                 reason="EINVAL"),
    exception.VFAttributeUnsupported(address=A(1), pf_ifname=PF,
                                     vf_index=1, driver="igb",
                                     attribute="link_state=enable"),
    exception.VFIndexOutOfRange(address=A(9), pf_ifname=PF, vf_index=9,
                                numvfs=8),
    exception.VFTableIncomplete(pf_ifname=PF, count=35, numvfs=256),
    exception.InvalidVFSetting(name="qos", value=9, reason="too big"),
    exception.InvalidInterfaceName(ifname="a/b", reason="bad"),
])
def test_errors_survive_privsep_with_their_message(error):
    rebuilt = type(error)(*wire(list(error.args)))
    assert str(rebuilt) == str(error)
    assert rebuilt.format_message() == error.format_message()


def test_find_vf_decodes_only_the_vf_asked_for_by_its_struct_index():
    reply = link_reply(PF, 4, [vf_info_bytes(vf(3, vlan=3)),
                               vf_info_bytes(vf(0)),
                               vf_info_bytes(vf(1, trust=True)),
                               vf_info_bytes(vf(2))])
    assert rtnl.find_vf(reply, PF, 1) == (4, vf(1, trust=True))
    assert rtnl.find_vf(reply, PF, 3) == (4, vf(3, vlan=3))
    assert rtnl.find_vf(reply, PF, 4) == (4, None)
    assert rtnl.find_vfs(reply, PF, [4]).listed() == 4
    # A VF whose decoding would fail is never decoded when not asked for.
    odd = link_reply(PF, 2, [vf_info_bytes(vf(0), proto=0x9100),
                             vf_info_bytes(vf(1))])
    assert rtnl.find_vf(odd, PF, 1) == (2, vf(1))


def test_find_vf_reads_one_header_where_every_vf_has_the_same_length(
        monkeypatch):
    # VF i is looked for at position i first: on a 256-VF PF a read
    # walks no list.
    reply = link_reply(PF, 256, [vf_info_bytes(vf(i)) for i in range(256)])

    def walk(link):
        raise AssertionError("walked the VF list")

    monkeypatch.setattr(rtnl, "_vf_info_spans", walk)
    assert rtnl.find_vf(reply, PF, 200) == (256, vf(200))
    assert rtnl.find_vfs(reply, PF, [0, 255, 17]).found == {
        i: vf(i) for i in (0, 255, 17)}


def test_find_vf_on_a_link_without_vfs():
    assert rtnl.find_vf(link_reply("veth0"), "veth0", 0) == (0, None)


def test_a_call_never_waits_forever_for_a_dead_daemon():
    # oslo.privsep's reader thread can die with the daemon and leave the
    # caller waiting: every call is bounded.
    assert privsep.vif_plug.timeout == privsep.CALL_TIMEOUT
    assert 0 < privsep.CALL_TIMEOUT <= 60


def test_find_vf_finds_a_vf_whose_mac_attribute_is_not_first():
    # Linux puts IFLA_VF_MAC first; a VF listed otherwise is still found.
    state = vf(2, vlan=9)
    mac = struct.pack("=I", 2) + bytes(32)
    info = nla(IFLA_VF_INFO, b"".join([
        nla(IFLA_VF_VLAN, struct.pack("=III", 2, 9, 0)),
        nla(IFLA_VF_MAC, mac),
        nla(IFLA_VF_SPOOFCHK, struct.pack("=II", 2, 0)),
        nla(IFLA_VF_LINK_STATE, struct.pack("=II", 2, 0)),
        nla(IFLA_VF_RATE, struct.pack("=III", 2, 0, 0)),
        nla(IFLA_VF_TRUST, struct.pack("=II", 2, 0)),
    ]))
    reply = link_reply(PF, 3, [vf_info_bytes(vf(0)), info])
    assert rtnl.find_vf(reply, PF, 2) == (3, state)
    assert rtnl.find_vf(reply, PF, 0) == (3, vf(0))
