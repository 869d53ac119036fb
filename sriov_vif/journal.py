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

"""The journal of original VF state: what to put back, and for whom.

One JSON file per VF under state_path, named by the VF's PCI address,
written before the first change to the VF, so that a crash of nova-compute
at any point leaves enough on disk to restore the VF: unplug, a replug
after restart and 'sriov-vif restore' all read it. Files are written
atomically (temporary file, fsync, rename, fsync of the directory) and are
readable only by the owner of the directory (the user nova-compute runs
as), since they name instances and MACs.

The same module owns the per-VF lock: a thread lock for the threads of one
nova-compute and an flock for other processes (the CLI), taken in that
order, so that two plugs of one VF never interleave.
"""

from __future__ import annotations

import collections.abc
import contextlib
import dataclasses
import fcntl
import json
import os
import threading
import time
from typing import Any
from typing import Final

from oslo_log import log as logging

from sriov_vif import discovery
from sriov_vif import exception
from sriov_vif import vf_state

LOG = logging.getLogger(__name__)

FORMAT_VERSION: Final = 1
# How long a plug waits for another process (the CLI) holding the VF.
LOCK_TIMEOUT: Final = 120.0
_LOCK_POLL: Final = 0.05
_SUFFIX: Final = ".json"
_LOCK_DIR: Final = "locks"


@dataclasses.dataclass(frozen=True)
class Owner:
    """The VIF and instance a VF was plugged for."""

    vif_id: str
    instance_uuid: str | None = None
    instance_name: str | None = None


@dataclasses.dataclass(frozen=True)
class NetdevOriginal:
    """The VF's own host netdev before a direct VIF changed it."""

    ifname: str
    mac: str | None  # None: the MAC it had cannot be set again
    up: bool


@dataclasses.dataclass(frozen=True)
class VFRecord:
    """What plug changed on one VF and what it was before.

    `changed` lists the VF attributes plug asked to change, written before
    the request: restoring an attribute that the crash kept from changing
    writes back the value it still has, which is harmless.
    """

    pci_address: str
    pf_pci_address: str
    pf_ifname: str
    vf_index: int
    owner: Owner
    original: vf_state.VFState
    changed: tuple[str, ...]
    netdev: NetdevOriginal | None = None
    netdev_changed: tuple[str, ...] = ()

    def to_primitive(self) -> dict[str, Any]:
        return {
            "version": FORMAT_VERSION,
            "pci_address": self.pci_address,
            "pf_pci_address": self.pf_pci_address,
            "pf_ifname": self.pf_ifname,
            "vf_index": self.vf_index,
            "owner": dataclasses.asdict(self.owner),
            "original": self.original.to_primitive(),
            "changed": list(self.changed),
            "netdev": (dataclasses.asdict(self.netdev)
                       if self.netdev is not None else None),
            "netdev_changed": list(self.netdev_changed),
        }

    @classmethod
    def from_primitive(cls, data: dict[str, Any]) -> VFRecord:
        if data.get("version") != FORMAT_VERSION:
            raise ValueError(f"unknown format version {data.get('version')!r}")
        netdev = data.get("netdev")
        return cls(
            pci_address=str(data["pci_address"]),
            pf_pci_address=str(data["pf_pci_address"]),
            pf_ifname=str(data["pf_ifname"]),
            vf_index=vf_state.validate_vf_index(data["vf_index"]),
            owner=Owner(**data["owner"]),
            original=vf_state.VFState.from_primitive(data["original"]),
            changed=tuple(data["changed"]),
            netdev=NetdevOriginal(**netdev) if netdev is not None else None,
            netdev_changed=tuple(data.get("netdev_changed", ())),
        )


@contextlib.contextmanager
def _io_errors(path: str) -> collections.abc.Iterator[None]:
    """An OSError on the journal as an error naming the path.

    nova-compute logs it inside os-vif's "Failed to plug VIF"; a bare
    PermissionError would not say which of the state files is wrong.
    """
    try:
        yield
    except OSError as exc:
        raise exception.JournalError(
            path=path, reason=exc.strerror or str(exc)) from exc


class Journal:
    """VF records under one state directory."""

    def __init__(self, state_path: str) -> None:
        self.state_path = state_path
        self._thread_locks: collections.defaultdict[str, threading.Lock] = (
            collections.defaultdict(threading.Lock))
        self._thread_locks_guard = threading.Lock()

    def _path(self, pci_address: str) -> str:
        # The address was validated by discovery; refuse anything that
        # could still escape the directory.
        discovery.validate_pci_address(pci_address)
        return os.path.join(self.state_path, pci_address + _SUFFIX)

    def _ensure_dir(self, path: str) -> None:
        os.makedirs(path, mode=0o700, exist_ok=True)

    @contextlib.contextmanager
    def locked(self, pci_address: str) -> collections.abc.Iterator[None]:
        """Hold the VF's lock against threads and other processes."""
        discovery.validate_pci_address(pci_address)
        with self._thread_locks_guard:
            thread_lock = self._thread_locks[pci_address]
        with thread_lock:
            lock_dir = os.path.join(self.state_path, _LOCK_DIR)
            with _io_errors(lock_dir):
                self._ensure_dir(lock_dir)
                if os.geteuid() == 0:
                    owner = os.stat(self.state_path)
                    os.chown(lock_dir, owner.st_uid, owner.st_gid)
                fd = os.open(os.path.join(lock_dir, pci_address + ".lock"),
                             os.O_RDWR | os.O_CREAT, 0o600)
            try:
                with _io_errors(lock_dir):
                    self._give_to_directory_owner(fd)
                self._flock(fd, pci_address)
                yield
            finally:
                os.close(fd)

    def _flock(self, fd: int, pci_address: str) -> None:
        """Wait for another process's hold on the VF, politely and not long.

        A blocking flock would stall every green thread of an eventlet
        nova-compute while the CLI restores a VF; polling with sleep
        yields to them, and a stuck holder becomes an error naming it.
        """
        deadline = time.monotonic() + LOCK_TIMEOUT
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise exception.JournalError(
                        path=self.state_path,
                        reason=f"VF {pci_address} stayed locked by another "
                               f"process for {LOCK_TIMEOUT} s") from None
                time.sleep(_LOCK_POLL)

    def load(self, pci_address: str,
             quarantine: bool = True) -> VFRecord | None:
        """The VF's record; None when there is none or it is unreadable.

        An unreadable record is moved aside under a name of its own (never
        deleted: an operator may still want the original MAC in it) and
        logged, because refusing every later plug of the VF would be worse
        than losing the original state of one VF. quarantine=False only
        logs it, for readers that must change nothing (the inventory).
        """
        path = self._path(pci_address)
        try:
            with open(path, encoding="utf-8") as f:
                data = json.load(f)
            record = VFRecord.from_primitive(data)
            if record.pci_address != pci_address:
                raise ValueError(f"it is the record of {record.pci_address}")
            return record
        except FileNotFoundError:
            return None
        except PermissionError as exc:
            # Not corruption: a record another user wrote. Moving it aside
            # would lose the original state of a VF still in use.
            raise exception.JournalError(path=path, reason=str(exc)) from exc
        except (OSError, ValueError, KeyError, TypeError,
                exception.SriovVifError) as exc:
            if not quarantine:
                LOG.error("VF %(vf)s: journal record %(path)s is "
                          "unreadable (%(err)s).",
                          {"vf": pci_address, "path": path, "err": exc})
                return None
            aside = f"{path}.corrupt-{time.strftime('%Y%m%d%H%M%S')}"
            with contextlib.suppress(FileNotFoundError):
                os.replace(path, aside)
            LOG.error("VF %(vf)s: journal record %(path)s is unreadable "
                      "(%(err)s); moved it to %(aside)s. The VF's state "
                      "before its last plug is unknown: check it with "
                      "'sriov-vif inventory'.",
                      {"vf": pci_address, "path": path, "err": exc,
                       "aside": aside})
            return None

    def save(self, record: VFRecord) -> None:
        path = self._path(record.pci_address)
        with _io_errors(path):
            self._ensure_dir(self.state_path)
            tmp = path + ".tmp"
            data = json.dumps(record.to_primitive(), indent=1,
                              sort_keys=True)
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            try:
                os.fchmod(fd, 0o600)
                self._give_to_directory_owner(fd)
                os.write(fd, data.encode("utf-8"))
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(tmp, path)
            self._fsync_dir()

    def _give_to_directory_owner(self, fd: int) -> None:
        """Keep files the CLI writes as root usable by nova-compute.

        nova-compute writes the journal as its own user (under devstack,
        not root); a record an operator's root shell created would
        otherwise lock that user out of the VF's original state.
        """
        if os.geteuid() != 0:
            return
        owner = os.stat(self.state_path)
        os.fchown(fd, owner.st_uid, owner.st_gid)

    def remove(self, pci_address: str) -> None:
        path = self._path(pci_address)
        with _io_errors(path), contextlib.suppress(FileNotFoundError):
            os.unlink(path)
            self._fsync_dir()

    def _fsync_dir(self) -> None:
        fd = os.open(self.state_path, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def find_vif(self, vif_id: str) -> VFRecord | None:
        """The record of the VF plugged for vif_id, or None.

        For an unplug whose binding names another VF (another host's
        binding). Unreadable records are only logged here: the caller
        holds no lock on them. The result is read without the VF's lock:
        load it again under locked() before acting on it.
        """
        for address in self.addresses():
            record = self.load(address, quarantine=False)
            if record is not None and record.owner.vif_id == vif_id:
                return record
        return None

    def addresses(self) -> list[str]:
        """PCI addresses of every VF with a record, sorted."""
        try:
            names = os.listdir(self.state_path)
        except FileNotFoundError:
            return []
        addresses = []
        for name in sorted(names):
            address = name[:-len(_SUFFIX)]
            if not name.endswith(_SUFFIX):
                continue
            try:
                addresses.append(discovery.validate_pci_address(address))
            except exception.InvalidPciAddress:
                LOG.warning("Ignoring %s in the VF state journal %s: not "
                            "named after a VF's PCI address.",
                            name, self.state_path)
        return addresses
