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

"""The demonstration: the plugin at work on a real kernel, for a newcomer.

No machine of ours has SR-IOV hardware, so the demo boots Debian's kernel
with the netdevsim driver under QEMU (see kernel_guest) and plugs a
hostdev and a direct VIF through os_vif.plug on a netdevsim PF with 8 VFs.
It says plainly what is real (the kernel's VF table, netlink, the privsep
daemon, the journal) and what is simulated (the PCI view of the VFs:
netdevsim VFs have no PCI functions, so a sysfs-shaped tree maps PCI
addresses onto the real PF, and a veth stands in for the direct VF's
netdev). It fails, non-zero, if a VF does not end up as requested or is
not restored exactly.

Run it with tools/demo.sh (README's first command), which installs what
it needs; ``python -m harness.demo`` runs it in a ready environment.
"""

from __future__ import annotations

import argparse
import contextlib
from pathlib import Path
import subprocess
import sys
import tempfile
from typing import Any
from typing import TextIO
import xml.etree.ElementTree as ET

import os_vif
from os_vif.objects import instance_info as osv_instance_info
from os_vif.objects import network as osv_network
from os_vif.objects import vif as osv_vif
from oslo_config import cfg

from harness import kernel_guest
from harness import netdevsim_host
from harness import privsep_daemon
from harness import sysfs_tree
from sriov_vif import config
from sriov_vif import inventory
from sriov_vif import journal
from sriov_vif import libvirt_xml
from sriov_vif import objects

NETDEVSIM_ID = 7
NUMVFS = 8
PF_ADDRESS = "0000:81:00.0"
DIRECT_NETDEV = "demo-vf2"
INSTANCE = {"uuid": "5c3f0e2a-7d1b-4c59-9a8e-2f4b6d8e1a01",
            "name": "instance-demo"}

REAL_AND_SIMULATED = """\
What is real: Debian's kernel with the netdevsim driver in a QEMU guest, its
VF table (read and changed through netlink), the oslo.privsep daemon that
changes it, os-vif, and the journal on disk.
What is simulated: the PCI view. netdevsim VFs have no PCI functions, so a
sysfs-shaped tree maps PCI addresses onto the real netdevsim PF, and a veth
stands in for VF 2's host netdev (the direct VIF's macvtap lower device).
"""


def _vifs(built: sysfs_tree.BuiltPF) -> list[osv_vif.VIFBase]:
    hostdev = osv_vif.VIFHostDevice(
        id="1d7a3c52-1111-4a4a-8b8b-000000000001",
        address="fa:16:3e:11:22:33", plugin="sriov", dev_type="ethernet",
        dev_address=built.vf(1).pci_address,
        network=osv_network.Network(vlan=100),
        port_profile=objects.VIFPortProfileSRIOV(
            trusted=True, spoofchk=True, link_state="enable",
            min_tx_rate=10, max_tx_rate=100, vlan_qos=3,
            vlan_proto="802.1ad"))
    direct = osv_vif.VIFDirect(
        id="2e8b4d63-2222-4b5b-9c9c-000000000002",
        address="fa:16:3e:44:55:66", plugin="sriov",
        dev_address=built.vf(2).pci_address, mode="passthrough",
        vif_name="macvtap0", network=osv_network.Network(vlan=200, mtu=1500),
        port_profile=objects.VIFPortProfileSRIOV(model="virtio"))
    return [hostdev, direct]


def _expected(vif: osv_vif.VIFBase) -> dict[str, Any]:
    """The VF table entry the demo's VIFs must produce, by column."""
    if isinstance(vif, osv_vif.VIFHostDevice):
        return {"mac": vif.address, "vlan": 100, "qos": 3,
                "proto": "802.1ad", "trust": True, "spoofchk": True,
                "link_state": "enable", "min_tx_rate": 10,
                "max_tx_rate": 100, "owner": vif.id}
    return {"mac": vif.address, "vlan": 200, "qos": 0, "proto": "802.1Q",
            "owner": vif.id}


def _vf_entry(data: dict[str, Any], address: str) -> dict[str, Any]:
    for pf in data["pfs"]:
        for vf in pf["vfs"]:
            if vf["pci_address"] == address:
                return dict(vf)
    raise LookupError(f"VF {address} is missing from the inventory")


def _without_owner(data: dict[str, Any]) -> list[dict[str, Any]]:
    return [{k: v for k, v in vf.items() if k != "owner"}
            for pf in data["pfs"] for vf in pf["vfs"]]


def _check_plugged(plugged: dict[str, Any],
                   vifs: list[osv_vif.VIFBase]) -> list[str]:
    failures = []
    for vif in vifs:
        entry = _vf_entry(plugged, vif.dev_address)
        entry["owner"] = (entry["owner"] or {}).get("vif_id")
        for key, want in _expected(vif).items():
            if entry[key] != want:
                failures.append(f"VF {vif.dev_address} {key} is "
                                f"{entry[key]!r}, expected {want!r}")
    return failures


class _Steps:
    def __init__(self, out: TextIO, total: int) -> None:
        self.out, self.total, self.done = out, total, 0

    def __call__(self, title: str) -> None:
        self.done += 1
        self.out.write(f"\n[{self.done}/{self.total}] {title}\n")
        self.out.flush()


def _run(argv: list[str]) -> str:
    return subprocess.run(argv, check=True, capture_output=True,
                          text=True).stdout


def _guest(out: TextIO) -> int:
    step = _Steps(out, 8)
    out.write(REAL_AND_SIMULATED)
    step(f"netdevsim PF with {NUMVFS} VFs (real kernel driver)")
    _run(["ip", "link", "add", "name", DIRECT_NETDEV, "type", "veth",
          "peer", "name", DIRECT_NETDEV + "p"])
    host = netdevsim_host.NetdevsimHost(
        Path(tempfile.mkdtemp(prefix="sriov-vif-demo-")))
    built = host.add_pf(
        NETDEVSIM_ID, PF_ADDRESS, NUMVFS, vf_driver="netdevsim",
        vf_ifnames=lambda i: DIRECT_NETDEV if i == 2 else None)
    out.write(f"PF netdev: {built.ifnames[0]}\n")
    step("simulated PCI view: sysfs tree mapping VF addresses onto the PF")
    # The hostdev VF is bound to vfio-pci, as nova-compute leaves it.
    host.tree.bind(built.vf(1).pci_address, "vfio-pci")
    for vf in built.vfs[:3]:
        out.write(f"  VF {vf.index} = {vf.pci_address}\n")
    # The daemon finds VFs under the sysfs_root of its config file. It
    # relays its import-time warnings (eventlet's deprecation) as log
    # lines: noise in a demonstration.
    cfg.CONF.set_override(
        "helper_command",
        privsep_daemon.helper_command(host.write_config(),
                                      PYTHONWARNINGS="ignore"),
        config.PRIVSEP_GROUP)
    host.configure_plugin()
    state = journal.Journal(host.state_path)

    step("inventory before (VF table read from the kernel, no privilege)")
    before = inventory.collect(host.tree.root, state)
    out.write(inventory.render(before))

    vifs = _vifs(built)
    step("libvirt XML nova-compute would put in the domain")
    out.write("(The hostdev VIF asks for VLAN QoS and 802.1ad, which libvirt "
              "would reset when the guest starts: it becomes a plain "
              "<hostdev>, and MAC and VLAN are the plugin's alone.)\n")
    for vif in vifs:
        netdev = (DIRECT_NETDEV if isinstance(vif, osv_vif.VIFDirect)
                  else None)
        out.write(f"{type(vif).__name__} {vif.id}:\n")
        element = libvirt_xml.interface_element(vif, vf_netdev=netdev)
        ET.indent(element)
        out.write(ET.tostring(element, encoding="unicode") + "\n")

    step("os_vif.plug of the hostdev VIF (VF 1) and the direct VIF (VF 2)")
    instance = osv_instance_info.InstanceInfo(**INSTANCE)
    for vif in vifs:
        os_vif.plug(vif, instance)
    plugged = inventory.collect(host.tree.root, state)
    out.write(inventory.render(plugged, before))
    out.write(_run(["ip", "-br", "link", "show", DIRECT_NETDEV]))

    failures = _check_plugged(plugged, vifs)

    step("os_vif.unplug of both VIFs")
    for vif in vifs:
        os_vif.unplug(vif, instance)
    after = inventory.collect(host.tree.root, state)
    step("inventory after unplug (compared with the first one)")
    out.write(inventory.render(after, before))
    if _without_owner(after) != _without_owner(before):
        failures.append("the VF table after unplug differs from the one "
                        "before plug")
    if state.addresses():
        failures.append(f"journal records left: {state.addresses()}")

    step("clean up")
    with contextlib.suppress(subprocess.CalledProcessError):
        _run(["ip", "link", "del", DIRECT_NETDEV])
    host.release()
    if failures:
        out.write("DEMO FAILED:\n" + "".join(f"  {f}\n" for f in failures))
        return 1
    out.write("\nDemo passed: both VFs were configured as requested and "
              "restored exactly.\n")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Prepare and boot the guest, or (inside it) run the demonstration."""
    parser = argparse.ArgumentParser(
        prog="python -m harness.demo",
        description="sriov-vif on netdevsim VFs in a QEMU guest")
    parser.add_argument("--in-guest", action="store_true",
                        help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.in_guest:
        return _guest(sys.stdout)
    print("sriov-vif demo: preparing a Debian kernel with netdevsim (first "
          "run: a minute or two), then booting it under QEMU (software "
          "emulation, about a minute).", flush=True)
    try:
        return kernel_guest.run(
            [sys.executable, "-m", "harness.demo", "--in-guest"])
    except kernel_guest.KernelGuestError as exc:
        print(f"ERROR: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
