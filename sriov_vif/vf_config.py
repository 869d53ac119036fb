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

"""The typed, unprivileged API the plugin uses to read and change VFs.

Everything is validated here first, so that bad input fails in the
caller's process with a clear error before anything privileged runs (the
privileged side validates again: it trusts no caller). This side also
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

from sriov_vif import exception
from sriov_vif import netlink
from sriov_vif import pf_drivers
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


def read_vf_table(pf_ifname: str) -> dict[int, VFState]:
    """Every VF of a PF, keyed by the VF index the kernel reports.

    Raises VFTableIncomplete rather than return fewer VFs than the PF has
    (kernels that cannot fit a long VF list in one attribute).
    """
    pf_ifname = vf_state.validate_ifname(pf_ifname)
    data = netlink.read_vf_table(pf_ifname)
    num_vfs = int(data["num_vfs"])
    vfs = {}
    for item in data["vfs"]:
        state = VFState.from_primitive(item)
        vfs[state.index] = state
    if len(vfs) < num_vfs:
        raise exception.VFTableIncomplete(
            pf_ifname=pf_ifname, count=len(vfs), numvfs=num_vfs)
    return vfs


def read_vf(pf_ifname: str, vf_index: int) -> VFState:
    """One VF of a PF, as the PF reports it now.

    The daemon decodes only this VF, so the cost does not grow with the
    PF's VF count.
    """
    pf_ifname = vf_state.validate_ifname(pf_ifname)
    vf_index = vf_state.validate_vf_index(vf_index)
    data = netlink.read_vf(pf_ifname, vf_index)
    if data["vf"] is not None:
        return VFState.from_primitive(data["vf"])
    if vf_index >= data["num_vfs"]:
        raise exception.VFIndexOutOfRange(
            pf_ifname=pf_ifname, vf_index=vf_index, numvfs=data["num_vfs"])
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


def _refusal_error(refusal: dict[str, Any], pf_ifname: str, vf_index: int,
                   driver: str, request: VFSettings) -> Exception:
    code = int(refusal["errno"])
    reason = f"{os.strerror(code)} ({_errno_name(code)})"
    num_vfs = int(refusal["num_vfs"])
    if (not refusal["vf_present"] and vf_index >= num_vfs
            and code not in netlink.UNSUPPORTED_ERRNOS):
        return exception.VFIndexOutOfRange(
            pf_ifname=pf_ifname, vf_index=vf_index, numvfs=num_vfs)
    fields = tuple(refusal["fields"])
    if fields:
        attribute = _describe(request, fields)
    else:
        attribute = ("the request (" + _describe(
            request, tuple(request.requested())) + "), though every "
            "attribute of it read back as requested")
    if code in netlink.UNSUPPORTED_ERRNOS:
        return exception.VFAttributeUnsupported(
            driver=driver, pf_ifname=pf_ifname, vf_index=vf_index,
            attribute=f"{attribute} (the kernel answered {reason})")
    return exception.VFAttributeRefused(
        driver=driver, pf_ifname=pf_ifname, vf_index=vf_index,
        attribute=attribute, reason=reason)


def _drop_unsupported(request: VFSettings, profile: pf_drivers.PFDriverProfile,
                      pf_ifname: str, vf_index: int, driver: str,
                      unsupported_action: str) -> VFSettings:
    for what, fields in profile.cannot_apply(request):
        if unsupported_action == "fail":
            raise exception.VFAttributeUnsupported(
                driver=driver, pf_ifname=pf_ifname, vf_index=vf_index,
                attribute=what)
        LOG.warning("PF %(pf)s (driver %(driver)s) cannot set %(what)s on "
                    "VF %(vf)d: skipping %(fields)s and applying the rest, "
                    "as unsupported_attribute_action is 'warn'.",
                    {"pf": pf_ifname, "driver": driver, "what": what,
                     "vf": vf_index, "fields": ", ".join(fields)})
        request = request.without(*fields)
    return request


def _await_mac(pf_ifname: str, vf_index: int, mac: str) -> VFState:
    state = read_vf(pf_ifname, vf_index)
    for _attempt in range(MAC_READBACK_ATTEMPTS - 1):
        if state.mac == mac:
            return state
        time.sleep(MAC_READBACK_INTERVAL)
        state = read_vf(pf_ifname, vf_index)
    if state.mac == mac:
        return state
    raise exception.VFConfigError(
        pf_ifname=pf_ifname, vf_index=vf_index,
        reason=f"the PF accepted MAC {mac} but still reports {state.mac} "
               f"after {MAC_READBACK_ATTEMPTS * MAC_READBACK_INTERVAL:g} s")


def apply_vf_settings(pf_ifname: str, vf_index: int, settings: VFSettings,
                      current: VFState, pf_driver: str,
                      unsupported_action: str) -> VFState:
    """Apply settings to a VF in one netlink request; return its new state.

    current is the VF's state now (read_vf): attributes it already has
    are not sent, the VLAN and rate groups are completed from it, and a
    request the kernel refuses halfway is rolled back to it. What the PF
    driver cannot do (its profile, or EOPNOTSUPP at runtime) fails the
    call before anything changes, or with unsupported_action "warn" is
    logged and skipped.
    """
    pf_ifname = vf_state.validate_ifname(pf_ifname)
    vf_index = vf_state.validate_vf_index(vf_index)
    vf_state.validate_settings(settings)
    if current.index != vf_index:
        raise exception.InvalidVFSetting(
            name="current.index", value=current.index,
            reason=f"is the state of another VF than {vf_index}")
    if unsupported_action not in UNSUPPORTED_ACTIONS:
        raise exception.InvalidVFSetting(
            name="unsupported_action", value=unsupported_action,
            reason="must be one of " + ", ".join(UNSUPPORTED_ACTIONS))
    driver = pf_driver or pf_drivers.DEFAULT_NAME
    profile = pf_drivers.load(driver)
    request = _drop_unsupported(
        settings.differing_from(current), profile, pf_ifname, vf_index,
        driver, unsupported_action)
    request = vf_state.validate_settings(request.complete_with(current))
    # Each round either succeeds, fails, or drops one kernel attribute.
    for _round in range(len(netlink.KERNEL_ORDER) + 1):
        if request.is_empty():
            return current
        outcome = netlink.apply_vf_settings(
            pf_ifname, vf_index, request.to_primitive(),
            current.to_primitive())
        refusal = outcome["refused"]
        if refusal is None:
            break
        fields = tuple(refusal["fields"])
        if (unsupported_action == "warn" and refusal["vf_present"]
                and fields
                and int(refusal["errno"]) in netlink.UNSUPPORTED_ERRNOS):
            LOG.warning("PF %(pf)s (driver %(driver)s) refused %(what)s on "
                        "VF %(vf)d (%(err)s): skipped, the rest is applied "
                        "again, as unsupported_attribute_action is 'warn'.",
                        {"pf": pf_ifname, "driver": driver,
                         "what": _describe(request, fields), "vf": vf_index,
                         "err": os.strerror(int(refusal["errno"]))})
            request = request.without(*fields)
            continue
        raise _refusal_error(refusal, pf_ifname, vf_index, driver, request)
    else:
        raise exception.VFConfigError(
            pf_ifname=pf_ifname, vf_index=vf_index,
            reason="the PF kept refusing attributes: gave up after "
                   f"{len(netlink.KERNEL_ORDER) + 1} requests")
    new_state = dataclasses.replace(current, **request.requested())
    if profile.async_mac and request.mac is not None:
        return _await_mac(pf_ifname, vf_index, request.mac)
    return new_state


def read_netdev(ifname: str) -> NetdevState:
    """MAC and up state of a netdev (the VF's own, for a direct VIF)."""
    ifname = vf_state.validate_ifname(ifname)
    data = netlink.read_netdev(ifname)
    return NetdevState(mac=str(data["mac"]), up=bool(data["up"]))


def set_netdev(ifname: str, mac: str | None = None,
               up: bool | None = None) -> None:
    """Set the MAC and/or up state of a netdev; None leaves one be."""
    ifname = vf_state.validate_ifname(ifname)
    if mac is not None:
        vf_state.validate_mac(mac, allow_zero=False)
    if up is not None and not isinstance(up, bool):
        raise exception.InvalidVFSetting(
            name="up", value=up, reason="must be true, false or None")
    netlink.set_netdev(ifname, mac, up)
