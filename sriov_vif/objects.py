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

"""The port profile that carries what os-vif has no field for.

os-vif's VIF objects carry a MAC and Network.vlan, but nothing for trust,
spoof checking, link state, rates, VLAN QoS or 802.1ad, nor for the guest
NIC model of a direct VIF. VIFPortProfileSRIOV carries them, versioned and
registered in os-vif's namespace so that nova can serialize it like any
other profile. Every field is nullable and unset means "leave the VF's
value as it is".
"""

from __future__ import annotations

from typing import Any

from os_vif.objects import vif as osv_vif
from oslo_versionedobjects import base
from oslo_versionedobjects import fields

from sriov_vif import vf_state


class StrictBoolean(fields.FieldType[bool]):
    """A boolean that refuses what it cannot read as one.

    oslo.versionedobjects' Boolean coerces with bool(): the string
    "false" would become True and make a VF trusted. Real booleans and
    the strings nova accepts (parsed strictly) pass; anything else is a
    ValueError, which the object reports naming the field.
    """

    @staticmethod
    def coerce(obj: Any, attr: str, value: Any) -> bool:
        parsed = vf_state.parse_bool(value)
        if parsed is None:
            raise ValueError(f"{attr} must be true or false, not {value!r}")
        return parsed

    @staticmethod
    def get_schema() -> dict[str, Any]:
        return {"type": ["boolean"]}


class StrictBooleanField(fields.AutoTypedField[bool]):
    AUTO_TYPE = StrictBoolean()


class U32(fields.Integer):
    """A non-negative integer the kernel can store in a __u32."""

    @staticmethod
    def coerce(obj: Any, attr: str, value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, (int, str)):
            raise ValueError(f"{attr} must be an integer, not {value!r}")
        number = int(value)
        if not 0 <= number <= vf_state.U32_MAX:
            raise ValueError(f"{attr} must be from 0 to {vf_state.U32_MAX}, "
                             f"not {number}")
        return number


class U32Field(fields.AutoTypedField[int]):
    AUTO_TYPE = U32()


class LinkStateField(fields.AutoTypedField[str]):
    AUTO_TYPE = fields.Enum(valid_values=list(vf_state.LINK_STATES))


class VlanProtoField(fields.AutoTypedField[str]):
    AUTO_TYPE = fields.Enum(valid_values=list(vf_state.VLAN_PROTOCOLS))


@base.VersionedObjectRegistry.register
class VIFPortProfileSRIOV(osv_vif.VIFPortProfileBase):
    """SR-IOV VF policy of one port.

    virtualport holds an 802.1Qbh or 802.1Qbg profile when the switch
    needs one, so that a port can have both a VF policy and a virtualport.
    teaming_persistent names the alias of the guest's persistent virtio
    interface when the VF is the transient half of a failover pair.
    """

    # Version 1.0: Initial release
    VERSION = "1.0"

    fields = {
        "trusted": StrictBooleanField(nullable=True),
        "spoofchk": StrictBooleanField(nullable=True),
        "link_state": LinkStateField(nullable=True),
        "min_tx_rate": U32Field(nullable=True),
        "max_tx_rate": U32Field(nullable=True),
        "vlan_qos": fields.IntegerField(nullable=True),
        "vlan_proto": VlanProtoField(nullable=True),
        "model": fields.StringField(nullable=True),
        "teaming_persistent": fields.StringField(nullable=True),
        "virtualport": fields.ObjectField(
            "VIFPortProfileBase", nullable=True, subclasses=True),
    }


def profile_value(profile: Any, name: str) -> Any:
    """A field of a VIF's port profile, or None when unset or absent.

    Works for any profile class (or none), so callers need not care
    whether a VIF came with our profile, a virtualport profile or nothing.
    """
    if profile is None or name not in getattr(profile, "fields", {}):
        return None
    if not profile.obj_attr_is_set(name):
        return None
    return getattr(profile, name)
