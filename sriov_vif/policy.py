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

"""What a VIF asks of its VF, derived from os-vif objects alone.

The rules, and why:

* MAC: always `vif.address`. libvirt sets the same MAC again when it
  attaches an `<interface type='hostdev'>`; a plain `<hostdev>` (generic)
  and a direct VIF get it only from us.
* VLAN: from `vif.network.vlan`; None or 0 means untagged, so the VF gets
  VLAN 0 (a VF left tagged from an earlier port would black-hole the new
  one). A VIF without a network object says nothing, and the VLAN is left
  as it is. For an untagged VF the QoS and protocol fall back to 0 and
  802.1Q unless the profile asks otherwise.
* Everything else (trust, spoof checking, link state, rates, VLAN QoS and
  protocol) only when the port profile sets it: an unset field leaves the
  VF's value alone rather than resetting it.
"""

from __future__ import annotations

from typing import Any

from os_vif.objects import vif as osv_vif

from sriov_vif import exception
from sriov_vif import objects
from sriov_vif import vf_state


def _vlan(vif: osv_vif.VIFBase) -> int | None:
    if not vif.obj_attr_is_set("network") or vif.network is None:
        return None
    network = vif.network
    if not network.obj_attr_is_set("vlan") or network.vlan is None:
        return 0
    return int(network.vlan)


def check_supported(vif: Any) -> None:
    """Refuse any VIF class but the two this plugin is for."""
    if not isinstance(vif, (osv_vif.VIFHostDevice, osv_vif.VIFDirect)):
        raise exception.UnsupportedVIF(
            vif_id=getattr(vif, "id", "?"),
            reason=f"{type(vif).__name__} is not VIFHostDevice or VIFDirect")


def vf_settings(vif: osv_vif.VIFBase) -> vf_state.VFSettings:
    """The VF settings a VIF asks for, validated.

    Raises UnsupportedVIF or InvalidVFSetting naming the VIF before
    anything privileged runs.
    """
    check_supported(vif)
    if not vif.obj_attr_is_set("address") or not vif.address:
        raise exception.UnsupportedVIF(
            vif_id=vif.id, reason="it has no MAC address")
    profile = (vif.port_profile if vif.obj_attr_is_set("port_profile")
               else None)

    def field(name: str) -> Any:
        return objects.profile_value(profile, name)

    vlan = _vlan(vif)
    qos, proto = field("vlan_qos"), field("vlan_proto")
    if vlan == 0:
        qos = 0 if qos is None else qos
        proto = "802.1Q" if proto is None else proto
    settings = vf_state.VFSettings(
        mac=str(vif.address).lower(),
        vlan=vlan,
        qos=qos,
        vlan_proto=proto,
        spoofchk=field("spoofchk"),
        trust=field("trusted"),
        link_state=field("link_state"),
        min_tx_rate=field("min_tx_rate"),
        max_tx_rate=field("max_tx_rate"),
    )
    try:
        vf_state.validate_mac(settings.mac, allow_zero=False)
        return vf_state.validate_settings(settings)
    except exception.InvalidVFSetting as exc:
        raise exception.UnsupportedVIF(
            vif_id=vif.id, reason=str(exc)) from exc


def needs_vf_netdev(vif: osv_vif.VIFBase) -> bool:
    """A direct VIF stacks macvtap on the VF's host netdev."""
    return isinstance(vif, osv_vif.VIFDirect)


def passes_whole_device(vif: osv_vif.VIFBase) -> bool:
    """A generic hostdev may be a whole PF (neutron's direct-physical)."""
    return (isinstance(vif, osv_vif.VIFHostDevice)
            and vif.dev_type == "generic")
