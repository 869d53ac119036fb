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


"""Benchmarks of sriov-vif against nova's legacy SR-IOV path and against
the floor of a crash-safe plug (tox -e bench).

On the host this makes an ext4 disk image for the journal, boots the
netdevsim guest once (harness.kernel_guest) with that disk, runs itself
inside it with --in-guest to measure everything that needs VFs, gets the
raw results back through a folder the guest may write, measures the XML
rendering on the host as well, prints the table and writes it to
doc/source/benchmarks.rst. The page is written by the host, so the guest
never needs write access to the repository.

Exits non-zero when a plug or unplug left a VF other than it should be
(every one is read back), or when the guest run failed; never because
something was slow.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
import datetime
import json
import os
from pathlib import Path
import platform
import subprocess
import sys
import tempfile
import time
import traceback
from typing import Any
import warnings

if __package__ in (None, ""):
    # Run as a script (python benchmarks/run.py): make the repository's
    # packages importable, as python -m benchmarks.run does.
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

# eventlet, pulled in by os-vif's imports, warns that it is deprecated.
warnings.filterwarnings("ignore", message=r"\s*Eventlet is deprecated")

from benchmarks import report  # noqa: E402
from benchmarks import xmlrate  # noqa: E402
from harness import kernel_guest  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
DOC = REPO / "doc" / "source" / "benchmarks.rst"
RESULTS_NAME = "results.json"
# A whole run takes three to six minutes; a hung guest is killed after
# this.
GUEST_TIMEOUT = 20 * 60
# The journal's disk: a sparse raw image on the host's disk, whose
# flushes QEMU passes on (harness.kernel_guest).
DISK_NAME = "journal-ext4.img"
DISK_BYTES = 64 << 20


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="benchmarks/run.py",
        description="Measure sriov-vif's plug, unplug and restore against "
                    "nova's legacy path and the floor of a crash-safe "
                    "plug, on netdevsim VFs in a QEMU guest, the journal "
                    "on tmpfs and on ext4 on a disk; print the table and "
                    "write doc/source/benchmarks.rst.")
    parser.add_argument("--roundtrips", type=int, default=10,
                        help="interleaved plug+unplug pairs per path "
                             "(default: %(default)s)")
    # Under emulation one plug varies by a third from the next: the
    # median of 5 moved the 256/8 ratio from 1.02 to 1.27 between runs.
    parser.add_argument("--scale-plugs", type=int, default=15,
                        help="plugs per PF size (default: %(default)s)")
    parser.add_argument("--parallel", type=int, default=64,
                        help="concurrent plugs on the 64-VF PF "
                             "(default: %(default)s)")
    parser.add_argument("--count-repeats", type=int, default=3,
                        help="counted plug/unplug pairs per path "
                             "(default: %(default)s)")
    parser.add_argument("--restore-repeats", type=int, default=1,
                        help="restores of 64 and of 256 journaled VFs per "
                             "filesystem; of one VF five times as many "
                             "(default: %(default)s)")
    parser.add_argument("--xml-batches", type=int, default=5,
                        help="XML rendering batches (default: %(default)s)")
    parser.add_argument("--xml-seconds", type=float, default=0.5,
                        help="minimum length of an XML batch "
                             "(default: %(default)s)")
    parser.add_argument("--keep-results", type=Path, metavar="FILE",
                        help="also write the raw results of the run to "
                             "FILE (JSON)")
    parser.add_argument("--no-doc", action="store_true",
                        help="print the table without writing "
                             f"{DOC.relative_to(REPO)}")
    parser.add_argument("--in-guest", type=Path, metavar="RESULTS",
                        help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    for name in ("roundtrips", "scale_plugs", "count_repeats",
                 "restore_repeats", "xml_batches"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    if not 1 <= args.parallel <= 64:
        parser.error("--parallel takes 1 to 64 (the PF has 64 VFs)")
    if args.xml_seconds <= 0:
        parser.error("--xml-seconds must be positive")
    return args


def _guest_args(args: argparse.Namespace) -> list[str]:
    return ["--roundtrips", str(args.roundtrips),
            "--scale-plugs", str(args.scale_plugs),
            "--parallel", str(args.parallel),
            "--count-repeats", str(args.count_repeats),
            "--restore-repeats", str(args.restore_repeats),
            "--xml-batches", str(args.xml_batches),
            "--xml-seconds", str(args.xml_seconds)]


def _in_guest(args: argparse.Namespace) -> int:
    # Imported here: the host side needs none of the privsep machinery.
    from benchmarks import guest

    if not kernel_guest.in_guest():
        print("--in-guest runs only inside the netdevsim guest; run "
              "benchmarks/run.py without it", file=sys.stderr)
        return 2
    settings = guest.Settings(
        roundtrips=args.roundtrips, scale_plugs=args.scale_plugs,
        parallel=args.parallel, count_repeats=args.count_repeats,
        restore_repeats=args.restore_repeats,
        xml_batches=args.xml_batches, xml_seconds=args.xml_seconds)
    try:
        results = guest.measure(settings)
    except Exception:
        traceback.print_exc()
        args.in_guest.write_text(json.dumps(
            {"error": traceback.format_exc()}))
        return 1
    args.in_guest.write_text(json.dumps(results, indent=1))
    return 1 if results["failures"] else 0


def _make_disk(image: Path) -> Path:
    """An empty ext4 filesystem in a sparse image, for the guest's disk.

    Made here rather than in the guest: mkfs under emulation takes
    seconds, and a missing mkfs.ext4 is better named before the guest
    boots.
    """
    with open(image, "wb") as disk:
        disk.truncate(DISK_BYTES)
    try:
        subprocess.run(["mkfs.ext4", "-q", "-F", "-L", "sriov-vif-bench",
                        str(image)], check=True, capture_output=True,
                       text=True)
    except FileNotFoundError:
        raise SystemExit("mkfs.ext4 is missing: install e2fsprogs "
                         "(bindep.txt, profile guest)") from None
    except subprocess.CalledProcessError as exc:
        raise SystemExit(f"mkfs.ext4 {image} failed: "
                         f"{exc.stderr.strip()}") from None
    return image


def _machine(kver: str, guest_cpus: int) -> str:
    release = {}
    with open("/etc/os-release") as lines:
        for line in lines:
            key, _, value = line.strip().partition("=")
            release[key] = value.strip('"')
    system = f"{release.get('ID', 'linux').capitalize()} " \
             f"{release.get('VERSION_ID', '')}".strip()
    return (f"Python {platform.python_version()} ({system}, "
            f"{os.cpu_count()} cores, QEMU TCG guest with {guest_cpus} "
            f"vCPUs, Debian kernel {kver}, netdevsim)")


def _journal_text(journals: dict[str, dict[str, str]]) -> str:
    return "; ".join(f"{name}: {info['fstype']} ({info['source']})"
                     for name, info in journals.items())


def _notes(results: dict[str, Any]) -> list[str]:
    netlink = results["netlink"]
    idle = sum(netlink["idle"].values())
    roundtrip = results["roundtrip"]["tmpfs"]
    return [
        "Everything but the host XML row runs in one QEMU guest under "
        "software emulation (no KVM), which makes every figure several "
        "times slower than on hardware: compare the ratios, not the "
        "absolute times. The host XML row shows the emulation's cost.",
        "The kernel's VF tables are real (netdevsim PFs with 8, 64 and "
        "256 VFs); the PCI view is a sysfs-shaped tree mapping VF "
        "addresses onto them, with the VFs bound to vfio-pci as nova "
        "leaves them. Every path runs through a real oslo.privsep daemon "
        "started by privsep-helper.",
        "sriov-vif: ``os_vif.plug``/``os_vif.unplug`` of a "
        "VIFHostDevice asking for a MAC, a VLAN and trust on. The VIF "
        "object is built before the clock starts, as nova-compute has it "
        "before it calls os-vif and the other paths get their arguments "
        "ready-made.",
        "The journal (sriov-vif's and the floor's) is measured on two "
        "filesystems, as /proc/mounts in the guest names them: "
        f"{_journal_text(results['journals'])}. The disk is a sparse "
        "raw image on the host's disk given to QEMU as a virtio-blk "
        "device with cache=writeback, which passes the guest's flushes "
        "on: an fsync in the guest is an fdatasync of the image on the "
        "host. sriov-vif's daemon is started again on a configuration "
        "naming the disk's journal before the disk rows.",
        "nova legacy (benchmarks/legacy.py): nova's sysfs lookups, then "
        "``ip link set PF vf N mac M vlan V`` and ``... trust on`` as "
        "two entrypoint calls of a privsep context with nova's "
        "capabilities; unplug sends ``mac 00:00:00:00:00:00 vlan 0`` and "
        "``trust off``.",
        "Floor (benchmarks/floor.py): a plug saves a plug's journal "
        "record with sriov_vif.journal (in a directory of its own on the "
        "same filesystem), then makes one call to a privsep daemon of "
        "the benchmark's own (CAP_NET_ADMIN) that sends one RTM_SETLINK "
        "with IFLA_VF_MAC, IFLA_VF_VLAN and IFLA_VF_TRUST for the same "
        "VF, encoded by sriov_vif.rtnl's codec, on a plain netlink "
        "socket; an unplug sends the VF's original values the same way, "
        "then removes the record (the journal write an unplug makes). "
        "Its parts are timed inside each floor operation; the empty "
        "round trip, the same RTM_SETLINK through sriov_vif.rtnl's "
        "transport, the VF's lookup in sysfs, the journal's lock and "
        "record look-up and one VF read through sriov_vif.rtnl in the "
        "benchmark's process are timed once per round, and so is "
        "sriov-vif's round trip alone (privileged.change_vfs writing the "
        "VF's own MAC, VLAN and trust) with its work in the daemon: "
        "change_vfs's own function run five times in a row inside the "
        "benchmark's daemon (benchmarks/daemon_work.py): the first as a "
        "round trip runs it, and the fastest of the other four, warm.",
        "Part by part: after the round trips on each filesystem, "
        f"{roundtrip['iterations']} more plugs and unplugs of sriov-vif "
        "on the same VF, each called through a clock of "
        "benchmarks/attribution.py that wraps the functions of "
        "benchmarks/guest.py's TIMED_PARTS for the call; every restore "
        "is timed the same way as it runs, its time with the timers in "
        "it. The timers' own cost is measured in the same run (a no-op "
        "called through one against the same no-op called directly) "
        "and given with the parts. The targets table sets each part of "
        "a plug or unplug against the floor's own part where it has one "
        "(its round trip, its journal write).",
        f"Round trips: {roundtrip['iterations']} rounds per filesystem "
        "on VF 1 of the 8-VF PF, each round a plug and unplug of "
        "sriov-vif, nova legacy and the floor, the order rotating every "
        "round, after one unmeasured round.",
        "Privileged round trips are counted at oslo.privsep's client: "
        "every call of the channel of sriov-vif's, the legacy and the "
        "floor's daemon while the operation ran (benchmarks/"
        "tripcount.py), named by the entrypoint called.",
        "rtnetlink requests are counted by the kernel's netlink tap "
        "(an nlmon device and a packet socket): every message with "
        "NLM_F_REQUEST sent to NETLINK_ROUTE while the operation ran. A "
        "read is RTM_GETLINK, a change an RTM_SETLINK/RTM_NEWLINK with "
        "attributes, a probe iproute2's attribute-less RTM_NEWLINK that "
        "checks the kernel's support. An idle window of "
        f"{netlink['idle_seconds']:g} s before counting saw {idle} "
        + ("requests, so nothing else was talking to rtnetlink."
           if idle == 0 else
           "requests from other processes: the counts may include some "
           "of theirs."),
        "Scale: the plugs spread over each PF's VFs; beside each, the "
        "floor's plug of the same VF, the kernel's answer to an "
        "RTM_GETLINK of the VF table (not decoded, "
        "harness/rtnl_readback.py) and one VF read through "
        "sriov_vif.rtnl.",
        "Restore: 1, 64 or 256 VFs spread over the 256-VF PF are plugged "
        "one by one with os_vif.plug, then one ``SriovPlugin.restore()`` "
        "without arguments (what ``sriov-vif restore --all`` calls) is "
        "timed; the PF must read back as before and the journal must be "
        "empty. On tmpfs only 1 and 256 are measured: the plugs that "
        "set a restore up cost time.",
        "Every plug is read back (MAC, VLAN, trust of the plugged VF, "
        "every other VF unchanged) with an rtnetlink reader that shares "
        "no code with sriov-vif (harness/rtnl_readback.py), and "
        "every unplug and restore must give back the whole VF table as "
        "it was; the run fails on any difference, never on a time.",
        "Threads: a ThreadPoolExecutor in one process, as nova-compute "
        "plugs the ports of instances it builds at once; the privsep "
        "daemon keeps its default thread pool (one thread per guest "
        "CPU).",
        f"XML: {xmlrate.describe(xmlrate.vif_mix())}, rendered with "
        "``libvirt_xml.interface_xml`` in turn.",
    ]


def _host(args: argparse.Namespace) -> int:
    started = time.monotonic()
    date = datetime.datetime.now(datetime.UTC).strftime(
        "%Y-%m-%d %H:%M UTC")
    # The guest starts in the host's working directory and imports the
    # repository's packages from it.
    os.chdir(REPO)
    with tempfile.TemporaryDirectory(prefix="sriov-vif-bench-") as tmp:
        results_file = Path(tmp) / RESULTS_NAME
        disk = _make_disk(Path(tmp) / DISK_NAME)
        status = kernel_guest.run(
            [sys.executable, "-m", "benchmarks.run", "--in-guest",
             str(results_file), *_guest_args(args)],
            rwdirs=[Path(tmp)], disks=[disk], timeout=GUEST_TIMEOUT)
        results = (json.loads(results_file.read_text())
                   if results_file.is_file() else None)
    if results is None or "error" in results:
        print(f"benchmark failed in the guest (status {status}); no "
              "results", file=sys.stderr)
        return status or 1
    results["xml_host"] = xmlrate.rates(args.xml_batches, args.xml_seconds)
    if args.keep_results is not None:
        args.keep_results.write_text(json.dumps(results, indent=1))
    wall = time.monotonic() - started
    rows = report.build_rows(results)
    targets = report.build_targets(results)
    breakdowns = report.build_breakdowns(results)
    print()
    print(report.render_text(rows))
    for table in breakdowns:
        print(f"{table.title}:")
        print(report.render_text(table.lines, table.headers))
    print(report.render_text(targets, report.TARGET_HEADERS))
    print(f"Wall time of the whole run: {wall:.0f} s")
    failures = results["failures"]
    if failures or status != 0:
        print(f"FAILED: {len(failures)} incorrect VF state(s), guest "
              f"status {status}:", file=sys.stderr)
        for failure in failures:
            print(f"  {failure}", file=sys.stderr)
        print(f"{DOC.relative_to(REPO)} left as it was", file=sys.stderr)
        return 1
    if not args.no_doc:
        DOC.write_text(report.render_rst(
            rows, targets=targets, breakdowns=breakdowns, date=date,
            machine=_machine(results["kernel"], results["guest_cpus"]),
            wall_seconds=wall, notes=_notes(results)))
        print(f"Wrote {DOC.relative_to(REPO)}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = _parse_args(argv)
    if args.in_guest is not None:
        return _in_guest(args)
    return _host(args)


if __name__ == "__main__":
    sys.exit(main())
