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

"""The privileged entrypoint, and nothing else: this file is the audit.

Every function decorated here runs in the privsep daemon (context
sriov_vif.privsep.vif_plug, CAP_NET_ADMIN only), and oslo.privsep refuses
an entrypoint in any other module: the context's prefix is this module.

There is one entrypoint, change_vfs: everything a plug, an unplug or a
restore changes (VF attributes on the PF, and the MAC and up state of a
direct VIF's VF netdev) goes in one call, one privileged round trip.
Reading needs no capability and is done by the caller (sriov_vif.rtnl,
in nova-compute's process), which journals what it read before it asks
for the change.

The daemon trusts no caller. A caller names a PF and its VFs by PCI
address, and each VF's index in the state it read; the daemon itself
finds the PF netdev and the VF's own netdev in sysfs under its own
configured [os_vif_sriov] sysfs_root, confirms each index by the PF's
virtfn link to the VF there, and refuses anything that is not so: no
entrypoint acts on an interface the caller names (the PF netdev and VF
netdev names the caller sends are what it expects, compared with what
sysfs shows, and the call is refused when they differ), so `lo` or the
uplink cannot be reached. Every other argument is validated again before
any netlink request. Arguments and answers are msgpack primitives.

The netlink work itself is in sriov_vif.rtnl.
"""

from __future__ import annotations

import dataclasses
import errno
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


@dataclasses.dataclass(frozen=True)
class _VF:
    """A VF of the call's PF, confirmed in the daemon's own sysfs."""

    pci_address: str
    index: int
    pf_ifname: str

    def __str__(self) -> str:
        return f"VF {self.pci_address} ({self.pf_ifname} vf {self.index})"


def _confirmed_pf(pf_address: Any, pf_ifname: Any,
                  indexes: dict[str, int]) -> str:
    """The PF's netdev, once each VF is confirmed at its index on it.

    The index of each VF is the caller's (in its "before" state): the
    daemon confirms it with the PF's own virtfn link in sysfs rather
    than work it out again (discovery.confirm_vfs). pf_ifname is the
    netdev the caller found: a daemon whose sysfs shows another (sysfs
    changed, or another sysfs_root) refuses the call.
    """
    pf_address = discovery.validate_pci_address(pf_address)
    expected = vf_state.validate_ifname(pf_ifname)
    found = discovery.confirm_vfs(_sysfs_root(), pf_address, indexes)
    if found != expected:
        raise exception.PFUnusable(
            address=pf_address,
            reason=f"the privileged daemon finds its netdev as {found}, "
                   f"not {expected}: sysfs changed, or the daemon's "
                   "[os_vif_sriov] sysfs_root is not the caller's")
    return expected


def _settings_arg(data: Any) -> VFSettings:
    if not isinstance(data, dict) or not all(
            isinstance(key, str) for key in data):
        raise exception.InvalidVFSetting(
            name="settings", value=data,
            reason="must be a mapping of VF attribute names to values")
    return vf_state.validate_settings(VFSettings.from_primitive(data))


def _state_arg(data: Any) -> VFState:
    """The VF's state before the call; its index names the VF's index."""
    names = [f.name for f in dataclasses.fields(VFState)]
    if not isinstance(data, dict) or sorted(data) != sorted(names):
        raise exception.InvalidVFSetting(
            name="before", value=data,
            reason="must be a VF state with exactly the fields "
                   + ", ".join(names))
    state = VFState.from_primitive(data)
    vf_state.validate_vf_index(state.index)
    vf_state.validate_settings(state.restorable())
    return state


_ITEM_KEYS = ("address", "before", "netdev", "settings")
_NETDEV_KEYS = ("ifname", "mac", "up")


def _items_arg(vfs: Any) -> list[dict[str, Any]]:
    """The VF items of a call: a list of mappings, one per distinct VF."""
    if (not isinstance(vfs, list | tuple)
            or not 0 < len(vfs) <= rtnl.MAX_VFS_PER_REQUEST):
        raise exception.InvalidVFSetting(
            name="vfs", value=vfs,
            reason=f"must be a list of 1 to {rtnl.MAX_VFS_PER_REQUEST} VFs")
    for item in vfs:
        if not isinstance(item, dict) or sorted(item) != list(_ITEM_KEYS):
            raise exception.InvalidVFSetting(
                name="vfs", value=item,
                reason="each VF must be a mapping of exactly "
                       + ", ".join(_ITEM_KEYS))
        discovery.validate_pci_address(item["address"])
    addresses = [item["address"] for item in vfs]
    if len(set(addresses)) != len(addresses):
        raise exception.InvalidVFSetting(
            name="vfs", value=addresses, reason="names a VF twice")
    return list(vfs)


def _netdev_arg(data: Any, vf: _VF
                ) -> tuple[str, str | None, bool | None] | None:
    """(ifname, mac, up) for the VF's own netdev, or None for no change."""
    if data is None:
        return None
    if not isinstance(data, dict) or sorted(data) != list(_NETDEV_KEYS):
        raise exception.InvalidVFSetting(
            name="netdev", value=data,
            reason="must be null or a mapping of exactly "
                   + ", ".join(_NETDEV_KEYS))
    ifname = vf_state.validate_ifname(data["ifname"])
    mac = data["mac"]
    if mac is not None:
        mac = vf_state.validate_mac(mac, allow_zero=False)
    up = vf_state.validate_optional_bool("up", data["up"])
    actual = discovery.vf_netdev(_sysfs_root(), vf.pci_address)
    if actual != ifname:
        raise exception.NotTheVFNetdev(
            ifname=ifname, address=vf.pci_address,
            actual=actual or "no netdev")
    if mac is None and up is None:
        return None
    return ifname, mac, up


def _set_netdev(session: rtnl.Rtnl, vf: _VF,
                ifname: str, mac: str | None, up: bool | None) -> None:
    try:
        rtnl.set_netdev(session, ifname, mac, up)
    except NetlinkError as exc:
        if exc.code == errno.ENODEV:
            raise exception.NetdevNotFound(ifname=ifname) from None
        raise exception.NetdevConfigError(
            ifname=ifname, address=vf.pci_address,
            reason=rtnl.describe(exc)) from None


@privsep.vif_plug.entrypoint
def change_vfs(pf_address: str, pf_ifname: str,
               vfs: list[dict[str, Any]]) -> list[dict[str, Any] | None]:
    """Apply settings to VFs of one PF in one request, then their netdevs.

    Each of vfs is {"address": the VF's PCI address, "settings": what to
    change, "before": the VF's state right before this call (what a
    refused request is rolled back to; the VLAN and rate groups are
    completed from it), "netdev": null, or {"ifname", "mac", "up"} for
    the VF's own netdev (a direct VIF's), changed after the VF's
    settings were accepted}. Every VF must be a VF of the PF at
    pf_address in the daemon's sysfs; everything is checked before the
    first netlink request. Returns one entry per VF, in order: None when
    the kernel accepted its settings, else the refusal after the VF was
    rolled back (see rtnl.apply_vf_request): the caller decides whether
    to retry without the refused attribute.
    """
    items = _items_arg(vfs)
    befores = [_state_arg(item["before"]) for item in items]
    pf_ifname = _confirmed_pf(pf_address, pf_ifname, {
        item["address"]: before.index
        for item, before in zip(items, befores, strict=True)})
    changes = []
    for item, before in zip(items, befores, strict=True):
        vf = _VF(item["address"], before.index, pf_ifname)
        request = vf_state.validate_settings(
            _settings_arg(item["settings"]).complete_with(before))
        changes.append((vf, request, before, _netdev_arg(item["netdev"], vf)))
    requests = [(vf.index, request, before)
                for vf, request, before, _netdev in changes
                if not request.is_empty()]
    refusals: dict[int, dict[str, Any] | None] = {}
    if not requests and all(netdev is None for *_rest, netdev in changes):
        return [None] * len(changes)
    error = exception.config_error(
        pf_address, pf_ifname,
        [(vf.pci_address, vf.index) for vf, *_rest in changes])
    with rtnl.reported_as(error), rtnl.session() as session:
        if requests:
            if LOG.isEnabledFor(logging.DEBUG):  # arguments cost a plug
                for vf, request, _before, _netdev in changes:
                    if not request.is_empty():
                        LOG.debug("%(vf)s: applying %(request)s",
                                  {"vf": vf, "request": request.requested()})
            refusals = dict(zip(
                (index for index, _request, _before in requests),
                rtnl.apply_vf_requests(session, pf_ifname, requests),
                strict=True))
        for vf, _request, _before, netdev in changes:
            if netdev is not None and refusals.get(vf.index) is None:
                _set_netdev(session, vf, *netdev)
    return [refusals.get(vf.index) for vf, *_rest in changes]
