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

"""os_vif.plug and unplug in both of nova-compute's modes, as nova's user.

Reads are made in nova-compute's own process (one privileged call per
plug and per unplug): this proves they work there, whether nova-compute
runs monkey-patched by eventlet or with native threads, with several
plugs at once, without any capability. One process per mode
(tests/kernel/nova_compute_runner.py): a Python start in the guest costs
seconds. The VFs are read back with iproute2.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
import shutil
import subprocess
import sys
import tempfile

from os_vif.objects import network as osv_network
from os_vif.objects import vif as osv_vif
import pytest

from harness import iproute
from harness import kernel_guest
from harness import netdevsim_host
from harness import privsep_daemon
from sriov_vif import objects

REPO = Path(__file__).resolve().parents[2]
PF_ADDRESS = "0000:83:00.0"
NOVA_UID = 4242
NUMVFS = 12
DIRECT = (0, 1)  # VFs with a stand-in netdev (veth), plugged as direct


def _vif(address: str, index: int) -> osv_vif.VIFBase:
    if index in DIRECT:
        return osv_vif.VIFDirect(
            id=f"d0000000-0000-4000-8000-{index:012d}",
            address=f"fa:16:3e:00:0d:{index:02x}", plugin="sriov",
            dev_address=address, mode="passthrough", vif_name="macvtap0",
            network=osv_network.Network(vlan=300 + index))
    return osv_vif.VIFHostDevice(
        id=f"a0000000-0000-4000-8000-{index:012d}",
        address=f"fa:16:3e:00:0a:{index:02x}", plugin="sriov",
        dev_type="ethernet", dev_address=address,
        network=osv_network.Network(vlan=100 + index),
        port_profile=objects.VIFPortProfileSRIOV(
            trusted=bool(index % 2), vlan_qos=index % 8,
            spoofchk=not index % 3, link_state="enable"))


@pytest.fixture
def nova_host():
    """A netdevsim PF in a tree nova's user can read, a journal it owns."""
    workdir = Path(tempfile.mkdtemp(prefix="sriov-vif-modes-"))
    workdir.chmod(0o755)
    veths = {i: iproute.add_veth(f"kmode{os.getpid() % 1000}x{i}")
             for i in DIRECT}
    host = netdevsim_host.NetdevsimHost(workdir)
    built = host.add_pf(kernel_guest.free_netdevsim_id(), PF_ADDRESS,
                        NUMVFS, vf_driver="netdevsim",
                        vf_ifnames=lambda i: veths.get(i))
    for path in (workdir, *workdir.rglob("*")):
        if not path.is_symlink():
            path.chmod(0o755 if path.is_dir() else 0o644)
    os.chown(host.state_path, NOVA_UID, NOVA_UID)
    os.chmod(host.state_path, 0o700)
    daemon_conf = host.write_config()
    conf = workdir / "nova-compute.conf"
    conf.write_text(
        Path(daemon_conf).read_text()
        + "[sriov_vif_privileged]\nhelper_command = "
        + privsep_daemon.helper_command(daemon_conf) + "\n")
    yield built, str(conf), host.state_path
    for name in veths.values():
        subprocess.run(["ip", "link", "del", name], check=False)
    host.release()
    shutil.rmtree(workdir, ignore_errors=True)


def _vfs(pf: str) -> dict[int, dict]:
    return {vf["vf"]: vf for vf in iproute.link_json(
        pf, details=True)["vfinfo_list"]}


@pytest.mark.parametrize("mode", ["eventlet", "native"])
def test_concurrent_plugs_as_nova_compute_in_each_mode(nova_host, tmp_path,
                                                       mode):
    built, conf, state_path = nova_host
    pf = built.ifnames[0]
    before = _vfs(pf)
    netdevs_before = {i: iproute.mac_and_up(built.vf(i).ifname)
                      for i in DIRECT}
    vifs = [_vif(vf.pci_address, vf.index) for vf in built.vfs]
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps({
        "config_file": conf, "uid": NOVA_UID,
        "vifs": [vif.obj_to_primitive() for vif in vifs]}))

    runner = subprocess.Popen(
        [sys.executable, "-m", "tests.kernel.nova_compute_runner", mode,
         str(spec)], cwd=REPO, stdin=subprocess.PIPE,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        plugged = json.loads(runner.stdout.readline() or "null")
        assert plugged is not None, runner.stderr.read()[-3000:]
        print(json.dumps(plugged))
        green = mode == "eventlet"
        assert plugged == {
            "mode": mode, "capabilities": 0, "errors": [],
            "count": NUMVFS, "seconds": plugged["seconds"],
            "socket": "eventlet.greenio.base" if green else "socket",
            "threads": "eventlet.green.thread" if green else "_thread",
            "eventlet_loaded": green}
        vfs = _vfs(pf)
        for vif in vifs:
            index = built.vfs[[vf.pci_address for vf in built.vfs].index(
                vif.dev_address)].index
            vf = vfs[index]
            assert vf["address"] == vif.address
            assert vf["vlan_list"][0]["vlan"] == vif.network.vlan
            if index in DIRECT:
                assert iproute.mac_and_up(built.vf(index).ifname) == (
                    vif.address, True)
            else:
                assert vf["trust"] is bool(index % 2)
                assert vf["link_state"] == "enable"
        assert len(os.listdir(state_path)) == NUMVFS + 1  # and locks/
        runner.stdin.write("unplug\n")
        runner.stdin.flush()
        unplugged = json.loads(runner.stdout.readline() or "null")
        assert unplugged is not None, runner.stderr.read()[-3000:]
        print(json.dumps(unplugged))
        assert unplugged["errors"] == []
        assert runner.wait(timeout=120) == 0, runner.stderr.read()[-3000:]
    finally:
        if runner.poll() is None:
            runner.kill()
            runner.wait()
    # released_vf_mac = zero: the rest as it was
    assert _vfs(pf) == before
    assert {i: iproute.mac_and_up(built.vf(i).ifname) for i in DIRECT} == (
        netdevs_before)
    assert os.listdir(state_path) == ["locks"]
