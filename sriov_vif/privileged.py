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

"""The privileged entrypoints, and nothing else: this file is the audit.

Every function decorated here runs in the privsep daemon (context
sriov_vif.privsep.vif_plug, CAP_NET_ADMIN only), and oslo.privsep refuses
an entrypoint in any other module: the context's prefix is this module.

The daemon trusts no caller. A caller names a VF (or, to read a VF
table, a PF) by its PCI address only; the daemon itself finds the PF
netdev, the VF index and the VF's own netdev in sysfs under its own
configured [os_vif_sriov] sysfs_root, and refuses anything that is not
there: no entrypoint acts on an interface the caller names, so `lo` or
the uplink cannot be reached. Every other argument is validated again
before any netlink request. Arguments and answers are msgpack primitives.

The netlink work itself is in sriov_vif.rtnl (no privilege needed to
read it: it is the codec and a blocking transport).
"""

from __future__ import annotations

from collections.abc import Iterator
import contextlib
import dataclasses
import errno
import os
import struct
from typing import Any

from oslo_config import cfg
from oslo_log import log as logging
from pyroute2.netlink.exceptions import NetlinkError

from sriov_vif import config
from sriov_vif import discovery
from sriov_vif import exception
from sriov_vif import privsep
from sriov_vif import rtnl
from sriov_vif import vf_state
from sriov_vif.vf_state import VFSettings
from sriov_vif.vf_state import VFState

LOG = logging.getLogger(__name__)

# The daemon reads [os_vif_sriov] from its own configuration files (the
# deployment passes nova's); os-vif registers the same options in
# nova-compute, which is harmless.
cfg.CONF.register_opts(config.CONFIG_OPTS, group=config.GROUP)


def _sysfs_root() -> str:
    return str(cfg.CONF[config.GROUP].sysfs_root)


def _where(vf: discovery.VirtualFunction) -> str:
    return f"VF {vf.pci_address} ({vf.pf.ifname} vf {vf.index})"


def _resolve_vf(vf_address: Any) -> tuple[discovery.VirtualFunction, str]:
    """The VF at vf_address as sysfs shows it now, and its PF netdev."""
    vf = discovery.find_vf(_sysfs_root(),
                           discovery.validate_pci_address(vf_address))
    assert vf.pf.ifname is not None  # find_vf refuses a PF without one
    return vf, vf_state.validate_ifname(vf.pf.ifname)


def _resolve_vf_netdev(vf_address: Any, ifname: Any
                       ) -> tuple[discovery.VirtualFunction, str]:
    """The VF and its own netdev, which must be the one the caller knows."""
    ifname = vf_state.validate_ifname(ifname)
    vf, _pf_ifname = _resolve_vf(vf_address)
    if vf.ifname != ifname:
        raise exception.NotTheVFNetdev(
            ifname=ifname, address=vf.pci_address,
            actual=vf.ifname or "no netdev")
    return vf, ifname


@contextlib.contextmanager
def _vf_errors(vf: discovery.VirtualFunction) -> Iterator[None]:
    """Any failure below as an error naming the VF, its PF and index."""
    try:
        yield
    except exception.SriovVifError:
        raise
    except NetlinkError as exc:
        reason = (rtnl.missing_cap_reason() if exc.code == errno.EPERM
                  else f"{os.strerror(exc.code)} "
                       f"({errno.errorcode.get(exc.code, exc.code)})")
        raise exception.VFConfigError(
            address=vf.pci_address, pf_ifname=vf.pf.ifname,
            vf_index=vf.index, reason=reason) from None
    except (rtnl.RollbackFailed, rtnl.DecodeError, struct.error) as exc:
        raise exception.VFConfigError(
            address=vf.pci_address, pf_ifname=vf.pf.ifname,
            vf_index=vf.index, reason=str(exc)) from None


def _settings_arg(data: Any) -> VFSettings:
    if not isinstance(data, dict) or not all(
            isinstance(key, str) for key in data):
        raise exception.InvalidVFSetting(
            name="settings", value=data,
            reason="must be a mapping of VF attribute names to values")
    return vf_state.validate_settings(VFSettings.from_primitive(data))


def _state_arg(data: Any, vf_index: int) -> VFState:
    names = [f.name for f in dataclasses.fields(VFState)]
    if not isinstance(data, dict) or sorted(data) != sorted(names):
        raise exception.InvalidVFSetting(
            name="before", value=data,
            reason="must be a VF state with exactly the fields "
                   + ", ".join(names))
    state = VFState.from_primitive(data)
    if vf_state.validate_vf_index(state.index) != vf_index:
        raise exception.InvalidVFSetting(
            name="before.index", value=state.index,
            reason=f"is the state of another VF than {vf_index}")
    vf_state.validate_settings(state.restorable())
    return state


def _up_arg(up: Any) -> bool | None:
    if up is not None and not isinstance(up, bool):
        raise exception.InvalidVFSetting(
            name="up", value=up, reason="must be true, false or null")
    return up


@privsep.vif_plug.entrypoint
def read_vf_table(pf_address: str) -> dict[str, Any]:
    """{"pf_ifname", "num_vfs", "vfs": [VFState primitives]} of a PF."""
    pf = discovery.find_pf(_sysfs_root(),
                           discovery.validate_pci_address(pf_address))
    pf_ifname = vf_state.validate_ifname(pf.ifname)
    try:
        with rtnl.session() as session:
            num_vfs, vfs = rtnl.read_vfs(session, pf_ifname)
    except (NetlinkError, rtnl.DecodeError, struct.error) as exc:
        raise exception.PFUnusable(
            address=pf.pci_address,
            reason=f"the VF table of {pf_ifname} cannot be read: "
                   f"{exc}") from None
    return {"pf_ifname": pf_ifname, "num_vfs": num_vfs,
            "vfs": [vf.to_primitive() for vf in vfs]}


@privsep.vif_plug.entrypoint
def read_vf(vf_address: str) -> dict[str, Any]:
    """{"pf_ifname", "vf_index", "num_vfs", "listed", "vf": state or None}."""
    vf, pf_ifname = _resolve_vf(vf_address)
    with _vf_errors(vf), rtnl.session() as session:
        num_vfs, listed, state = rtnl.read_one(session, pf_ifname, vf.index)
    return {"pf_ifname": pf_ifname, "vf_index": vf.index,
            "num_vfs": num_vfs, "listed": listed,
            "vf": state.to_primitive() if state is not None else None}


@privsep.vif_plug.entrypoint
def apply_vf_settings(vf_address: str, settings: dict[str, Any],
                      before: dict[str, Any]) -> dict[str, Any]:
    """Apply settings to one VF in one request; undo it if refused.

    before is the VF's state right before this request, what a refused
    request is rolled back to; the VLAN and rate groups are completed
    from it. Returns {"pf_ifname", "vf_index", "refused": None} when the
    kernel accepted the request, else "refused" describes the refusal
    after the VF was rolled back: the caller decides whether to retry
    without the refused attribute.
    """
    vf, pf_ifname = _resolve_vf(vf_address)
    request = _settings_arg(settings)
    state_before = _state_arg(before, vf.index)
    request = vf_state.validate_settings(request.complete_with(state_before))
    answer: dict[str, Any] = {"pf_ifname": pf_ifname, "vf_index": vf.index,
                              "refused": None}
    if request.is_empty():
        return answer
    LOG.debug("%(vf)s: applying %(request)s",
              {"vf": _where(vf), "request": request.requested()})
    with _vf_errors(vf), rtnl.session() as session:
        answer["refused"] = rtnl.apply_vf_request(
            session, pf_ifname, vf.index, request, state_before)
    return answer


@privsep.vif_plug.entrypoint
def read_vf_netdev(vf_address: str, ifname: str) -> dict[str, Any]:
    """{"mac", "up"} of the VF's own netdev, which must be ifname."""
    vf, ifname = _resolve_vf_netdev(vf_address, ifname)
    with _vf_errors(vf), rtnl.session() as session:
        mac, up = rtnl.read_netdev(session, ifname)
    return {"mac": mac, "up": up}


@privsep.vif_plug.entrypoint
def set_vf_netdev(vf_address: str, ifname: str, mac: str | None,
                  up: bool | None) -> None:
    """Set the MAC and/or up state of the VF's own netdev, ifname."""
    if mac is not None:
        mac = vf_state.validate_mac(mac, allow_zero=False)
    up = _up_arg(up)
    vf, ifname = _resolve_vf_netdev(vf_address, ifname)
    if mac is None and up is None:
        return
    try:
        with rtnl.session() as session:
            rtnl.set_netdev(session, ifname, mac, up)
    except NetlinkError as exc:
        if exc.code == errno.ENODEV:
            raise exception.NetdevNotFound(ifname=ifname) from None
        reason = (rtnl.missing_cap_reason() if exc.code == errno.EPERM
                  else f"{os.strerror(exc.code)} "
                       f"({errno.errorcode.get(exc.code, exc.code)})")
        raise exception.NetdevConfigError(
            ifname=ifname, address=vf.pci_address, reason=reason) from None
