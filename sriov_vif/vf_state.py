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

"""What a VF is and what may be asked of it.

VFState is a VF as its PF reports it; VFSettings is a request to change
some of it, where None means "leave it as it is" (never "reset it": forcing
VLAN 0 is what broke trunk users of the Kubernetes SR-IOV CNI). Validation
lives here, beside the types, because both sides of the privsep channel
run it: the unprivileged side to fail before anything privileged runs, the
privileged side because it trusts no caller.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any
from typing import Final

from sriov_vif import exception

VLAN_PROTOCOLS: Final = ("802.1Q", "802.1ad")
LINK_STATES: Final = ("auto", "enable", "disable")
MAX_VLAN: Final = 4094
MAX_QOS: Final = 7
# Linux allows 15 characters; anything else (slash, whitespace, colon) is
# refused so that a name can never be read as a path or an argument.
_IFNAME_RE: Final = re.compile(r"[A-Za-z0-9_.@-]{1,15}")
_MAC_RE: Final = re.compile(r"([0-9a-f]{2}:){5}[0-9a-f]{2}")
ZERO_MAC: Final = "00:00:00:00:00:00"
# The strings nova accepts for a boolean (oslo.utils' bool_from_string,
# strict): anything else is refused, never read as "true".
TRUE_STRINGS: Final = frozenset(("1", "t", "true", "on", "y", "yes"))
FALSE_STRINGS: Final = frozenset(("0", "f", "false", "off", "n", "no"))
# The kernel keeps rates (and every other VF number) in a __u32.
U32_MAX: Final = 2**32 - 1
# Kernel VF indexes are u32 but no PF has more than a few hundred VFs;
# 4096 bounds a request without excluding any real device.
MAX_VF_INDEX: Final = 4095


def _shallow(state: VFState | VFSettings) -> dict[str, Any]:
    """The fields of state by name, in declaration order.

    Every field is a str, an int, a bool or None, which need no copy:
    dataclasses.asdict deep-copies each and was a tenth of a plug's
    Python time (a plug asks a VFSettings what it requests a dozen times).
    """
    return dict(vars(state))


@dataclasses.dataclass(frozen=True)
class VFState:
    """A VF's settings as read back from its PF.

    spoofchk and trust are None when the driver does not report them (the
    kernel sends -1 for those).
    """

    index: int
    mac: str
    vlan: int
    qos: int
    vlan_proto: str
    spoofchk: bool | None
    trust: bool | None
    link_state: str
    min_tx_rate: int
    max_tx_rate: int

    def to_primitive(self) -> dict[str, Any]:
        return _shallow(self)

    @classmethod
    def from_primitive(cls, data: dict[str, Any]) -> VFState:
        return cls(**{f.name: data[f.name] for f in dataclasses.fields(cls)})

    def restorable(self) -> VFSettings:
        """The settings that put a VF back into this state."""
        return VFSettings(
            mac=self.mac,
            vlan=self.vlan,
            qos=self.qos,
            vlan_proto=self.vlan_proto,
            spoofchk=self.spoofchk,
            trust=self.trust,
            link_state=self.link_state,
            min_tx_rate=self.min_tx_rate,
            max_tx_rate=self.max_tx_rate,
        )


@dataclasses.dataclass(frozen=True)
class VFSettings:
    """A request to change some attributes of one VF; None leaves one be.

    vlan, qos and vlan_proto travel together in one kernel attribute, and
    so do min_tx_rate and max_tx_rate: when one of a pair is set the
    other must be too (see complete_with), or the kernel would reset it.
    """

    mac: str | None = None
    vlan: int | None = None
    qos: int | None = None
    vlan_proto: str | None = None
    spoofchk: bool | None = None
    trust: bool | None = None
    link_state: str | None = None
    min_tx_rate: int | None = None
    max_tx_rate: int | None = None

    def requested(self) -> dict[str, Any]:
        """The attributes this request changes, by name."""
        return {k: v for k, v in _shallow(self).items() if v is not None}

    def is_empty(self) -> bool:
        return not self.requested()

    def to_primitive(self) -> dict[str, Any]:
        return self.requested()

    @classmethod
    def from_primitive(cls, data: dict[str, Any]) -> VFSettings:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise exception.InvalidVFSetting(
                name=unknown[0], value=data[unknown[0]],
                reason="not a VF attribute sriov-vif knows")
        return cls(**data)

    def complete_with(self, current: VFState) -> VFSettings:
        """Fill the other half of the VLAN and rate groups from current.

        The kernel sets vlan/qos/proto as one struct and min/max rate as
        one struct, so asking for only one member would silently reset its
        siblings to zero.
        """
        changes: dict[str, Any] = {}
        if self.vlan is not None or self.qos is not None or (
                self.vlan_proto is not None):
            changes["vlan"] = current.vlan if self.vlan is None else self.vlan
            changes["qos"] = current.qos if self.qos is None else self.qos
            changes["vlan_proto"] = (current.vlan_proto
                                     if self.vlan_proto is None
                                     else self.vlan_proto)
        if self.min_tx_rate is not None or self.max_tx_rate is not None:
            changes["min_tx_rate"] = (current.min_tx_rate
                                      if self.min_tx_rate is None
                                      else self.min_tx_rate)
            changes["max_tx_rate"] = (current.max_tx_rate
                                      if self.max_tx_rate is None
                                      else self.max_tx_rate)
        return dataclasses.replace(self, **changes)

    def differing_from(self, current: VFState) -> VFSettings:
        """Only the attributes whose requested value is not current."""
        return VFSettings(**{
            name: value for name, value in self.requested().items()
            if getattr(current, name) != value
        })

    def without(self, *names: str) -> VFSettings:
        return dataclasses.replace(self, **dict.fromkeys(names))


def validate_ifname(ifname: Any) -> str:
    if not isinstance(ifname, str) or not _IFNAME_RE.fullmatch(ifname):
        raise exception.InvalidInterfaceName(
            ifname=ifname,
            reason="must be 1-15 letters, digits or one of '_.@-'")
    if ifname in (".", ".."):
        raise exception.InvalidInterfaceName(
            ifname=ifname, reason="reserved name")
    return ifname


def validate_vf_index(vf_index: Any) -> int:
    if (not isinstance(vf_index, int) or isinstance(vf_index, bool)
            or not 0 <= vf_index <= MAX_VF_INDEX):
        raise exception.InvalidVFSetting(
            name="vf_index", value=vf_index,
            reason=f"must be an integer from 0 to {MAX_VF_INDEX}")
    return vf_index


def validate_mac(mac: Any, name: str = "mac", allow_zero: bool = True) -> str:
    """A lower-case unicast MAC; the all-zero MAC clears a VF's MAC."""
    if not isinstance(mac, str) or not _MAC_RE.fullmatch(mac):
        raise exception.InvalidVFSetting(
            name=name, value=mac,
            reason="must be six lower-case hex pairs separated by ':'")
    if mac == ZERO_MAC:
        if not allow_zero:
            raise exception.InvalidVFSetting(
                name=name, value=mac, reason="must not be all zeros")
        return mac
    if int(mac[:2], 16) & 1:
        raise exception.InvalidVFSetting(
            name=name, value=mac,
            reason="is a multicast address; a VF needs a unicast MAC")
    return mac


def parse_bool(value: Any) -> bool | None:
    """A real boolean, 0/1 or one of nova's boolean words; else None.

    Python's bool("false") is True: a coercing field or a truth test
    would make a VF trusted when the caller said "false".
    """
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        word = value.strip().lower()
        if word in TRUE_STRINGS:
            return True
        if word in FALSE_STRINGS:
            return False
    return None


def _validate_int(name: str, value: Any, low: int, high: int | None) -> None:
    if not isinstance(value, int) or isinstance(value, bool):
        raise exception.InvalidVFSetting(
            name=name, value=value, reason="must be an integer")
    if value < low or (high is not None and value > high):
        bound = f"from {low} to {high}" if high is not None else f">= {low}"
        raise exception.InvalidVFSetting(
            name=name, value=value, reason=f"must be {bound}")


def _validate_bool(name: str, value: Any) -> None:
    if not isinstance(value, bool):
        raise exception.InvalidVFSetting(
            name=name, value=value, reason="must be true or false")


def validate_optional_bool(name: str, value: Any) -> bool | None:
    """value if it is True, False or None (leave it as it is)."""
    if value is None:
        return None
    _validate_bool(name, value)
    return bool(value)


_INT_RANGES: Final[dict[str, tuple[int, int | None]]] = {
    "vlan": (0, MAX_VLAN),
    "qos": (0, MAX_QOS),
    "min_tx_rate": (0, U32_MAX),
    "max_tx_rate": (0, U32_MAX),
}
_CHOICES: Final[dict[str, tuple[str, ...]]] = {
    "vlan_proto": VLAN_PROTOCOLS,
    "link_state": LINK_STATES,
}


def validate_settings(settings: VFSettings) -> VFSettings:
    """Refuse anything the kernel should never be asked; return settings."""
    for name, value in settings.requested().items():
        if name == "mac":
            validate_mac(value)
        elif name in _INT_RANGES:
            _validate_int(name, value, *_INT_RANGES[name])
        elif name in _CHOICES:
            if value not in _CHOICES[name]:
                raise exception.InvalidVFSetting(
                    name=name, value=value,
                    reason="must be one of " + ", ".join(_CHOICES[name]))
        else:
            _validate_bool(name, value)
    low, high = settings.min_tx_rate, settings.max_tx_rate
    if low is not None and high is not None and high > 0 and low > high:
        raise exception.InvalidVFSetting(
            name="min_tx_rate", value=low,
            reason=f"must not exceed max_tx_rate {high}")
    return settings
