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

"""What nova-compute calls, in the order it calls it.

nova keeps ports as network-model VIFs and needs three things from us per
SR-IOV port: the os-vif object to plug, the device XML for libvirt, and the
InstanceInfo os-vif wants. The XML of a direct (macvtap) port names the
VF's host netdev, which nova would otherwise have to find in sysfs itself;
device_xml finds it with our discovery, the same code plug uses, so both
agree on the VF. See doc/source/nova-integration.rst for the full flow.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from os_vif.objects import instance_info as osv_instance_info
from os_vif.objects import vif as osv_vif

from sriov_vif import conversion
from sriov_vif import discovery
from sriov_vif import libvirt_xml


def port_to_vif(network_info_vif: Mapping[str, Any]) -> osv_vif.VIFBase:
    """The os-vif object for one port of nova's network info."""
    return conversion.from_nova_vif(network_info_vif)


def instance_info(uuid: str, name: str) -> osv_instance_info.InstanceInfo:
    """What os_vif.plug/unplug record as the VF's owner."""
    return osv_instance_info.InstanceInfo(uuid=uuid, name=name)


def device_xml(vif: osv_vif.VIFBase, sysfs_root: str = "/sys") -> str:
    """The libvirt device XML of a VIF, with the VF netdev found for it."""
    vf_netdev = None
    if isinstance(vif, osv_vif.VIFDirect):
        vf_netdev = discovery.find_vf(sysfs_root, vif.dev_address).ifname
    return libvirt_xml.interface_xml(vif, vf_netdev=vf_netdev)
