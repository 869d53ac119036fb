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
VF's host netdev: vf_netdev finds it as plug does, with our discovery
under the plugin's own [os_vif_sriov] sysfs_root, so that the XML names
the netdev plug configured (nova's own lookup reads the real /sys and
knows no sysfs_root). missing_vf_netdev tells nova which failures are a
VF without a netdev, the one case nova-compute reports as a missing PCI
device. See doc/source/nova-integration.rst and nova-patches/ for the
nova change.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from os_vif import exception as osv_exception
from os_vif.objects import instance_info as osv_instance_info
from os_vif.objects import vif as osv_vif
from oslo_config import cfg

from sriov_vif import config
from sriov_vif import conversion
from sriov_vif import discovery
from sriov_vif import exception
from sriov_vif import libvirt_xml
from sriov_vif import policy

# The os-vif plugin name of the objects port_to_vif returns.
PLUGIN_NAME = conversion.PLUGIN_NAME


def port_to_vif(network_info_vif: Mapping[str, Any]) -> osv_vif.VIFBase:
    """The os-vif object for one port of nova's network info."""
    return conversion.from_nova_vif(network_info_vif)


def instance_info(uuid: str, name: str) -> osv_instance_info.InstanceInfo:
    """What os_vif.plug/unplug record as the VF's owner."""
    return osv_instance_info.InstanceInfo(uuid=uuid, name=name)


def vf_netdev(address: str) -> str:
    """The host netdev of the VF at address, which a macvtap sits on.

    Found as plug finds it: under [os_vif_sriov] sysfs_root, which os-vif
    registers in oslo.config's global CONF when os_vif.initialize() loads
    the plugin (nova-compute calls it at start, after reading its
    configuration files), and which the plugin reads through the same CONF.
    sriov-vif's counterpart of nova's pci_utils.get_ifname_by_pci_address,
    which reads the real /sys whatever sysfs_root says.

    :raises VFNetdevNotFound: the VF has no netdev (bound to vfio-pci).
    :raises SriovVifError: os-vif has not loaded the plugin, or there is
        no such VF.
    """
    return discovery.find_vf(_sysfs_root(), address).own_netdev()


def device_xml(vif: osv_vif.VIFBase) -> str:
    """The libvirt device XML of a VIF; a direct VIF's names its vf_netdev.

    :raises SriovVifError: as vf_netdev, or the VIF cannot be expressed.
    """
    netdev = None
    if policy.needs_vf_netdev(vif):
        netdev = vf_netdev(vif.dev_address)
    return libvirt_xml.interface_xml(vif, vf_netdev=netdev)


def _sysfs_root() -> str:
    try:
        return str(cfg.CONF[config.GROUP].sysfs_root)
    except cfg.NoSuchOptError:
        raise exception.SriovVifError(
            reason=f"[{config.GROUP}] is not registered: os-vif has not "
                   f"loaded the plugin '{PLUGIN_NAME}'; call "
                   f"os_vif.initialize() first, as nova-compute does at "
                   f"start") from None


def missing_vf_netdev(error: BaseException) -> str | None:
    """The VF address, when plug or device_xml failed for a missing netdev.

    os_vif.plug wraps what the plugin raised in a PlugException (the
    original in its 'err' argument); device_xml raises VFNetdevNotFound
    itself. nova-compute reports this case, a direct (macvtap) port whose
    VF is bound to vfio-pci, as PciDeviceNotFoundById, which lets it start
    with the instance in error; every other plug failure is a
    VirtualInterfacePlugException.
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
