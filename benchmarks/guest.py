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
two real privsep daemons started by privsep-helper: sriov-vif's and the
one of the nova legacy path (benchmarks.legacy). Every plug is read back
with an rtnetlink reader that shares no code with sriov-vif
(harness/rtnl_readback.py) and every unplug must give back the VF
table as it was; a VF that differs is a failure, whatever the timings.
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
import sys
import tempfile
import time
from typing import Any
from typing import Final

import os_vif
from os_vif.objects import instance_info as osv_instance_info
from os_vif.objects import network as osv_network
from os_vif.objects import vif as osv_vif

from benchmarks import legacy
from benchmarks import nlcount
from benchmarks import xmlrate
from harness import netdevsim_host
from harness import privsep_daemon
from harness import rtnl_readback
from sriov_vif import objects
from sriov_vif import privsep

REPO: Final = Path(__file__).resolve().parent.parent
PF_SIZES: Final = (8, 64, 256)
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

Table = dict[int, rtnl_readback.VFReading]


@dataclasses.dataclass(frozen=True)
class Settings:
    roundtrips: int
    scale_plugs: int
    parallel: int
    count_repeats: int
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

    def vif(self) -> osv_vif.VIFHostDevice:
        return osv_vif.VIFHostDevice(
            id=f"0be0c000-0000-4000-8000-{self.serial:012x}",
            address=self.mac, plugin="sriov", dev_type="ethernet",
            dev_address=self.address,
            network=osv_network.Network(vlan=self.vlan),
            port_profile=objects.VIFPortProfileSRIOV(trusted=self.trusted))


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


class Bench:
    """The guest's PFs, tree, daemons, and the checks after each step."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.failures: list[str] = []
        self.pfs: dict[int, str] = {}
        self.addresses: dict[int, list[str]] = {}
        self.sysfs_root = ""
        self._serial = 0
        self.host = netdevsim_host.NetdevsimHost(workdir)
        self._daemons = contextlib.ExitStack()

    # Set-up.

    def create_pfs(self) -> None:
        """PFs with PCI addresses from a tree, the plugin pointed there."""
        for numvfs in PF_SIZES:
            built = self.host.add_pf(_DEV_IDS[numvfs], _PF_ADDRESSES[numvfs],
                                     numvfs)
            self.pfs[numvfs] = built.ifnames[0]
            self.addresses[numvfs] = [vf.pci_address for vf in built.vfs]
        self.sysfs_root = self.host.tree.root
        self.host.configure_plugin()

    def start_daemons(self) -> None:
        """Both privsep daemons, as a deployment starts them."""
        # The legacy daemon imports benchmarks.legacy by name; both would
        # relay eventlet's import-time deprecation warning as log lines.
        # sriov-vif's finds VFs under the sysfs_root of its config file.
        config_file = self.host.write_config()
        for context in (privsep.vif_plug, legacy.legacy_pctxt):
            self._daemons.enter_context(privsep_daemon.started(
                context, config_file, PYTHONWARNINGS="ignore",
                PYTHONPATH=str(REPO)))

    def stop(self) -> None:
        self._daemons.close()
        self.host.release()

    # Ports and the two ways of plugging them.

    def port(self, numvfs: int, index: int, vlan: int,
             trusted: bool = True) -> Port:
        self._serial += 1
        return Port(self._serial, self.addresses[numvfs][index], vlan,
                    trusted)

    @staticmethod
    def plug(port: Port) -> None:
        os_vif.plug(port.vif(), _INSTANCE)

    @staticmethod
    def unplug(port: Port) -> None:
        os_vif.unplug(port.vif(), _INSTANCE)

    def legacy_plug(self, port: Port) -> None:
        legacy.plug(self.sysfs_root, port.address, port.mac, port.vlan,
                    port.trusted)

    def legacy_unplug(self, port: Port) -> None:
        legacy.unplug(self.sysfs_root, port.address)

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
        """Interleaved, alternating who goes first; the first pair warms."""
        times: dict[str, list[float]] = {
            "ours_plug_ms": [], "ours_unplug_ms": [],
            "legacy_plug_ms": [], "legacy_unplug_ms": []}
        paths = [("ours", self.plug, self.unplug),
                 ("legacy", self.legacy_plug, self.legacy_unplug)]
        for iteration in range(iterations + 1):
            for name, plug, unplug in (paths if iteration % 2
                                       else paths[::-1]):
                port = self.port(8, _VF, vlan=100 + iteration)
                plug_ms, unplug_ms = self.cycle(
                    f"round trip {iteration} ({name})", port, 8, _VF,
                    plug, unplug)
                if iteration:
                    times[f"{name}_plug_ms"].append(plug_ms)
                    times[f"{name}_unplug_ms"].append(unplug_ms)
        return {"iterations": iterations, "pf_vfs": 8, **times}

    def netlink_counts(self, repeats: int) -> dict[str, Any]:
        counter = nlcount.RtnlRequestCounter(_NLMON)
        try:
            idle = counter.count(lambda: time.sleep(_IDLE_SECONDS))
            counts: dict[str, dict[str, list[dict[str, int]]]] = {
                "ours": {"plug": [], "unplug": []},
                "legacy": {"plug": [], "unplug": []}}
            paths = [("ours", self.plug, self.unplug),
                     ("legacy", self.legacy_plug, self.legacy_unplug)]
            for repeat in range(repeats):
                for name, plug, unplug in paths:
                    port = self.port(8, _VF, vlan=300 + repeat)
                    before = self.table(8)
                    counts[name]["plug"].append(dict(
                        counter.count(functools.partial(plug, port))))
                    self.check_plugged(f"counted {name} plug", 8,
                                       {_VF: port}, before)
                    counts[name]["unplug"].append(dict(
                        counter.count(functools.partial(unplug, port))))
                    self.check_restored(f"counted {name} unplug", 8, before)
        finally:
            counter.close()
        return {"method": "nlmon", "idle_seconds": _IDLE_SECONDS,
                "idle": dict(idle), "repeats": repeats, **counts}

    def scale(self, plugs: int) -> dict[str, Any]:
        """Plugs spread over each PF's VFs, the PFs taken in turns."""
        times: dict[str, dict[str, list[float]]] = {
            str(n): {"plug_ms": [], "unplug_ms": [], "vfs": []}
            for n in PF_SIZES}
        for step in range(plugs):
            order = PF_SIZES[step % 3:] + PF_SIZES[:step % 3]
            for numvfs in order:
                index = round(step * (numvfs - 1) / max(plugs - 1, 1))
                port = self.port(numvfs, index, vlan=500 + step)
                plug_ms, unplug_ms = self.cycle(
                    f"scale {numvfs} VFs, VF {index}", port, numvfs, index,
                    self.plug, self.unplug)
                entry = times[str(numvfs)]
                entry["plug_ms"].append(plug_ms)
                entry["unplug_ms"].append(unplug_ms)
                entry["vfs"].append(index)
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
    }
    with tempfile.TemporaryDirectory(prefix="sriov-vif-bench-") as tmp:
        bench = Bench(Path(tmp))
        try:
            with _phase("netdevsim PFs with 8, 64 and 256 VFs, sysfs tree"):
                bench.create_pfs()
            with _phase("privsep daemons (sriov-vif, nova legacy)"):
                bench.start_daemons()
            with _phase(f"{settings.roundtrips} interleaved round trips"):
                results["roundtrip"] = bench.roundtrips(settings.roundtrips)
            with _phase("netlink requests (nlmon)"):
                results["netlink"] = bench.netlink_counts(
                    settings.count_repeats)
            with _phase(f"plug latency by PF size, {settings.scale_plugs} "
                        f"plugs each"):
                results["scale"] = bench.scale(settings.scale_plugs)
            with _phase(f"{settings.parallel} plugs in threads and in "
                        f"sequence"):
                results["parallel"] = bench.parallel(settings.parallel)
            with _phase("XML rendering"):
                results["xml_guest"] = xmlrate.rates(
                    settings.xml_batches, settings.xml_seconds)
        finally:
            bench.stop()
            results["failures"] = bench.failures
    return results
