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

"""The typed, unprivileged client of sriov_vif.privileged.

The plugin reads and changes VFs only through these functions, which name
a VF by the discovery.VirtualFunction it found in sysfs; the daemon finds
the same VF again under its own sysfs_root and answers with where it
found it, which must agree. Everything is validated here first, so that
bad input fails in the caller's process with a clear error before
anything privileged runs (the privileged side validates again: it trusts
no caller). This side also
owns the policy the privileged side knows nothing of: the PF driver's
profile, what to do about attributes the driver cannot apply, and which
attributes need sending at all. It turns the privileged side's primitive
answers into typed states and errors.
"""

from __future__ import annotations

import dataclasses
import errno
import os
import time
from typing import Any
from typing import Final

from oslo_log import log as logging

from sriov_vif import discovery
from sriov_vif import exception
from sriov_vif import pf_drivers
from sriov_vif import privileged
from sriov_vif import rtnl
from sriov_vif import vf_state
from sriov_vif.vf_state import VFSettings
from sriov_vif.vf_state import VFState

LOG = logging.getLogger(__name__)

UNSUPPORTED_ACTIONS: Final = ("fail", "warn")
# A MAC a driver applies asynchronously (i40e resets the VF) shows up
# within a second or two; give up after about five.
MAC_READBACK_ATTEMPTS: Final = 10
MAC_READBACK_INTERVAL: Final = 0.5


@dataclasses.dataclass(frozen=True)
class NetdevState:
    """The parts of a VF's host netdev a direct (macvtap) VIF changes."""

    mac: str
    up: bool


def where(vf: discovery.VirtualFunction) -> str:
    """How every log line and error names a VF: address, PF, index."""
    return f"VF {vf.pci_address} ({vf.pf.ifname} vf {vf.index})"


def _pf_ifname(vf: discovery.VirtualFunction) -> str:
    if vf.pf.ifname is None:
        raise exception.PhysicalFunctionError(
            address=vf.pci_address, reason="the PF has no netdev")
    return vf_state.validate_ifname(vf.pf.ifname)


def _same_vf(vf: discovery.VirtualFunction, answer: dict[str, Any]) -> None:
    """The daemon found the VF where this process did, or sysfs changed."""
    found = (answer["pf_ifname"], answer["vf_index"])
    if found != (vf.pf.ifname, vf.index):
        raise exception.VFConfigError(
            address=vf.pci_address, pf_ifname=vf.pf.ifname,
            vf_index=vf.index,
            reason=f"the privileged daemon finds it as {found[0]} vf "
                   f"{found[1]}: sysfs changed, or the daemon's "
                   "[os_vif_sriov] sysfs_root is not this process's")


def vf_table(pf: discovery.PhysicalFunction) -> dict[int, VFState]:
    """Every VF of a PF, keyed by the VF index the kernel reports.

    Raises VFTableIncomplete rather than return fewer VFs than the PF has
    (kernels that cannot fit a long VF list in one attribute).
    """
    address = discovery.validate_pci_address(pf.pci_address)
    data = privileged.read_vf_table(address)
    pf_ifname = str(data["pf_ifname"])
    num_vfs = int(data["num_vfs"])
    vfs = {}
    for item in data["vfs"]:
        state = VFState.from_primitive(item)
        vfs[state.index] = state
    if len(vfs) < num_vfs:
        raise exception.VFTableIncomplete(
            pf_ifname=pf_ifname, count=len(vfs), numvfs=num_vfs)
    return vfs


def vf_state_now(vf: discovery.VirtualFunction) -> VFState:
    """One VF, as its PF reports it now.

    The daemon decodes only this VF, so the cost does not grow with the
    PF's VF count.
    """
    pf_ifname = _pf_ifname(vf)
    data = privileged.read_vf(discovery.validate_pci_address(vf.pci_address))
    _same_vf(vf, data)
    if data["vf"] is not None:
        return VFState.from_primitive(data["vf"])
    if vf.index >= data["num_vfs"]:
        raise exception.VFIndexOutOfRange(
            address=vf.pci_address, pf_ifname=pf_ifname, vf_index=vf.index,
            numvfs=data["num_vfs"])
    raise exception.VFTableIncomplete(
        pf_ifname=pf_ifname, count=data["listed"], numvfs=data["num_vfs"])


def _describe(request: VFSettings, fields: tuple[str, ...]) -> str:
    requested = request.requested()
    return ", ".join(f"{name}={requested[name]}" for name in fields
                     if name in requested)


def _errno_name(code: int) -> str:
    """EOPNOTSUPP, EINVAL, ...: the names the kernel's sources use."""
    # Linux gives EOPNOTSUPP and ENOTSUP the same number, and Python
    # names it ENOTSUP; drivers and rtnetlink say EOPNOTSUPP.
    if code == errno.EOPNOTSUPP:
        return "EOPNOTSUPP"
    return errno.errorcode.get(code, str(code))


def _refusal_error(refusal: dict[str, Any], vf: discovery.VirtualFunction,
                   driver: str, request: VFSettings) -> Exception:
    code = int(refusal["errno"])
    reason = f"{os.strerror(code)} ({_errno_name(code)})"
    num_vfs = int(refusal["num_vfs"])
    ids = {"address": vf.pci_address, "pf_ifname": vf.pf.ifname,
           "vf_index": vf.index}
    if (not refusal["vf_present"] and vf.index >= num_vfs
            and code not in rtnl.UNSUPPORTED_ERRNOS):
        return exception.VFIndexOutOfRange(numvfs=num_vfs, **ids)
    fields = tuple(refusal["fields"])
    if fields:
        attribute = _describe(request, fields)
    else:
        attribute = ("the request (" + _describe(
            request, tuple(request.requested())) + "), though every "
            "attribute of it read back as requested")
    if code in rtnl.UNSUPPORTED_ERRNOS:
        return exception.VFAttributeUnsupported(
            driver=driver,
            attribute=f"{attribute} (the kernel answered {reason})", **ids)
    return exception.VFAttributeRefused(
        driver=driver, attribute=attribute, reason=reason, **ids)


def _drop_unsupported(request: VFSettings, profile: pf_drivers.PFDriverProfile,
                      vf: discovery.VirtualFunction, driver: str,
                      unsupported_action: str) -> VFSettings:
    for what, fields in profile.cannot_apply(request):
        if unsupported_action == "fail":
            raise exception.VFAttributeUnsupported(
                driver=driver, pf_ifname=vf.pf.ifname, vf_index=vf.index,
                address=vf.pci_address, attribute=what)
        LOG.warning("%(vf)s: PF driver %(driver)s cannot set %(what)s: "
                    "skipping %(fields)s and applying the rest, as "
                    "unsupported_attribute_action is 'warn'.",
                    {"vf": where(vf), "driver": driver, "what": what,
                     "fields": ", ".join(fields)})
        request = request.without(*fields)
    return request


def _await_mac(vf: discovery.VirtualFunction, mac: str) -> VFState:
    state = vf_state_now(vf)
    for _attempt in range(MAC_READBACK_ATTEMPTS - 1):
        if state.mac == mac:
            return state
        time.sleep(MAC_READBACK_INTERVAL)
        state = vf_state_now(vf)
    if state.mac == mac:
        return state
    raise exception.VFConfigError(
        address=vf.pci_address, pf_ifname=vf.pf.ifname, vf_index=vf.index,
        reason=f"the PF accepted MAC {mac} but still reports {state.mac} "
               f"after {MAC_READBACK_ATTEMPTS * MAC_READBACK_INTERVAL:g} s")


def apply_settings(vf: discovery.VirtualFunction, settings: VFSettings,
                   current: VFState, unsupported_action: str) -> VFState:
    """Apply settings to a VF in one netlink request; return its new state.

    current is the VF's state now (vf_state_now): attributes it already
    has are not sent, the VLAN and rate groups are completed from it, and
    a request the kernel refuses halfway is rolled back to it. What the
    PF driver cannot do (its profile, or EOPNOTSUPP at runtime) fails the
    call before anything changes, or with unsupported_action "warn" is
    logged and skipped.
    """
    _pf_ifname(vf)
    address = discovery.validate_pci_address(vf.pci_address)
    vf_index = vf_state.validate_vf_index(vf.index)
    vf_state.validate_settings(settings)
    if current.index != vf_index:
        raise exception.InvalidVFSetting(
            name="current.index", value=current.index,
            reason=f"is the state of another VF than {vf_index}")
    if unsupported_action not in UNSUPPORTED_ACTIONS:
        raise exception.InvalidVFSetting(
            name="unsupported_action", value=unsupported_action,
            reason="must be one of " + ", ".join(UNSUPPORTED_ACTIONS))
    driver = vf.pf.driver or pf_drivers.DEFAULT_NAME
    profile = pf_drivers.load(driver)
    changing = settings.differing_from(current)
    unchanged = sorted(set(settings.requested()) - set(changing.requested()))
    if unchanged:
        LOG.debug("%(vf)s: not sending %(names)s, already as requested",
                  {"vf": where(vf), "names": ", ".join(unchanged)})
    request = _drop_unsupported(changing, profile, vf, driver,
                                unsupported_action)
    request = vf_state.validate_settings(request.complete_with(current))
    # Each round either succeeds, fails, or drops one kernel attribute.
    for _round in range(len(rtnl.KERNEL_ORDER) + 1):
        if request.is_empty():
            return current
        outcome = privileged.apply_vf_settings(
            address, request.to_primitive(), current.to_primitive())
        _same_vf(vf, outcome)
        refusal = outcome["refused"]
        if refusal is None:
            break
        fields = tuple(refusal["fields"])
        if (unsupported_action == "warn" and refusal["vf_present"]
                and fields
                and int(refusal["errno"]) in rtnl.UNSUPPORTED_ERRNOS):
            LOG.warning("%(vf)s: PF driver %(driver)s refused %(what)s "
                        "(%(err)s): skipped, the rest is applied again, as "
                        "unsupported_attribute_action is 'warn'.",
                        {"vf": where(vf), "driver": driver,
                         "what": _describe(request, fields),
                         "err": os.strerror(int(refusal["errno"]))})
            request = request.without(*fields)
            continue
        raise _refusal_error(refusal, vf, driver, request)
    else:
        raise exception.VFConfigError(
            address=vf.pci_address, pf_ifname=vf.pf.ifname,
            vf_index=vf.index,
            reason="the PF kept refusing attributes: gave up after "
                   f"{len(rtnl.KERNEL_ORDER) + 1} requests")
    new_state = dataclasses.replace(current, **request.requested())
    if profile.async_mac and request.mac is not None:
        return _await_mac(vf, request.mac)
    return new_state


def netdev_state(vf: discovery.VirtualFunction, ifname: str) -> NetdevState:
    """MAC and up state of the VF's own netdev (a direct VIF's)."""
    ifname = vf_state.validate_ifname(ifname)
    data = privileged.read_vf_netdev(
        discovery.validate_pci_address(vf.pci_address), ifname)
    return NetdevState(mac=str(data["mac"]), up=bool(data["up"]))


def set_netdev(vf: discovery.VirtualFunction, ifname: str,
               mac: str | None = None, up: bool | None = None) -> None:
    """Set the MAC and/or up state of the VF's netdev; None leaves one be."""
    ifname = vf_state.validate_ifname(ifname)
    if mac is not None:
        vf_state.validate_mac(mac, allow_zero=False)
    if up is not None and not isinstance(up, bool):
        raise exception.InvalidVFSetting(
            name="up", value=up, reason="must be true, false or None")
    privileged.set_vf_netdev(
        discovery.validate_pci_address(vf.pci_address), ifname, mac, up)
