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

"""Fixtures of the kernel tier: netdevsim PFs, the privsep daemon, readers.

These tests only mean something on the guest kernel that
`tox -e kernel` boots (python -m harness.kernel_guest run -- ...).
Anywhere else the session stops with an error instead of skipping: a
kernel tier that silently skips is a kernel tier that proves nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Iterator
import dataclasses
import shutil
from typing import Any

from oslo_config import cfg
from oslo_privsep import priv_context
import pytest

from harness import iproute
from harness import kernel_guest
from harness import privsep_daemon as harness_privsep_daemon
from harness import rtnl_readback
from harness import sysfs_tree
from sriov_vif import config
from sriov_vif import privsep  # registers [sriov_vif_privileged]

# Not run outside the guest (e.g. by pytest tests/ on the host)
NOT_IN_GUEST = pytest.ExitCode.USAGE_ERROR

NetdevsimFactory = Callable[..., str]


@pytest.fixture(scope="session", autouse=True)
def kernel_test_guest() -> None:
    """Stop the whole session unless we run in the guest with netdevsim."""
    if not kernel_guest.in_guest():
        pytest.exit(
            "these tests must run inside the kernel test guest: "
            "tox -e kernel (tests/kernel), tox -e nova (tests/nova_kernel), "
            "or python -m harness.kernel_guest run -- python -m pytest "
            "TESTS", returncode=NOT_IN_GUEST)
    try:
        kernel_guest.load_netdevsim()
    except kernel_guest.NetdevsimError as exc:
        pytest.exit(f"netdevsim is unusable in the guest: {exc}",
                    returncode=NOT_IN_GUEST)


@pytest.fixture
def netdevsim_pf_factory() -> Iterator[NetdevsimFactory]:
    """make(numvfs, max_vfs=None) -> PF ifname; deleted after the test.

    Each call creates a new netdevsim device with one port, so tests never
    see VF settings another test left behind.
    """
    created: list[int] = []

    def make(numvfs: int, max_vfs: int | None = None) -> str:
        dev_id = kernel_guest.free_netdevsim_id()
        ifname = kernel_guest.create_netdevsim_pf(dev_id, numvfs, max_vfs)
        created.append(dev_id)
        return ifname

    yield make
    for dev_id in reversed(created):
        kernel_guest.destroy_netdevsim(dev_id)


@pytest.fixture
def netdevsim_pf(netdevsim_pf_factory: NetdevsimFactory) -> str:
    """A fresh netdevsim PF with 8 VFs, all at netdevsim's defaults."""
    return netdevsim_pf_factory(8)


def _ip_link_json(ifname: str) -> dict[str, Any]:
    return iproute.link_json(ifname, details=True)


@pytest.fixture
def ip_link_json() -> Callable[[str], dict[str, Any]]:
    """`ip -j -d link show IFNAME`, parsed: the independent read-back.

    iproute2 shares no code with sriov_vif. Above about 220 VFs it
    truncates the VF list (it prints "Truncated VF list"); use vf_table
    there.
    """
    return _ip_link_json


@pytest.fixture
def vf_table() -> Callable[[str], rtnl_readback.VFTable]:
    """The whole VF table of a PF, read with stats skipped (any count)."""
    return rtnl_readback.read_vf_table


@dataclasses.dataclass(frozen=True)
class DaemonSysfs:
    """The sysfs_root the privileged daemon reads, and its config file."""

    root: str
    config_file: str


@pytest.fixture(scope="session")
def daemon_sysfs(
        tmp_path_factory: pytest.TempPathFactory) -> DaemonSysfs:
    """One sysfs_root for the session's daemon; trees come and go in it.

    The daemon resolves every VF it is asked about in sysfs under its own
    [os_vif_sriov] sysfs_root, read from its config file (oslo.privsep
    passes none to a helper_command: the command line names it).
    """
    directory = tmp_path_factory.mktemp("daemon-sysfs")
    root = directory / "sys"
    conf = directory / "daemon.conf"
    conf.write_text(f"[{config.GROUP}]\nsysfs_root = {root}\n")
    return DaemonSysfs(root=str(root), config_file=str(conf))


@pytest.fixture
def daemon_tree(daemon_sysfs: DaemonSysfs
                ) -> Iterator[sysfs_tree.SysfsTree]:
    """A fresh sysfs-shaped tree at the daemon's sysfs_root, for one test.

    netdevsim VFs have no PCI functions: the tree gives them addresses
    (and veths as stand-in VF netdevs where a test wants one). The
    caller's sysfs_root is the same directory.
    """
    shutil.rmtree(daemon_sysfs.root, ignore_errors=True)
    cfg.CONF.set_override("sysfs_root", daemon_sysfs.root, config.GROUP)
    try:
        yield sysfs_tree.SysfsTree(daemon_sysfs.root)
    finally:
        cfg.CONF.clear_override("sysfs_root", config.GROUP)
        shutil.rmtree(daemon_sysfs.root, ignore_errors=True)


@pytest.fixture(scope="session")
def privsep_daemon(
        daemon_sysfs: DaemonSysfs) -> Iterator[priv_context.PrivContext]:
    """The real privsep daemon of sriov_vif, started the deployment way.

    It resolves VFs under daemon_sysfs.
    """
    with harness_privsep_daemon.started(
            privsep.vif_plug, config_file=daemon_sysfs.config_file) as ctx:
        yield ctx
