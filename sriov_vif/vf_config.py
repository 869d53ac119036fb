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

"""The typed client of sriov_vif.privileged, and the unprivileged reads.

The plugin reads and changes VFs only through these functions, which name
a VF by the discovery.VirtualFunction it found in sysfs. Reads (a VF, a
PF's VF table, a VF netdev's MAC and state) need no capability and are
made here, in the caller's process, with sriov_vif.rtnl; every change is
one call of the one privileged entrypoint, change_vfs, whatever it
carries (one VF and its netdev for a plug or an unplug, every journaled
VF of a PF for a restore). The daemon finds the same VFs again under its
own sysfs_root and refuses the call when they are not where this process
found them. Everything is validated here first, so that bad input fails
in the caller's process with a clear error before anything privileged
runs (the privileged side validates again: it trusts no caller). This
side also owns the policy the privileged side knows nothing of: the PF
driver's profile, what to do about attributes the driver cannot apply,
and which attributes need sending at all. It turns the privileged side's
primitive answers into typed states and errors.
"""

from __future__ import annotations

from collections.abc import Sequence
import dataclasses
import os
import struct
import time
from typing import Any
from typing import Final

from oslo_log import log as logging
from pyroute2.netlink.exceptions import NetlinkError

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


@dataclasses.dataclass(frozen=True)
class NetdevChange:
    """A change of the VF's own netdev; None leaves a part as it is."""

    ifname: str
    mac: str | None = None
    up: bool | None = None


@dataclasses.dataclass(frozen=True)
class Change:
    """What one VF is asked: settings, from its current state, and netdev.

    current is the VF's state now (vf_state_now): attributes it already
    has are not sent, the VLAN and rate groups are completed from it, and
    a request the kernel refuses halfway is rolled back to it. The
    netdev change, if any, is made after the VF's settings.
    """

    vf: discovery.VirtualFunction
    settings: VFSettings
    current: VFState
    netdev: NetdevChange | None = None


def where(vf: discovery.VirtualFunction) -> str:
    """How every log line and error names a VF: address, PF, index."""
    return f"VF {vf.pci_address} ({vf.pf.ifname} vf {vf.index})"


def _pf_ifname(vf: discovery.VirtualFunction) -> str:
    if vf.pf.ifname is None:
        raise exception.PhysicalFunctionError(
            address=vf.pci_address, reason="the PF has no netdev")
    return vf_state.validate_ifname(vf.pf.ifname)


def vf_table(pf: discovery.PhysicalFunction) -> dict[int, VFState]:
    """Every VF of a PF, keyed by the VF index the kernel reports.

    Raises VFTableIncomplete rather than return fewer VFs than the PF has
    (kernels that cannot fit a long VF list in one attribute).
    """
    discovery.validate_pci_address(pf.pci_address)
    pf_ifname = vf_state.validate_ifname(pf.ifname)
    try:
        with rtnl.session() as session:
            num_vfs, states = rtnl.read_vfs(session, pf_ifname)
    except (NetlinkError, rtnl.DecodeError, struct.error) as exc:
        raise exception.PFUnusable(
            address=pf.pci_address,
            reason=f"the VF table of {pf_ifname} cannot be read: "
                   f"{exc}") from None
    vfs = {state.index: state for state in states}
    if len(vfs) < num_vfs:
        raise exception.VFTableIncomplete(
            pf_ifname=pf_ifname, count=len(vfs), numvfs=num_vfs)
    return vfs


def vf_states_now(vfs: Sequence[discovery.VirtualFunction]
                  ) -> dict[str, VFState | exception.SriovVifError]:
    """VFs of one PF as it reports them now, read with one request.

    Only these VFs are decoded, so the cost does not grow with the PF's
    VF count. A VF the PF does not report has its error in its place; a
    PF that cannot be read raises.
    """
    pf_ifname = _pf_ifname(vfs[0])
    error = exception.config_error(
        vfs[0].pf.pci_address, pf_ifname,
        [(vf.pci_address, vf.index) for vf in vfs])
    with rtnl.reported_as(error), rtnl.session() as session:
        lookup = rtnl.read_some(session, pf_ifname,
                                [vf.index for vf in vfs])
    num_vfs = lookup.num_vfs
    states: dict[str, VFState | exception.SriovVifError] = {}
    for vf in vfs:
        state = lookup.found.get(vf.index)
        if state is not None:
            states[vf.pci_address] = state
        elif vf.index >= num_vfs:
            states[vf.pci_address] = exception.VFIndexOutOfRange(
                address=vf.pci_address, pf_ifname=pf_ifname,
                vf_index=vf.index, numvfs=num_vfs)
        else:
            states[vf.pci_address] = exception.VFTableIncomplete(
                pf_ifname=pf_ifname, count=lookup.listed(),
                numvfs=num_vfs)
    return states


def vf_state_now(vf: discovery.VirtualFunction) -> VFState:
    """One VF, as its PF reports it now."""
    state = vf_states_now([vf])[vf.pci_address]
    if isinstance(state, exception.SriovVifError):
        raise state
    return state


def _describe(request: VFSettings, fields: tuple[str, ...]) -> str:
    requested = request.requested()
    return ", ".join(f"{name}={requested[name]}" for name in fields
                     if name in requested)


def _refusal_error(refusal: dict[str, Any], vf: discovery.VirtualFunction,
                   driver: str,
                   request: VFSettings) -> exception.SriovVifError:
    code = int(refusal["errno"])
    reason = f"{os.strerror(code)} ({rtnl.errno_name(code)})"
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


def _request(change: Change, profile: pf_drivers.PFDriverProfile,
             driver: str, unsupported_action: str) -> VFSettings:
    """What of change.settings must be sent, validated, groups complete."""
    vf = change.vf
    discovery.validate_pci_address(vf.pci_address)
    vf_index = vf_state.validate_vf_index(vf.index)
    vf_state.validate_settings(change.settings)
    if change.current.index != vf_index:
        raise exception.InvalidVFSetting(
            name="current.index", value=change.current.index,
            reason=f"is the state of another VF than {vf_index}")
    if change.netdev is not None:
        vf_state.validate_ifname(change.netdev.ifname)
        if change.netdev.mac is not None:
            vf_state.validate_mac(change.netdev.mac, allow_zero=False)
        vf_state.validate_optional_bool("up", change.netdev.up)
    changing = change.settings.differing_from(change.current)
    unchanged = sorted(set(change.settings.requested())
                       - set(changing.requested()))
    if unchanged:
        LOG.debug("%(vf)s: not sending %(names)s, already as requested",
                  {"vf": where(vf), "names": ", ".join(unchanged)})
    request = _drop_unsupported(changing, profile, vf, driver,
                                unsupported_action)
    return vf_state.validate_settings(request.complete_with(change.current))


def _item(change: Change, request: VFSettings) -> dict[str, Any]:
    netdev = change.netdev
    return {
        "address": change.vf.pci_address,
        "settings": request.to_primitive(),
        "before": change.current.to_primitive(),
        "netdev": (None if netdev is None else
                   {"ifname": netdev.ifname, "mac": netdev.mac,
                    "up": netdev.up}),
    }


Outcome = VFState | exception.SriovVifError


def _retry_or_error(change: Change, request: VFSettings,
                    refusal: dict[str, Any], driver: str,
                    unsupported_action: str) -> Outcome | VFSettings:
    """After a refusal: the request to send again, or the VF's error."""
    fields = tuple(refusal["fields"])
    if (unsupported_action == "warn" and refusal["vf_present"] and fields
            and int(refusal["errno"]) in rtnl.UNSUPPORTED_ERRNOS):
        LOG.warning("%(vf)s: PF driver %(driver)s refused %(what)s "
                    "(%(err)s): skipped, the rest is applied again, as "
                    "unsupported_attribute_action is 'warn'.",
                    {"vf": where(change.vf), "driver": driver,
                     "what": _describe(request, fields),
                     "err": os.strerror(int(refusal["errno"]))})
        return request.without(*fields)
    return _refusal_error(refusal, change.vf, driver, request)


def _one_by_one(sending: list[tuple[Change, VFSettings]],
                error: exception.SriovVifError,
                unsupported_action: str) -> dict[str, Outcome]:
    """After a call for several VFs failed as a whole: each on its own."""
    if len(sending) == 1:
        return {sending[0][0].vf.pci_address: error}
    LOG.warning("PF %(pf)s: changing %(count)d VFs in one call failed "
                "(%(err)s); changing each on its own.",
                {"pf": sending[0][0].vf.pf.ifname, "count": len(sending),
                 "err": error})
    outcomes: dict[str, Outcome] = {}
    for change, request in sending:
        outcomes.update(apply_changes(
            [dataclasses.replace(change, settings=request)],
            unsupported_action))
    return outcomes


def _new_state(change: Change, request: VFSettings,
               profile: pf_drivers.PFDriverProfile) -> Outcome:
    """The VF's state after the kernel accepted request."""
    if profile.async_mac and request.mac is not None:
        try:
            return _await_mac(change.vf, request.mac)
        except exception.SriovVifError as exc:
            return exc
    return dataclasses.replace(change.current, **request.requested())


def _pending(changes: Sequence[Change], unsupported_action: str
             ) -> tuple[pf_drivers.PFDriverProfile, str,
                        dict[str, tuple[Change, VFSettings]],
                        dict[str, Outcome]]:
    """The PF's driver profile and name, and each VF's request or error."""
    if unsupported_action not in UNSUPPORTED_ACTIONS:
        raise exception.InvalidVFSetting(
            name="unsupported_action", value=unsupported_action,
            reason="must be one of " + ", ".join(UNSUPPORTED_ACTIONS))
    pf = changes[0].vf.pf
    if any(change.vf.pf != pf for change in changes):
        raise exception.InvalidVFSetting(
            name="changes", value=[c.vf.pci_address for c in changes],
            reason=f"are not all VFs of PF {pf.pci_address}")
    _pf_ifname(changes[0].vf)
    driver = pf.driver or pf_drivers.DEFAULT_NAME
    profile = pf_drivers.load(driver)
    pending: dict[str, tuple[Change, VFSettings]] = {}
    errors: dict[str, Outcome] = {}
    for change in changes:
        try:
            pending[change.vf.pci_address] = (change, _request(
                change, profile, driver, unsupported_action))
        except exception.SriovVifError as exc:
            errors[change.vf.pci_address] = exc
    return profile, driver, pending, errors


def apply_changes(changes: Sequence[Change],
                  unsupported_action: str) -> dict[str, Outcome]:
    """Apply changes to VFs of one PF; {VF address: new state or error}.

    Everything goes in one privileged call, one RTM_SETLINK for all the
    VFs (see privileged.change_vfs), whose daemon rolls back a VF the
    kernel refuses halfway. What the PF driver cannot do (its profile, or
    EOPNOTSUPP at runtime) fails that VF before anything changes, or with
    unsupported_action "warn" is logged and skipped, and the VF is sent
    again without it in the next call. A call for several VFs that fails
    as a whole is made again for each VF on its own, so that one VF's
    error never holds back the others.
    """
    if not changes:
        return {}
    profile, driver, pending, outcomes = _pending(changes,
                                                  unsupported_action)
    pf = changes[0].vf.pf
    # Each round settles each VF, or drops one kernel attribute of it.
    for _round in range(len(rtnl.KERNEL_ORDER) + 1):
        sending = [(change, request) for change, request in pending.values()
                   if not request.is_empty() or change.netdev is not None]
        outcomes.update((change.vf.pci_address, change.current)
                        for change, request in pending.values()
                        if request.is_empty() and change.netdev is None)
        pending = {}
        if not sending:
            return outcomes
        try:
            refusals = privileged.change_vfs(
                pf.pci_address, pf.ifname,
                [_item(change, request) for change, request in sending])
        except exception.SriovVifError as exc:
            outcomes.update(_one_by_one(sending, exc, unsupported_action))
            return outcomes
        for (change, request), refusal in zip(sending, refusals,
                                              strict=True):
            after = (_new_state(change, request, profile) if refusal is None
                     else _retry_or_error(change, request, refusal, driver,
                                          unsupported_action))
            if isinstance(after, VFSettings):
                pending[change.vf.pci_address] = (change, after)
            else:
                outcomes[change.vf.pci_address] = after
    for change, _request_sent in pending.values():
        outcomes[change.vf.pci_address] = exception.VFConfigError(
            address=change.vf.pci_address, pf_ifname=pf.ifname,
            vf_index=change.vf.index,
            reason="the PF kept refusing attributes: gave up after "
                   f"{len(rtnl.KERNEL_ORDER) + 1} requests")
    return outcomes


def apply_settings(vf: discovery.VirtualFunction, settings: VFSettings,
                   current: VFState, unsupported_action: str,
                   netdev: NetdevChange | None = None) -> VFState:
    """Apply settings to a VF (and netdev to its own netdev) in one call.

    Returns the VF's new state; raises what apply_changes gives it.
    """
    outcome = apply_changes([Change(vf, settings, current, netdev)],
                            unsupported_action)[vf.pci_address]
    if isinstance(outcome, exception.SriovVifError):
        raise outcome
    return outcome


def netdev_state(vf: discovery.VirtualFunction, ifname: str) -> NetdevState:
    """MAC and up state of the VF's own netdev (a direct VIF's)."""
    ifname = vf_state.validate_ifname(ifname)
    if vf.ifname != ifname:
        raise exception.NotTheVFNetdev(ifname=ifname,
                                       address=vf.pci_address,
                                       actual=vf.ifname or "no netdev")
    try:
        with rtnl.session() as session:
            mac, up = rtnl.read_netdev(session, ifname)
    except NetlinkError as exc:
        raise exception.NetdevConfigError(
            ifname=ifname, address=vf.pci_address,
            reason=rtnl.describe(exc)) from None
    return NetdevState(mac=mac, up=up)
