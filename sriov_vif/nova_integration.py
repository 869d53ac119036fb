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
VF's host netdev: device_xml finds it with our discovery, the same code
plug uses, unless the caller passes the one it found. missing_vf_netdev
tells nova which plug failures are a VF without a netdev, the one case
nova-compute reports as a missing PCI device. See
doc/source/nova-integration.rst and nova-patches/ for the nova change.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from os_vif import exception as osv_exception
from os_vif.objects import instance_info as osv_instance_info
from os_vif.objects import vif as osv_vif

from sriov_vif import conversion
from sriov_vif import discovery
from sriov_vif import exception
from sriov_vif import libvirt_xml

# The os-vif plugin name of the objects port_to_vif returns.
PLUGIN_NAME = conversion.PLUGIN_NAME


def port_to_vif(network_info_vif: Mapping[str, Any]) -> osv_vif.VIFBase:
    """The os-vif object for one port of nova's network info."""
    return conversion.from_nova_vif(network_info_vif)


def instance_info(uuid: str, name: str) -> osv_instance_info.InstanceInfo:
    """What os_vif.plug/unplug record as the VF's owner."""
    return osv_instance_info.InstanceInfo(uuid=uuid, name=name)


def device_xml(vif: osv_vif.VIFBase, sysfs_root: str = "/sys",
               vf_netdev: str | None = None) -> str:
    """The libvirt device XML of a VIF, with the VF netdev found for it.

    vf_netdev, when given, is the VF's host netdev as the caller found it
    (nova looks it up with its own PCI helpers); otherwise a direct VIF's
    netdev is found under sysfs_root.
    """
    if vf_netdev is None and isinstance(vif, osv_vif.VIFDirect):
        vf_netdev = discovery.find_vf(sysfs_root, vif.dev_address).ifname
    return libvirt_xml.interface_xml(vif, vf_netdev=vf_netdev)


def missing_vf_netdev(error: BaseException) -> str | None:
    """The VF address, when a plug failed because the VF has no netdev.

    os_vif.plug wraps what the plugin raised in a PlugException (the
    original in its 'err' argument). nova-compute reports this case, a
    direct (macvtap) port whose VF is bound to vfio-pci, as
    PciDeviceNotFoundById, which lets it start with the instance in
    error; every other plug failure is a VirtualInterfacePlugException.
    """
    seen: set[int] = set()
    pending: list[BaseException | None] = [error]
    while pending:
        current = pending.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, exception.VFNetdevNotFound):
            address = current.kwargs.get("address")
            return None if address is None else str(address)
        if isinstance(current, osv_exception.ExceptionBase):
            inner = current.kwargs.get("err")
            if isinstance(inner, BaseException):
                pending.append(inner)
        pending.extend((current.__cause__, current.__context__))
    return None
