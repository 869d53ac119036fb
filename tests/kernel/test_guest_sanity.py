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

"""The harness itself: the guest kernel, netdevsim VFs, privsep, readers.

These prove the kernel side with iproute2 alone, so that a failure in a
test of sriov_vif's own netlink layer points at that layer, not at the
guest.
"""

from __future__ import annotations

from collections.abc import Callable
import os
from pathlib import Path
import subprocess
from typing import Any

from oslo_privsep import priv_context

from harness import kernel_guest
from harness import rtnl_readback
from tests.kernel import conftest

IpLinkJson = Callable[[str], dict[str, Any]]
VFTableReader = Callable[[str], rtnl_readback.VFTable]
CAP_NET_ADMIN = 12


def _ip(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *args], capture_output=True, text=True,
                          check=False)


def test_runs_on_the_guest_kernel_with_our_netdevsim() -> None:
    assert kernel_guest.in_guest()
    assert os.environ[kernel_guest.GUEST_KERNEL_ENV] == os.uname().release
    module = subprocess.run(["modinfo", "-n", "netdevsim"],
                            capture_output=True, text=True, check=True)
    # Built by prepare() and installed under extra/: Debian has none.
    assert module.stdout.strip().endswith("/extra/netdevsim.ko")
    assert Path("/sys/bus/netdevsim/new_device").exists()


def test_pf_has_eight_vfs_at_defaults(netdevsim_pf: str,
                                      ip_link_json: IpLinkJson) -> None:
    numvfs = Path(f"/sys/class/net/{netdevsim_pf}/device/sriov_numvfs")
    assert numvfs.read_text().strip() == "8"

    vfs = ip_link_json(netdevsim_pf)["vfinfo_list"]

    assert sorted(vf["vf"] for vf in vfs) == list(range(8))
    for vf in vfs:
        assert vf["address"] == "00:00:00:00:00:00"
        assert vf["spoofchk"] is False
        assert vf["trust"] is False
        assert vf["link_state"] == "auto"
        assert vf["rate"] == {"max_tx": 0, "min_tx": 0}


def test_every_vf_attribute_reads_back(netdevsim_pf: str,
                                       ip_link_json: IpLinkJson,
                                       vf_table: VFTableReader) -> None:
    set_vf = _ip("link", "set", netdevsim_pf, "vf", "1",
                 "mac", "52:54:00:12:34:56", "vlan", "100", "qos", "3",
                 "proto", "802.1ad", "trust", "on", "spoofchk", "on",
                 "state", "enable", "min_tx_rate", "10",
                 "max_tx_rate", "100")
    assert set_vf.returncode == 0, set_vf.stderr

    vfs = {vf["vf"]: vf for vf in ip_link_json(netdevsim_pf)["vfinfo_list"]}
    vf1 = vfs[1]
    assert vf1["address"] == "52:54:00:12:34:56"
    assert vf1["vlan_list"] == [
        {"vlan": 100, "qos": 3, "protocol": "802.1ad"}]
    assert vf1["trust"] is True
    assert vf1["spoofchk"] is True
    assert vf1["link_state"] == "enable"
    assert vf1["rate"] == {"max_tx": 100, "min_tx": 10}
    # Only VF 1 changed.
    for index in (0, 2, 7):
        assert vfs[index]["address"] == "00:00:00:00:00:00"
        assert vfs[index]["trust"] is False

    # The raw reader (used where iproute2 truncates) agrees with iproute2.
    table = vf_table(netdevsim_pf)
    assert table.num_vf == 8
    assert table.vfs[1] == rtnl_readback.VFReading(
        vf=1, mac="52:54:00:12:34:56", vlan=100, qos=3, vlan_proto=0x88A8,
        spoofchk=True, trust=True, link_state="enable", min_tx_rate=10,
        max_tx_rate=100)
    # netdevsim reports the protocol of a VLAN never set as 0.
    assert table.vfs[0] == rtnl_readback.VFReading(
        vf=0, mac="00:00:00:00:00:00", vlan=0, qos=0, vlan_proto=0,
        spoofchk=False, trust=False, link_state="auto", min_tx_rate=0,
        max_tx_rate=0)


def test_vf_index_past_the_count_is_refused(netdevsim_pf: str) -> None:
    result = _ip("link", "set", netdevsim_pf, "vf", "8",
                 "mac", "52:54:00:12:34:57")

    assert result.returncode != 0
    assert "Invalid argument" in result.stderr


def test_256_vfs(netdevsim_pf_factory: conftest.NetdevsimFactory,
                 vf_table: VFTableReader) -> None:
    pf = netdevsim_pf_factory(256)
    numvfs = Path(f"/sys/class/net/{pf}/device/sriov_numvfs")
    assert numvfs.read_text().strip() == "256"
    set_last = _ip("link", "set", pf, "vf", "255", "mac",
                   "52:54:00:00:00:ff")
    assert set_last.returncode == 0, set_last.stderr

    table = vf_table(pf)

    assert table.num_vf == 256
    assert sorted(table.vfs) == list(range(256))
    assert table.vfs[255].mac == "52:54:00:00:00:ff"
    assert table.vfs[254].mac == "00:00:00:00:00:00"


def _pids_running(*words: str) -> list[int]:
    pids = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            argv = cmdline.read_bytes().split(b"\0")
        except OSError:
            continue  # the process ended while we looked
        if all(word.encode() in argv for word in words):
            pids.append(int(cmdline.parent.name))
    return pids


def _effective_capabilities(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("CapEff:"):
            return int(line.split()[1], 16)
    raise AssertionError(f"no CapEff in /proc/{pid}/status")


def test_privsep_daemon_runs_with_net_admin_only(
        privsep_daemon: priv_context.PrivContext) -> None:
    assert privsep_daemon.channel is not None
    assert privsep_daemon.channel.running

    pids = _pids_running("--privsep_context", "sriov_vif.privsep.vif_plug")

    assert len(pids) == 1, pids
    assert _effective_capabilities(pids[0]) == 1 << CAP_NET_ADMIN
