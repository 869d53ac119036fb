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

"""nova's legacy SR-IOV XML against nova + sriov-vif's, as a docs table.

Runs in the nova tier only (tools/nova-tier.sh): it needs nova 34 with
nova-patches/34.0.0 applied. For every vnic type and every image, flavor
and option nova honours for these ports, nova's LibvirtGenericVIFDriver
builds the device config twice, with [libvirt] use_os_vif_for_sriov off
(legacy) and on (sriov-vif). Every element or attribute that differs must
match one of KNOWN_DIFFERENCES, which give the reason; an unlisted
difference fails the test. The table is written to
doc/source/nova-xml-parity.inc and the test fails when the committed file
is stale (SRIOV_VIF_WRITE_PARITY=1 rewrites it), so that the docs build
needs no nova.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
import textwrap
from unittest import mock

from lxml import etree
from nova import conf as nova_conf
from nova import objects
from nova.network import model as network_model
from nova.virt.libvirt import vif as libvirt_vif
import os_vif.objects
import pytest

from tests.nova_ports import nova_vif

CONF = nova_conf.CONF
TABLE = (Path(__file__).resolve().parents[2] / "doc" / "source"
         / "nova-xml-parity.inc")
VF_NETDEV = "enp129s0f0v2"
INSTANCE_UUID = "8f8e7a2b-1111-4444-8888-000000000001"
QUOTA = {
    "quota:vif_inbound_average": "100",
    "quota:vif_inbound_peak": "200",
    "quota:vif_inbound_burst": "300",
    "quota:vif_outbound_average": "10",
    "quota:vif_outbound_peak": "20",
    "quota:vif_outbound_burst": "30",
}


@dataclasses.dataclass(frozen=True)
class Port:
    title: str
    vnic_type: str
    vlan: str


@dataclasses.dataclass(frozen=True)
class Variant:
    title: str
    image_properties: dict[str, object]
    extra_specs: dict[str, str]
    libvirt_options: dict[str, object]


PORTS = (
    Port("direct, VLAN 100", "direct", "100"),
    Port("direct, flat", "direct", "0"),
    Port("macvtap, VLAN 100", "macvtap", "100"),
    Port("macvtap, flat", "macvtap", "0"),
    Port("direct-physical", "direct-physical", "0"),
)
VARIANTS = (
    Variant("defaults", {}, {}, {}),
    Variant("hw_vif_model=e1000", {"hw_vif_model": "e1000"}, {}, {}),
    Variant("hw_vif_multiqueue_enabled=true, 4 vCPUs",
            {"hw_vif_multiqueue_enabled": True}, {}, {}),
    Variant("hw_virtio_packed_ring=true",
            {"hw_virtio_packed_ring": True}, {}, {}),
    Variant("[libvirt] rx_queue_size=512, tx_queue_size=1024", {}, {},
            {"rx_queue_size": 512, "tx_queue_size": 1024}),
    Variant("flavor quota:vif_inbound/outbound_*", {}, QUOTA, {}),
)


@dataclasses.dataclass(frozen=True)
class Known:
    """A difference, legacy to sriov-vif, and why it is right."""

    vnic_types: tuple[str, ...]
    vlans: tuple[str, ...]  # the port's VLAN, "0" for flat
    side: str  # "legacy only" or "sriov-vif only"
    # Flattened items (see _flatten) it explains; "x/*" is x and all
    # below it.
    items: tuple[str, ...]
    title: str
    reason: str

    def explains(self, port: Port, side: str, item: str) -> bool:
        if (port.vnic_type not in self.vnic_types
                or port.vlan not in self.vlans or side != self.side):
            return False
        return any(item == pattern or (
            pattern.endswith("/*") and (
                item == pattern[:-2]
                or item.startswith(pattern[:-2] + "/")
                or item.startswith(pattern[:-2] + "@")))
            for pattern in self.items)


KNOWN_DIFFERENCES = (
    Known(("direct",), ("0", "100"), "legacy only",
          ("interface/bandwidth/*",), "<bandwidth> dropped",
          "libvirt refuses <bandwidth> on a hostdev interface when the "
          "guest starts; neutron's SR-IOV agent applies QoS on the VF"),
    Known(("direct", "macvtap"), ("0",), "legacy only",
          ("interface/vlan", "interface/vlan/tag",
           "interface/vlan/tag@id=0"), "<vlan><tag id='0'/> dropped",
          "flat network: legacy writes neutron's VLAN \"0\" as a tag; "
          "sriov-vif writes no <vlan>, with which libvirt sets VLAN 0 on "
          "the VF all the same"),
    Known(("direct",), ("0", "100"), "sriov-vif only",
          ("interface/driver", "interface/driver@name=vfio"),
          "<driver name='vfio'/> added",
          "sriov-vif names the VFIO driver libvirt uses by default for "
          "hostdev interfaces, so that the XML says what is used"),
)


def _flatten(element: etree._Element, path: str = "") -> set[str]:
    """Every element and attribute as 'path' and 'path@name=value'."""
    here = f"{path}/{element.tag}" if path else str(element.tag)
    items = {here}
    for name, value in element.attrib.items():
        items.add(f"{here}@{name}={value}")
    for child in element:
        if isinstance(child.tag, str):
            items |= _flatten(child, here)
    return items


def _explain(port: Port, side: str, item: str) -> Known | None:
    for known in KNOWN_DIFFERENCES:
        if known.explains(port, side, item):
            return known
    return None


@pytest.fixture(scope="module")
def drivers():
    objects.register_all()
    os_vif.objects.register_all()
    CONF([], project="nova", default_config_files=[])
    CONF.set_override("virt_type", "kvm", "libvirt")
    try:
        CONF.set_override("use_os_vif_for_sriov", False, "libvirt")
        legacy = libvirt_vif.LibvirtGenericVIFDriver()
        CONF.set_override("use_os_vif_for_sriov", True, "libvirt")
        sriov = libvirt_vif.LibvirtGenericVIFDriver()
        assert legacy.sriov_vif is None and sriov.sriov_vif is not None
        yield legacy, sriov
    finally:
        CONF.reset()


def _xml(driver, port: Port, variant: Variant) -> str:
    for name, value in variant.libvirt_options.items():
        CONF.set_override(name, value, "libvirt")
    try:
        vif = network_model.VIF.hydrate(
            nova_vif(port.vnic_type, vlan=port.vlan))
        flavor = objects.Flavor(
            name="m1.parity", vcpus=4, memory_mb=512, root_gb=1,
            ephemeral_gb=0, swap=0, extra_specs=dict(variant.extra_specs))
        image_meta = objects.ImageMeta.from_dict(
            {"properties": dict(variant.image_properties)})
        instance = objects.Instance(uuid=INSTANCE_UUID)
        # The VF netdev of a macvtap port, as legacy nova and sriov-vif
        # each look it up.
        with mock.patch("nova.pci.utils.get_ifname_by_pci_address",
                        return_value=VF_NETDEV), \
                mock.patch("sriov_vif.nova_integration.vf_netdev",
                           return_value=VF_NETDEV), \
                mock.patch("os.uname") as uname:
            # nova caps multiqueue by the kernel version: pin a 6.x one.
            uname.return_value = os.uname_result(
                ("Linux", "compute", "6.1.0", "", "x86_64"))
            conf = driver.get_config(instance, vif, image_meta, flavor,
                                     "kvm")
        xml: str = etree.tostring(conf.format_dom(), encoding="unicode",
                                  pretty_print=True)
        return xml.strip()
    finally:
        for name in variant.libvirt_options:
            CONF.clear_override(name, "libvirt")


def _block(text: str) -> str:
    return "::\n\n" + textwrap.indent(text, "    ")


def _cell(first: bool, text: str) -> str:
    lead = "   * - " if first else "     - "
    lines = text.splitlines() or [""]
    return "\n".join([lead + lines[0]]
                     + [("       " + line) if line else ""
                        for line in lines[1:]])


def test_parity_table_lists_every_difference(drivers):
    legacy_driver, sriov_driver = drivers
    rows, unexplained = [], []
    for port in PORTS:
        for variant in VARIANTS:
            legacy = _xml(legacy_driver, port, variant)
            sriov = _xml(sriov_driver, port, variant)
            old = _flatten(etree.fromstring(legacy))
            new = _flatten(etree.fromstring(sriov))
            notes: list[str] = []
            for side, items in (("legacy only", old - new),
                                ("sriov-vif only", new - old)):
                for item in sorted(items):
                    known = _explain(port, side, item)
                    if known is None:
                        unexplained.append(
                            f"{port.title} / {variant.title}: {side} "
                            f"{item}")
                        continue
                    note = f"* {known.title}: {known.reason}"
                    if note not in notes:
                        notes.append(note)
            rows.append((f"**{port.title}**\n\n{variant.title}",
                         legacy, sriov,
                         "\n".join(notes) if notes else "identical"))
    # The switch really took the sriov-vif path (a hostdev names vfio).
    assert any('<driver name="vfio"/>' in row[2] for row in rows)
    assert not unexplained, (
        "differences with no reason in KNOWN_DIFFERENCES:\n"
        + "\n".join(unexplained))
    text = _render(rows)
    if os.environ.get("SRIOV_VIF_WRITE_PARITY") == "1":
        TABLE.write_text(text, encoding="utf-8")
    assert TABLE.read_text(encoding="utf-8") == text, (
        f"{TABLE} is stale: rerun the nova tier with "
        "SRIOV_VIF_WRITE_PARITY=1 and commit it")


def _render(rows: list[tuple[str, str, str, str]]) -> str:
    out = [
        ".. This file is generated by tests/nova/test_xml_parity.py in the",
        "   nova tier (tox -e nova); do not edit it by hand.",
        "",
        ".. list-table:: nova 34.0.0 device XML, legacy and with "
        "sriov-vif",
        "   :header-rows: 1",
        "   :widths: 16 28 28 28",
        "",
        "   * - port / input",
        "     - legacy (``use_os_vif_for_sriov = false``)",
        "     - sriov-vif (``use_os_vif_for_sriov = true``)",
        "     - differences and why",
    ]
    for case, legacy, sriov, notes in rows:
        out.append(_cell(True, case))
        out.append(_cell(False, _block(legacy)))
        out.append(_cell(False, _block(sriov)))
        out.append(_cell(False, notes))
    return "\n".join(out) + "\n"
