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

"""The privileged daemon as nova's user, with CAP_NET_ADMIN and nothing else.

oslo.privsep's [sriov_vif_privileged] user and group make the daemon
drop uid 0 after it started; it keeps only the capability of the
context. The entrypoint must still work: rtnetlink checks
CAP_NET_ADMIN, not the uid, and the daemon reads sysfs (world-readable)
and nothing else. Issue 15 item 9; devstack sets these options.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
import shutil
import tempfile

from oslo_privsep import priv_context
import pytest

from sriov_vif import privileged
from sriov_vif import vf_config
from sriov_vif.vf_state import VFSettings
from sriov_vif.vf_state import VFState
from tests.functional import conftest
from tests.functional.conftest import NOVA_UID
from tests.functional.conftest import PF_ADDRESS
from tests.functional.conftest import VF_ADDRESSES

CAP_NET_ADMIN = 12
MAC = "52:54:00:42:42:42"


@pytest.fixture(scope="module")
def non_root_daemon(
        nl_private_netns: int) -> Iterator[priv_context.PrivContext]:
    directory = Path(tempfile.mkdtemp(prefix="sriov-vif-non-root-"))
    sysfs = conftest.make_sysfs(
        directory, f"user = {NOVA_UID}\ngroup = {NOVA_UID}\n")
    try:
        with conftest.privsep_daemon(sysfs) as context:
            yield context
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def _status(pid: int) -> dict[str, str]:
    return dict(line.split(":\t", 1) for line in Path(
        f"/proc/{pid}/status").read_text().splitlines() if ":\t" in line)


def test_the_entrypoint_works_as_nova_with_only_cap_net_admin(
        non_root_daemon, nl_private_netns, nl_veth, nl_ip_link):
    vf = conftest.find_vf(VF_ADDRESSES[0])  # netdev nlva, PF nlvb
    before = VFState(index=0, mac="00:00:00:00:00:00", vlan=0, qos=0,
                     vlan_proto="802.1Q", spoofchk=None, trust=None,
                     link_state="auto", min_tx_rate=0, max_tx_rate=0)

    # change_vfs, the one entrypoint, starts the daemon: a change only
    # CAP_NET_ADMIN allows, on the VF's netdev
    assert privileged.change_vfs(PF_ADDRESS, "nlvb", [{
        "address": VF_ADDRESSES[0], "settings": {},
        "before": before.to_primitive(),
        "netdev": {"ifname": nl_veth.name, "mac": MAC, "up": True}}]) == (
        None,)
    link = nl_ip_link(nl_veth.name)
    assert link["address"] == MAC and "UP" in link["flags"]

    [pid] = [pid for pid in conftest.privsep_daemon_pids()
             if conftest.netns_inode(pid) == nl_private_netns]
    status = _status(pid)
    assert status["Uid"].split() == [str(NOVA_UID)] * 4
    assert status["Gid"].split() == [str(NOVA_UID)] * 4
    assert int(status["CapEff"], 16) == 1 << CAP_NET_ADMIN
    assert int(status["CapPrm"], 16) == 1 << CAP_NET_ADMIN

    # VF settings: the kernel gets past its capability check (an
    # unprivileged sender gets EPERM) to veth's EOPNOTSUPP
    (refused,) = privileged.change_vfs(PF_ADDRESS, "nlvb", [{
        "address": VF_ADDRESSES[0], "settings": {"trust": True},
        "before": before.to_primitive(), "netdev": None}])
    assert refused["errno"] != 1  # EPERM
    assert refused["attribute"] == "trust"
    assert "CAP_NET_ADMIN" not in str(refused)

    # and the typed client on top
    vf_config.apply_settings(vf, VFSettings(), before, "fail",
                             netdev=vf_config.NetdevChange(nl_veth.name,
                                                           up=False))
    assert vf_config.netdev_state(vf, nl_veth.name) == (
        vf_config.NetdevState(mac=MAC, up=False))
    with pytest.raises(Exception) as err:
        vf_config.apply_settings(vf, VFSettings(trust=True), before,
                                 unsupported_action="fail")
    assert "Operation not supported" in str(err.value)
