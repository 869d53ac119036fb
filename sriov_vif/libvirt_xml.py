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

"""The libvirt device XML for the VF behind an os-vif VIF.

nova builds this XML itself for its legacy SR-IOV VIF types and refuses
VIFDirect and generic VIFHostDevice objects; this module is what lets an
os-vif object reach a guest. The output keeps nova's shape so that a guest
defined by nova today and one defined from this XML see the same device.

The XML only says what libvirt will carry out exactly as asked. What it
cannot express, or would undo, is the plugin's job on the PF (see
doc/source/libvirt-xml.rst). The rule that decides the element:

* libvirt writes a VF's VLAN itself when it starts a guest with an
  ``<interface type='hostdev'>`` or a passthrough ``<interface
  type='direct'>`` without an 802.1Qbh virtualport: the id from
  ``<vlan>``, or 0 without one, always with QoS 0 and protocol 802.1Q.
* That is right when the port asks for its network's VLAN (or none) with
  no QoS and plain 802.1Q. Otherwise (a profile with VLAN QoS or 802.1ad,
  or a VIF without a network, whose VLAN is to be left alone) a hostdev
  VIF becomes a plain ``<hostdev>``, which libvirt attaches without
  touching MAC or VLAN; the plugin has already set both on the PF.
* A passthrough direct VIF has no such way out and is refused.

Everything is validated before the first element is built, so a bad VIF
never yields half an XML document.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any
from typing import Final
import xml.etree.ElementTree as ET

from os_vif.objects import vif as osv_vif

from sriov_vif import discovery
from sriov_vif import exception
from sriov_vif import identifiers
from sriov_vif import objects
from sriov_vif import vf_state

# Every guest NIC model libvirt names (virDomainNetModel, less "unknown").
# "igb" needs libvirt >= 9.3 and QEMU >= 8.0; the hypervisor driver refuses
# a model it cannot emulate, this list refuses typos.
NET_MODELS: Final = (
    "virtio", "virtio-transitional", "virtio-non-transitional",
    "e1000", "e1000e", "igb", "rtl8139", "netfront", "usb-net",
    "spapr-vlan", "lan9118", "scm91c111", "vlance", "vmxnet", "vmxnet2",
    "vmxnet3", "Am79C970A", "Am79C973", "82540EM", "82545EM", "82543GC",
    # QEMU models libvirt passes through by name, which nova offers for
    # kvm/qemu images (hw_vif_model); "scm91c111" is libvirt's spelling.
    "ne2k_pci", "pcnet",
)
VIRTIO_MODELS: Final = (
    "virtio", "virtio-transitional", "virtio-non-transitional")
DEFAULT_MODEL: Final = "virtio"
DIRECT_MODES: Final = ("vepa", "bridge", "passthrough")
# libvirt keeps only aliases with this prefix in a persistent definition.
USER_ALIAS_PREFIX: Final = "ua-"
# libvirt's aliasName pattern, anchored, with the user prefix required.
_USER_ALIAS_RE: Final = re.compile(r"ua-[A-Za-z0-9_.-]+")
# libvirt stores an 802.1Qbh profile id in 40 bytes with its NUL.
MAX_PROFILE_ID_LEN: Final = 39
_QBH = osv_vif.VIFPortProfile8021Qbh
_QBG = osv_vif.VIFPortProfile8021Qbg


@dataclasses.dataclass(frozen=True)
class _Request:
    """A VIF's XML inputs, all checked; building from it cannot fail."""

    vif: osv_vif.VIFBase
    alias: str
    mac: str
    vlan: int | None
    libvirt_would_undo_vlan: bool
    virtualport: osv_vif.VIFPortProfileBase | None
    teaming_persistent: str | None
    model: str | None
    vf_netdev: str | None


def interface_element(vif: osv_vif.VIFBase,
                      vf_netdev: str | None = None) -> ET.Element:
    """The libvirt device element for vif, as an ElementTree element.

    "Interface" in nova's sense: the device that connects the guest to the
    port, which is an ``<interface>`` or, for a hostdev VIF, sometimes a
    ``<hostdev>``. Its alias, ``ua-<vif.id>``, finds it again for detach.

    :param vif: a VIFHostDevice (dev_type ethernet gives ``<interface
        type='hostdev'>``, or ``<hostdev>`` when libvirt would undo the
        port's VLAN policy; generic gives ``<hostdev>``) or a VIFDirect
        (``<interface type='direct'>``).
    :param vf_netdev: the VF's host netdev, which a VIFDirect stacks its
        macvtap on; required for VIFDirect, refused for VIFHostDevice.
    :raises InvalidXMLRequest: naming the VIF and the reason, before any
        element is built.
    """
    request = _check(vif, vf_netdev)
    if isinstance(vif, osv_vif.VIFDirect):
        return _direct(request)
    if _is_plain_hostdev(request):
        return _hostdev(request)
    return _hostdev_interface(request)


def interface_xml(vif: osv_vif.VIFBase,
                  vf_netdev: str | None = None) -> str:
    """interface_element() serialized, for attachDevice or a domain."""
    return ET.tostring(interface_element(vif, vf_netdev), encoding="unicode")


def libvirt_sets_vf_vlan(vif: osv_vif.VIFBase,
                         vf_netdev: str | None = None) -> bool:
    """Whether libvirt writes the VF's VLAN itself when the guest starts.

    When true, libvirt sets the VLAN id of the XML (0 without one) with
    QoS 0 and protocol 802.1Q, after plug, and restores the id it found
    when the guest stops; interface_element only returns such XML when that
    is exactly what the port asks for. When false, the VF's VLAN is the
    plugin's alone. Raises InvalidXMLRequest as interface_element does.
    """
    request = _check(vif, vf_netdev)
    if isinstance(vif, osv_vif.VIFDirect):
        return vif.mode == "passthrough" and not isinstance(
            request.virtualport, _QBH)
    return not _is_plain_hostdev(request) and request.virtualport is None


def _is_plain_hostdev(request: _Request) -> bool:
    # An 802.1Qbh interface keeps libvirt off the VLAN, so it needs no
    # fallback.
    vif = request.vif
    return vif.dev_type == "generic" or (
        request.libvirt_would_undo_vlan and request.virtualport is None)


# Validation.

def _invalid(vif: Any, reason: str) -> exception.InvalidXMLRequest:
    vif_id = vif.id if _is_set(vif, "id") else "(no id)"
    return exception.InvalidXMLRequest(vif_id=vif_id, reason=reason)


def _is_set(obj: Any, name: str) -> bool:
    return bool(obj.obj_attr_is_set(name)) and getattr(obj, name) is not None


def _check(vif: Any, vf_netdev: Any) -> _Request:
    if not isinstance(vif, (osv_vif.VIFHostDevice, osv_vif.VIFDirect)):
        vif_id = getattr(vif, "id", "(no id)")
        raise exception.InvalidXMLRequest(
            vif_id=vif_id, reason=f"{type(vif).__name__} is not "
            "VIFHostDevice or VIFDirect")
    if not _is_set(vif, "id"):
        raise _invalid(vif, "it has no id to name its libvirt alias after")
    alias = _user_alias(vif, USER_ALIAS_PREFIX + str(vif.id), "its id")
    profile = vif.port_profile if _is_set(vif, "port_profile") else None
    virtualport = _virtualport(vif, profile)
    teaming = objects.profile_value(profile, "teaming_persistent")
    if teaming is not None:
        _check_teaming(vif, teaming, alias)
    model = objects.profile_value(profile, "model")
    qos, proto = _vlan_policy(vif, profile)
    if isinstance(vif, osv_vif.VIFDirect):
        vf_netdev = _check_direct(vif, vf_netdev, teaming, model)
        model = DEFAULT_MODEL if model is None else model
    else:
        _check_hostdev(vif, vf_netdev, virtualport, model)
    vlan = _vlan(vif)
    undo = (not _is_set(vif, "network") or (qos or 0) > 0
            or proto == "802.1ad")
    if (isinstance(vif, osv_vif.VIFDirect) and vif.mode == "passthrough"
            and undo and not isinstance(virtualport, _QBH)):
        raise _invalid(vif, "libvirt sets the VF's VLAN (0 without a network "
                       "VLAN) with QoS 0 and protocol 802.1Q when it starts "
                       "a passthrough macvtap, which is not what this port "
                       "asks (VLAN QoS, 802.1ad, or no network); use mode "
                       "vepa or bridge, or a hostdev VIF")
    return _Request(
        vif=vif, alias=alias, mac=_mac(vif), vlan=vlan,
        libvirt_would_undo_vlan=undo, virtualport=virtualport,
        teaming_persistent=teaming, model=model, vf_netdev=vf_netdev)


def _user_alias(vif: Any, alias: Any, what: str) -> str:
    if not isinstance(alias, str) or not _USER_ALIAS_RE.fullmatch(alias):
        raise _invalid(vif, f"{what} gives alias {alias!r}, but a libvirt "
                       "user alias is 'ua-' then letters, digits or '_.-'")
    return alias


def _mac(vif: Any) -> str:
    if not _is_set(vif, "address"):
        raise _invalid(vif, "it has no MAC address")
    try:
        return vf_state.validate_mac(
            str(vif.address).lower(), name="address", allow_zero=False)
    except exception.InvalidVFSetting as exc:
        raise _invalid(vif, str(exc)) from exc


def _vlan(vif: Any) -> int | None:
    """The real VLAN of the VIF's network; None for flat (None or 0)."""
    if not _is_set(vif, "network") or not _is_set(vif.network, "vlan"):
        return None
    vlan = vif.network.vlan
    if isinstance(vlan, bool) or not isinstance(vlan, int) or not (
            0 <= vlan <= vf_state.MAX_VLAN):
        raise _invalid(vif, f"network VLAN {vlan!r} is not an integer "
                       f"from 0 (untagged) to {vf_state.MAX_VLAN}")
    return vlan or None


def _vlan_policy(vif: Any, profile: Any) -> tuple[int | None, str | None]:
    qos = objects.profile_value(profile, "vlan_qos")
    proto = objects.profile_value(profile, "vlan_proto")
    try:
        vf_state.validate_settings(
            vf_state.VFSettings(qos=qos, vlan_proto=proto))
    except exception.InvalidVFSetting as exc:
        raise _invalid(vif, f"port profile: {exc}") from exc
    return qos, proto


def _virtualport(vif: Any, profile: Any) -> osv_vif.VIFPortProfileBase | None:
    if profile is None:
        return None
    if isinstance(profile, objects.VIFPortProfileSRIOV):
        port = objects.profile_value(profile, "virtualport")
    elif isinstance(profile, (_QBH, _QBG)):
        port = profile
    else:
        raise _invalid(vif, f"port profile {type(profile).__name__} is not "
                       "VIFPortProfileSRIOV, 802.1Qbh or 802.1Qbg")
    if port is None:
        return None
    if isinstance(port, _QBH):
        _check_qbh(vif, port)
    elif isinstance(port, _QBG):
        _check_qbg(vif, port)
    else:
        raise _invalid(vif, f"virtualport {type(port).__name__} is not an "
                       "802.1Qbh or 802.1Qbg profile")
    result: osv_vif.VIFPortProfileBase = port
    return result


def _check_qbh(vif: Any, port: Any) -> None:
    profile_id = port.profile_id if _is_set(port, "profile_id") else None
    if not isinstance(profile_id, str) or not (
            0 < len(profile_id) <= MAX_PROFILE_ID_LEN):
        raise _invalid(vif, f"802.1Qbh profile_id {profile_id!r} must be 1 "
                       f"to {MAX_PROFILE_ID_LEN} characters (libvirt's "
                       "limit)")


def _check_qbg(vif: Any, port: Any) -> None:
    # libvirt reserves manager id 0 and stores the type id in 24 bits.
    for name, low, high in (("manager_id", 1, 255),
                            ("type_id", 0, 0xFFFFFF),
                            ("type_id_version", 0, 255)):
        value = getattr(port, name) if _is_set(port, name) else None
        if isinstance(value, bool) or not isinstance(value, int) or not (
                low <= value <= high):
            raise _invalid(vif, f"802.1Qbg {name} {value!r} must be an "
                           f"integer from {low} to {high}")
    instance = port.instance_id if _is_set(port, "instance_id") else None
    if not identifiers.is_uuid(instance, bare=True):
        raise _invalid(vif, f"802.1Qbg instance_id {instance!r} is not a "
                       "UUID")


def _check_teaming(vif: Any, teaming: Any, alias: str) -> None:
    _user_alias(vif, teaming, "teaming_persistent")
    if teaming == alias:
        raise _invalid(vif, f"teaming_persistent {teaming!r} names this VF "
                       "itself, not the guest's persistent virtio interface")


def _check_direct(vif: Any, vf_netdev: Any, teaming: str | None,
                  model: Any) -> str:
    if not _is_set(vif, "mode") or vif.mode not in DIRECT_MODES:
        mode = vif.mode if _is_set(vif, "mode") else None
        raise _invalid(vif, f"direct mode {mode!r} is not one of "
                       + ", ".join(DIRECT_MODES))
    if vf_netdev is None:
        raise _invalid(vif, "a direct VIF needs the VF's host netdev to "
                       "stack its macvtap on, and none was given")
    try:
        vf_state.validate_ifname(vf_netdev)
    except exception.InvalidInterfaceName as exc:
        raise _invalid(vif, f"VF netdev: {exc}") from exc
    if teaming is not None:
        raise _invalid(vif, "teaming makes a VF the transient half of a "
                       "virtio failover pair, which libvirt allows only for "
                       "hostdev VIFs, not direct (macvtap) ones")
    if model is not None and model not in NET_MODELS:
        raise _invalid(vif, f"guest NIC model {model!r} is not one libvirt "
                       "knows: " + ", ".join(NET_MODELS))
    result: str = vf_netdev
    return result


def _check_hostdev(vif: Any, vf_netdev: Any, virtualport: Any,
                   model: Any) -> None:
    if vf_netdev is not None:
        raise _invalid(vif, "a hostdev VIF passes the VF itself to the "
                       f"guest; VF netdev {vf_netdev!r} has no place in "
                       "its XML")
    if not _is_set(vif, "dev_address"):
        raise _invalid(vif, "it has no PCI address (dev_address)")
    try:
        discovery.validate_pci_address(vif.dev_address)
    except exception.InvalidPciAddress as exc:
        raise _invalid(vif, str(exc)) from exc
    if model is not None:
        raise _invalid(vif, f"guest NIC model {model!r} applies to direct "
                       "VIFs only: a hostdev guest sees the VF itself")
    if isinstance(virtualport, _QBG):
        raise _invalid(vif, "libvirt supports no 802.1Qbg virtualport on "
                       "hostdev interfaces, only 802.1Qbh")
    if virtualport is not None and vif.dev_type == "generic":
        raise _invalid(vif, "a generic hostdev has no virtualport element; "
                       "use dev_type ethernet for an 802.1Qbh port")


# Building; every input has been checked by _check.

def _pci_address(parent: ET.Element, address: str,
                 with_type: bool) -> None:
    domain, bus, rest = address.split(":")
    slot, function = rest.split(".")
    element = ET.SubElement(parent, "address")
    if with_type:
        element.set("type", "pci")
    element.set("domain", "0x" + domain)
    element.set("bus", "0x" + bus)
    element.set("slot", "0x" + slot)
    element.set("function", "0x" + function)


def _vlan_element(parent: ET.Element, vlan: int) -> None:
    ET.SubElement(ET.SubElement(parent, "vlan"), "tag", id=str(vlan))


def _virtualport_element(parent: ET.Element, port: Any) -> None:
    if isinstance(port, _QBH):
        element = ET.SubElement(parent, "virtualport", type="802.1Qbh")
        ET.SubElement(element, "parameters", profileid=port.profile_id)
        return
    element = ET.SubElement(parent, "virtualport", type="802.1Qbg")
    ET.SubElement(element, "parameters",
                  managerid=str(port.manager_id),
                  typeid=str(port.type_id),
                  typeidversion=str(port.type_id_version),
                  instanceid=str(port.instance_id))


def _tail(parent: ET.Element, request: _Request) -> None:
    if request.teaming_persistent is not None:
        ET.SubElement(parent, "teaming", type="transient",
                      persistent=request.teaming_persistent)
    ET.SubElement(parent, "alias", name=request.alias)


def _hostdev_interface(request: _Request) -> ET.Element:
    root = ET.Element("interface", type="hostdev", managed="yes")
    ET.SubElement(root, "mac", address=request.mac)
    ET.SubElement(root, "driver", name="vfio")
    _pci_address(ET.SubElement(root, "source"), request.vif.dev_address,
                 with_type=True)
    # libvirt refuses <vlan> beside a virtualport: the profile owns it.
    if request.vlan is not None and request.virtualport is None:
        _vlan_element(root, request.vlan)
    if request.virtualport is not None:
        _virtualport_element(root, request.virtualport)
    _tail(root, request)
    return root


def _hostdev(request: _Request) -> ET.Element:
    root = ET.Element("hostdev", mode="subsystem", type="pci",
                      managed="yes")
    ET.SubElement(root, "driver", name="vfio")
    _pci_address(ET.SubElement(root, "source"), request.vif.dev_address,
                 with_type=False)
    _tail(root, request)
    return root


def _direct(request: _Request) -> ET.Element:
    vif = request.vif
    # _check_direct made sure of both.
    assert request.model is not None and request.vf_netdev is not None
    root = ET.Element("interface", type="direct")
    ET.SubElement(root, "mac", address=request.mac)
    ET.SubElement(root, "model", type=request.model)
    if request.model in VIRTIO_MODELS:
        ET.SubElement(root, "driver", name="vhost")
    ET.SubElement(root, "source", dev=request.vf_netdev, mode=vif.mode)
    # Only passthrough lets libvirt tag the VF; in vepa and bridge mode the
    # plugin sets the VLAN on the PF, and with 802.1Qbh the profile does.
    if (vif.mode == "passthrough" and request.vlan is not None
            and not isinstance(request.virtualport, _QBH)):
        _vlan_element(root, request.vlan)
    if request.virtualport is not None:
        _virtualport_element(root, request.virtualport)
    _tail(root, request)
    return root
