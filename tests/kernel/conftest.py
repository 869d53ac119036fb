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
from typing import Any

from oslo_privsep import priv_context
import pytest

from harness import iproute
from harness import kernel_guest
from harness import privsep_daemon as harness_privsep_daemon
from harness import rtnl_readback
from sriov_vif import privsep  # registers [sriov_vif_privileged]

# Not run outside the guest (e.g. by pytest tests/ on the host)
NOT_IN_GUEST = pytest.ExitCode.USAGE_ERROR

NetdevsimFactory = Callable[..., str]


@pytest.fixture(scope="session", autouse=True)
def kernel_test_guest() -> None:
    """Stop the whole session unless we run in the guest with netdevsim."""
    if not kernel_guest.in_guest():
        pytest.exit(
            "tests/kernel must run inside the kernel test guest: "
            "tox -e kernel, or python -m harness.kernel_guest run -- "
            "python -m pytest tests/kernel", returncode=NOT_IN_GUEST)
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


@pytest.fixture(scope="session")
def privsep_daemon() -> Iterator[priv_context.PrivContext]:
    """The real privsep daemon of sriov_vif, started the deployment way."""
    with harness_privsep_daemon.started(privsep.vif_plug) as context:
        yield context
