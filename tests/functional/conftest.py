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
import ctypes
import dataclasses
import os
from pathlib import Path
import subprocess
from typing import Any

from oslo_privsep import priv_context
import pytest

from harness import iproute
from harness import privsep_daemon
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


@pytest.fixture(scope="module")
def nl_privsep_daemon(
        nl_private_netns: int) -> Iterator[priv_context.PrivContext]:
    """sriov_vif's privsep daemon, launched the deployment way, in the
    private namespace (a daemon an earlier module left is stopped first).
    """
    with privsep_daemon.started(privsep.vif_plug) as context:
        yield context


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
