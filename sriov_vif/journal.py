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
import errno
import fcntl
import json
import os
import secrets
import stat
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
_TMP_SUFFIX: Final = ".tmp"
# A record is under 2 KiB; anything much larger is not one.
MAX_RECORD_SIZE: Final = 64 * 1024
_DIR_FLAGS: Final = (os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
# O_NONBLOCK: a FIFO planted under a record's name must not hang a reader.
_FILE_FLAGS: Final = os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC


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
    def from_primitive(cls, data: Any) -> VFRecord:
        """The record in data; ValueError for anything that is not one."""
        if not isinstance(data, dict):
            raise ValueError(f"it is a JSON {type(data).__name__}, not an "
                             "object")
        if data.get("version") != FORMAT_VERSION:
            raise ValueError(f"unknown format version {data.get('version')!r}")
        owner, original = data["owner"], data["original"]
        netdev = data.get("netdev")
        for what, value in (("owner", owner), ("original", original)):
            if not isinstance(value, dict):
                raise ValueError(f"its {what} is not an object")
        if netdev is not None and not isinstance(netdev, dict):
            raise ValueError("its netdev is not an object")
        if not isinstance(owner.get("vif_id"), str) or not all(
                isinstance(value, str | None) for value in owner.values()):
            raise ValueError("its owner is not a VIF id and instance")
        changed = _names(data["changed"], "changed")
        return cls(
            pci_address=discovery.validate_pci_address(data["pci_address"]),
            pf_pci_address=discovery.validate_pci_address(
                data["pf_pci_address"]),
            pf_ifname=vf_state.validate_ifname(data["pf_ifname"]),
            vf_index=vf_state.validate_vf_index(data["vf_index"]),
            owner=Owner(**owner),
            original=vf_state.VFState.from_primitive(original),
            changed=changed,
            netdev=NetdevOriginal(**netdev) if netdev is not None else None,
            netdev_changed=_names(data.get("netdev_changed", []),
                                  "netdev_changed"),
        )


def _names(value: Any, what: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(
            isinstance(item, str) for item in value):
        raise ValueError(f"its {what} is not a list of names")
    return tuple(value)


@contextlib.contextmanager
def _io_errors(path: str) -> collections.abc.Iterator[None]:
    """An OSError on the journal as an error naming the path.

    nova-compute logs it inside os-vif's "Failed to plug VIF"; a bare
    PermissionError would not say which of the state files is wrong.
    """
    try:
        yield
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            reason = ("is a symbolic link; the journal follows none "
                      "inside state_path")
        elif exc.errno == errno.ENOTDIR:
            # O_DIRECTORY | O_NOFOLLOW on a symlink to a directory
            reason = ("is not a directory (the journal follows no "
                      "symbolic link inside state_path)")
        else:
            reason = exc.strerror or str(exc)
        raise exception.JournalError(path=path, reason=reason) from exc


def _write_all(fd: int, data: bytes) -> None:
    """Write every byte or raise: os.write may write fewer than asked."""
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        if written <= 0:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        view = view[written:]


def make_state_dir(path: str) -> None:
    """Create path and any missing parent with mode 0700, as this user.

    os.makedirs gives only the last component the mode asked for; every
    component created here is private, since the records name instances
    and MACs.
    """
    missing = []
    head = os.path.abspath(path)
    while not os.path.isdir(head):
        missing.append(head)
        parent = os.path.dirname(head)
        if parent == head:
            break
        head = parent
    for component in reversed(missing):
        with contextlib.suppress(FileExistsError):
            os.mkdir(component, 0o700)


class Journal:
    """VF records under one state directory.

    Every file operation inside state_path is made relative to a
    descriptor of the directory, with O_NOFOLLOW, and checked with fstat
    before it is used; ownership and modes are set on descriptors, never
    by path. state_path belongs to nova-compute's user while the CLI may
    run as root: a symlink or hard link that user plants there must never
    make root change, chown or truncate another file.
    """

    def __init__(self, state_path: str) -> None:
        self.state_path = state_path
        self._thread_locks: collections.defaultdict[str, threading.Lock] = (
            collections.defaultdict(threading.Lock))
        self._thread_locks_guard = threading.Lock()

    def _name(self, pci_address: str) -> str:
        # The address was validated by discovery; refuse anything that
        # could still escape the directory.
        return discovery.validate_pci_address(pci_address) + _SUFFIX

    def _path(self, *names: str) -> str:
        """Where an entry of state_path is, for errors and logs."""
        return os.path.join(self.state_path, *names)

    @contextlib.contextmanager
    def _directory(self, create: bool) -> collections.abc.Iterator[
            int | None]:
        """A descriptor of state_path; None if it is missing and not created.

        state_path itself is configuration (its parent belongs to root or
        the deployment); what lies inside it is not trusted.
        """
        with _io_errors(self.state_path):
            try:
                fd = os.open(self.state_path, _DIR_FLAGS)
            except FileNotFoundError:
                if not create:
                    yield None
                    return
                make_state_dir(self.state_path)
                fd = os.open(self.state_path, _DIR_FLAGS)
        try:
            yield fd
        finally:
            os.close(fd)

    @contextlib.contextmanager
    def locked(self, pci_address: str) -> collections.abc.Iterator[None]:
        """Hold the VF's lock against threads and other processes."""
        with contextlib.ExitStack() as held:
            with self._lock_dir() as (locks_fd, owner):
                self._hold(held, locks_fd, owner, pci_address)
            yield

    @contextlib.contextmanager
    def locked_many(self, pci_addresses: collections.abc.Sequence[str]
                    ) -> collections.abc.Iterator[dict[str, Exception]]:
        """Hold the locks of several VFs; yields those that could not be.

        For a restore of many VFs: the lock directory is opened once for
        all of them, not once per VF. Locks are taken in the order given
        (sorted, as every holder of several takes them). A VF whose lock
        cannot be taken is yielded with its error, and does not keep the
        others from being held.
        """
        refused: dict[str, Exception] = {}
        with contextlib.ExitStack() as held:
            try:
                with self._lock_dir() as (locks_fd, owner):
                    for address in pci_addresses:
                        one = contextlib.ExitStack()
                        try:
                            self._hold(one, locks_fd, owner, address)
                        except Exception as exc:  # noqa: BLE001 (per VF)
                            one.close()
                            refused[address] = exc
                        else:
                            held.enter_context(one)
            except exception.JournalError as exc:  # the directories
                refused.update((address, exc) for address in pci_addresses
                               if address not in refused)
            yield refused

    @contextlib.contextmanager
    def _lock_dir(self) -> collections.abc.Iterator[
            tuple[int, os.stat_result]]:
        """The lock directory's descriptor and state_path's owner."""
        lock_dir = self._path(_LOCK_DIR)
        with self._directory(create=True) as dir_fd:
            assert dir_fd is not None
            owner = os.fstat(dir_fd)
            with _io_errors(lock_dir):
                locks_fd = self._open_lock_dir(dir_fd)
        try:
            with _io_errors(lock_dir):
                self._give_to_directory_owner(locks_fd, owner)
            yield locks_fd, owner
        finally:
            os.close(locks_fd)

    def _hold(self, held: contextlib.ExitStack, locks_fd: int,
              owner: os.stat_result, pci_address: str) -> None:
        """Take the VF's thread lock, then its flock; held releases both.

        The flock's descriptor is closed (releasing it) before the thread
        lock is released.
        """
        name = self._name(pci_address)[:-len(_SUFFIX)] + ".lock"
        lock_path = self._path(_LOCK_DIR, name)
        with self._thread_locks_guard:
            thread_lock = self._thread_locks[pci_address]
        held.enter_context(thread_lock)
        with _io_errors(lock_path):
            fd = os.open(name, _FILE_FLAGS | os.O_RDWR | os.O_CREAT, 0o600,
                         dir_fd=locks_fd)
        held.callback(os.close, fd)
        with _io_errors(lock_path):
            st = self._check_file(fd, lock_path, owner)
            self._give_to_directory_owner(fd, owner, st)
        self._flock(fd, pci_address, lock_path)

    @staticmethod
    def _open_lock_dir(dir_fd: int) -> int:
        """A descriptor of the lock directory, made on first use.

        Opened first and made only when missing: it exists on every
        lock but the first, and each system call counts in a plug.
        """
        flags = _DIR_FLAGS | os.O_NOFOLLOW
        try:
            return os.open(_LOCK_DIR, flags, dir_fd=dir_fd)
        except FileNotFoundError:
            with contextlib.suppress(FileExistsError):
                os.mkdir(_LOCK_DIR, 0o700, dir_fd=dir_fd)
            return os.open(_LOCK_DIR, flags, dir_fd=dir_fd)

    def _flock(self, fd: int, pci_address: str, lock_path: str) -> None:
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
                        path=lock_path,
                        reason=f"VF {pci_address} stayed locked by another "
                               f"process for {LOCK_TIMEOUT} s") from None
                time.sleep(_LOCK_POLL)

    def _check_file(self, fd: int, path: str,
                    owner: os.stat_result) -> os.stat_result:
        """Refuse anything but a plain file of ours or the directory's.

        O_NOFOLLOW stops symlinks; a hard link to a file of root's (or
        anyone's) would still open, and is refused here before it is
        read, written or chowned. Returns the file's stat.
        """
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise exception.JournalError(path=path,
                                         reason="is not a regular file")
        if st.st_nlink != 1 or st.st_uid not in (os.geteuid(),
                                                   owner.st_uid):
            raise exception.JournalError(
                path=path,
                reason=f"has {st.st_nlink} links and belongs to uid "
                       f"{st.st_uid}: not a file the journal made")
        return st

    def load(self, pci_address: str,
             quarantine: bool = True) -> VFRecord | None:
        """The VF's record; None when there is none or it is unreadable.

        An unreadable record (not JSON, not a record, not this VF's, not a
        plain file) is moved aside under a name of its own (never deleted:
        an operator may still want the original MAC in it) and logged,
        because refusing every later plug of the VF would be worse than
        losing the original state of one VF. quarantine=False only logs
        it, for readers that must change nothing (the inventory).
        """
        name = self._name(pci_address)
        with self._directory(create=False) as dir_fd:
            if dir_fd is None:
                return None
            return self._load_at(dir_fd, name, pci_address, quarantine)

    def load_many(self, pci_addresses: collections.abc.Sequence[str]
                  ) -> dict[str, VFRecord | None | Exception]:
        """Each VF's record as load() gives it, or the error it raised.

        For a restore of many VFs, whose locks the caller holds: the
        state directory is opened once for all of them.
        """
        loaded: dict[str, VFRecord | None | Exception] = {}
        with self._directory(create=False) as dir_fd:
            for address in pci_addresses:
                if dir_fd is None:
                    loaded[address] = None
                    continue
                try:
                    loaded[address] = self._load_at(
                        dir_fd, self._name(address), address, True)
                except Exception as exc:  # noqa: BLE001  (per VF)
                    loaded[address] = exc
        return loaded

    def _load_at(self, dir_fd: int, name: str, pci_address: str,
                 quarantine: bool) -> VFRecord | None:
        """load()'s work on record name in the directory open at dir_fd."""
        path = self._path(name)
        try:
            record = self._read(dir_fd, name, path)
            if record.pci_address != pci_address:
                raise ValueError(f"it is the record of {record.pci_address}")
            return record
        except FileNotFoundError:
            return None
        except PermissionError as exc:
            # Not corruption: a record another user wrote. Moving it
            # aside would lose the original state of a VF still in use.
            raise exception.JournalError(path=path, reason=str(exc)) from exc
        except Exception as exc:  # any unreadable record, see load()
            self._unreadable(dir_fd, name, path, pci_address,
                             _describe_error(exc), quarantine)
            return None

    def _read(self, dir_fd: int, name: str, path: str) -> VFRecord:
        fd = os.open(name, _FILE_FLAGS | os.O_RDONLY, dir_fd=dir_fd)
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                raise ValueError("it is not a regular file")
            if st.st_size > MAX_RECORD_SIZE:
                raise ValueError(f"it is {st.st_size} bytes, more than a "
                                 f"record ever is ({MAX_RECORD_SIZE})")
            chunks = []
            size = 0
            while size <= MAX_RECORD_SIZE:
                chunk = os.read(fd, MAX_RECORD_SIZE + 1 - size)
                if not chunk:
                    break
                chunks.append(chunk)
                size += len(chunk)
            data = b"".join(chunks)
        finally:
            os.close(fd)
        if len(data) > MAX_RECORD_SIZE:
            raise ValueError("it grew past the size of any record")
        return VFRecord.from_primitive(json.loads(data.decode("utf-8")))

    def _unreadable(self, dir_fd: int, name: str, path: str,
                    pci_address: str, error: str, quarantine: bool) -> None:
        if not quarantine:
            LOG.error("VF %(vf)s: journal record %(path)s is "
                      "unreadable (%(err)s).",
                      {"vf": pci_address, "path": path, "err": error})
            return
        aside = (f"{name}.corrupt-{time.strftime('%Y%m%d%H%M%S')}-"
                 f"{secrets.token_hex(4)}")
        try:
            os.rename(name, aside, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
            os.fsync(dir_fd)
        except FileNotFoundError:
            pass
        except OSError as exc:
            raise exception.JournalError(
                path=path, reason=f"is unreadable ({error}) and could not "
                                  f"be moved aside: {exc}") from exc
        LOG.error("VF %(vf)s: journal record %(path)s is unreadable "
                  "(%(err)s); moved it to %(aside)s. The VF's state "
                  "before its last plug is unknown: check it with "
                  "'sriov-vif inventory'.",
                  {"vf": pci_address, "path": path, "err": error,
                   "aside": self._path(aside)})

    def save(self, record: VFRecord) -> None:
        """Write the record durably, or raise and keep the one before.

        The new record goes to a temporary file of a random name (created
        exclusively, so nothing planted there is written through), every
        byte of it or an error, then fsync, rename over the old record and
        fsync of the directory: a full filesystem leaves the good record
        in place.
        """
        name = self._name(record.pci_address)
        path = self._path(name)
        data = json.dumps(record.to_primitive(), indent=1,
                          sort_keys=True).encode("utf-8")
        with self._directory(create=True) as dir_fd:
            assert dir_fd is not None
            owner = os.fstat(dir_fd)
            tmp = f".{name}.{secrets.token_hex(8)}{_TMP_SUFFIX}"
            with _io_errors(path):
                fd = os.open(tmp, _FILE_FLAGS | os.O_WRONLY | os.O_CREAT
                             | os.O_EXCL, 0o600, dir_fd=dir_fd)
                try:
                    try:
                        os.fchmod(fd, 0o600)
                        self._give_to_directory_owner(fd, owner)
                        _write_all(fd, data)
                        os.fsync(fd)
                    finally:
                        os.close(fd)
                    os.replace(tmp, name, src_dir_fd=dir_fd,
                               dst_dir_fd=dir_fd)
                except BaseException:
                    with contextlib.suppress(OSError):
                        os.unlink(tmp, dir_fd=dir_fd)
                    raise
                os.fsync(dir_fd)

    def _give_to_directory_owner(self, fd: int, owner: os.stat_result,
                                 st: os.stat_result | None = None) -> None:
        """Keep files the CLI writes as root usable by nova-compute.

        nova-compute writes the journal as its own user (under devstack,
        not root); a record an operator's root shell created would
        otherwise lock that user out of the VF's original state. Only
        ever on a descriptor just opened and checked, never by path; st
        is its stat when the caller has just taken it.
        """
        if os.geteuid() != 0:
            return
        if st is None:
            st = os.fstat(fd)
        if (st.st_uid, st.st_gid) != (owner.st_uid, owner.st_gid):
            os.fchown(fd, owner.st_uid, owner.st_gid)

    def remove(self, pci_address: str) -> None:
        """Remove the VF's record and any temporary a crash left of it.

        Called with the VF's lock held: no writer of this VF is between
        creating and renaming its temporary file.
        """
        self.remove_many([pci_address])

    def remove_many(self, pci_addresses: list[str]) -> None:
        """Remove the records of VFs whose locks are held, and leftovers.

        One fsync of the directory makes every removal durable, not one
        per VF: a restore of 256 VFs pays one. Crash safety is the same
        as one fsync per record: a record whose removal a power loss
        undoes names a VF already put back, and restoring it again (by
        'sriov-vif restore', or an unplug) writes the values it already
        has; a replug takes it over keeping its original state, which is
        the VF's state now. A crash of the process alone loses no unlink.
        """
        names = {self._name(address) for address in pci_addresses}
        if not names:
            return
        with self._directory(create=False) as dir_fd:
            if dir_fd is None:
                return
            with _io_errors(self.state_path):
                entries = os.listdir(dir_fd)
            # .{name}.{token}.tmp, see save()
            leftovers = [entry for entry in entries
                         if entry.startswith(".")
                         and entry.endswith(_TMP_SUFFIX)
                         and entry[1:].rsplit(".", 2)[0] in names]
            changed = False
            for entry in leftovers:
                with _io_errors(self._path(entry)):
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(entry, dir_fd=dir_fd)
                changed = True
            for name in names:
                with _io_errors(self._path(name)):
                    try:
                        os.unlink(name, dir_fd=dir_fd)
                        changed = True
                    except FileNotFoundError:
                        pass
            if changed:
                with _io_errors(self.state_path):
                    os.fsync(dir_fd)

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
        with self._directory(create=False) as dir_fd:
            if dir_fd is None:
                return []
            with _io_errors(self.state_path):
                names = os.listdir(dir_fd)
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


def _describe_error(exc: BaseException) -> str:
    if isinstance(exc, RecursionError):
        return "nested too deeply to be a record"
    if isinstance(exc, KeyError):
        return f"missing {exc}"
    return f"{type(exc).__name__}: {exc}"
