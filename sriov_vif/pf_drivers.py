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

"""What each PF driver can and cannot do to its VFs.

The kernel answers an attribute a driver cannot apply with an errno, but
only after applying the attributes before it; knowing the gaps up front
lets the plugin fail (or warn and skip) before sending anything. The
profiles are registered as entry points in the `sriov_vif.pf_drivers`
namespace, keyed by the PF's driver name (the name of
/sys/bus/pci/devices/<PF>/driver), so a vendor adds one for a new driver
by shipping an entry point, without patching sriov-vif.

The entries below come from the Linux 6.1 drivers' ndo_set_vf_* functions:

* igb: no ndo_set_vf_link_state; igb_ndo_set_vf_bw returns EINVAL for any
  min_tx_rate (and EOPNOTSUPP for any rate on chips other than 82576);
  igb_ndo_set_vf_vlan returns EPROTONOSUPPORT for 802.1ad.
* ixgbe, i40e: EINVAL for any min_tx_rate, EPROTONOSUPPORT for 802.1ad.
  i40e resets the VF on a MAC change, which its VF driver (iavf) picks up
  later: read the MAC back before trusting it.
* ice: min_tx_rate works; 802.1ad only in double-VLAN mode, which depends
  on the firmware: left to the kernel's answer.
* mlx5_core (legacy SR-IOV mode): everything but 802.1ad.
* netdevsim: everything (the kernel test tier's driver).
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Final

from oslo_log import log as logging
from stevedore import driver as stevedore_driver
from stevedore import exception as stevedore_exception

from sriov_vif import vf_state

LOG = logging.getLogger(__name__)

NAMESPACE: Final = "sriov_vif.pf_drivers"
DEFAULT_NAME: Final = "default"

# Attributes the kernel sets as one struct: a driver that refuses one
# member refuses the request for all of them. Dropping only the protocol
# of an 802.1ad request would tag the VF's traffic 802.1Q instead, which
# is a different network, not a degraded one.
VLAN_GROUP: Final = ("vlan", "qos", "vlan_proto")


@dataclasses.dataclass(frozen=True)
class PFDriverProfile:
    """The VF features of one PF driver that the kernel cannot tell us.

    unsupported: VFSettings attribute names the driver cannot change (a
    request for the value the VF already has is never sent, so asking an
    igb VF for link_state "auto" is fine).
    vlan_protocols: the VLAN protocols the driver accepts for a VF.
    async_mac: the driver applies a MAC change after answering, so the
    MAC must be read back until it shows up.
    """

    name: str
    unsupported: frozenset[str] = frozenset()
    vlan_protocols: frozenset[str] = frozenset(vf_state.VLAN_PROTOCOLS)
    async_mac: bool = False

    def __post_init__(self) -> None:
        known = {f.name for f in dataclasses.fields(vf_state.VFSettings)}
        unknown = sorted(set(self.unsupported) - known)
        if unknown:
            raise ValueError(
                f"PF driver profile {self.name}: unknown VF attributes "
                f"{unknown}")
        bad = sorted(set(self.vlan_protocols) - set(vf_state.VLAN_PROTOCOLS))
        if bad:
            raise ValueError(
                f"PF driver profile {self.name}: unknown VLAN protocols "
                f"{bad}")

    def cannot_apply(
            self, request: vf_state.VFSettings,
    ) -> list[tuple[str, tuple[str, ...]]]:
        """What of request this driver cannot do, in VFSettings order.

        Each entry is (what to tell the operator, the attributes to drop
        to skip it).
        """
        refused: list[tuple[str, tuple[str, ...]]] = []
        requested = request.requested()
        for name, value in requested.items():
            if name in self.unsupported:
                group = VLAN_GROUP if name in VLAN_GROUP else (name,)
                refused.append((f"{name}={value}", group))
        proto = requested.get("vlan_proto")
        if (proto is not None and proto not in self.vlan_protocols
                and "vlan_proto" not in self.unsupported):
            refused.append((f"vlan_proto={proto}", VLAN_GROUP))
        return refused


_8021Q_ONLY: Final = frozenset({"802.1Q"})

# Unknown drivers: assume nothing is missing (the kernel's answer and the
# rollback cover that) but verify the MAC by reading it back.
DEFAULT: Final = PFDriverProfile(name=DEFAULT_NAME, async_mac=True)
IGB: Final = PFDriverProfile(
    name="igb", unsupported=frozenset({"link_state", "min_tx_rate"}),
    vlan_protocols=_8021Q_ONLY)
IXGBE: Final = PFDriverProfile(
    name="ixgbe", unsupported=frozenset({"min_tx_rate"}),
    vlan_protocols=_8021Q_ONLY)
I40E: Final = PFDriverProfile(
    name="i40e", unsupported=frozenset({"min_tx_rate"}),
    vlan_protocols=_8021Q_ONLY, async_mac=True)
ICE: Final = PFDriverProfile(name="ice")
MLX5_CORE: Final = PFDriverProfile(
    name="mlx5_core", vlan_protocols=_8021Q_ONLY)
NETDEVSIM: Final = PFDriverProfile(name="netdevsim")


@functools.lru_cache(maxsize=64)
def load(driver_name: str) -> PFDriverProfile:
    """The profile registered for a PF driver, else the default one."""
    name = driver_name or DEFAULT_NAME
    try:
        manager: stevedore_driver.DriverManager[PFDriverProfile] = (
            stevedore_driver.DriverManager(
                NAMESPACE, name, invoke_on_load=False))
    except stevedore_exception.NoMatches:
        if name != DEFAULT_NAME:
            LOG.info("No VF profile for PF driver %(driver)s: using the "
                     "default one.", {"driver": name})
            return load(DEFAULT_NAME)
        raise
    profile: object = manager.driver
    if not isinstance(profile, PFDriverProfile):
        raise TypeError(
            f"entry point {name!r} in {NAMESPACE} is "
            f"{type(profile).__name__}, not a PFDriverProfile")
    return profile
