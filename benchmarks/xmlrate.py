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


"""How many VIFs per second libvirt_xml renders.

nova-compute renders a VIF's XML at every boot, attach and migration; the
mix covers each element the module can emit: an ``<interface
type='hostdev'>`` with a VLAN, a plain ``<hostdev>`` (802.1ad with QoS,
which libvirt would undo), a generic hostdev and a passthrough direct
interface on the VF's netdev.
"""

from __future__ import annotations

from collections.abc import Sequence
import time

import os_vif.objects
from os_vif.objects import network as osv_network
from os_vif.objects import vif as osv_vif

from sriov_vif import libvirt_xml
from sriov_vif import objects

VF = "0000:81:10.2"
VF_NETDEV = "enp129s0f0v2"


def vif_mix() -> list[tuple[osv_vif.VIFBase, str | None]]:
    """(VIF, VF netdev) pairs, one of each kind of element."""
    os_vif.objects.register_all()
    common = dict(address="fa:16:3e:11:22:33", plugin="sriov",
                  dev_address=VF)
    return [
        (osv_vif.VIFHostDevice(
            id="a1000000-0000-4000-8000-000000000001", dev_type="ethernet",
            network=osv_network.Network(vlan=100), **common), None),
        (osv_vif.VIFHostDevice(
            id="a2000000-0000-4000-8000-000000000002", dev_type="ethernet",
            network=osv_network.Network(vlan=200),
            port_profile=objects.VIFPortProfileSRIOV(
                vlan_qos=3, vlan_proto="802.1ad", trusted=True),
            **common), None),
        (osv_vif.VIFHostDevice(
            id="a3000000-0000-4000-8000-000000000003", dev_type="generic",
            network=osv_network.Network(vlan=300), **common), None),
        (osv_vif.VIFDirect(
            id="a4000000-0000-4000-8000-000000000004", mode="passthrough",
            vif_name="macvtap0", network=osv_network.Network(vlan=400),
            port_profile=objects.VIFPortProfileSRIOV(model="virtio"),
            **common), VF_NETDEV),
    ]


def rates(batches: int, min_seconds: float) -> list[float]:
    """VIFs per second of each batch; a batch lasts at least min_seconds."""
    mix = vif_mix()
    for vif, netdev in mix:  # warm up, and fail early on a bad VIF
        libvirt_xml.interface_xml(vif, vf_netdev=netdev)
    results = []
    for _batch in range(batches):
        rendered = 0
        started = time.perf_counter()
        elapsed = 0.0
        while elapsed < min_seconds:
            for vif, netdev in mix:
                libvirt_xml.interface_xml(vif, vf_netdev=netdev)
            rendered += len(mix)
            elapsed = time.perf_counter() - started
        results.append(rendered / elapsed)
    return results


def describe(mix: Sequence[tuple[osv_vif.VIFBase, str | None]]) -> str:
    """The elements the mix renders, e.g. "interface type=hostdev"."""
    names = []
    for vif, netdev in mix:
        element = libvirt_xml.interface_element(vif, vf_netdev=netdev)
        names.append(f"{element.tag} type={element.get('type')}")
    return ", ".join(names)
