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

"""nova's own VIF driver plugs real ports on netdevsim VFs, through sriov-vif.

nova.virt.libvirt.vif.LibvirtGenericVIFDriver, as patched by
nova-patches/34.0.0 with [libvirt] use_os_vif_for_sriov on, gets ports
as nova's network info cache holds them (network-model VIFs hydrated from
neutron's binding) and plugs them, builds their libvirt config and unplugs
them, exactly as the libvirt driver calls it. Below it everything is
real: os-vif and the sriov plugin, the privsep daemon started the
deployment way, netlink, the kernel's VF table (netdevsim) and the journal
on disk. The PCI view is a sysfs-shaped tree at the configured sysfs_root
(netdevsim VFs have no PCI functions), with a veth standing in for the
host netdev of the macvtap port's VF. iproute2, which shares no code with
sriov-vif or nova, reads every VF back.
"""

from __future__ import annotations

from collections.abc import Iterator
import copy
import itertools
import shutil
import subprocess
from typing import Any

from lxml import etree
from nova import exception as nova_exception
from nova import objects as nova_objects
from nova.network import model as network_model
from nova.virt.libvirt import vif as libvirt_vif
import os_vif
import pytest

from harness import iproute
from harness import kernel_guest
from harness import netdevsim_host
from harness import sysfs_tree
from sriov_vif import journal
from sriov_vif import privsep
from tests.nova_kernel.conftest import NovaCompute
from tests.nova_ports import nova_vif

PF_ADDRESS = "0000:81:00.0"
NUMVFS = 8
# The VF whose host netdev a veth stands in for (macvtap ports).
NETDEV_VF = 3
INSTANCE_UUID = "5a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"
_veth_ids = itertools.count()


class Host:
    """A netdevsim PF as nova-compute's sysfs_root shows it."""

    def __init__(self, built: sysfs_tree.BuiltPF, tree: sysfs_tree.SysfsTree,
                 state_path: str) -> None:
        self.built = built
        self.tree = tree
        self.pf_ifname = built.ifnames[0]
        self.state_path = state_path

    def address(self, index: int) -> str:
        return self.built.vf(index).pci_address

    def vfs(self) -> list[dict[str, Any]]:
        """The PF's VF table as iproute2 shows it, VF i at index i."""
        vfs: list[dict[str, Any]] = iproute.link_json(
            self.pf_ifname, details=True)["vfinfo_list"]
        assert [vf["vf"] for vf in vfs] == list(range(NUMVFS))
        return vfs

    def pf_link(self) -> dict[str, Any]:
        """The PF's own link, without its VF table."""
        link = iproute.link_json(self.pf_ifname, details=True)
        link.pop("vfinfo_list")
        return link

    def journal(self) -> journal.Journal:
        return journal.Journal(self.state_path)


def _veth() -> str:
    return iproute.add_veth(f"novavf{next(_veth_ids)}")


@pytest.fixture
def host(nova_compute: NovaCompute) -> Iterator[Host]:
    """A fresh netdevsim PF with 8 VFs at 0000:81:00.0 in sysfs_root.

    The VFs are bound to netdevsim; VF NETDEV_VF has a host netdev (a
    veth), the others none. The journal starts empty.
    """
    workdir = nova_compute.workdir
    shutil.rmtree(workdir / "sys", ignore_errors=True)
    netdevsim = netdevsim_host.NetdevsimHost(workdir)
    # what a failed test left must not become the next one's original
    stale = journal.Journal(netdevsim.state_path)
    for address in stale.addresses():
        stale.remove(address)
    veth = _veth()
    try:
        built = netdevsim.add_pf(
            kernel_guest.free_netdevsim_id(), PF_ADDRESS, NUMVFS,
            vf_driver="netdevsim", vf_ifnames={NETDEV_VF: veth}.get)
        yield Host(built, netdevsim.tree, netdevsim.state_path)
    finally:
        subprocess.run(["ip", "link", "del", veth], check=False)
        netdevsim.release()


@pytest.fixture
def driver(nova_compute: NovaCompute) -> libvirt_vif.LibvirtGenericVIFDriver:
    """The VIF driver nova's libvirt driver makes at start."""
    vif_driver = libvirt_vif.LibvirtGenericVIFDriver()
    assert vif_driver.sriov_vif is not None  # the switch is on
    return vif_driver


@pytest.fixture
def instance(nova_compute: NovaCompute) -> Any:
    """The instance the ports belong to; os-vif records it as the owner."""
    return nova_objects.Instance(
        id=1, uuid=INSTANCE_UUID,
        project_id="9b2f6a5c1d3e4f708192a3b4c5d6e7f8",
        display_name="vm-sriov")


def _port(host: Host, vnic_type: str, index: int | None, *, vlan: str,
          trusted: bool | None = None,
          port_id: str = "3f8d1e52-7c1a-4b6e-9a57-0d2f4c8b9e11",
          mac: str = "fa:16:3e:11:22:33") -> network_model.VIF:
    """A port as nova's network info cache holds it, bound to VF index.

    index None binds the PF itself (direct-physical).
    """
    pci_slot = PF_ADDRESS if index is None else host.address(index)
    binding = nova_vif(vnic_type, vlan=vlan, pci_slot=pci_slot, id=port_id)
    if vnic_type != "direct-physical":
        binding["address"] = mac
    if trusted is not None:
        binding["profile"]["trusted"] = trusted
    return network_model.VIF.hydrate(binding)


def _config(driver: libvirt_vif.LibvirtGenericVIFDriver, instance: Any,
            vif: network_model.VIF) -> Any:
    """get_config's device as libvirt XML, parsed."""
    flavor = nova_objects.Flavor(
        name="m1.sriov", vcpus=2, memory_mb=512, root_gb=1, ephemeral_gb=0,
        swap=0, extra_specs={})
    image_meta = nova_objects.ImageMeta.from_dict({"properties": {}})
    conf = driver.get_config(instance, vif, image_meta, flavor, "kvm")
    return etree.fromstring(conf.to_xml())


def _pci_address(element: Any) -> str:
    """The dddd:bb:ss.f of a libvirt <address type='pci'> element."""
    return "{:04x}:{:02x}:{:02x}.{:x}".format(
        *(int(element.get(name), 16)
          for name in ("domain", "bus", "slot", "function")))


def _vlan(vf: dict[str, Any]) -> int:
    """The VF's VLAN id; iproute2 prints none for VLAN 0."""
    vlan: int = vf["vlan_list"][0].get("vlan", 0)
    return vlan


def _others(vfs: list[dict[str, Any]], *indexes: int
            ) -> list[dict[str, Any]]:
    return [vf for vf in vfs if vf["vf"] not in indexes]


def _plugged(before: dict[str, Any], **changes: Any) -> dict[str, Any]:
    """A VF entry as iproute2 shows it, with what plug set."""
    after = copy.deepcopy(before)
    after.update(changes)
    return after


def test_direct_port_with_vlan_and_trust(host, driver, instance):
    """vnic direct: a hostdev interface; MAC, VLAN and trust on the VF."""
    before = host.vfs()
    vif = _port(host, "direct", 1, vlan="100", trusted=True,
                mac="fa:16:3e:00:00:01")
    driver.plug(instance, vif)
    vfs = host.vfs()
    assert vfs[1] == _plugged(before[1], address="fa:16:3e:00:00:01",
                              vlan_list=[{"vlan": 100}], trust=True)
    assert _others(vfs, 1) == _others(before, 1)
    record = host.journal().load(host.address(1))
    assert record.original.mac == before[1]["address"]
    assert (record.owner.vif_id, record.owner.instance_uuid,
            record.owner.instance_name) == (vif["id"], INSTANCE_UUID,
                                            instance.name)

    node = _config(driver, instance, vif)
    assert (node.tag, node.get("type")) == ("interface", "hostdev")
    assert node.find("mac").get("address") == vfs[1]["address"]
    assert _pci_address(node.find("source/address")) == host.address(1)
    assert int(node.find("vlan/tag").get("id")) == _vlan(vfs[1])

    driver.unplug(instance, vif)
    assert host.vfs() == before
    assert host.journal().addresses() == []


def test_direct_flat_port(host, driver, instance):
    """vnic direct on a flat network: the MAC only, no VLAN in the XML."""
    before = host.vfs()
    vif = _port(host, "direct", 2, vlan="0", mac="fa:16:3e:00:00:02")
    driver.plug(instance, vif)
    vfs = host.vfs()
    assert vfs[2] == _plugged(before[2], address="fa:16:3e:00:00:02")
    assert _vlan(vfs[2]) == 0
    assert _others(vfs, 2) == _others(before, 2)

    node = _config(driver, instance, vif)
    assert (node.tag, node.get("type")) == ("interface", "hostdev")
    assert _pci_address(node.find("source/address")) == host.address(2)
    assert node.find("vlan") is None

    driver.unplug(instance, vif)
    assert host.vfs() == before
    assert host.journal().addresses() == []


def test_macvtap_port_with_vlan(host, driver, instance):
    """vnic macvtap: a direct interface on the VF's host netdev."""
    netdev = host.built.vf(NETDEV_VF).ifname
    netdev_before = iproute.mac_and_up(netdev)
    before = host.vfs()
    vif = _port(host, "macvtap", NETDEV_VF, vlan="300",
                mac="fa:16:3e:00:00:03")
    driver.plug(instance, vif)
    vfs = host.vfs()
    assert vfs[NETDEV_VF] == _plugged(
        before[NETDEV_VF], address="fa:16:3e:00:00:03",
        vlan_list=[{"vlan": 300}])
    assert _others(vfs, NETDEV_VF) == _others(before, NETDEV_VF)
    assert iproute.mac_and_up(netdev) == ("fa:16:3e:00:00:03", True)

    node = _config(driver, instance, vif)
    assert (node.tag, node.get("type")) == ("interface", "direct")
    source = node.find("source")
    assert (source.get("dev"), source.get("mode")) == (netdev, "passthrough")
    assert int(node.find("vlan/tag").get("id")) == _vlan(vfs[NETDEV_VF])
    # nova's base config is kept: the guest sees a virtio NIC
    assert node.find("model").get("type") == "virtio"

    driver.unplug(instance, vif)
    assert host.vfs() == before
    assert iproute.mac_and_up(netdev) == netdev_before
    assert host.journal().addresses() == []


def test_direct_physical_port_changes_nothing_on_the_host(
        host, driver, instance):
    """vnic direct-physical: the whole PF goes to the guest, untouched."""
    before, pf_before = host.vfs(), host.pf_link()
    vif = _port(host, "direct-physical", None, vlan="0")
    driver.plug(instance, vif)
    assert (host.vfs(), host.pf_link()) == (before, pf_before)
    assert host.journal().addresses() == []

    node = _config(driver, instance, vif)
    assert (node.tag, node.get("type")) == ("hostdev", "pci")
    assert _pci_address(node.find("source/address")) == PF_ADDRESS

    driver.unplug(instance, vif)
    assert (host.vfs(), host.pf_link()) == (before, pf_before)
    assert host.journal().addresses() == []


def test_unplug_with_another_hosts_binding(host, driver, instance):
    """The binding names another VF: the one this VIF plugged is restored.

    nova unplugs with the other host's binding after a failed live
    migration (rollback_live_migration_at_destination) and on the source
    after an evacuation; here that binding names VF 5, which another port
    uses on this host.
    """
    before = host.vfs()
    port_id = "a0000000-0000-4000-8000-000000000004"
    vif = _port(host, "direct", 4, vlan="10", trusted=True, port_id=port_id,
                mac="fa:16:3e:00:00:04")
    other = _port(host, "direct", 5, vlan="20",
                  port_id="a0000000-0000-4000-8000-000000000005",
                  mac="fa:16:3e:00:00:05")
    driver.plug(instance, vif)
    driver.plug(instance, other)
    plugged = host.vfs()
    assert plugged[4]["address"] == "fa:16:3e:00:00:04"

    elsewhere = _port(host, "direct", 5, vlan="10", trusted=True,
                      port_id=port_id, mac="fa:16:3e:00:00:04")
    driver.unplug(instance, elsewhere)
    vfs = host.vfs()
    assert vfs[4] == before[4]
    assert _others(vfs, 4) == _others(plugged, 4)
    assert host.journal().addresses() == [host.address(5)]

    driver.unplug(instance, other)
    assert host.vfs() == before
    assert host.journal().addresses() == []


def _restart_nova_compute() -> libvirt_vif.LibvirtGenericVIFDriver:
    """What a restart of nova-compute renews: daemon, plugins, VIF driver.

    The privsep daemon dies with nova-compute and is started again on the
    first privileged call; the journal on disk and the VFs remain.
    """
    privsep.vif_plug.stop()
    os_vif.initialize(reset=True)
    return libvirt_vif.LibvirtGenericVIFDriver()


def test_restart_replugs_a_hostdev_port_on_vfio_pci(host, driver, instance):
    """_init_instance plugs every port again: a no-op on the VF and journal.

    The VF of a running guest's hostdev port is bound to vfio-pci.
    """
    host.tree.bind(host.address(6), "vfio-pci")
    before = host.vfs()
    vif = _port(host, "direct", 6, vlan="600", trusted=True,
                mac="fa:16:3e:00:00:06")
    driver.plug(instance, vif)
    plugged = host.vfs()
    assert plugged[6]["address"] == "fa:16:3e:00:00:06"
    record = host.journal().load(host.address(6))

    restarted = _restart_nova_compute()
    restarted.plug(instance, vif)
    assert host.vfs() == plugged
    assert host.journal().load(host.address(6)) == record
    assert record.original.mac == before[6]["address"]

    restarted.unplug(instance, vif)
    assert host.vfs() == before
    assert host.journal().addresses() == []


def test_restart_with_a_macvtap_port_on_vfio_pci(host, driver, instance):
    """A port turned macvtap on a VF without netdev: PciDeviceNotFoundById.

    nova bug 1981813: the vnic_type of a bound direct port was changed to
    macvtap in neutron; its VF is the guest's, on vfio-pci, with no host
    netdev. Plug and get_config raise what ComputeManager._init_instance
    handles, so nova-compute starts, and the VF is left as it is.
    """
    address = host.address(7)
    host.tree.bind(address, "vfio-pci")
    before = host.vfs()
    direct = _port(host, "direct", 7, vlan="700", mac="fa:16:3e:00:00:07")
    driver.plug(instance, direct)
    plugged = host.vfs()
    record = host.journal().load(address)

    macvtap = _port(host, "macvtap", 7, vlan="700", mac="fa:16:3e:00:00:07")
    restarted = _restart_nova_compute()
    with pytest.raises(nova_exception.PciDeviceNotFoundById, match=address):
        restarted.plug(instance, macvtap)
    with pytest.raises(nova_exception.PciDeviceNotFoundById, match=address):
        _config(restarted, instance, macvtap)
    assert host.vfs() == plugged
    assert host.journal().load(address) == record

    restarted.unplug(instance, macvtap)
    assert host.vfs() == before
    assert host.journal().addresses() == []
