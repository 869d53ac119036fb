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

"""Opt-in fixtures of the functional tier: a private netns, privsep, links.

Nothing here is autouse: the libvirt XML tests need none of it. A test
module that changes links asks for `nl_private_netns` (directly or through
`nl_privsep_daemon` or `nl_veth`): the test process itself moves into a
fresh network namespace for that module, so that the links it creates,
the privsep daemon it launches and every `ip` it runs see that namespace
and nothing of the host's.
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Iterator
import contextlib
import ctypes
import dataclasses
import os
from pathlib import Path
import shutil
import subprocess
import tempfile
from typing import Any

from oslo_config import cfg
from oslo_privsep import priv_context
import pytest

from harness import iproute
from harness import privsep_daemon as harness_privsep_daemon
from harness import sysfs_tree
from sriov_vif import config
from sriov_vif import discovery
from sriov_vif import privileged  # noqa: F401  (registers [os_vif_sriov])
from sriov_vif import privsep

CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)


def _check(result: int, what: str) -> None:
    if result != 0:
        code = ctypes.get_errno()
        raise OSError(code, f"{what}: {os.strerror(code)}")


def netns_inode(pid: int | str = "thread-self") -> int:
    return os.stat(f"/proc/{pid}/ns/net").st_ino


@pytest.fixture(scope="module")
def nl_private_netns() -> Iterator[int]:
    """Move this test process into a new network namespace, for a module.

    Python 3.11 has no os.unshare/os.setns, hence libc. The namespace
    is the calling thread's (pytest's main thread), which is also the
    thread that starts the privsep daemon and runs `ip`: they inherit
    it. Yields the namespace's inode; the host namespace is restored
    afterwards, and the new one vanishes with its last process.
    """
    if os.geteuid() != 0:
        pytest.fail("the functional tier needs root (network namespaces)")
    with open("/proc/thread-self/ns/net") as host_ns:
        _check(_libc.unshare(CLONE_NEWNET), "unshare(CLONE_NEWNET)")
        try:
            subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
            yield netns_inode()
        finally:
            _check(_libc.setns(host_ns.fileno(), CLONE_NEWNET),
                   "setns back to the host network namespace")


# The daemon finds VFs only in sysfs under its own sysfs_root: this tree
# maps two VFs of a PF onto the veth and macvtap of nl_veth (stand-in VF
# netdevs, as in the kernel tier and the demo), and a second PF onto
# netdevs that do not exist.
PF_ADDRESS = "0000:81:00.0"
PF_IFNAME = "nlvb"  # the veth peer: a link without SR-IOV
VF_ADDRESSES = ("0000:81:10.0", "0000:81:10.1")
GONE_PF_ADDRESS = "0000:82:00.0"
GONE_VF_ADDRESS = "0000:82:10.0"
GONE_PF_IFNAME = "nlnope0"
GONE_VF_IFNAME = "nlnope1"
NOVA_UID = 4242  # owns state_path; the daemon runs as it in test_non_root


@dataclasses.dataclass(frozen=True)
class Sysfs:
    root: str
    config_file: str


def make_sysfs(directory: Path, privileged_options: str = "") -> Sysfs:
    """A sysfs tree and a config file naming it, readable by anyone.

    The config file is the daemon's: oslo.privsep passes no config file
    to a helper_command, so the command line carries it.
    """
    directory.mkdir(parents=True, exist_ok=True)
    directory.chmod(0o755)
    tree = sysfs_tree.SysfsTree(str(directory / "sys"))
    tree.add_pf(PF_ADDRESS, [PF_IFNAME], driver="veth", numvfs=2,
                totalvfs=8, vf_driver="veth", vf_ifnames=["nlva", "nlm0"])
    tree.add_pf(GONE_PF_ADDRESS, [GONE_PF_IFNAME], driver="veth", numvfs=1,
                totalvfs=8, vf_driver="veth", vf_ifnames=[GONE_VF_IFNAME])
    conf = directory / "daemon.conf"
    conf.write_text(f"[{config.GROUP}]\nsysfs_root = {tree.root}\n"
                    f"[{config.PRIVSEP_GROUP}]\n{privileged_options}")
    for path in (directory, *directory.rglob("*")):
        if not path.is_symlink():
            path.chmod(0o755 if path.is_dir() else 0o644)
    return Sysfs(root=tree.root, config_file=str(conf))


@pytest.fixture(scope="module")
def nl_sysfs() -> Iterator[Sysfs]:
    """The module's sysfs tree, in a directory any uid can read."""
    directory = Path(tempfile.mkdtemp(prefix="sriov-vif-functional-"))
    try:
        yield make_sysfs(directory)
    finally:
        shutil.rmtree(directory, ignore_errors=True)


@contextlib.contextmanager
def privsep_daemon(sysfs: Sysfs) -> Iterator[priv_context.PrivContext]:
    """sriov_vif's privsep daemon, launched the deployment way, on sysfs.

    Its config file names the tree; the caller's sysfs_root names it too.
    """
    cfg.CONF.set_override("sysfs_root", sysfs.root, group=config.GROUP)
    try:
        with harness_privsep_daemon.started(
                privsep.vif_plug, config_file=sysfs.config_file) as context:
            yield context
    finally:
        cfg.CONF.clear_override("sysfs_root", group=config.GROUP)


@pytest.fixture(scope="module")
def nl_privsep_daemon(
        nl_private_netns: int,
        nl_sysfs: Sysfs) -> Iterator[priv_context.PrivContext]:
    """The daemon, as root with CAP_NET_ADMIN only, on nl_sysfs."""
    with privsep_daemon(nl_sysfs) as context:
        yield context


def find_vf(address: str) -> discovery.VirtualFunction:
    """The VF as the caller's discovery sees it under the test tree."""
    return discovery.find_vf(cfg.CONF[config.GROUP].sysfs_root, address)


def privsep_daemon_pids() -> list[int]:
    """PIDs of running sriov_vif privsep daemons (any namespace)."""
    pids = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            argv = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if (any(arg.endswith(b"privsep-helper") for arg in argv[:2])
                and b"sriov_vif.privsep.vif_plug" in argv):
            pids.append(int(proc.name))
    return pids


def ip_link(ifname: str) -> dict[str, Any]:
    """`ip -j link show IFNAME`, parsed: the independent read-back."""
    return iproute.link_json(ifname)


def ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True)


@dataclasses.dataclass(frozen=True)
class Veth:
    """A veth pair with a passthru macvtap on one end, as for direct."""

    name: str
    peer: str
    macvtap: str


@pytest.fixture
def nl_veth(nl_private_netns: int) -> Iterator[Veth]:
    """nlva/nlvb (down) and macvtap nlm0 on nlva, in the private netns."""
    veth = Veth(name="nlva", peer="nlvb", macvtap="nlm0")
    # explicit "name": a bare word after "link add" is read as an address
    ip("link", "add", "name", veth.name, "type", "veth", "peer", "name",
       veth.peer)
    ip("link", "add", "link", veth.name, "name", veth.macvtap, "type",
       "macvtap", "mode", "passthru")
    try:
        yield veth
    finally:
        ip("link", "del", veth.name)  # takes its peer and macvtap along


@pytest.fixture
def nl_ip_link() -> Callable[[str], dict[str, Any]]:
    return ip_link
