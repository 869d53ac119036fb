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

"""SIGKILL at random moments, then nova's or the operator's repair.

Every VF of a netdevsim PF gets a distinctive original state (its own
MAC, VLAN and QoS, 802.1ad on half of them, trust, spoof checking, link
state and rates) set and read back with iproute2. tests/kernel/
fault_runner.py then kills `sriov-vif plug` or, separately, its privsep
daemon with SIGKILL at random moments, and repairs each round by a
replug and unplug or by `sriov-vif restore`. Afterwards the whole VF
table, read with iproute2, must be the original one on every VF, and the
journal must hold nothing: no record, no temporary file, nothing
quarantined. Bounded: a round count and a time budget (the tier runs on
2 emulated cores in CI); the seed is printed for a rerun.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
import random
import subprocess
import sys

import os_vif.objects
from os_vif.objects import network as osv_network
from os_vif.objects import vif as osv_vif

from sriov_vif import objects

# The VIFs are built here, in the test: alone, nothing else registers
# the objects a Network refers to.
os_vif.objects.register_all()

REPO = Path(__file__).resolve().parents[2]
NUMVFS = 6
PF_ADDRESS = "0000:84:00.0"
MAX_ROUNDS = int(os.environ.get("SRIOV_VIF_FAULT_ROUNDS", "6"))
BUDGET_SECONDS = float(os.environ.get("SRIOV_VIF_FAULT_BUDGET", "20"))


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True)


def _distinctive_original(pf: str) -> None:
    for i in range(NUMVFS):
        vlan = ["vlan", str(100 + i), "qos", str(i % 8)]
        if i % 2:
            vlan += ["proto", "802.1ad"]
        _ip("link", "set", pf, "vf", str(i), "mac",
            f"52:54:00:0f:00:{i:02x}", *vlan)
        _ip("link", "set", pf, "vf", str(i),
            "trust", "on" if i % 2 else "off",
            "spoofchk", "on" if i % 3 else "off",
            "state", ("enable", "disable", "auto")[i % 3],
            "min_tx_rate", str(5 + i), "max_tx_rate", str(100 + 10 * i))


def _vif(address: str, index: int) -> osv_vif.VIFHostDevice:
    # every attribute differs from the original
    return osv_vif.VIFHostDevice(
        id=f"f0000000-0000-4000-8000-{index:012d}",
        address=f"fa:16:3e:0f:00:{index:02x}", plugin="sriov",
        dev_type="ethernet", dev_address=address,
        network=osv_network.Network(vlan=3000 + index),
        port_profile=objects.VIFPortProfileSRIOV(
            trusted=not index % 2, spoofchk=not index % 3,
            link_state=("disable", "auto", "enable")[index % 3],
            min_tx_rate=0, max_tx_rate=1000, vlan_qos=7 - index % 8,
            vlan_proto="802.1Q"))


def test_sigkill_of_plug_or_its_daemon_is_always_repaired(
        netdevsim_pf_factory, daemon_tree, ip_link_json, tmp_path):
    pf = netdevsim_pf_factory(NUMVFS)
    built = daemon_tree.add_pf(PF_ADDRESS, [pf], driver="netdevsim",
                               numvfs=NUMVFS, totalvfs=NUMVFS,
                               vf_driver="vfio-pci")
    _distinctive_original(pf)
    original = ip_link_json(pf)["vfinfo_list"]
    assert len({json.dumps(vf, sort_keys=True) for vf in
                ({k: v for k, v in vf.items() if k != "vf"}
                 for vf in original)}) == NUMVFS  # all distinct

    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    conf = tmp_path / "sriov.conf"
    conf.write_text(f"[os_vif_sriov]\nsysfs_root = {daemon_tree.root}\n"
                    f"state_path = {state}\n"
                    "released_vf_mac = restore\n")
    vifs = {}
    for vf in built.vfs:
        path = tmp_path / f"vif{vf.index}.json"
        path.write_text(json.dumps(
            _vif(vf.pci_address, vf.index).obj_to_primitive()))
        vifs[vf.pci_address] = str(path)
    seed = random.SystemRandom().randrange(2**32)
    print(f"fault test seed {seed}")
    spec = tmp_path / "spec.json"
    log = tmp_path / "operations.log"
    spec.write_text(json.dumps({
        "config_file": str(conf), "vifs": vifs, "seed": seed,
        "log_file": str(log),
        "min_rounds": 4, "max_rounds": MAX_ROUNDS,
        "budget_seconds": BUDGET_SECONDS}))

    result = subprocess.run(
        [sys.executable, "-m", "tests.kernel.fault_runner", str(spec)],
        cwd=REPO, capture_output=True, text=True, timeout=600, check=False)

    operations = log.read_text() if log.exists() else ""
    assert result.returncode == 0, (result.stderr[-3000:]
                                    + operations[-3000:])
    report = json.loads(result.stdout.splitlines()[-1])
    print(json.dumps(report, indent=1))
    rounds = report["rounds"]
    assert len(rounds) >= 4, report
    assert {r["victim"] for r in rounds} == {"plug", "daemon"}
    assert any(r["killed"] for r in rounds if r["victim"] == "plug")
    assert any(r["killed"] for r in rounds if r["victim"] == "daemon")
    for r in rounds:
        # a repair may find nothing to do, but it never fails
        assert all(status == 0 for status in r["repair_status"]), (
            r, operations[-5000:])

    assert ip_link_json(pf)["vfinfo_list"] == original
    left = sorted(name for name in os.listdir(state) if name != "locks")
    assert left == [], left
