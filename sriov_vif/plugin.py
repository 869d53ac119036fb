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

"""The os-vif plugin `sriov`: VIFHostDevice and VIFDirect on SR-IOV VFs.

Construction must stay cheap and harmless: os-vif instantiates every
plugin at initialize(), and so does oslo-config-generator, on machines with
no root, no hardware and no network.
"""

from __future__ import annotations

from collections.abc import Sequence
import dataclasses
import threading

from os_vif import objects as osv_objects
from os_vif import plugin as osv_plugin
from os_vif.objects import host_info
from os_vif.objects import vif as osv_vif
from oslo_config import cfg
from oslo_log import log as logging

from sriov_vif import config
from sriov_vif import discovery
from sriov_vif import exception
from sriov_vif import journal
from sriov_vif import objects
from sriov_vif import policy
from sriov_vif import rtnl
from sriov_vif import vf_config
from sriov_vif import vf_state

LOG = logging.getLogger(__name__)

PLUGIN_NAME = "sriov"

SUPPORTED_VIFS = (osv_vif.VIFHostDevice, osv_vif.VIFDirect)
SUPPORTED_PORT_PROFILES = (
    objects.VIFPortProfileSRIOV,
    osv_vif.VIFPortProfile8021Qbh,
    osv_vif.VIFPortProfile8021Qbg,
)


@dataclasses.dataclass
class RestoreResult:
    """VFs put back, and those that could not be, with the reason."""

    restored: list[str] = dataclasses.field(default_factory=list)
    failed: dict[str, str] = dataclasses.field(default_factory=dict)
    # VIF ids asked for by restore(vif_ids=...) that no record names.
    not_found: list[str] = dataclasses.field(default_factory=list)


class SriovPlugin(osv_plugin.PluginBase):
    """Configures the VF behind a VIF on its PF and restores it on unplug."""

    CONFIG_OPTS = config.CONFIG_OPTS

    def __init__(self, config: cfg.ConfigOpts.GroupAttr) -> None:
        super().__init__(config)
        # The journal is opened on first use, not here: os-vif and the
        # config generator build plugins where state_path may not exist.
        self._journal: journal.Journal | None = None
        self._journal_guard = threading.Lock()

    @property
    def state_journal(self) -> journal.Journal:
        with self._journal_guard:
            state_path = self.config.state_path
            if self._journal is None or (
                    self._journal.state_path != state_path):
                self._journal = journal.Journal(state_path)
            return self._journal

    def describe(self) -> osv_objects.host_info.HostPluginInfo:
        profiles = [
            host_info.HostPortProfileInfo(
                profile_object_name=cls.__name__,
                min_version="1.0",
                max_version=cls.VERSION,
            )
            for cls in SUPPORTED_PORT_PROFILES
        ]
        return host_info.HostPluginInfo(
            plugin_name=PLUGIN_NAME,
            vif_info=[
                host_info.HostVIFInfo(
                    vif_object_name=cls.__name__,
                    min_version="1.0",
                    max_version=cls.VERSION,
                    supported_port_profiles=profiles,
                )
                for cls in SUPPORTED_VIFS
            ],
        )

    def plug(self, vif: osv_vif.VIFBase,
             instance_info: osv_objects.instance_info.InstanceInfo) -> None:
        """Configure the VIF's VF; safe to repeat (nova replugs at start)."""
        settings = policy.vf_settings(vif)
        try:
            vf = discovery.find_vf(self.config.sysfs_root, vif.dev_address)
        except exception.NotAVirtualFunction:
            if not policy.passes_whole_device(vif):
                raise
            # neutron's direct-physical ports pass a whole PF: there is
            # no VF, and so nothing on a PF, to configure.
            LOG.info("VIF %(vif)s passes the whole PCI device %(dev)s to "
                     "the guest; nothing to configure on the host.",
                     {"vif": vif.id, "dev": vif.dev_address})
            return
        netdev = vf.own_netdev() if policy.needs_vf_netdev(vif) else None
        owner = journal.Owner(
            vif_id=vif.id,
            instance_uuid=_info(instance_info, "uuid"),
            instance_name=_info(instance_info, "name"),
        )
        with self.state_journal.locked(vf.pci_address):
            self._plug_locked(vif, vf, settings, netdev, owner)

    def _plug_locked(self, vif: osv_vif.VIFBase,
                     vf: discovery.VirtualFunction,
                     settings: vf_state.VFSettings, netdev: str | None,
                     owner: journal.Owner) -> None:
        pf_ifname = _pf_ifname(vf)
        current = vf_config.vf_state_now(vf)
        record = loaded = self.state_journal.load(vf.pci_address)
        fresh = record is None
        if record is None:
            record = journal.VFRecord(
                pci_address=vf.pci_address,
                pf_pci_address=vf.pf.pci_address,
                pf_ifname=pf_ifname,
                vf_index=vf.index,
                owner=owner,
                original=current,
                changed=(),
            )
        elif record.owner.vif_id != owner.vif_id:
            # nova allocated the VF to a new port while the old one was
            # never unplugged (a crash, a lost event): the journal keeps
            # the truly original state and the late unplug of the old VIF
            # becomes a no-op because it no longer owns the VF.
            LOG.warning("%(vf)s was still journaled for VIF %(old)s; "
                        "VIF %(new)s takes it over, keeping the original "
                        "state recorded then.",
                        {"vf": vf_config.where(vf),
                         "old": record.owner.vif_id, "new": owner.vif_id})
        netdev_changed: tuple[str, ...] = ()
        netdev_original = record.netdev
        netdev_change = None
        if netdev is not None:
            netdev_changed = ("mac", "up")
            state = vf_config.netdev_state(vf, netdev)
            if netdev_original is None or netdev_original.ifname != netdev:
                netdev_original = journal.NetdevOriginal(
                    ifname=netdev,
                    mac=_restorable_mac(state.mac, vf, netdev, owner.vif_id),
                    up=state.up)
            wanted_mac = state.mac if settings.mac is None else settings.mac
            if (state.mac, state.up) != (wanted_mac, True):
                netdev_change = vf_config.NetdevChange(
                    ifname=netdev, mac=settings.mac, up=True)
        record = dataclasses.replace(
            record,
            owner=owner,
            pf_ifname=pf_ifname,
            changed=tuple(sorted(
                set(record.changed)
                | set(settings.complete_with(current).requested()))),
            netdev=netdev_original,
            netdev_changed=tuple(sorted(
                set(record.netdev_changed) | set(netdev_changed))),
        )
        # Journal first: a crash after this line is repaired by restore.
        # A replug (nova-compute's start) that finds its record as it
        # would write it writes nothing.
        if record != loaded:
            self.state_journal.save(record)
        try:
            vf_config.apply_settings(
                vf, settings, current,
                unsupported_action=self.config.unsupported_attribute_action,
                netdev=netdev_change)
        except Exception as exc:
            LOG.error("Plug of VIF %(vif)s on %(vf)s failed: %(err)s",
                      {"vif": owner.vif_id, "vf": vf_config.where(vf),
                       "err": exc})
            if fresh:
                self._undo_failed_plug(record)
            raise
        LOG.info("Plugged VIF %(vif)s (instance %(inst)s) on VF %(vf)s "
                 "(%(pf)s vf %(idx)d): %(settings)s",
                 {"vif": owner.vif_id, "inst": owner.instance_uuid,
                  "vf": vf.pci_address, "pf": pf_ifname, "idx": vf.index,
                  "settings": settings.requested()})

    def unplug(self, vif: osv_vif.VIFBase,
               instance_info: osv_objects.instance_info.InstanceInfo) -> None:
        """Put back what plug changed, if this VIF still owns the VF."""
        policy.check_supported(vif)
        address = discovery.validate_pci_address(vif.dev_address)
        with self.state_journal.locked(address):
            record = self.state_journal.load(address)
            if record is not None and record.owner.vif_id == vif.id:
                self._restore_locked(record, release=True)
                return
            if record is None:
                # what a plug killed while writing its record left
                self.state_journal.remove(address)
        if record is not None:
            LOG.warning("Unplug of VIF %(vif)s: VF %(vf)s (%(pf)s vf "
                        "%(idx)d) now belongs to VIF %(owner)s; leaving "
                        "it alone.",
                        {"vif": vif.id, "vf": address,
                         "pf": record.pf_ifname, "idx": record.vf_index,
                         "owner": record.owner.vif_id})
        # nova unplugs with another host's binding after a failed live
        # migration or an evacuation: the VF this VIF really has here is
        # the one the journal names for it.
        owned = self.state_journal.find_vif(vif.id)
        if owned is None:
            LOG.info("Unplug of VIF %(vif)s: no VF has a journal record "
                     "for it (%(vf)s named by the binding; never plugged "
                     "here, or already unplugged); nothing to restore.",
                     {"vif": vif.id, "vf": address})
            return
        LOG.info("Unplug of VIF %(vif)s: the binding names VF %(vf)s, but "
                 "the VIF was plugged on VF %(own)s here; restoring that.",
                 {"vif": vif.id, "vf": address, "own": owned.pci_address})
        self._restore_owned(owned.pci_address, vif.id)

    def _restore_owned(self, address: str, vif_id: str) -> bool:
        """Restore the VF at address if its record is still vif_id's."""
        with self.state_journal.locked(address):
            record = self.state_journal.load(address)
            if record is None or record.owner.vif_id != vif_id:
                LOG.info("VF %(vf)s is no longer journaled for VIF "
                         "%(vif)s; nothing to restore.",
                         {"vf": address, "vif": vif_id})
                return False
            self._restore_locked(record, release=True)
            return True

    def restore(self, addresses: list[str] | None = None,
                vif_ids: Sequence[str] = ()) -> RestoreResult:
        """Put VFs back from the journal after a crash.

        With no addresses and no VIF ids, every journaled VF is restored.
        The owner of an address is not checked: this is the operator's (or
        devstack's) tool for VFs whose instances are gone. A VIF id
        restores the VF journaled for that VIF, if any (else it is listed
        in not_found). A VF that cannot be restored keeps its record and
        does not stop the others. The VFs of one PF go back together: one
        read of the PF, one privileged call carrying one RTM_SETLINK, one
        fsync for their records (see _restore_group).
        """
        records = self.state_journal
        result = RestoreResult()
        for vif_id in vif_ids:
            owned = records.find_vif(vif_id)
            try:
                done = owned is not None and self._restore_owned(
                    owned.pci_address, vif_id)
            except exception.SriovVifError as exc:
                assert owned is not None
                LOG.error("VF %(vf)s could not be restored: %(err)s",
                          {"vf": owned.pci_address, "err": exc})
                result.failed[owned.pci_address] = str(exc)
                continue
            if done:
                assert owned is not None
                result.restored.append(owned.pci_address)
            else:
                LOG.info("VIF %s has no journal record; nothing to "
                         "restore.", vif_id)
                result.not_found.append(vif_id)
        if vif_ids and not addresses:
            return result
        wanted = (records.addresses() if addresses is None
                  else sorted({discovery.validate_pci_address(a)
                               for a in addresses}))
        for first in range(0, len(wanted), rtnl.MAX_VFS_PER_REQUEST):
            self._restore_chunk(
                wanted[first:first + rtnl.MAX_VFS_PER_REQUEST], result)
        return result

    def _restore_chunk(self, addresses: list[str],
                       result: RestoreResult) -> None:
        """Restore the VFs at addresses, with one call per PF among them.

        Every VF's lock is held from the read of its record to the
        removal of it; addresses come sorted, the order every multi-VF
        holder takes locks in.
        """
        records = self.state_journal
        by_pf: dict[str, list[journal.VFRecord]] = {}
        with records.locked_many(addresses) as refused:
            for address, exc in refused.items():
                _failed(result, address, exc)
            held = [address for address in addresses
                    if address not in refused]
            try:
                loaded = records.load_many(held)
            except Exception as exc:  # the state directory itself
                for address in held:
                    _failed(result, address, exc)
                loaded = {}
            for address, record in loaded.items():
                if isinstance(record, Exception):
                    _failed(result, address, record)
                elif record is None:
                    LOG.info("VF %s has no journal record; nothing to "
                             "restore.", address)
                    try:
                        records.remove(address)  # a killed save's leftover
                    except Exception as exc:
                        _failed(result, address, exc)
                else:
                    by_pf.setdefault(record.pf_pci_address, []).append(
                        record)
            for group in by_pf.values():
                self._restore_group(group, result)

    def _restore_group(self, group: list[journal.VFRecord],
                       result: RestoreResult) -> None:
        """Restore journaled VFs of one PF: one read, one privileged call.

        The VFs still where their records say go together, and their
        records are removed with one fsync of the journal's directory.
        Any VF that cannot go with the others (gone, moved, unreadable,
        its netdev vanished, or its own error) is restored on its own
        through _restore_locked, which knows each of those cases, so
        that one VF never holds back the others.
        """
        changes, alone = self._batch_of(group)
        try:
            outcomes = vf_config.apply_changes(
                [change for _record, change in changes],
                unsupported_action="warn")
        except Exception as exc:
            # the daemon itself failed (timed out, died): the same for all
            for record, _change in changes:
                _failed(result, record.pci_address, exc)
            changes, outcomes = [], {}
        done = []
        for record, change in changes:
            outcome = outcomes[record.pci_address]
            if isinstance(outcome, exception.NetdevNotFound
                          | exception.NotTheVFNetdev):
                alone.append(record)  # _restore_locked knows that case
            elif isinstance(outcome, exception.SriovVifError):
                _failed(result, record.pci_address, outcome)
            else:
                done.append((record, change))
        try:
            self.state_journal.remove_many(
                [record.pci_address for record, _change in done])
        except Exception as exc:
            for record, _change in done:
                _failed(result, record.pci_address, exc)
            done = []
        for record, change in done:
            _restored(record, change.vf, change.settings)
            result.restored.append(record.pci_address)
        for record in alone:
            self._restore_alone(record, result)

    def _restore_alone(self, record: journal.VFRecord,
                       result: RestoreResult) -> None:
        try:
            self._restore_locked(record, release=True)
        except Exception as exc:
            # Whatever one VF does (a record, a driver, a vanished PF),
            # the others still get restored.
            _failed(result, record.pci_address, exc)
        else:
            result.restored.append(record.pci_address)

    def _batch_of(self, group: list[journal.VFRecord]) -> tuple[
            list[tuple[journal.VFRecord, vf_config.Change]],
            list[journal.VFRecord]]:
        """The changes that restore VFs of group together, and the rest.

        Found with one sysfs walk of the PF and one read of its VFs; a
        group of one, or a PF that cannot be read that way, is left to
        _restore_locked.
        """
        if len(group) < 2:
            return [], list(group)  # _restore_locked looks it up itself
        try:
            _pf, found = discovery.find_vfs(
                self.config.sysfs_root, group[0].pf_pci_address,
                [record.pci_address for record in group])
            batch = [(record, found[record.pci_address])
                     for record in group if record.pci_address in found
                     and found[record.pci_address].index == record.vf_index]
            states = (vf_config.vf_states_now([vf for _r, vf in batch])
                      if len(batch) > 1 else {})
        except Exception:  # noqa: BLE001  (each VF alone says what it is)
            states = {}
        changes = []
        alone = []
        for record in group:
            state = states.get(record.pci_address)
            if not isinstance(state, vf_state.VFState):
                alone.append(record)
                continue
            vf = found[record.pci_address]
            try:
                changes.append((record, vf_config.Change(
                    vf, self._restore_target(record, release=True), state,
                    self._netdev_target(record, vf))))
            except Exception:  # noqa: BLE001  (and alone it is reported)
                alone.append(record)
        return changes, alone

    def _undo_failed_plug(self, record: journal.VFRecord) -> None:
        LOG.error("Plug of VIF %(vif)s on VF %(vf)s (%(pf)s vf %(idx)d) "
                  "failed; putting the VF back as it was.",
                  {"vif": record.owner.vif_id, "vf": record.pci_address,
                   "pf": record.pf_ifname, "idx": record.vf_index})
        try:
            self._restore_locked(record, release=False)
        except Exception as exc:
            # The record stays: 'sriov-vif restore' or the next plug
            # can still finish the job. The plug error is the one to raise
            # (with its traceback, by os-vif); this one is only reported.
            LOG.error("VF %(vf)s (%(pf)s vf %(idx)d) of VIF %(vif)s could "
                      "not be put back (%(err)s); its journal record is "
                      "kept for 'sriov-vif restore'.",
                      {"vf": record.pci_address, "pf": record.pf_ifname,
                       "idx": record.vf_index, "vif": record.owner.vif_id,
                       "err": exc})

    def _restore_locked(self, record: journal.VFRecord,
                        release: bool) -> None:
        """Restore one VF as its record says, with one privileged call."""
        vf = self._rediscover(record)
        if vf is None:
            # Lowering sriov_numvfs destroyed the VF and its settings; a
            # VF created again starts from the driver's defaults.
            LOG.warning("VF %(vf)s (was %(pf)s vf %(idx)d, VIF %(vif)s) "
                        "no longer exists; nothing to restore, dropping its "
                        "journal record.",
                        {"vf": record.pci_address, "pf": record.pf_ifname,
                         "idx": record.vf_index,
                         "vif": record.owner.vif_id})
            self.state_journal.remove(record.pci_address)
            return
        settings = self._restore_target(record, release)
        netdev = self._netdev_target(record, vf)
        current = vf_config.vf_state_now(vf)
        try:
            vf_config.apply_settings(vf, settings, current,
                                     unsupported_action="warn",
                                     netdev=netdev)
        except (exception.NetdevNotFound, exception.NotTheVFNetdev):
            if netdev is None:
                raise
            LOG.info("%(vf)s: netdev %(dev)s vanished while it was "
                     "being restored; nothing to restore on it.",
                     {"vf": vf_config.where(vf), "dev": netdev.ifname})
            vf_config.apply_settings(vf, settings, current,
                                     unsupported_action="warn")
        self.state_journal.remove(record.pci_address)
        _restored(record, vf, settings)

    def _restore_target(self, record: journal.VFRecord,
                        release: bool) -> vf_state.VFSettings:
        """The settings that put back what the record says plug changed.

        release is True when the VF becomes free: then its MAC follows
        released_vf_mac, so that a MAC kept on a free VF cannot attract
        the traffic of a port that now lives elsewhere.
        """
        target = record.original.restorable()
        if release and self.config.released_vf_mac == "zero":
            target = dataclasses.replace(target, mac=vf_state.ZERO_MAC)
        keep = set(record.changed)
        return target.without(*(
            f.name for f in dataclasses.fields(target) if f.name not in keep))

    @staticmethod
    def _netdev_target(record: journal.VFRecord,
                       vf: discovery.VirtualFunction
                       ) -> vf_config.NetdevChange | None:
        """What to put back on a direct VIF's VF netdev, if it is there."""
        original = record.netdev
        if original is None or not record.netdev_changed:
            return None
        if vf.ifname != original.ifname:
            LOG.info("%(vf)s: netdev %(dev)s is gone (VF rebound?); "
                     "nothing to restore on it.",
                     {"vf": vf_config.where(vf), "dev": original.ifname})
            return None
        return vf_config.NetdevChange(ifname=original.ifname,
                                      mac=original.mac, up=original.up)

    def _rediscover(self, record: journal.VFRecord
                    ) -> discovery.VirtualFunction | None:
        """The VF as sysfs shows it now, or None when it no longer exists.

        Netdev names change across reboots, so the PF is found again; but
        a VF whose index or PF differs from the record is not the VF that
        was journaled, and writing the record onto it would dirty another
        VF: that is refused and the record kept.
        """
        try:
            vf = discovery.find_vf(self.config.sysfs_root, record.pci_address)
        except (exception.PciDeviceNotFound, exception.VFNotEnabled):
            return None
        if (vf.index, vf.pf.pci_address) != (record.vf_index,
                                             record.pf_pci_address):
            raise exception.JournalError(
                path=record.pci_address,
                reason=f"the record is for VF {record.vf_index} of PF "
                       f"{record.pf_pci_address}, but {record.pci_address} "
                       f"is now VF {vf.index} of PF {vf.pf.pci_address}; "
                       f"restore it by hand")
        return vf


def _restorable_mac(mac: str, vf: discovery.VirtualFunction, netdev: str,
                    vif_id: str) -> str | None:
    """A netdev MAC that can be set again, or None to leave the MAC be.

    A VF netdev can report no MAC or the zero MAC; the kernel would refuse
    it back at unplug, leaving a record that can never be cleared.
    """
    try:
        return vf_state.validate_mac(mac, allow_zero=False)
    except exception.InvalidVFSetting:
        LOG.info("%(vf)s, netdev %(dev)s, VIF %(vif)s: netdev MAC %(mac)s "
                 "cannot be set again; unplug will leave the netdev's MAC "
                 "as the VIF set it.",
                 {"vf": vf_config.where(vf), "dev": netdev, "vif": vif_id,
                  "mac": mac})
        return None


def _restored(record: journal.VFRecord, vf: discovery.VirtualFunction,
              settings: vf_state.VFSettings) -> None:
    LOG.info("Restored VF %(vf)s (%(pf)s vf %(idx)d) for VIF %(vif)s: "
             "%(settings)s",
             {"vf": record.pci_address, "pf": vf.pf.ifname,
              "idx": record.vf_index, "vif": record.owner.vif_id,
              "settings": settings.requested()})


def _failed(result: RestoreResult, address: str, exc: Exception) -> None:
    LOG.error("VF %(vf)s could not be restored (its journal record is "
              "kept): %(err)s", {"vf": address, "err": exc})
    result.failed[address] = (
        str(exc) if isinstance(exc, exception.SriovVifError)
        else f"{type(exc).__name__}: {exc}")


def _pf_ifname(vf: discovery.VirtualFunction) -> str:
    if vf.pf.ifname is None:
        raise exception.PhysicalFunctionError(
            address=vf.pci_address, reason="the PF has no netdev")
    return vf.pf.ifname


def _info(instance_info: osv_objects.instance_info.InstanceInfo,
          name: str) -> str | None:
    if instance_info is None or not instance_info.obj_attr_is_set(name):
        return None
    value = getattr(instance_info, name)
    return None if value is None else str(value)
