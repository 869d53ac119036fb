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


"""The measurements that need a kernel with VFs; run inside the guest.

One guest, one host set up the way the kernel test tier sets one up:
netdevsim PFs with 8, 64 and 256 VFs (the kernel's VF table and its
netlink are real), a sysfs-shaped tree that gives their VFs PCI addresses
(netdevsim VFs have none), the plugin loaded by os_vif.initialize(), and
three real privsep daemons started by privsep-helper: sriov-vif's, the
one of the nova legacy path (benchmarks.legacy) and the one of the floor
(benchmarks.floor). The journal lives first on the guest's tmpfs, then on
an ext4 filesystem of a disk the host gives the guest (run.py), with
sriov-vif's daemon restarted on the same configuration. Every plug is
read back with an rtnetlink reader that shares no code with sriov-vif
(harness/rtnl_readback.py) and every unplug and restore must give back
the VF table as it was; a VF that differs is a failure, whatever the
timings.

Only the library's public behaviour is used (os_vif.plug and unplug,
SriovPlugin.restore, the privsep context sriov_vif.privsep.vif_plug),
so the same runner measures whichever version of the library is
installed.
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Iterator
import concurrent.futures
import contextlib
import dataclasses
import functools
import os
from pathlib import Path
import platform
import subprocess
import sys
import tempfile
import time
from typing import Any
from typing import Final

import os_vif
from os_vif.objects import instance_info as osv_instance_info
from os_vif.objects import network as osv_network
from os_vif.objects import vif as osv_vif
from oslo_config import cfg

from benchmarks import attribution
from benchmarks import daemon_work
from benchmarks import floor
from benchmarks import legacy
from benchmarks import nlcount
from benchmarks import tripcount
from benchmarks import xmlrate
from harness import kernel_guest
from harness import netdevsim_host
from harness import privsep_daemon
from harness import rtnl_readback
from sriov_vif import config
from sriov_vif import discovery
from sriov_vif import journal
from sriov_vif import objects
from sriov_vif import plugin
from sriov_vif import policy
from sriov_vif import privileged
from sriov_vif import privsep
from sriov_vif import rtnl
from sriov_vif import vf_config

REPO: Final = Path(__file__).resolve().parent.parent
PF_SIZES: Final = (8, 64, 256)
# Restores are measured where a compute node keeps its journal, on disk;
# on tmpfs only the two ends, to tell the journal's share (every plug the
# set-up needs costs time).
RESTORE_SIZES: Final = {"tmpfs": (1, 256), "disk": (1, 64, 256)}
# Restores of one VF cost little: more of them steady the denominator.
RESTORE_ONE_REPEATS: Final = 3
# Well away from the ids the kernel tests and the demo use.
_DEV_IDS: Final = {8: 381, 64: 382, 256: 383}
_PF_ADDRESSES: Final = {8: "0000:81:00.0", 64: "0000:82:00.0",
                        256: "0000:83:00.0"}
_NLMON: Final = "bnchnlmon0"
_IDLE_SECONDS: Final = 1.0
# The VF of the 8-VF PF the round trips and counts use.
_VF: Final = 1
_INSTANCE: Final = osv_instance_info.InstanceInfo(
    uuid="0be0c000-0000-4000-8000-000000000001", name="instance-bench")
# The two filesystems the journal is measured on.
TMPFS: Final = "tmpfs"
DISK: Final = "disk"
# What a plug, an unplug and a restore are timed by, part by part, inside
# the operation (benchmarks.attribution); report.ATTRIBUTED names them.
# The code between these functions is charged to the nearest one that
# called it: the plugin's entry points, vf_config.apply_changes, and
# os-vif's plug or unplug, which the benchmark calls through the clock.
TIMED_PARTS: Final = (
    attribution.Part("plugin", plugin.SriovPlugin, "plug"),
    attribution.Part("plugin", plugin.SriovPlugin, "unplug"),
    attribution.Part("plugin", plugin.SriovPlugin, "restore"),
    attribution.Part("policy", policy, "vf_settings"),
    attribution.Part("policy", policy, "needs_vf_netdev"),
    attribution.Part("policy", policy, "check_supported"),
    attribution.Part("lookup", discovery, "find_vf"),
    attribution.Part("lookup", discovery, "find_vfs"),
    attribution.Part("lock", journal.Journal, "locked", context=True),
    attribution.Part("lock", journal.Journal, "locked_many", context=True),
    attribution.Part("load", journal.Journal, "load"),
    attribution.Part("load", journal.Journal, "load_many"),
    attribution.Part("save", journal.Journal, "save"),
    attribution.Part("remove", journal.Journal, "remove_many"),
    attribution.Part("read", vf_config, "vf_states_now"),
    attribution.Part("prepare", vf_config, "_pending"),
    attribution.Part("trip", privileged, "change_vfs"),
    attribution.Part("vf_config", vf_config, "apply_changes"),
    attribution.Part("log", plugin, "_restored"),
)

Table = dict[int, rtnl_readback.VFReading]


@dataclasses.dataclass(frozen=True)
class Settings:
    roundtrips: int
    scale_plugs: int
    parallel: int
    count_repeats: int
    restore_repeats: int
    xml_batches: int
    xml_seconds: float


@dataclasses.dataclass(frozen=True)
class Port:
    """What one plug asks of a VF, whichever path carries it out."""

    serial: int
    address: str
    vlan: int
    trusted: bool

    @property
    def mac(self) -> str:
        return "fa:16:3e:{:02x}:{:02x}:{:02x}".format(
            *self.serial.to_bytes(3, "big"))

    @functools.cached_property
    def vif(self) -> osv_vif.VIFHostDevice:
        """The port as os-vif's VIF object, built once (see Bench.port)."""
        return osv_vif.VIFHostDevice(
            id=f"0be0c000-0000-4000-8000-{self.serial:012x}",
            address=self.mac, plugin="sriov", dev_type="ethernet",
            dev_address=self.address,
            network=osv_network.Network(vlan=self.vlan),
            port_profile=objects.VIFPortProfileSRIOV(trusted=self.trusted))


@dataclasses.dataclass(frozen=True)
class VFPlace:
    """Where a VF is: its PF netdev, index, and state before any plug."""

    pf_ifname: str
    index: int
    original: rtnl_readback.VFReading


def _progress(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def _timed(action: Callable[[], object]) -> float:
    """Milliseconds action took."""
    started = time.perf_counter()
    action()
    return (time.perf_counter() - started) * 1000


def _comparable(vf: rtnl_readback.VFReading) -> rtnl_readback.VFReading:
    """A VF with no VLAN reads the same whatever protocol it remembers.

    netdevsim reports protocol 0 for a VF whose VLAN was never set and
    802.1Q once VLAN 0 was written back: both mean untagged.
    """
    if vf.vlan == 0 and vf.qos == 0:
        return dataclasses.replace(vf, vlan_proto=0)
    return vf


def filesystem_of(path: str, mounts: str) -> tuple[str, str]:
    """(type, source) of the filesystem path is on, from /proc/mounts.

    The mount whose point is the longest prefix of path; the page names
    what the journal was really on rather than what it was meant to be.
    """
    best = ("", "", "")
    for line in mounts.splitlines():
        fields = line.split()
        if len(fields) < 3:
            continue
        source, point, fstype = fields[:3]
        point = point.replace("\\040", " ")
        inside = path == point or path.startswith(point.rstrip("/") + "/")
        if inside and len(point) >= len(best[1]):
            best = (source, point, fstype)
    if not best[1]:
        raise ValueError(f"no mount in the table holds {path}")
    return best[2], best[0]


class Bench:
    """The guest's PFs, tree, daemons, journals, and the checks."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.failures: list[str] = []
        self.pfs: dict[int, str] = {}
        self.addresses: dict[int, list[str]] = {}
        self.places: dict[str, VFPlace] = {}
        self.sysfs_root = ""
        self._serial = 0
        self.host = netdevsim_host.NetdevsimHost(workdir)
        self._stack = contextlib.ExitStack()
        self._ours = contextlib.ExitStack()
        self.journals: dict[str, dict[str, str]] = {}
        self.filesystem = TMPFS
        self.floor_journal: journal.Journal | None = None
        self.record: journal.VFRecord | None = None
        self.plugin: plugin.SriovPlugin | None = None

    # Set-up.

    def create_pfs(self) -> None:
        """PFs with PCI addresses from a tree, the plugin pointed there."""
        for numvfs in PF_SIZES:
            built = self.host.add_pf(_DEV_IDS[numvfs], _PF_ADDRESSES[numvfs],
                                     numvfs)
            self.pfs[numvfs] = built.ifnames[0]
            self.addresses[numvfs] = [vf.pci_address for vf in built.vfs]
            table = self.table(numvfs)
            for vf in built.vfs:
                self.places[vf.pci_address] = VFPlace(
                    built.ifnames[0], vf.index, table[vf.index])
        self.sysfs_root = self.host.tree.root
        self.host.configure_plugin()
        # What `sriov-vif restore --all` builds and calls.
        self.plugin = plugin.SriovPlugin(cfg.CONF[config.GROUP])

    def mount_journals(self) -> None:
        """A tmpfs, and the ext4 of the disk run.py gave the guest.

        The guest's /tmp is an overlay; the tmpfs is mounted here so that
        the first journal is on nothing else.
        """
        subprocess.run(["modprobe", "ext4"], check=False,
                       capture_output=True)
        mounts = {TMPFS: ("tmpfs", "tmpfs"),
                  DISK: ("ext4", kernel_guest.guest_disk(0))}
        for name, (fstype, device) in mounts.items():
            mountpoint = self.workdir / name
            mountpoint.mkdir()
            subprocess.run(["mount", "-t", fstype, device, str(mountpoint)],
                           check=True)
            self._stack.callback(subprocess.run,
                                 ["umount", str(mountpoint)], check=False)
        table = Path("/proc/mounts").read_text()
        for name, (want, _device) in mounts.items():
            base = self.workdir / name
            fstype, source = filesystem_of(str(base), table)
            if fstype != want:
                raise RuntimeError(f"{base} is {fstype}, not {want}")
            self.journals[name] = {
                "state_path": str(base / "state"),
                "floor_path": str(base / "floor-journal"),
                "fstype": fstype, "source": source}
            # Made as a deployment makes it: as root, sriov-vif refuses
            # to create it.
            os.makedirs(self.journals[name]["state_path"], mode=0o700)

    def start_daemons(self) -> None:
        """The legacy and floor daemons, then sriov-vif's."""
        # The benchmark daemons import benchmarks.* by name; all would
        # relay eventlet's import-time deprecation warning as log lines.
        config_file = self.host.write_config()
        for context in (legacy.legacy_pctxt, floor.floor_pctxt):
            self._stack.enter_context(privsep_daemon.started(
                context, config_file, PYTHONWARNINGS="ignore",
                PYTHONPATH=str(REPO)))
        self.use_journal(TMPFS)

    def use_journal(self, name: str) -> None:
        """Put the plugin's journal (and the floor's) on filesystem name.

        sriov-vif's daemon is started again on a configuration file naming
        the same state_path, as a deployment's would be.
        """
        self._ours.close()
        self.filesystem = name
        self.host.state_path = self.journals[name]["state_path"]
        cfg.CONF.set_override("state_path", self.host.state_path,
                              config.GROUP)
        self.floor_journal = journal.Journal(
            self.journals[name]["floor_path"])
        # sriov-vif's daemon finds VFs under the sysfs_root of its
        # config file.
        self._ours.enter_context(privsep_daemon.started(
            privsep.vif_plug, self.host.write_config(),
            PYTHONWARNINGS="ignore", PYTHONPATH=str(REPO)))

    def stop(self) -> None:
        self._ours.close()
        self._stack.close()
        self.host.release()

    # Ports and the three ways of plugging them.

    def port(self, numvfs: int, index: int, vlan: int,
             trusted: bool = True) -> Port:
        self._serial += 1
        port = Port(self._serial, self.addresses[numvfs][index], vlan,
                    trusted)
        # nova-compute has the VIF object before it calls os_vif.plug,
        # and the other paths get theirs ready-made too: not timed.
        port.vif  # noqa: B018  (builds and keeps it)
        return port

    @staticmethod
    def plug(port: Port) -> None:
        os_vif.plug(port.vif, _INSTANCE)

    @staticmethod
    def unplug(port: Port) -> None:
        os_vif.unplug(port.vif, _INSTANCE)

    def legacy_plug(self, port: Port) -> None:
        legacy.plug(self.sysfs_root, port.address, port.mac, port.vlan,
                    port.trusted)

    def legacy_unplug(self, port: Port) -> None:
        legacy.unplug(self.sysfs_root, port.address)

    def take_record(self) -> None:
        """A journal record as a plug writes it, for the floor to save."""
        port = self.port(8, _VF, vlan=99)
        before = self.table(8)
        self.plug(port)
        self.check_plugged("record sample plug", 8, {_VF: port}, before)
        self.record = journal.Journal(self.host.state_path).load(
            port.address)
        self.unplug(port)
        self.check_restored("record sample unplug", 8, before)
        if self.record is None:
            raise RuntimeError(f"a plug of {port.address} left no journal "
                               f"record in {self.host.state_path}")

    def floor_plug(self, port: Port,
                   parts: dict[str, list[float]] | None = None) -> None:
        """Journal first, then one round trip carrying one RTM_SETLINK."""
        assert self.record is not None and self.floor_journal is not None
        place = self.places[port.address]
        started = time.perf_counter()
        self.floor_journal.save(self.record)
        saved = time.perf_counter()
        netlink_ms = floor.set_vf(place.pf_ifname, place.index, port.mac,
                                  port.vlan, port.trusted)
        if parts is not None:
            parts["save_ms"].append((saved - started) * 1000)
            parts["setlink_call_ms"].append(
                (time.perf_counter() - saved) * 1000)
            parts["setlink_ms"].append(netlink_ms)

    def floor_unplug(self, port: Port,
                     parts: dict[str, list[float]] | None = None) -> None:
        """One round trip putting the VF back, then the record's removal."""
        assert self.record is not None and self.floor_journal is not None
        place = self.places[port.address]
        original = place.original
        started = time.perf_counter()
        netlink_ms = floor.set_vf(place.pf_ifname, place.index,
                                  original.mac, original.vlan,
                                  original.trust)
        sent = time.perf_counter()
        self.floor_journal.remove(self.record.pci_address)
        if parts is not None:
            parts["setlink_call_ms"].append((sent - started) * 1000)
            parts["setlink_ms"].append(netlink_ms)
            parts["remove_ms"].append((time.perf_counter() - sent) * 1000)

    # Read-back.

    def table(self, numvfs: int) -> Table:
        table = rtnl_readback.read_vf_table(self.pfs[numvfs])
        if len(table.vfs) != numvfs:
            raise RuntimeError(f"{self.pfs[numvfs]} reports "
                               f"{len(table.vfs)} of its {numvfs} VFs")
        return table.vfs

    def check_plugged(self, what: str, numvfs: int,
                      ports: dict[int, Port], before: Table) -> None:
        """ports (by VF index) are set as asked, every other VF as before."""
        now = self.table(numvfs)
        for index, vf in now.items():
            port = ports.get(index)
            if port is None:
                if _comparable(vf) != _comparable(before[index]):
                    self.failures.append(
                        f"{what}: VF {index} of the {numvfs}-VF PF changed "
                        f"though no port was plugged on it: {vf}")
                continue
            got = (vf.mac, vf.vlan, vf.trust)
            want = (port.mac, port.vlan, port.trusted)
            if got != want:
                self.failures.append(
                    f"{what}: VF {index} of the {numvfs}-VF PF has "
                    f"mac/vlan/trust {got}, expected {want}")

    def check_restored(self, what: str, numvfs: int, before: Table) -> None:
        now = self.table(numvfs)
        for index, vf in now.items():
            if _comparable(vf) != _comparable(before[index]):
                self.failures.append(
                    f"{what}: VF {index} of the {numvfs}-VF PF is {vf} "
                    f"after unplug, was {before[index]}")

    def cycle(self, what: str, port: Port, numvfs: int, index: int,
              plug: Callable[[Port], None],
              unplug: Callable[[Port], None]) -> tuple[float, float]:
        """Plug and unplug port, each timed and checked; (ms, ms)."""
        before = self.table(numvfs)
        plug_ms = _timed(lambda: plug(port))
        self.check_plugged(f"{what} plug", numvfs, {index: port}, before)
        unplug_ms = _timed(lambda: unplug(port))
        self.check_restored(f"{what} unplug", numvfs, before)
        return plug_ms, unplug_ms

    # Scenarios.

    def roundtrips(self, iterations: int) -> dict[str, Any]:
        """sriov-vif, nova legacy and the floor, interleaved.

        The order rotates every pair; the first pair warms up. Beside
        each floor pair, what its parts and their alternatives cost: an
        empty round trip, the same RTM_SETLINK through sriov_vif.rtnl's
        transport (writing the values the VF has), the VF's lookup in
        sysfs, the daemon's check of it, the journal's lock and look-up
        of a record, one read of the VF through sriov_vif.rtnl in this
        process, and sriov-vif's round trip alone with its work in a
        daemon timed there.
        """
        times: dict[str, list[float]] = {
            f"{path}_{op}_ms": [] for path in ("ours", "legacy", "floor")
            for op in ("plug", "unplug")}
        parts: dict[str, list[float]] = {
            name: [] for name in ("save_ms", "remove_ms", "setlink_call_ms",
                                  "setlink_ms", "empty_trip_ms",
                                  "rtnl_setlink_ms", "find_vf_ms",
                                  "confirm_vf_ms", "lock_load_ms",
                                  "rtnl_read_ms", "change_call_ms",
                                  "change_work_ms", "change_warm_ms")}
        measured: dict[str, list[float]] | None = None
        paths = [("ours", self.plug, self.unplug),
                 ("legacy", self.legacy_plug, self.legacy_unplug),
                 ("floor",
                  lambda p: self.floor_plug(p, measured),
                  lambda p: self.floor_unplug(p, measured))]
        address = self.addresses[8][_VF]
        place = self.places[address]
        original = place.original
        for iteration in range(iterations + 1):
            # Parts of the warm-up pair are thrown away below.
            measured = parts if iteration else None
            shift = iteration % len(paths)
            for name, plug, unplug in paths[shift:] + paths[:shift]:
                port = self.port(8, _VF, vlan=100 + iteration)
                plug_ms, unplug_ms = self.cycle(
                    f"round trip {iteration} on {self.filesystem} "
                    f"({name})", port, 8, _VF, plug, unplug)
                if iteration:
                    times[f"{name}_plug_ms"].append(plug_ms)
                    times[f"{name}_unplug_ms"].append(unplug_ms)
            empty = _timed(floor.nothing)
            rtnl_ms = floor.set_vf_with_rtnl(
                place.pf_ifname, place.index, original.mac, original.vlan,
                original.trust)
            lookup = _timed(functools.partial(
                discovery.find_vf, self.sysfs_root, address))
            confirm = _timed(functools.partial(
                discovery.confirm_vfs, self.sysfs_root, _PF_ADDRESSES[8],
                {address: place.index}))
            locked = _timed(functools.partial(self._lock_and_load, address))
            read = _timed(functools.partial(_read_vf, place.pf_ifname,
                                            place.index))
            call, work, warm = self._change_call(address)
            if iteration:
                parts["empty_trip_ms"].append(empty)
                parts["rtnl_setlink_ms"].append(rtnl_ms)
                parts["find_vf_ms"].append(lookup)
                parts["confirm_vf_ms"].append(confirm)
                parts["lock_load_ms"].append(locked)
                parts["rtnl_read_ms"].append(read)
                parts["change_call_ms"].append(call)
                parts["change_work_ms"].append(work)
                parts["change_warm_ms"].append(warm)
        # Each cycle compares with the table before it: this catches what
        # the extra requests between cycles might have changed.
        self.check_restored(f"round trips on {self.filesystem}", 8,
                            self.originals(8))
        return {"iterations": iterations, "pf_vfs": 8, **times,
                "parts": parts}

    def breakdown(self, cycles: int) -> dict[str, Any]:
        """Plugs and unplugs of sriov-vif timed part by part, inside them.

        Each operation is os_vif.plug or unplug called through a
        benchmarks.attribution clock with TIMED_PARTS wrapped: each part's
        exclusive time, which add up to the operation's. The first cycle
        warms up and is thrown away.
        """
        result: dict[str, Any] = {"plug": [], "unplug": [],
                                  "timer_ms": attribution.overhead()}

        def timed(operation: str, action: Callable[..., None],
                  keep: bool) -> Callable[[Port], None]:
            def run(port: Port) -> None:
                clock = attribution.Clock()
                with clock.timing(TIMED_PARTS):
                    clock.call("osvif", action, port.vif, _INSTANCE)
                if keep:
                    result[operation].append(
                        {"parts": dict(clock.ms), "calls": clock.calls})
            return run

        for cycle in range(cycles + 1):
            port = self.port(8, _VF, vlan=700 + cycle)
            self.cycle(f"timed part by part on {self.filesystem}, cycle "
                       f"{cycle}", port, 8, _VF,
                       timed("plug", os_vif.plug, keep=cycle > 0),
                       timed("unplug", os_vif.unplug, keep=cycle > 0))
        return result

    def _change_call(self, address: str) -> tuple[float, float, float]:
        """sriov-vif's round trip alone, as a plug makes it; milliseconds.

        One privileged.change_vfs call carrying the VF's own MAC, VLAN
        and trust (what the floor's set_vf is compared with), from the
        state read just before, which is not timed; then the same call's
        work alone, timed inside the benchmark's daemon
        (benchmarks.daemon_work), as a round trip runs it and warm.
        Returns (round trip, daemon's work, the same work warm).
        """
        vf = discovery.find_vf(self.sysfs_root, address)
        now = vf_config.vf_state_now(vf)
        item = {"address": address,
                "settings": {"mac": now.mac, "vlan": now.vlan,
                             "trust": now.trust},
                "before": now.to_primitive(), "netdev": None}
        trip = _timed(functools.partial(
            privileged.change_vfs, vf.pf.pci_address, vf.pf.ifname, [item]))
        first, warm = daemon_work.change_vfs_in_daemon(
            vf.pf.pci_address, vf.pf.ifname, [item])
        return trip, first, warm

    def _lock_and_load(self, address: str) -> None:
        """A plug's other journal work: the VF's lock, the record looked up.

        There is none: the floor's unplug removed it.
        """
        assert self.floor_journal is not None
        with self.floor_journal.locked(address):
            self.floor_journal.load(address)

    def originals(self, numvfs: int) -> Table:
        """The PF's VF table as it was before the first plug."""
        return {self.places[a].index: self.places[a].original
                for a in self.addresses[numvfs]}

    def counts(self, repeats: int) -> dict[str, Any]:
        """rtnetlink requests (nlmon) and privileged round trips.

        Round trips are counted at oslo.privsep's client end of the three
        daemons; each path should only reach its own.
        """
        counter = nlcount.RtnlRequestCounter(_NLMON)
        contexts = (privsep.vif_plug, legacy.legacy_pctxt,
                    floor.floor_pctxt)
        try:
            idle = counter.count(lambda: time.sleep(_IDLE_SECONDS))
            netlink: dict[str, dict[str, list[dict[str, int]]]] = {}
            trips: dict[str, dict[str, list[dict[str, int]]]] = {}
            paths = [("ours", self.plug, self.unplug),
                     ("legacy", self.legacy_plug, self.legacy_unplug),
                     ("floor", self.floor_plug, self.floor_unplug)]
            for name, _plug, _unplug in paths:
                netlink[name] = {"plug": [], "unplug": []}
                trips[name] = {"plug": [], "unplug": []}
            for repeat in range(repeats):
                for name, plug, unplug in paths:
                    port = self.port(8, _VF, vlan=300 + repeat)
                    before = self.table(8)
                    for op, action in (("plug", plug), ("unplug", unplug)):
                        with tripcount.counting(contexts) as made:
                            requests = counter.count(
                                functools.partial(action, port))
                        netlink[name][op].append(dict(requests))
                        trips[name][op].append(dict(made))
                        if op == "plug":
                            self.check_plugged(f"counted {name} plug", 8,
                                               {_VF: port}, before)
                    self.check_restored(f"counted {name} unplug", 8, before)
        finally:
            counter.close()
        return {"netlink": {"method": "nlmon", "idle_seconds": _IDLE_SECONDS,
                            "idle": dict(idle), "repeats": repeats,
                            **netlink},
                "trips": {"repeats": repeats, **trips}}

    def scale(self, plugs: int) -> dict[str, Any]:
        """Plugs spread over each PF's VFs, the PFs taken in turns.

        The floor plugs the same VF after sriov-vif, the kernel is asked
        once for the VF table (RTM_GETLINK, every VF, not decoded) and
        the VF is read once through sriov_vif.rtnl, to tell what grows
        with the PF in the kernel from what grows in sriov-vif.
        """
        times: dict[str, dict[str, list[float]]] = {
            str(n): {"plug_ms": [], "unplug_ms": [], "vfs": [],
                     "floor_plug_ms": [], "floor_unplug_ms": [],
                     "table_read_ms": [], "rtnl_read_ms": []}
            for n in PF_SIZES}
        for step in range(plugs):
            order = PF_SIZES[step % 3:] + PF_SIZES[:step % 3]
            for numvfs in order:
                index = round(step * (numvfs - 1) / max(plugs - 1, 1))
                entry = times[str(numvfs)]
                for prefix, plug, unplug in (
                        ("", self.plug, self.unplug),
                        ("floor_", self.floor_plug, self.floor_unplug)):
                    port = self.port(numvfs, index, vlan=500 + step)
                    plug_ms, unplug_ms = self.cycle(
                        f"scale {numvfs} VFs, VF {index} ({prefix}plug)",
                        port, numvfs, index, plug, unplug)
                    entry[f"{prefix}plug_ms"].append(plug_ms)
                    entry[f"{prefix}unplug_ms"].append(unplug_ms)
                entry["vfs"].append(index)
                entry["table_read_ms"].append(_timed(
                    functools.partial(rtnl_readback.vf_table_reply,
                                      self.pfs[numvfs])))
                entry["rtnl_read_ms"].append(_timed(functools.partial(
                    _read_vf, self.pfs[numvfs], index)))
        return times

    def parallel(self, count: int) -> dict[str, Any]:
        """count plugs on distinct VFs of the 64-VF PF: threads, then a loop.

        Threads in one process, as nova-compute plugs the ports of
        instances it builds at the same time.
        """
        if not 1 <= count <= 64:
            raise ValueError(f"--parallel takes 1 to 64 plugs, not {count}")
        before = self.table(64)
        result: dict[str, Any] = {"count": count, "threads": count,
                                  "pf_vfs": 64}
        with concurrent.futures.ThreadPoolExecutor(count) as pool:
            ports = {i: self.port(64, i, vlan=1000 + i, trusted=bool(i % 2))
                     for i in range(count)}
            result["parallel_plug_s"] = _timed(
                lambda: list(pool.map(self.plug, ports.values()))) / 1000
            self.check_plugged("parallel plug", 64, ports, before)
            result["parallel_unplug_s"] = _timed(
                lambda: list(pool.map(self.unplug, ports.values()))) / 1000
            self.check_restored("parallel unplug", 64, before)
        ports = {i: self.port(64, i, vlan=2000 + i, trusted=bool(i % 2))
                 for i in range(count)}
        result["sequential_plug_s"] = _timed(
            lambda: [self.plug(p) for p in ports.values()]) / 1000
        self.check_plugged("sequential plug", 64, ports, before)
        result["sequential_unplug_s"] = _timed(
            lambda: [self.unplug(p) for p in ports.values()]) / 1000
        self.check_restored("sequential unplug", 64, before)
        return result

    def restore(self, repeats: int) -> dict[str, Any]:
        """SriovPlugin.restore() of 1 to 256 journaled VFs.

        The VFs, spread over the 256-VF PF, are plugged one by one (os-vif
        journals each), then one restore() with no argument puts every
        journaled VF back, as `sriov-vif restore --all` does; the PF must
        read back as it was, and the journal must be empty. The restore
        is timed part by part as it runs (TIMED_PARTS), its time with the
        timers in it; the daemon's check is timed alone just before.
        """
        sizes = RESTORE_SIZES[self.filesystem]
        result: dict[str, list[dict[str, Any]]] = {
            str(n): [] for n in sizes}
        before = self.table(256)
        for count in sizes:
            times = repeats * (RESTORE_ONE_REPEATS if count == 1 else 1)
            for repeat in range(times):
                indexes = [round(i * 256 / count) for i in range(count)]
                ports = {i: self.port(256, i, vlan=3000 + repeat)
                         for i in indexes}
                for port in ports.values():
                    self.plug(port)
                what = f"restore of {count} on {self.filesystem}"
                self.check_plugged(f"{what}: plugs", 256, ports, before)
                check_ms = self._daemon_check(
                    [port.address for port in ports.values()])
                assert self.plugin is not None
                clock = attribution.Clock()
                with clock.timing(TIMED_PARTS), tripcount.counting(
                        [privsep.vif_plug]) as made:
                    started = time.perf_counter()
                    done = self.plugin.restore()
                    elapsed = (time.perf_counter() - started) * 1000
                self.check_restored(what, 256, before)
                left = journal.Journal(self.host.state_path).addresses()
                if sorted(done.restored) != sorted(
                        p.address for p in ports.values()) or (
                        done.failed or left):
                    self.failures.append(
                        f"{what}: restored {len(done.restored)} of "
                        f"{count}, failed {done.failed}, records left "
                        f"{left}")
                result[str(count)].append(
                    {"ms": elapsed, "trips": dict(made),
                     "parts": dict(clock.ms), "calls": clock.calls,
                     "check_ms": check_ms})
        return result

    def _daemon_check(self, addresses: list[str]) -> float:
        """The daemon's check of these VFs in sysfs, timed alone; ms.

        Part of the privileged round trip, which the restore's clock
        cannot look inside: discovery.confirm_vfs, as the daemon calls
        it, on the VFs just before they are restored, with the indexes
        the host gave them.
        """
        return _timed(functools.partial(
            discovery.confirm_vfs, self.sysfs_root, _PF_ADDRESSES[256],
            {address: self.places[address].index for address in addresses}))


def _read_vf(pf_ifname: str, index: int) -> None:
    """One VF read through sriov_vif.rtnl, as a plug reads it.

    A session, the PF's RTM_GETLINK with its VFs, that VF decoded;
    reading needs no privilege.
    """
    with rtnl.session() as session:
        rtnl.read_one(session, pf_ifname, index)


@contextlib.contextmanager
def _phase(name: str) -> Iterator[None]:
    _progress(f"{name} ...")
    started = time.monotonic()
    yield
    _progress(f"{name}: {time.monotonic() - started:.1f} s")


def measure(settings: Settings) -> dict[str, Any]:
    """Every in-guest measurement; failures listed in the result."""
    results: dict[str, Any] = {
        "kernel": os.uname().release,
        "python": platform.python_version(),
        "guest_cpus": os.cpu_count(),
        "settings": dataclasses.asdict(settings),
        "roundtrip": {}, "breakdown": {}, "restore": {},
    }
    with tempfile.TemporaryDirectory(prefix="sriov-vif-bench-") as tmp:
        bench = Bench(Path(tmp))
        try:
            with _phase("netdevsim PFs with 8, 64 and 256 VFs, sysfs tree, "
                        "tmpfs and the disk's ext4"):
                bench.create_pfs()
                bench.mount_journals()
                results["journals"] = bench.journals
            with _phase("privsep daemons (nova legacy, floor, sriov-vif)"):
                bench.start_daemons()
                bench.take_record()
            for name in (TMPFS, DISK):
                if name != TMPFS:
                    with _phase(f"sriov-vif's daemon, journal on {name}"):
                        bench.use_journal(name)
                with _phase(f"{settings.roundtrips} interleaved round "
                            f"trips, journal on {name}"):
                    results["roundtrip"][name] = bench.roundtrips(
                        settings.roundtrips)
                with _phase(f"{settings.roundtrips} plugs and unplugs "
                            f"timed part by part, journal on {name}"):
                    results["breakdown"][name] = bench.breakdown(
                        settings.roundtrips)
                if name == TMPFS:
                    with _phase(f"plug latency by PF size, "
                                f"{settings.scale_plugs} plugs each"):
                        results["scale"] = bench.scale(settings.scale_plugs)
                    with _phase(f"{settings.parallel} plugs in threads "
                                f"and in sequence"):
                        results["parallel"] = bench.parallel(
                            settings.parallel)
                else:
                    with _phase("rtnetlink requests (nlmon) and "
                                "privileged round trips"):
                        results.update(bench.counts(settings.count_repeats))
                sizes = ", ".join(map(str, RESTORE_SIZES[name]))
                with _phase(f"restore of {sizes} journaled VFs, journal "
                            f"on {name}"):
                    results["restore"][name] = bench.restore(
                        settings.restore_repeats)
            with _phase("XML rendering"):
                results["xml_guest"] = xmlrate.rates(
                    settings.xml_batches, settings.xml_seconds)
        finally:
            bench.stop()
            results["failures"] = bench.failures
    return results
