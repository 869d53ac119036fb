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

"""From a port neutron bound to a VF to the os-vif object that plugs it.

nova keeps each port of an instance as a network-model VIF (a dict) and
sends the SR-IOV vif types, hw_veb and hostdev_physical, around os-vif: it
never builds a VIFHostDevice or VIFDirect for them. This module is the
missing conversion, so that nova-compute (or any other caller holding a
bound port) can hand such a port to os_vif.plug and to the XML builder.

It reads only what neutron's SR-IOV mechanism driver and nova really put
into the binding (neutron/plugins/ml2/drivers/mech_sriov/mech_driver/
mech_driver.py, nova/network/neutron.py): details carry 'port_filter',
'connectivity' and 'vlan' (a string, "0" on a flat network); the profile
carries 'pci_slot', 'physical_network', 'pci_vendor_info' and, when the
user asked for it, 'trusted'. Spoof checking, link state and rates are not
in the binding: neutron's SR-IOV agent applies them itself from its own
RPC, so the port profile leaves them unset, which means "leave the VF's
value as it is" and lets the agent keep doing its job.

Every check fails with InvalidPortBinding naming the port, before anything
touches the host, because a binding the plugin misreads configures the
wrong VF or the wrong VLAN.
"""

from __future__ import annotations

from collections.abc import Mapping
import re
from typing import Any
from typing import Final

from os_vif.objects import fields as osv_fields
from os_vif.objects import network as osv_network
from os_vif.objects import subnet as osv_subnet
from os_vif.objects import vif as osv_vif

from sriov_vif import exception
from sriov_vif import identifiers
from sriov_vif import objects
from sriov_vif import vf_state

# The os_vif entry point of our plugin (pyproject.toml). Not imported from
# sriov_vif.plugin, so that converting a port needs none of the plugging
# machinery.
PLUGIN_NAME: Final = "sriov"

# binding:vif_type values (neutron-lib portbindings, nova network model).
VIF_TYPE_HW_VEB: Final = "hw_veb"
VIF_TYPE_HOSTDEV_PHYSICAL: Final = "hostdev_physical"

# binding:vnic_type values the SR-IOV mechanism driver binds, with the vif
# type it binds each as (SRIOV_SUPPORTED_VNIC_TYPES and _vif_type() there).
VNIC_TYPE_DIRECT: Final = "direct"
VNIC_TYPE_MACVTAP: Final = "macvtap"
VNIC_TYPE_DIRECT_PHYSICAL: Final = "direct-physical"
VNIC_TYPE_ACCELERATOR_DIRECT: Final = "accelerator-direct"

VIF_TYPE_OF_VNIC_TYPE: Final[Mapping[str, str]] = {
    VNIC_TYPE_DIRECT: VIF_TYPE_HW_VEB,
    VNIC_TYPE_ACCELERATOR_DIRECT: VIF_TYPE_HW_VEB,
    VNIC_TYPE_MACVTAP: VIF_TYPE_HW_VEB,
    VNIC_TYPE_DIRECT_PHYSICAL: VIF_TYPE_HOSTDEV_PHYSICAL,
}

# vif types that say the port is not bound at all; nova's os_vif_util
# skips them too, and plugging such a port can only go wrong.
_NOT_BOUND_REASONS: Final[Mapping[str, str]] = {
    "unbound": "neutron has not bound it to a host (vif type 'unbound')",
    "binding_failed": "neutron failed to bind it (vif type "
                      "'binding_failed'); neutron-server's log says why",
}

# nova's network model caps host device names at 14 characters
# (NIC_NAME_LEN) and names a port without a devname "nic" + its id.
_NIC_NAME_LEN: Final = 14

_DECIMAL_RE: Final = re.compile(r"[0-9]{1,4}")
# 68 is the smallest MTU IPv4 allows (and neutron accepts); 65535 is the
# largest any Linux netdev takes.
_MIN_MTU: Final = 68
_MAX_MTU: Final = 65535
_UNKNOWN_PORT: Final = "<port without an id>"


def from_nova_vif(
    nova_vif: Mapping[str, Any],
) -> osv_vif.VIFHostDevice | osv_vif.VIFDirect:
    """The os-vif object, for plugin 'sriov', of one bound SR-IOV port.

    nova_vif is a VIF as nova keeps it in an instance's network info: a
    nova.network.model.VIF or the plain dict of its JSON form.
    """
    if not isinstance(nova_vif, Mapping):
        raise _invalid(_UNKNOWN_PORT,
                       f"expected a nova VIF mapping, got "
                       f"{type(nova_vif).__name__}")
    port_id = _port_id(nova_vif)
    vnic_type = _vnic_type(port_id, nova_vif)
    details = _mapping(port_id, nova_vif, "details")
    profile = _mapping(port_id, nova_vif, "profile")
    common = {
        "id": port_id,
        "address": _mac(port_id, nova_vif.get("address")),
        "network": _network(port_id, nova_vif, _vlan(port_id, details,
                                                     vnic_type)),
        "plugin": PLUGIN_NAME,
        "active": _flag(port_id, nova_vif, "active"),
        "preserve_on_delete": _flag(port_id, nova_vif,
                                    "preserve_on_delete"),
        "has_traffic_filtering": _flag(port_id, details, "port_filter",
                                       where="binding details"),
        "port_profile": _port_profile(port_id, profile),
    }
    dev_address = _pci_slot(port_id, profile)
    if vnic_type == VNIC_TYPE_MACVTAP:
        return osv_vif.VIFDirect(
            vif_name=_vif_name(port_id, nova_vif),
            dev_address=dev_address,
            mode=osv_fields.VIFDirectMode.PASSTHROUGH,
            **common)
    dev_type = (osv_fields.VIFHostDeviceDevType.GENERIC
                if vnic_type == VNIC_TYPE_DIRECT_PHYSICAL
                else osv_fields.VIFHostDeviceDevType.ETHERNET)
    return osv_vif.VIFHostDevice(
        dev_type=dev_type, dev_address=dev_address, **common)


def _invalid(port_id: Any, reason: str) -> exception.InvalidPortBinding:
    return exception.InvalidPortBinding(port_id=port_id, reason=reason)


def _port_id(nova_vif: Mapping[str, Any]) -> str:
    port_id = nova_vif.get("id")
    if port_id is None:
        raise _invalid(_UNKNOWN_PORT, "the VIF has no 'id'")
    if not isinstance(port_id, str) or not identifiers.is_uuid(port_id):
        raise _invalid(repr(port_id), "its id is not a UUID")
    return port_id.lower()


def _vnic_type(port_id: str, nova_vif: Mapping[str, Any]) -> str:
    """The vnic type, once the vif type proves neutron bound it for SR-IOV.

    The pair must be one the SR-IOV mechanism driver produces: a direct
    port bound as hostdev_physical (or the reverse) would pass a whole PF
    where a VF was claimed, or the other way round.
    """
    vif_type = nova_vif.get("type")
    if isinstance(vif_type, str) and vif_type in _NOT_BOUND_REASONS:
        raise _invalid(port_id, _NOT_BOUND_REASONS[vif_type])
    if vif_type not in (VIF_TYPE_HW_VEB, VIF_TYPE_HOSTDEV_PHYSICAL):
        raise _invalid(
            port_id,
            f"vif type {vif_type!r} is not an SR-IOV binding "
            f"({VIF_TYPE_HW_VEB!r} or {VIF_TYPE_HOSTDEV_PHYSICAL!r})")
    vnic_type = nova_vif.get("vnic_type")
    if not isinstance(vnic_type, str) or (
            vnic_type not in VIF_TYPE_OF_VNIC_TYPE):
        raise _invalid(
            port_id,
            f"vnic type {vnic_type!r} is not one sriov-vif plugs ("
            + ", ".join(sorted(VIF_TYPE_OF_VNIC_TYPE)) + ")")
    expected = VIF_TYPE_OF_VNIC_TYPE[vnic_type]
    if vif_type != expected:
        raise _invalid(
            port_id,
            f"vnic type {vnic_type!r} must be bound as vif type "
            f"{expected!r}, not {vif_type!r}")
    return vnic_type


def _mapping(port_id: str, nova_vif: Mapping[str, Any],
             key: str) -> Mapping[str, Any]:
    """details or profile; nova's model stores None for an absent one."""
    value = nova_vif.get(key)
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise _invalid(port_id, f"its {key!r} is not a mapping: {value!r}")
    return value


def _mac(port_id: str, address: Any) -> str:
    if address is None:
        raise _invalid(port_id, "the VIF has no MAC 'address'")
    mac = address.lower() if isinstance(address, str) else address
    try:
        return vf_state.validate_mac(mac, name="address", allow_zero=False)
    except exception.InvalidVFSetting as exc:
        raise _invalid(port_id, f"MAC address {address!r} "
                                f"{exc.kwargs['reason']}") from exc


def _pci_slot(port_id: str, profile: Mapping[str, Any]) -> str:
    """The VF (or PF) nova claimed for the port, as a lower-case address."""
    slot = profile.get("pci_slot")
    if slot is None:
        raise _invalid(
            port_id,
            "binding profile has no 'pci_slot': nova has not claimed a PCI "
            "device for this port on this host")
    if not isinstance(slot, str) or not identifiers.is_pci_address(
            slot.lower()):
        raise _invalid(
            port_id,
            f"binding profile 'pci_slot' {slot!r} is not a PCI address "
            "of the form dddd:bb:ss.f")
    return slot.lower()


def _vlan(port_id: str, details: Mapping[str, Any],
          vnic_type: str) -> int | None:
    """The VLAN id, or None on a flat network.

    Neutron always sends 'vlan' for the ports it binds as hw_veb (nova
    reads it unconditionally); for a PF passed whole the VLAN cannot be a
    VF attribute, so a missing one is no error there.
    """
    raw = details.get("vlan")
    if raw is None:
        if vnic_type == VNIC_TYPE_DIRECT_PHYSICAL:
            return None
        raise _invalid(port_id,
                       "binding details carry no 'vlan' (neutron's SR-IOV "
                       "mechanism driver always sends one)")
    if isinstance(raw, str) and _DECIMAL_RE.fullmatch(raw):
        vlan = int(raw)
    elif isinstance(raw, int) and not isinstance(raw, bool):
        vlan = raw
    else:
        raise _invalid(port_id,
                       f"binding details 'vlan' {raw!r} is not a decimal "
                       "VLAN id")
    if not 0 <= vlan <= vf_state.MAX_VLAN:
        raise _invalid(port_id,
                       f"binding details 'vlan' {raw!r} is outside 0 (flat) "
                       f"to {vf_state.MAX_VLAN}")
    return vlan or None


def _network(port_id: str, nova_vif: Mapping[str, Any],
             vlan: int | None) -> osv_network.Network:
    """The port's network with its VLAN and MTU.

    Subnets stay empty: addresses are the guest's business, and nothing
    in plugging a VF or writing its XML reads them.
    should_provide_vlan stays False: in os-vif it asks a plugin to create a
    VLAN netdev on bridge_interface, which no SR-IOV port has; the VLAN of
    a VF is an attribute of the VF on its PF, carried in vlan.
    """
    net = nova_vif.get("network")
    if not isinstance(net, Mapping):
        raise _invalid(port_id, "the VIF has no 'network'")
    net_id = net.get("id")
    if not isinstance(net_id, str) or not identifiers.is_uuid(net_id):
        raise _invalid(port_id, f"network id {net_id!r} is not a UUID")
    meta = net.get("meta") or {}
    if not isinstance(meta, Mapping):
        raise _invalid(port_id, f"network 'meta' is not a mapping: {meta!r}")
    network = osv_network.Network(
        id=net_id.lower(), vlan=vlan, mtu=_mtu(port_id, meta.get("mtu")),
        subnets=osv_subnet.SubnetList(objects=[]))
    for key in ("label", "bridge"):
        value = net.get(key)
        if value is None:
            continue
        if not isinstance(value, str):
            raise _invalid(port_id,
                           f"network {key!r} is not a string: {value!r}")
        setattr(network, key, value)
    return network


def _mtu(port_id: str, mtu: Any) -> int | None:
    if mtu is None:
        return None
    if (not isinstance(mtu, int) or isinstance(mtu, bool)
            or not _MIN_MTU <= mtu <= _MAX_MTU):
        raise _invalid(port_id,
                       f"network MTU {mtu!r} is not an integer from "
                       f"{_MIN_MTU} to {_MAX_MTU}")
    return mtu


def _flag(port_id: str, source: Mapping[str, Any], key: str,
          where: str = "VIF") -> bool:
    """A boolean nova or neutron always writes as one; absent is False.

    False is the default of nova's network model for 'active' and
    'preserve_on_delete', and of nova's reading of 'port_filter'.
    """
    value = source.get(key, False)
    if not isinstance(value, bool):
        raise _invalid(port_id, f"{where} {key!r} is not a boolean: "
                                f"{value!r}")
    return value


def _trusted(port_id: str, value: Any) -> bool:
    # nova parses profile 'trusted' with oslo.utils' bool_from_string;
    # neutron passes the user's value through unchanged when 'trusted' is
    # set in binding:profile directly.
    parsed = vf_state.parse_bool(value)
    if parsed is not None:
        return parsed
    raise _invalid(port_id,
                   f"binding profile 'trusted' {value!r} is neither true "
                   "nor false")


def _port_profile(port_id: str, profile: Mapping[str, Any]
                  ) -> objects.VIFPortProfileSRIOV:
    """The VF policy the binding states; everything else stays unset.

    Only 'trusted' has a binding key. Neutron with its port_trusted
    extension writes the port's boolean 'trusted' there; the deprecated
    way, setting it in binding:profile by hand, passes the user's value
    through, hence the string forms.
    """
    port_profile = objects.VIFPortProfileSRIOV()
    trusted = profile.get("trusted")
    if trusted is not None:
        port_profile.trusted = _trusted(port_id, trusted)
    return port_profile


def _vif_name(port_id: str, nova_vif: Mapping[str, Any]) -> str:
    """The name of the macvtap device, as nova names a port's host device.

    nova sets devname to "tap" plus the start of the port id for every
    port it learns from neutron, and its os-vif conversion uses devname
    as vif_name, falling back to "nic" plus the id.
    """
    name = nova_vif.get("devname")
    if name is None:
        name = ("nic" + port_id)[:_NIC_NAME_LEN]
    try:
        return vf_state.validate_ifname(name)
    except exception.InvalidInterfaceName as exc:
        raise _invalid(port_id, f"devname {name!r} cannot name the macvtap "
                                f"device: {exc.kwargs['reason']}") from exc
