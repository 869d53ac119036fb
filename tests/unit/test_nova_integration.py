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

import os_vif
from os_vif import exception as osv_exception
from os_vif.objects import vif as osv_vif
from oslo_config import cfg
import pytest

from harness import sysfs_tree
from sriov_vif import config
from sriov_vif import exception
from sriov_vif import nova_integration
from tests.nova_ports import VF_ADDRESS
from tests.nova_ports import nova_vif

# As nova-compute does at start: loads the plugin, which registers
# [os_vif_sriov] in oslo.config's global CONF.
os_vif.initialize()


@pytest.fixture
def tree(tmp_path):
    """A host whose VFs sysfs_root, as configured, shows; VF 1 on vfio-pci.

    The VF addresses are not those of any sysfs, so only the configured
    sysfs_root can resolve them.
    """
    t = sysfs_tree.SysfsTree(str(tmp_path))
    built = t.add_pf("0000:03:00.0", ["ens1f0"], driver="ice", numvfs=4,
                     vf_driver="iavf")
    t.bind(built.vf(1).pci_address, "vfio-pci")
    cfg.CONF.set_override("sysfs_root", t.root, config.GROUP)
    yield built
    cfg.CONF.clear_override("sysfs_root", config.GROUP)


def test_direct_port_xml_names_the_vf_netdev_under_sysfs_root(tree):
    vif = nova_integration.port_to_vif(
        nova_vif("macvtap", vlan="55", pci_slot=tree.vf(2).pci_address))
    assert isinstance(vif, osv_vif.VIFDirect)
    assert nova_integration.vf_netdev(vif.dev_address) == tree.vf(2).ifname
    xml = nova_integration.device_xml(vif)
    assert f'<source dev="{tree.vf(2).ifname}" mode="passthrough" />' in xml


def test_hostdev_port_xml_needs_no_netdev(tree):
    vif = nova_integration.port_to_vif(
        nova_vif("direct", vlan="55", pci_slot=tree.vf(1).pci_address))
    xml = nova_integration.device_xml(vif)
    assert xml.startswith('<interface type="hostdev" managed="yes">')
    assert '<tag id="55" />' in xml


def test_direct_port_on_a_vfio_vf_is_a_missing_vf_netdev(tree):
    address = tree.vf(1).pci_address
    vif = nova_integration.port_to_vif(
        nova_vif("macvtap", vlan="55", pci_slot=address))
    with pytest.raises(exception.VFNetdevNotFound, match=address) as info:
        nova_integration.device_xml(vif)
    # what nova turns into PciDeviceNotFoundById
    assert nova_integration.missing_vf_netdev(info.value) == address


def test_direct_port_of_a_vf_not_under_sysfs_root(tree):
    vif = nova_integration.port_to_vif(nova_vif("macvtap", vlan="55"))
    with pytest.raises(exception.PciDeviceNotFound, match=VF_ADDRESS):
        nova_integration.device_xml(vif)


def test_xml_without_the_plugin_loaded_says_so(monkeypatch):
    monkeypatch.setattr(cfg, "CONF", cfg.ConfigOpts())
    vif = nova_integration.port_to_vif(nova_vif("macvtap", vlan="55"))
    with pytest.raises(exception.SriovVifError,
                       match=r"\[os_vif_sriov\] is not registered.*"
                             r"os_vif.initialize\(\)"):
        nova_integration.device_xml(vif)


def test_instance_info_carries_the_owner():
    info = nova_integration.instance_info(
        "0f0e0d0c-1111-4222-8333-444455556666", "instance-7")
    assert (info.uuid, info.name) == (
        "0f0e0d0c-1111-4222-8333-444455556666", "instance-7")


def _plug_error(err):
    # What os_vif.plug raises around a plugin's exception.
    return osv_exception.PlugException(vif="vif", err=err)


def test_missing_vf_netdev_names_the_vf_inside_os_vifs_wrapper():
    err = exception.VFNetdevNotFound(address=VF_ADDRESS, driver="vfio-pci")
    assert nova_integration.missing_vf_netdev(_plug_error(err)) == VF_ADDRESS
    assert nova_integration.missing_vf_netdev(err) == VF_ADDRESS


def test_missing_vf_netdev_follows_chained_exceptions():
    try:
        try:
            raise exception.VFNetdevNotFound(address=VF_ADDRESS,
                                             driver="none")
        except exception.VFNetdevNotFound as inner:
            raise RuntimeError("wrapped") from inner
    except RuntimeError as outer:
        assert nova_integration.missing_vf_netdev(outer) == VF_ADDRESS


@pytest.mark.parametrize("err", [
    exception.JournalError(path="/var/lib/sriov-vif", reason="read-only"),
    exception.PciDeviceNotFound(address=VF_ADDRESS, sysfs_root="/sys"),
    RuntimeError("privsep daemon did not start"),
])
def test_other_plug_failures_are_not_a_missing_netdev(err):
    assert nova_integration.missing_vf_netdev(_plug_error(err)) is None


def test_plugin_name_is_the_entry_point():
    assert nova_integration.PLUGIN_NAME == "sriov"
    vif = nova_integration.port_to_vif(nova_vif("direct", vlan="55"))
    assert vif.plugin == nova_integration.PLUGIN_NAME
