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

"""Every error sriov-vif raises, in one place.

They subclass os-vif's ExceptionBase so that os_vif.plug/unplug wrap them
the way nova expects, and each message names the device (PCI address,
interface, VF index) and the reason, because an operator reads them in
nova-compute's log without the code at hand.
"""

from collections.abc import Callable
from collections.abc import Sequence
import functools

from os_vif import exception as osv_exception


class SriovVifError(osv_exception.ExceptionBase):
    msg_fmt = "SR-IOV VIF error: %(reason)s"


# Input validation: raised before anything privileged runs.

class InvalidPciAddress(SriovVifError):
    msg_fmt = "Invalid PCI address %(address)r: %(reason)s"


class InvalidVFSetting(SriovVifError):
    msg_fmt = "Invalid VF setting %(name)s=%(value)r: %(reason)s"


class InvalidInterfaceName(SriovVifError):
    msg_fmt = "Invalid interface name %(ifname)r: %(reason)s"


class UnsupportedVIF(SriovVifError):
    msg_fmt = "VIF %(vif_id)s cannot be handled by sriov-vif: %(reason)s"


class InvalidPortBinding(SriovVifError):
    msg_fmt = "Port %(port_id)s has a binding sriov-vif cannot use: %(reason)s"


class InvalidXMLRequest(SriovVifError):
    msg_fmt = "Cannot build libvirt XML for VIF %(vif_id)s: %(reason)s"


# Host discovery (sysfs).

class PciDeviceNotFound(SriovVifError):
    msg_fmt = "PCI device %(address)s not found under %(sysfs_root)s"


class NotAVirtualFunction(SriovVifError):
    msg_fmt = "PCI device %(address)s is not an SR-IOV VF: %(reason)s"


class PhysicalFunctionError(SriovVifError):
    msg_fmt = "PF of VF %(address)s is unusable: %(reason)s"


class PFUnusable(SriovVifError):
    msg_fmt = "PCI device %(address)s is no usable SR-IOV PF: %(reason)s"


class VFNetdevNotFound(SriovVifError):
    msg_fmt = ("VF %(address)s has no host netdev (driver %(driver)s); "
               "a direct (macvtap) VIF needs one")


class VFNotEnabled(SriovVifError):
    msg_fmt = ("PCI device %(address)s is not an enabled VF of PF "
               "%(pf_address)s: %(reason)s")


class SysfsReadError(SriovVifError):
    msg_fmt = "Cannot use sysfs entry %(path)s: %(reason)s"


# Privileged VF configuration (netlink).

# Every error about one VF names its PCI address, its PF and its index.

class VFConfigError(SriovVifError):
    msg_fmt = ("Cannot configure VF %(address)s (%(pf_ifname)s vf "
               "%(vf_index)s): %(reason)s")


class VFsConfigError(SriovVifError):
    # A request for several VFs of a PF failed as a whole: the client
    # then sends each VF on its own, and those errors name the VF.
    msg_fmt = ("Cannot configure %(count)s VFs of PF %(pf_ifname)s "
               "(%(address)s): %(reason)s")


def config_error(pf_address: str, pf_ifname: str | None,
                 vfs: Sequence[tuple[str, int]]
                 ) -> Callable[..., SriovVifError]:
    """The error of a failed read or change of vfs of a PF, but its reason.

    vfs are (PCI address, index): one VF gets a VFConfigError naming it,
    several a VFsConfigError naming the PF. Both sides of privsep raise
    them (see rtnl.reported_as).
    """
    if len(vfs) == 1:
        address, index = vfs[0]
        return functools.partial(VFConfigError, address=address,
                                 pf_ifname=pf_ifname, vf_index=index)
    return functools.partial(VFsConfigError, address=pf_address,
                             pf_ifname=pf_ifname, count=len(vfs))


class VFAttributeRefused(VFConfigError):
    msg_fmt = ("PF %(pf_ifname)s (driver %(driver)s) refused %(attribute)s "
               "for VF %(address)s (vf %(vf_index)s): %(reason)s; the VF "
               "was left as it was")


class VFAttributeUnsupported(VFConfigError):
    msg_fmt = ("PF driver %(driver)s of %(pf_ifname)s cannot set "
               "%(attribute)s on VF %(address)s (vf %(vf_index)s)")


class NetdevNotFound(SriovVifError):
    msg_fmt = "Network device %(ifname)s does not exist"


class NotTheVFNetdev(SriovVifError):
    msg_fmt = ("Refusing to touch network device %(ifname)s: it is not the "
               "netdev of VF %(address)s (sysfs shows %(actual)s)")


class VFIndexOutOfRange(SriovVifError):
    msg_fmt = ("VF %(address)s: index %(vf_index)s does not exist on "
               "%(pf_ifname)s (it has %(numvfs)s VFs)")


class VFTableIncomplete(SriovVifError):
    msg_fmt = ("The kernel reported %(count)s of the %(numvfs)s VFs of "
               "%(pf_ifname)s: the VF list did not fit one netlink "
               "attribute and this kernel does not honour "
               "RTEXT_FILTER_SKIP_STATS for it")


class NetdevConfigError(SriovVifError):
    msg_fmt = ("Cannot change network device %(ifname)s of VF %(address)s: "
               "%(reason)s")


# Journal of original VF state.

class JournalError(SriovVifError):
    msg_fmt = "VF state journal %(path)s: %(reason)s"


# Operator tooling.

class LibvirtUnavailable(SriovVifError):
    msg_fmt = ("libvirt-python is not installed: install sriov-vif with its "
               "'libvirt' extra (needs Debian's libvirt-dev and pkg-config)")
