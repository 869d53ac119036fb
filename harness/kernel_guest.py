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

"""A real kernel with SR-IOV VFs, for the kernel tests, the demo and bench.

The machines this project is developed and tested on have no SR-IOV NIC,
and Debian's kernels do not ship netdevsim, the kernel's test driver that
implements the VF netlink operations. So the VF code is proven inside a
QEMU guest that boots Debian's own kernel plus a netdevsim module built
from Debian's own kernel source: a real rtnetlink, real driver callbacks,
nothing simulated in Python.

Host side: prepare() fetches Debian's kernel image and source with
``apt-get download`` and builds netdevsim (once, into a cache outside the
repository); it installs nothing: the Debian packages it needs are the
``guest`` profile of bindep.txt, which the test command and the demo
command install, and virtme-ng comes from tox's environment. What is
missing is named, with the command that installs it. run() boots the
guest with virtme-ng, the
host's / as the guest's read-only root, runs one command in it and returns
that command's exit status. QEMU runs without KVM (software emulation):
the KVM of the machines we run on cannot run a normal guest kernel.

Guest side: in_guest() tells the guest from the host, and
create_netdevsim_pf()/destroy_netdevsim() give tests a PF with VFs.

Command line: ``python -m harness.kernel_guest prepare`` and
``python -m harness.kernel_guest run -- COMMAND ARGS...``.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from collections.abc import Iterator
from collections.abc import Sequence
import contextlib
import dataclasses
import fcntl
import json
import os
from pathlib import Path
import platform
import re
import shlex
import shutil
import signal
import subprocess
import sys
import sysconfig
import tempfile
import threading
import time
from typing import IO

CACHE_DIR_ENV = "SRIOV_VIF_GUEST_DIR"
# Set inside the guest to the guest kernel's release: a host that happens
# to inherit the variable still runs another kernel, so in_guest() stays
# false there.
GUEST_KERNEL_ENV = "SRIOV_VIF_GUEST_KERNEL"
# Measured: the guest with 256 netdevsim VFs uses about 150 MiB of 1 GiB.
DEFAULT_MEMORY = "1G"
# One vCPU: each vCPU is a host thread under TCG, and with two the guest
# spins on locks held by a vCPU the host has preempted. Measured on a
# 2-core host, kernel tier: 2 vCPUs 200 s idle but 601 s beside a CPU
# hog; 1 vCPU 237-281 s either way (tools/time-kernel-tier.sh).
DEFAULT_CPUS = 1
# Bounds a hung guest so that CI fails with a message; the kernel tier
# sets its own, tighter limit (tox.ini).
DEFAULT_TIMEOUT = 15 * 60
# Exit status of the guest script when netdevsim does not load or the
# working directory is missing in the guest; distinct from what pytest
# returns so the cause is obvious in CI logs.
GUEST_SETUP_FAILED = 125

# netdevsim's default VF limit is 4; raising it needs debugfs.
_NETDEVSIM_DEFAULT_MAX_VFS = 4
_NETDEVSIM_BUS = Path("/sys/bus/netdevsim")
_DEBUGFS = Path("/sys/kernel/debug")
_SETTLE_TIMEOUT = 60
# A second, cached, read-only share of the host's /; see _cached_dirs().
_HOST_SHARE_TAG = "sriov_vif_host"
_HOST_SHARE_QEMU_OPTS = (
    f"-virtfs local,path=/,mount_tag={_HOST_SHARE_TAG},security_model=none,"
    f"readonly=on,multidevs=remap")
_HOST_SHARE_OPTIONS = (
    "ro,trans=virtio,version=9p2000.L,cache=loose,msize=512000")
_HOST_SHARE_MOUNT = Path("/run/sriov-vif-host")
# Raw images given to the guest as virtio-blk disks, found in the guest by
# the serial number each gets (see guest_disk()). cache=writeback keeps
# the guest's flushes: an fsync in the guest is an fdatasync of the image
# on the host, as on a compute node's disk.
DISK_SERIAL_PREFIX = "sriov-vif-disk"
_NEVER_CACHED = frozenset([Path("/")] + [
    Path("/") / name
    for name in ("etc", "home", "lib", "opt", "srv", "tmp", "usr", "var")])
# Host environment the guest command sees: virtme-ng starts it with a
# minimal environment, and tox relies on these.
_FORWARDED_ENV = ("PATH", "LANG", "LC_ALL", "HOME", "VIRTUAL_ENV", "CI")
_FORWARDED_ENV_PREFIXES = ("SRIOV_VIF_", "PYTHON", "TOX_")


class KernelGuestError(Exception):
    """The guest cannot be prepared or run; says which step and why."""

    def __init__(self, step: str, reason: str) -> None:
        super().__init__(f"Kernel test guest: cannot {step}: {reason}")
        self.step = step
        self.reason = reason


class KernelGuestTimeout(KernelGuestError):
    def __init__(self, command: str, timeout: float) -> None:
        Exception.__init__(
            self, f"Kernel test guest: {command} was still running after "
                  f"{timeout} s; the guest was killed")
        self.step = "finish in time"
        self.reason = f"{command} ran past {timeout} s"


class NetdevsimError(KernelGuestError):
    def __init__(self, dev_id: int | str, reason: str) -> None:
        Exception.__init__(self, f"netdevsim device {dev_id}: {reason}")
        self.step = f"use netdevsim device {dev_id}"
        self.reason = reason


Progress = Callable[[str], None]


def print_progress(message: str) -> None:
    """Default progress reporter: one line per step, on stderr."""
    print(f"[kernel-guest] {message}", file=sys.stderr, flush=True)


@dataclasses.dataclass(frozen=True)
class GuestKernel:
    """A prepared guest: Debian's kernel with netdevsim installed."""

    kver: str
    cache_dir: Path
    vng: Path

    @property
    def kroot(self) -> Path:
        return self.cache_dir / self.kver / "kroot"

    @property
    def vmlinuz(self) -> Path:
        return self.kroot / "boot" / f"vmlinuz-{self.kver}"


def default_cache_dir() -> Path:
    configured = os.environ.get(CACHE_DIR_ENV)
    if configured:
        return Path(configured)
    return Path.home() / ".cache" / "sriov-vif" / "kernel-guest"


# ---------------------------------------------------------------- host side

def _command_output(argv: Sequence[str], step: str,
                    env: dict[str, str] | None = None,
                    cwd: Path | None = None) -> str:
    """Run a preparation command; on failure raise with its output's tail.

    Output is captured rather than shown so a newcomer sees one line per
    step, yet a failure still shows what apt, tar or make said.
    """
    try:
        result = subprocess.run(
            list(argv), capture_output=True, text=True, env=env, cwd=cwd,
            check=False)
    except FileNotFoundError as exc:
        raise KernelGuestError(
            step=step, reason=f"{argv[0]} is not installed ({exc})") from exc
    if result.returncode != 0:
        output = (result.stdout + result.stderr).strip().splitlines()
        tail = "\n".join(output[-25:])
        raise KernelGuestError(
            step=step,
            reason=f"'{shlex.join(argv)}' exited with "
                   f"{result.returncode}:\n{tail}")
    return result.stdout


class _Apt:
    """Debian's package tools, read-only but for downloads into the cache.

    The packages themselves are installed by the test and demo commands
    (bindep.txt, profile guest); here apt only answers questions and
    fetches the two .deb files the guest is made from.
    """

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        self.options = ["-q", "-o", "Acquire::Retries=3"]

    def depends(self, package: str) -> list[str]:
        output = _command_output(["apt-cache", "depends", package],
                                 f"read the dependencies of {package}")
        return re.findall(r"^\s*Depends:\s*(\S+)", output, re.MULTILINE)

    def installed_version(self, package: str) -> str:
        return _command_output(
            ["dpkg-query", "-W", "-f=${Version}", package],
            f"read the installed version of {package}").strip()

    def download(self, spec: str, dest: Path) -> Path:
        """Fetch one .deb into an empty dest; return its path."""
        self.progress(f"apt-get download {spec}")
        if dest.exists():
            shutil.rmtree(dest)
        dest.mkdir(parents=True)
        # apt drops to the _apt user to download unless told otherwise;
        # that user cannot write into root's cache folder.
        _command_output(
            ["apt-get", *self.options, "-o", "APT::Sandbox::User=root",
             "download", spec],
            f"download {spec} (if the package lists are stale, run "
            f"apt-get update)", env=self.env, cwd=dest)
        debs = sorted(dest.glob("*.deb"))
        if len(debs) != 1:
            raise KernelGuestError(
                step=f"download {spec}",
                reason=f"expected one .deb in {dest}, found {len(debs)}")
        return debs[0]


def _current_kver(dependencies: Sequence[str]) -> str:
    """The ABI Debian's kernel metapackage points at today.

    dependencies are those of linux-image-amd64 (apt-cache depends).
    Never hard-coded: it moves with every kernel security update, and the
    old image and headers then disappear from the mirror.
    """
    for dependency in dependencies:
        match = re.fullmatch(r"linux-image-(\d+\.\d+\.\d+-\d+-amd64)",
                             dependency)
        if match:
            return match.group(1)
    raise KernelGuestError(
        step="find the current Debian kernel",
        reason="'apt-cache depends linux-image-amd64' names no "
               "linux-image-<version>-amd64 package")


def _source_package(kver: str) -> str:
    """linux-source-6.1 for 6.1.0-56-amd64."""
    major_minor = kver.split(".")[0] + "." + kver.split(".")[1]
    return f"linux-source-{major_minor}"


def _replace_dir(tmp: Path, final: Path) -> None:
    """Move a finished folder into place, so a half-done one never counts.

    An interrupted prepare leaves only a .tmp folder, which the next run
    removes and redoes.
    """
    if final.exists():
        shutil.rmtree(final)
    tmp.rename(final)


def _fresh_tmp(final: Path) -> Path:
    tmp = final.with_name(final.name + ".tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    return tmp


def _extract_kernel(apt: _Apt, kver: str, workdir: Path, kroot: Path,
                    progress: Progress) -> None:
    deb = apt.download(f"linux-image-{kver}", workdir / "debs")
    progress(f"extracting {deb.name} into {kroot}")
    tmp = _fresh_tmp(kroot)
    _command_output(["dpkg-deb", "-x", str(deb), str(tmp)],
                    f"extract {deb.name}")
    if not (tmp / "boot" / f"vmlinuz-{kver}").is_file():
        raise KernelGuestError(
            step=f"extract {deb.name}",
            reason=f"it has no boot/vmlinuz-{kver}")
    _replace_dir(tmp, kroot)
    deb.unlink()


def _extract_netdevsim(apt: _Apt, kver: str, workdir: Path, src: Path,
                       progress: Progress) -> None:
    """Only drivers/net/netdevsim of the ~140 MB kernel source tarball.

    The source is pinned to the installed headers' version, the kernel
    netdevsim is built against, so its internal APIs match.
    """
    package = _source_package(kver)
    version = apt.installed_version(f"linux-headers-{kver}")
    deb = apt.download(f"{package}={version}", workdir / "debs")
    progress(f"extracting drivers/net/netdevsim from {deb.name}")
    tmp = _fresh_tmp(src)
    pipeline = ('set -o pipefail; dpkg-deb --fsys-tarfile "$1" '
                '| tar -xOf - "$2" '
                '| tar -xJf - -C "$3" --strip-components=4 '
                '--wildcards "$4"')
    _command_output(
        ["bash", "-c", pipeline, "extract-netdevsim", str(deb),
         f"./usr/src/{package}.tar.xz", str(tmp),
         f"{package}/drivers/net/netdevsim/*"],
        f"extract netdevsim from {deb.name}")
    if not (tmp / "Makefile").is_file():
        raise KernelGuestError(
            step=f"extract netdevsim from {deb.name}",
            reason="drivers/net/netdevsim/Makefile is not in the tarball")
    _replace_dir(tmp, src)
    deb.unlink()


def _build_netdevsim(kver: str, src: Path, kroot: Path,
                     progress: Progress) -> Path:
    build = Path("/lib/modules") / kver / "build"
    progress(f"building netdevsim.ko against {build}")
    _command_output(
        ["make", "-C", str(build), f"M={src}", "CONFIG_NETDEVSIM=m",
         f"-j{os.cpu_count() or 1}", "modules"],
        "build netdevsim.ko")
    built = src / "netdevsim.ko"
    if not built.is_file():
        raise KernelGuestError(
            step="build netdevsim.ko", reason=f"make produced no {built}")
    extra = kroot / "lib" / "modules" / kver / "extra"
    extra.mkdir(parents=True, exist_ok=True)
    installed = extra / "netdevsim.ko"
    shutil.copyfile(built, installed)
    progress(f"depmod -b {kroot} {kver}")
    _command_output(["depmod", "-b", str(kroot), kver],
                    "index the guest's modules")
    return installed


def _installed_vng() -> Path | None:
    on_path = shutil.which("vng")
    for candidate in (Path(sysconfig.get_path("scripts")) / "vng",
                      Path(sys.executable).parent / "vng",
                      Path(on_path) if on_path else None):
        if candidate is not None and candidate.is_file():
            return candidate
    return None


def _find_vng() -> Path:
    """vng of this interpreter's environment or of PATH."""
    vng = _installed_vng()
    if vng is None:
        raise KernelGuestError(
            step="find virtme-ng (vng)",
            reason=f"no vng in {sysconfig.get_path('scripts')} or on PATH: "
                   f"run from tox (tox -e kernel), or pip install "
                   f"'virtme-ng>=1.42,<2' into this environment")
    return vng


# Commands prepare() and the guest need, and the package of bindep.txt's
# guest profile that brings each.
_GUEST_TOOLS = {
    "qemu-system-x86_64": "qemu-system-x86", "busybox": "busybox-static",
    "depmod": "kmod", "udevadm": "udev", "make": "make", "gcc": "gcc",
    "xz": "xz-utils", "dpkg-deb": "dpkg", "apt-get": "apt",
}


def _check_host(kver: str) -> None:
    """Name every missing package at once, and how to install them."""
    missing = sorted({package for tool, package in _GUEST_TOOLS.items()
                      if shutil.which(tool) is None})
    build = Path("/lib/modules") / kver / "build"
    if not build.is_dir():
        missing.append(f"linux-headers-{kver}")
    if missing:
        raise KernelGuestError(
            step="prepare the guest",
            reason=f"missing Debian packages: {' '.join(missing)}; install "
                   f"bindep.txt's guest profile as root "
                   f"(tools/install-packages.sh guest), which brings the "
                   f"headers of the kernel linux-image-amd64 names today")


@contextlib.contextmanager
def _locked(cache_dir: Path) -> Iterator[None]:
    """One prepare at a time per cache (tox envs can run in parallel)."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    with open(cache_dir / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _prepare_once(apt: _Apt, cache_dir: Path,
                  progress: Progress) -> str:
    kver = _current_kver(apt.depends("linux-image-amd64"))
    progress(f"guest kernel: Debian's linux-image-{kver}")
    _check_host(kver)
    workdir = cache_dir / kver
    ready = workdir / "ready.json"
    if ready.is_file():
        progress(f"netdevsim already built: {ready}")
        return kver
    kroot = workdir / "kroot"
    src = workdir / "netdevsim-src"
    if (kroot / "boot" / f"vmlinuz-{kver}").is_file():
        progress(f"kernel already extracted: {kroot}")
    else:
        _extract_kernel(apt, kver, workdir, kroot, progress)
    if (src / "Makefile").is_file():
        progress(f"netdevsim source already extracted: {src}")
    else:
        _extract_netdevsim(apt, kver, workdir, src, progress)
    module = _build_netdevsim(kver, src, kroot, progress)
    with contextlib.suppress(FileNotFoundError):
        (workdir / "debs").rmdir()
    ready.write_text(json.dumps({
        "kver": kver,
        "headers_version": apt.installed_version(f"linux-headers-{kver}"),
        "netdevsim": str(module),
    }, indent=2) + "\n")
    return kver


def prepare(cache_dir: Path | None = None,
            progress: Progress = print_progress) -> GuestKernel:
    """Make the guest kernel ready; quick when it already is.

    Downloads Debian's current kernel image and source into cache_dir
    (never into the repository) and builds netdevsim.ko into the
    extracted kernel's module tree, where virtme-ng finds it. Installs
    nothing: a missing package is named (KernelGuestError).
    """
    if platform.machine() != "x86_64":
        raise KernelGuestError(
            step="prepare the guest",
            reason=f"only x86_64 hosts are supported, not "
                   f"{platform.machine()}")
    cache_dir = (cache_dir or default_cache_dir()).absolute()
    started = time.monotonic()
    with _locked(cache_dir):
        kver = _prepare_once(_Apt(progress), cache_dir, progress)
        vng = _find_vng()
    progress(f"guest ready in {time.monotonic() - started:.1f} s "
             f"(vng: {vng})")
    return GuestKernel(kver=kver, cache_dir=cache_dir, vng=vng)


def _overlaps(one: Path, other: Path) -> bool:
    return one == other or one in other.parents or other in one.parents


def _cached_dirs(cwd: Path, rwdirs: Sequence[Path]) -> list[Path]:
    """Host folders the guest reads through the caching 9p mount.

    virtme-ng shares the host's / over 9p without caching: under software
    emulation every stat is a slow round trip, and Python's imports are
    mostly stats (importing pytest takes 11 s uncached, 3 s cached). So
    the folders Python reads, the interpreter's and the working tree, are
    bind-mounted from a second, cached and read-only share. A folder that
    holds or lies in an rwdir is left alone: the bind would hide the
    writable mount; so are / and the folders virtme-ng overlays with
    throw-away writable layers (/tmp, /var, ...), which must stay writable.
    """
    stdlib = Path(sys.base_prefix) / "lib" / (
        f"python{sys.version_info.major}.{sys.version_info.minor}")
    wanted = [cwd, Path(sys.prefix), stdlib]
    return [folder for folder in dict.fromkeys(wanted)
            if folder.is_dir() and folder not in _NEVER_CACHED
            and not any(_overlaps(folder, rwdir) for rwdir in rwdirs)]


def _disk_qemu_opts(disks: Sequence[Path]) -> str:
    """QEMU options attaching each raw image as a virtio-blk disk."""
    options = []
    for number, disk in enumerate(disks):
        drive = f"{DISK_SERIAL_PREFIX}{number}"
        options += [
            "-drive", f"if=none,id={drive},file={disk},format=raw,"
                      f"cache=writeback",
            "-device", f"virtio-blk-pci,drive={drive},serial={drive}"]
    return " ".join(options)


def _guest_script(command: Sequence[str], kver: str, cwd: Path,
                  cached: Sequence[Path]) -> str:
    """The shell script virtme-ng runs in the guest.

    netdevsim is loaded before the command so that every test starts from
    the same kernel state, and a module that does not load fails the run
    with its own exit status instead of a screen of test errors.
    """
    exports = {name: value for name, value in os.environ.items()
               if name in _FORWARDED_ENV
               or name.startswith(_FORWARDED_ENV_PREFIXES)}
    exports[GUEST_KERNEL_ENV] = kver
    lines = [f"export {name}={shlex.quote(value)}"
             for name, value in sorted(exports.items())]
    share = shlex.quote(str(_HOST_SHARE_MOUNT))
    lines += [
        f"mkdir -p {share}",
        f"if mount -t 9p -o {_HOST_SHARE_OPTIONS} {_HOST_SHARE_TAG} "
        f"{share}; then",
        *[f"  mount --bind {shlex.quote(f'{_HOST_SHARE_MOUNT}{folder}')} "
          f"{shlex.quote(str(folder))}" for folder in cached],
        "else",
        "  echo 'kernel-guest: no cached host share; running uncached' >&2",
        "fi",
        f"cd {shlex.quote(str(cwd))} || exit {GUEST_SETUP_FAILED}",
        "if ! modprobe netdevsim; then",
        "  echo 'kernel-guest: modprobe netdevsim failed' >&2",
        f"  exit {GUEST_SETUP_FAILED}",
        "fi",
        f"exec {shlex.join(command)}",
    ]
    return "\n".join(lines)


def _copy_stream(source: IO[bytes], sink: IO[bytes]) -> None:
    """Forward output as it comes, not when a buffer fills."""
    for chunk in iter(lambda: os.read(source.fileno(), 65536), b""):
        sink.write(chunk)
        sink.flush()


def _kill_group(process: subprocess.Popen[bytes]) -> None:
    """QEMU is vng's child: end the whole process group vng leads."""
    for sig, grace in ((signal.SIGTERM, 10), (signal.SIGKILL, 10)):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, sig)
        try:
            process.wait(timeout=grace)
            return
        except subprocess.TimeoutExpired:
            continue


def _boot(argv: Sequence[str], command: Sequence[str],
          timeout: float) -> int:
    """Run vng, stream its output, kill it all when time is up."""
    # stdin must not be a terminal; stdout and stderr share one pipe
    # because QEMU reopens a file it is given, truncating the other. A
    # session of its own lets the whole vng/QEMU tree be killed at once.
    process = subprocess.Popen(
        argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, start_new_session=True,
        env=dict(os.environ, PATH=f"{Path(argv[0]).parent}{os.pathsep}"
                                  f"{os.environ.get('PATH', '')}"))
    assert process.stdout is not None
    copier = threading.Thread(
        target=_copy_stream, args=(process.stdout, sys.stdout.buffer),
        daemon=True)
    copier.start()
    try:
        return process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill_group(process)
        raise KernelGuestTimeout(
            command=shlex.join(command), timeout=timeout) from None
    except BaseException:
        _kill_group(process)
        raise
    finally:
        copier.join(timeout=10)


def run(command: Sequence[str], *,
        rwdirs: Sequence[Path] = (),
        disks: Sequence[Path] = (),
        memory: str = DEFAULT_MEMORY,
        cpus: int = DEFAULT_CPUS,
        timeout: float = DEFAULT_TIMEOUT,
        cache_dir: Path | None = None,
        progress: Progress = print_progress) -> int:
    """Boot the guest once, run command in it, return its exit status.

    The guest sees the host's / read-only (with throw-away overlays on
    /etc, /tmp, /var, ...); only rwdirs are written back to the host. The
    guest's output is streamed as it comes. A guest still running after
    timeout seconds is killed and KernelGuestTimeout raised. disks are
    raw images the guest sees as block devices (guest_disk() finds them).
    """
    if not command:
        raise KernelGuestError(
            step="run a command in the guest", reason="no command given")
    for rwdir in rwdirs:
        if not rwdir.is_dir():
            raise KernelGuestError(
                step="run a command in the guest",
                reason=f"rwdir {rwdir} is not an existing directory")
    for disk in disks:
        # virtme-ng joins QEMU's options with spaces; QEMU splits a
        # -drive at commas.
        if not disk.is_file() or re.search(r"[,\s]", str(disk)):
            raise KernelGuestError(
                step="run a command in the guest",
                reason=f"disk {disk} is not an existing file whose path "
                       f"has no comma and no space")
    rwdirs = [rwdir.absolute() for rwdir in rwdirs]
    guest = prepare(cache_dir, progress)
    cwd = Path.cwd()
    # virtme-ng hands --exec to the guest on the kernel command line,
    # which the kernel cuts at 2048 bytes: the script goes in a file the
    # guest reads through the shared /, and --exec only names it.
    with tempfile.TemporaryDirectory(prefix="run-",
                                     dir=guest.cache_dir) as tmp:
        script = Path(tmp) / "guest.sh"
        script.write_text(_guest_script(command, guest.kver, cwd,
                                        _cached_dirs(cwd, rwdirs)))
        argv = [str(guest.vng), "--disable-kvm", "--cpus", str(cpus),
                "--memory", memory, "--run", str(guest.vmlinuz),
                # "=" because the value starts with a dash.
                f"--qemu-opts={_HOST_SHARE_QEMU_OPTS}",
                "--exec", f"sh {shlex.quote(str(script))}"]
        for rwdir in rwdirs:
            argv += ["--rwdir", str(rwdir)]
        if disks:
            argv.append("--qemu-opts=" + _disk_qemu_opts(
                [disk.absolute() for disk in disks]))
        progress(f"booting {guest.vmlinuz.name} under QEMU (no KVM) to "
                 f"run: {shlex.join(command)}")
        started = time.monotonic()
        status = _boot(argv, command, timeout)
    progress(f"guest exited with status {status} after "
             f"{time.monotonic() - started:.1f} s")
    return status


# --------------------------------------------------------------- guest side

def in_guest() -> bool:
    """True inside a guest started by run(), false anywhere else."""
    return os.environ.get(GUEST_KERNEL_ENV) == os.uname().release


def guest_disk(number: int) -> str:
    """The device of the number-th disk run() was given, e.g. /dev/vda."""
    subprocess.run(["modprobe", "virtio_blk"], check=False,
                   capture_output=True)
    subprocess.run(["udevadm", "settle", f"--timeout={_SETTLE_TIMEOUT}"],
                   check=False, capture_output=True)
    serial = f"{DISK_SERIAL_PREFIX}{number}"
    for block in sorted(Path("/sys/block").iterdir()):
        with contextlib.suppress(OSError):
            if (block / "serial").read_text().strip() == serial:
                return f"/dev/{block.name}"
    raise KernelGuestError(
        step=f"find disk {number} in the guest",
        reason=f"no block device has serial {serial}")


def _require_guest(dev_id: int) -> None:
    if not in_guest():
        raise NetdevsimError(
            dev_id=dev_id,
            reason="netdevsim devices are only made inside the kernel test "
                   "guest (python -m harness.kernel_guest run -- ...)")


def _settle(dev_id: int) -> None:
    """Wait for udev: it renames the PF after the kernel announces it."""
    try:
        subprocess.run(["udevadm", "settle", f"--timeout={_SETTLE_TIMEOUT}"],
                       check=True, capture_output=True)
    except (OSError, subprocess.CalledProcessError) as exc:
        raise NetdevsimError(
            dev_id=dev_id, reason=f"udevadm settle failed: {exc}") from exc


def _write(path: Path, value: str, dev_id: int) -> None:
    try:
        path.write_text(value)
    except OSError as exc:
        raise NetdevsimError(
            dev_id=dev_id,
            reason=f"writing {value!r} to {path} failed: {exc}") from exc


def load_netdevsim() -> None:
    """modprobe netdevsim unless its bus is already there."""
    if (_NETDEVSIM_BUS / "new_device").exists():
        return
    result = subprocess.run(["modprobe", "netdevsim"], capture_output=True,
                            text=True, check=False)
    if result.returncode != 0:
        raise NetdevsimError(
            dev_id="-", reason="modprobe netdevsim failed: "
                               + result.stderr.strip())


def _device_dir(dev_id: int) -> Path:
    return _NETDEVSIM_BUS / "devices" / f"netdevsim{dev_id}"


def _debugfs_dir(dev_id: int) -> Path:
    """netdevsim's knobs beyond sysfs; mounts debugfs if it is not yet."""
    if not (_DEBUGFS / "netdevsim").is_dir():
        subprocess.run(["mount", "-t", "debugfs", "debugfs", str(_DEBUGFS)],
                       check=False, capture_output=True)
    ddir = _DEBUGFS / "netdevsim" / f"netdevsim{dev_id}"
    if not ddir.is_dir():
        raise NetdevsimError(
            dev_id=dev_id, reason=f"{ddir} does not exist (is debugfs "
                                  f"mounted on {_DEBUGFS}?)")
    return ddir


def _validate_counts(dev_id: int, numvfs: int, max_vfs: int | None) -> int:
    if dev_id < 0:
        raise NetdevsimError(
            dev_id=dev_id, reason="the device id must be >= 0")
    if numvfs < 0:
        raise NetdevsimError(
            dev_id=dev_id, reason=f"numvfs {numvfs} must be >= 0")
    limit = numvfs if max_vfs is None else max_vfs
    if limit < numvfs:
        raise NetdevsimError(
            dev_id=dev_id,
            reason=f"max_vfs {max_vfs} is below numvfs {numvfs}")
    return limit


def free_netdevsim_id(first: int = 100) -> int:
    """The lowest netdevsim device id from first up that is not in use.

    The default keeps clear of the ids the demo and benchmarks pick.
    """
    dev_id = first
    while _device_dir(dev_id).exists():
        dev_id += 1
    return dev_id


def create_netdevsim_pf(dev_id: int, numvfs: int,
                        max_vfs: int | None = None) -> str:
    """Create netdevsim device dev_id with one port and numvfs VFs.

    Returns the PF's netdev name after udev renamed it (e.g. eni10np1).
    max_vfs is the VF limit (default: numvfs); netdevsim's own default of
    4 is raised through debugfs when needed.
    """
    limit = _validate_counts(dev_id, numvfs, max_vfs)
    _require_guest(dev_id)
    load_netdevsim()
    device = _device_dir(dev_id)
    if device.exists():
        raise NetdevsimError(dev_id=dev_id,
                                       reason=f"{device} already exists")
    _write(_NETDEVSIM_BUS / "new_device", f"{dev_id} 1", dev_id)
    _settle(dev_id)
    if limit != _NETDEVSIM_DEFAULT_MAX_VFS:
        _write(_debugfs_dir(dev_id) / "max_vfs", str(limit), dev_id)
    if numvfs:
        _write(device / "sriov_numvfs", str(numvfs), dev_id)
        _settle(dev_id)
    names = sorted(p.name for p in (device / "net").iterdir())
    if len(names) != 1:
        raise NetdevsimError(
            dev_id=dev_id, reason=f"expected one PF netdev, found {names}")
    return names[0]


def destroy_netdevsim(dev_id: int) -> None:
    """Delete netdevsim device dev_id with its PF and VFs."""
    _require_guest(dev_id)
    if not _device_dir(dev_id).exists():
        raise NetdevsimError(dev_id=dev_id,
                                       reason="no such device")
    _write(_NETDEVSIM_BUS / "del_device", str(dev_id), dev_id)
    _settle(dev_id)


# ------------------------------------------------------------- command line

def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m harness.kernel_guest",
        description="Debian's kernel with netdevsim VFs under QEMU, for "
                    "the kernel test tier, the demo and the benchmarks.")
    parser.add_argument(
        "--cache-dir", type=Path, default=None,
        help=f"where the kernel, its source and the module are kept "
             f"(default: ${CACHE_DIR_ENV} or "
             f"~/.cache/sriov-vif/kernel-guest)")
    commands = parser.add_subparsers(dest="action", required=True)
    commands.add_parser(
        "prepare", help="fetch the kernel, build netdevsim (quick when "
                        "already done)")
    run_parser = commands.add_parser(
        "run", help="boot the guest and run one command in it; exits with "
                    "the command's status",
        epilog="The command to run in the guest follows --, e.g. "
               "run -- python -m pytest tests/kernel")
    run_parser.add_argument("--memory", default=DEFAULT_MEMORY,
                            help="guest memory (default: %(default)s)")
    run_parser.add_argument("--cpus", type=int, default=DEFAULT_CPUS,
                            help="guest CPUs (default: %(default)s)")
    run_parser.add_argument(
        "--rwdir", type=Path, action="append", default=[],
        help="host folder the guest may write to (repeatable); everything "
             "else is read-only or thrown away")
    run_parser.add_argument(
        "--timeout", type=float, default=DEFAULT_TIMEOUT,
        help="kill the guest after this many seconds (default: "
             "%(default)s)")
    return parser


def _split_command(argv: Sequence[str]) -> tuple[list[str], list[str]]:
    """Options before the first --, the guest command after it.

    Done by hand because argparse (3.11) also drops a later -- that
    belongs to the guest command.
    """
    if "--" not in argv:
        return list(argv), []
    split = list(argv).index("--")
    return list(argv[:split]), list(argv[split + 1:])


def _exit_on_sigterm(signum: int, frame: object) -> None:
    """Let run() kill QEMU when CI cancels the job (it sends SIGTERM)."""
    raise SystemExit(128 + signum)


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    options, command = _split_command(
        sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(options)
    if args.action == "run" and not command:
        parser.error("run needs the command to run in the guest after --")
    if args.action == "prepare" and command:
        parser.error("prepare takes no command")
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    try:
        if args.action == "prepare":
            prepare(args.cache_dir)
            return 0
        return run(command, rwdirs=args.rwdir, memory=args.memory,
                   cpus=args.cpus, timeout=args.timeout,
                   cache_dir=args.cache_dir)
    except KernelGuestTimeout as exc:
        print(f"ERROR: {exc}", file=sys.stderr)
        return 124
    except KernelGuestError as exc:
        print(f"ERROR: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
