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

import xml.etree.ElementTree as ET

import os_vif.objects
from os_vif.objects import network as osv_network
from os_vif.objects import vif as osv_vif
import pytest

from sriov_vif import exception
from sriov_vif import libvirt_xml
from sriov_vif import objects

os_vif.objects.register_all()

VIF_ID = "c0ffee00-1111-2222-3333-444455556666"
ALIAS = "ua-" + VIF_ID
MAC = "fa:16:3e:11:22:33"
VF = "0000:81:10.2"
VF_NETDEV = "enp129s0f0v2"
INSTANCE = "09b11c53-8b5c-4eeb-8f00-d84eaa0aaa4f"

# What nova emits today (shared/reference/os-vif-and-nova.md).
NOVA_HOSTDEV = """
<interface type="hostdev" managed="yes">
  <mac address="fa:16:3e:11:22:33"/>
  <source><address type="pci" domain="0x0000" bus="0x81" slot="0x10"
    function="0x2"/></source>
  <vlan><tag id="100"/></vlan>
</interface>"""
NOVA_MACVTAP = """
<interface type="direct">
  <mac address="fa:16:3e:11:22:33"/>
  <model type="virtio"/>
  <driver name="vhost"/>
  <source dev="enp129s0f0v2" mode="passthrough"/>
  <vlan><tag id="100"/></vlan>
</interface>"""
NOVA_PHYSICAL = """
<hostdev mode="subsystem" type="pci" managed="yes">
  <source><address domain="0x0000" bus="0x81" slot="0x00"
    function="0x1"/></source>
</hostdev>"""


def _network(vlan=None, mtu=None):
    return osv_network.Network(vlan=vlan, mtu=mtu)


def _hostdev(**kw):
    fields = dict(id=VIF_ID, address=MAC, plugin="sriov",
                  dev_type="ethernet", dev_address=VF,
                  network=_network(vlan=100))
    fields.update(kw)
    return osv_vif.VIFHostDevice(**fields)


def _direct(**kw):
    fields = dict(id=VIF_ID, address=MAC, plugin="sriov", vif_name="tap0",
                  dev_address=VF, mode="passthrough",
                  network=_network(vlan=100))
    fields.update(kw)
    return osv_vif.VIFDirect(**fields)


def _qbh(profile_id="finance"):
    return osv_vif.VIFPortProfile8021Qbh(profile_id=profile_id)


def _qbg(**kw):
    fields = dict(manager_id=11, type_id=1193047, type_id_version=2,
                  instance_id=INSTANCE)
    fields.update(kw)
    return osv_vif.VIFPortProfile8021Qbg(**fields)


def _sriov(**kw):
    return objects.VIFPortProfileSRIOV(**kw)


def _element(vif, vf_netdev=None):
    """The output parsed back from its string, as libvirt will read it."""
    return ET.fromstring(libvirt_xml.interface_xml(vif, vf_netdev))


def _without(element, *paths):
    for path in paths:
        for parent in element.iter():
            for child in parent.findall(path):
                parent.remove(child)
    return element


def _canonical(element):
    return ET.canonicalize(ET.tostring(element, encoding="unicode"),
                           strip_text=True)


def _tags(element):
    return [child.tag for child in element]


def _invalid(vif, vf_netdev=None):
    with pytest.raises(exception.InvalidXMLRequest) as info:
        libvirt_xml.interface_xml(vif, vf_netdev)
    message = str(info.value)
    assert message.startswith("Cannot build libvirt XML for VIF ")
    return message


class TestNovaGolden:
    """nova can switch to this XML without changing what guests see.

    The only differences allowed are the documented additions: the alias
    everywhere, and the explicit vfio driver on hostdev devices.
    """

    def test_hostdev_ethernet_matches_nova(self):
        ours = _element(_hostdev())
        _without(ours, "alias", "driver[@name='vfio']")
        assert _canonical(ours) == _canonical(ET.fromstring(NOVA_HOSTDEV))

    def test_direct_passthrough_matches_nova(self):
        ours = _element(_direct(), VF_NETDEV)
        _without(ours, "alias")
        assert _canonical(ours) == _canonical(ET.fromstring(NOVA_MACVTAP))

    def test_generic_hostdev_matches_nova_physical(self):
        vif = _hostdev(dev_type="generic", dev_address="0000:81:00.1",
                       network=_network())
        ours = _element(vif)
        _without(ours, "alias", "driver[@name='vfio']")
        assert _canonical(ours) == _canonical(ET.fromstring(NOVA_PHYSICAL))

    def test_comparison_sees_a_difference(self):
        ours = _element(_hostdev(network=_network(vlan=101)))
        _without(ours, "alias", "driver[@name='vfio']")
        assert _canonical(ours) != _canonical(ET.fromstring(NOVA_HOSTDEV))

    def test_additions_are_exactly_alias_and_driver(self):
        ours = _element(_hostdev())
        assert ours.find("alias").get("name") == ALIAS
        assert ours.find("driver").attrib == {"name": "vfio"}


class TestHostdevInterface:
    def test_structure(self):
        root = _element(_hostdev())
        assert root.tag == "interface"
        assert root.attrib == {"type": "hostdev", "managed": "yes"}
        assert _tags(root) == ["mac", "driver", "source", "vlan", "alias"]
        assert root.find("mac").get("address") == MAC
        assert root.find("source/address").attrib == {
            "type": "pci", "domain": "0x0000", "bus": "0x81",
            "slot": "0x10", "function": "0x2"}
        assert root.find("vlan/tag").get("id") == "100"

    @pytest.mark.parametrize("vlan", [None, 0])
    def test_flat_network_has_no_vlan_element(self, vlan):
        root = _element(_hostdev(network=_network(vlan=vlan)))
        assert root.find("vlan") is None
        assert root.get("type") == "hostdev"

    def test_upper_case_mac_is_lowered(self):
        root = _element(_hostdev(address="FA:16:3E:11:22:33"))
        assert root.find("mac").get("address") == MAC

    def test_plain_802_1q_policy_keeps_the_interface(self):
        profile = _sriov(vlan_qos=0, vlan_proto="802.1Q", trusted=True)
        root = _element(_hostdev(port_profile=profile))
        assert root.tag == "interface"
        assert root.find("vlan/tag").get("id") == "100"

    def test_qbh_virtualport_replaces_vlan(self):
        # libvirt refuses <vlan> beside a virtualport on hostdev.
        root = _element(_hostdev(port_profile=_qbh()))
        assert root.find("vlan") is None
        port = root.find("virtualport")
        assert port.get("type") == "802.1Qbh"
        assert port.find("parameters").attrib == {"profileid": "finance"}

    def test_qbh_inside_sriov_profile(self):
        profile = _sriov(virtualport=_qbh("eng"), spoofchk=True)
        root = _element(_hostdev(port_profile=profile))
        assert root.find("virtualport/parameters").get("profileid") == "eng"

    def test_teaming_names_the_persistent_interface(self):
        profile = _sriov(teaming_persistent="ua-virtio-0")
        root = _element(_hostdev(port_profile=profile))
        assert root.find("teaming").attrib == {
            "type": "transient", "persistent": "ua-virtio-0"}
        assert _tags(root)[-2:] == ["teaming", "alias"]

    def test_mtu_is_never_emitted(self):
        # libvirt's QEMU driver refuses <mtu> on hostdev interfaces.
        root = _element(_hostdev(network=_network(vlan=100, mtu=9000)))
        assert root.find("mtu") is None


class TestVlanOverwriteRule:
    """libvirt writes VLAN/QoS 0/802.1Q for hostdev interfaces at start."""

    @pytest.mark.parametrize("profile", [
        _sriov(vlan_qos=3),
        _sriov(vlan_proto="802.1ad"),
        _sriov(vlan_qos=5, vlan_proto="802.1ad"),
    ], ids=["qos", "802.1ad", "both"])
    def test_policy_beyond_libvirt_falls_back_to_plain_hostdev(
            self, profile):
        vif = _hostdev(port_profile=profile)
        root = _element(vif)
        assert root.tag == "hostdev"
        assert root.find("mac") is None and root.find("vlan") is None
        assert root.find("source/address").get("slot") == "0x10"
        assert root.find("alias").get("name") == ALIAS
        assert libvirt_xml.libvirt_sets_vf_vlan(vif) is False

    def test_no_network_leaves_the_vlan_to_the_plugin(self):
        vif = _hostdev(network=None)
        assert _element(vif).tag == "hostdev"
        assert libvirt_xml.libvirt_sets_vf_vlan(vif) is False

    def test_fallback_keeps_teaming(self):
        profile = _sriov(vlan_qos=3, teaming_persistent="ua-virtio-0")
        root = _element(_hostdev(port_profile=profile))
        assert root.tag == "hostdev"
        assert root.find("teaming").get("persistent") == "ua-virtio-0"

    def test_qbh_interface_needs_no_fallback(self):
        # With a virtualport libvirt leaves the VF's VLAN alone.
        vif = _hostdev(port_profile=_sriov(vlan_qos=3, virtualport=_qbh()))
        root = _element(vif)
        assert root.tag == "interface"
        assert root.find("vlan") is None
        assert libvirt_xml.libvirt_sets_vf_vlan(vif) is False

    @pytest.mark.parametrize("vlan", [None, 0, 100])
    def test_libvirt_sets_vlan_of_plain_hostdev_interface(self, vlan):
        vif = _hostdev(network=_network(vlan=vlan))
        assert libvirt_xml.libvirt_sets_vf_vlan(vif) is True

    def test_generic_hostdev_is_never_touched_by_libvirt(self):
        vif = _hostdev(dev_type="generic")
        assert libvirt_xml.libvirt_sets_vf_vlan(vif) is False

    def test_direct_passthrough_is_set_by_libvirt(self):
        vif = _direct()
        assert libvirt_xml.libvirt_sets_vf_vlan(vif, VF_NETDEV) is True

    @pytest.mark.parametrize("mode", ["vepa", "bridge"])
    def test_direct_vepa_and_bridge_leave_the_vf_alone(self, mode):
        vif = _direct(mode=mode)
        assert libvirt_xml.libvirt_sets_vf_vlan(vif, VF_NETDEV) is False

    def test_direct_passthrough_qbh_leaves_the_vf_alone(self):
        vif = _direct(port_profile=_qbh())
        assert libvirt_xml.libvirt_sets_vf_vlan(vif, VF_NETDEV) is False

    @pytest.mark.parametrize("profile", [
        _sriov(vlan_qos=3), _sriov(vlan_proto="802.1ad")],
        ids=["qos", "802.1ad"])
    def test_direct_passthrough_refuses_what_libvirt_would_undo(
            self, profile):
        message = _invalid(_direct(port_profile=profile), VF_NETDEV)
        assert "passthrough macvtap" in message
        assert "vepa or bridge" in message

    def test_direct_passthrough_without_network_is_refused(self):
        message = _invalid(_direct(network=None), VF_NETDEV)
        assert "no network" in message

    def test_direct_vepa_with_qos_is_the_plugins_business(self):
        vif = _direct(mode="vepa", port_profile=_sriov(vlan_qos=3))
        root = _element(vif, VF_NETDEV)
        assert root.find("vlan") is None

    def test_direct_passthrough_qbh_with_qos_is_accepted(self):
        profile = _sriov(vlan_qos=3, virtualport=_qbh())
        root = _element(_direct(port_profile=profile), VF_NETDEV)
        assert root.find("vlan") is None
        assert root.find("virtualport").get("type") == "802.1Qbh"


class TestGenericHostdev:
    def test_structure(self):
        root = _element(_hostdev(dev_type="generic"))
        assert root.attrib == {
            "mode": "subsystem", "type": "pci", "managed": "yes"}
        assert _tags(root) == ["driver", "source", "alias"]
        assert root.find("source/address").attrib == {
            "domain": "0x0000", "bus": "0x81", "slot": "0x10",
            "function": "0x2"}

    def test_teaming(self):
        profile = _sriov(teaming_persistent="ua-virtio-0")
        root = _element(_hostdev(dev_type="generic", port_profile=profile))
        assert root.find("teaming").attrib == {
            "type": "transient", "persistent": "ua-virtio-0"}


class TestDirect:
    def test_structure(self):
        root = _element(_direct(), VF_NETDEV)
        assert root.attrib == {"type": "direct"}
        assert _tags(root) == [
            "mac", "model", "driver", "source", "vlan", "alias"]
        assert root.find("model").get("type") == "virtio"
        assert root.find("driver").get("name") == "vhost"
        assert root.find("source").attrib == {
            "dev": VF_NETDEV, "mode": "passthrough"}

    @pytest.mark.parametrize("mode", ["vepa", "bridge"])
    def test_vlan_only_in_passthrough(self, mode):
        root = _element(_direct(mode=mode), VF_NETDEV)
        assert root.find("source").get("mode") == mode
        assert root.find("vlan") is None

    @pytest.mark.parametrize("vlan", [None, 0])
    def test_flat_passthrough_has_no_vlan(self, vlan):
        root = _element(_direct(network=_network(vlan=vlan)), VF_NETDEV)
        assert root.find("vlan") is None

    @pytest.mark.parametrize("model", ["e1000", "e1000e", "rtl8139",
                                       "vmxnet3", "igb"])
    def test_emulated_models_get_no_vhost(self, model):
        root = _element(_direct(port_profile=_sriov(model=model)),
                        VF_NETDEV)
        assert root.find("model").get("type") == model
        assert root.find("driver") is None

    @pytest.mark.parametrize("model", libvirt_xml.VIRTIO_MODELS)
    def test_virtio_models_get_vhost(self, model):
        root = _element(_direct(port_profile=_sriov(model=model)),
                        VF_NETDEV)
        assert root.find("driver").get("name") == "vhost"

    def test_qbg_virtualport(self):
        root = _element(_direct(mode="vepa", port_profile=_qbg()),
                        VF_NETDEV)
        port = root.find("virtualport")
        assert port.get("type") == "802.1Qbg"
        assert port.find("parameters").attrib == {
            "managerid": "11", "typeid": "1193047", "typeidversion": "2",
            "instanceid": INSTANCE}

    def test_qbg_passthrough_keeps_vlan(self):
        root = _element(_direct(port_profile=_sriov(virtualport=_qbg())),
                        VF_NETDEV)
        assert root.find("vlan/tag").get("id") == "100"

    def test_qbh_passthrough_drops_vlan(self):
        # libvirt does not set a VLAN with 802.1Qbh and refuses <vlan>.
        root = _element(_direct(port_profile=_qbh()), VF_NETDEV)
        assert root.find("vlan") is None
        assert root.find("virtualport/parameters").get(
            "profileid") == "finance"

    def test_mtu_is_never_emitted(self):
        # libvirt's QEMU driver refuses <mtu> on direct interfaces.
        root = _element(_direct(network=_network(vlan=100, mtu=1400)),
                        VF_NETDEV)
        assert root.find("mtu") is None


class TestInvalid:
    def test_unsupported_vif_class(self):
        vif = osv_vif.VIFBridge(id=VIF_ID, address=MAC, bridge_name="br0")
        message = _invalid(vif)
        assert VIF_ID in message and "VIFBridge" in message

    def test_vif_without_id(self):
        vif = osv_vif.VIFHostDevice(address=MAC, dev_type="ethernet",
                                    dev_address=VF)
        assert "no id" in _invalid(vif)

    def test_id_unfit_for_an_alias(self):
        assert "alias" in _invalid(_hostdev(id="has space"))

    def test_missing_mac(self):
        vif = osv_vif.VIFHostDevice(id=VIF_ID, dev_type="ethernet",
                                    dev_address=VF)
        assert "no MAC" in _invalid(vif)

    def test_multicast_mac(self):
        assert "multicast" in _invalid(_hostdev(address="01:16:3e:11:22:33"))

    def test_zero_mac(self):
        assert "all zeros" in _invalid(
            _hostdev(address="00:00:00:00:00:00"))

    def test_pci_address_os_vif_lets_through(self):
        # os-vif's pattern leaves the dot unescaped.
        vif = _hostdev(dev_address="0000:81:10x2")
        assert "0000:81:10x2" in _invalid(vif)

    def test_missing_pci_address(self):
        vif = osv_vif.VIFHostDevice(id=VIF_ID, address=MAC,
                                    dev_type="ethernet")
        assert "dev_address" in _invalid(vif)

    def test_vlan_out_of_range(self):
        message = _invalid(_hostdev(network=_network(vlan=4095)))
        assert "4095" in message and "4094" in message

    def test_vlan_qos_out_of_range(self):
        message = _invalid(_hostdev(port_profile=_sriov(vlan_qos=8)))
        assert "qos" in message

    def test_direct_needs_vf_netdev(self):
        assert "host netdev" in _invalid(_direct())

    @pytest.mark.parametrize("netdev", ["", "a/b", "x" * 16, "a b", 7])
    def test_direct_bad_vf_netdev(self, netdev):
        assert "VF netdev" in _invalid(_direct(), netdev)

    def test_hostdev_refuses_vf_netdev(self):
        assert VF_NETDEV in _invalid(_hostdev(), VF_NETDEV)

    def test_direct_without_mode(self):
        vif = osv_vif.VIFDirect(id=VIF_ID, address=MAC, dev_address=VF,
                                vif_name="tap0", network=_network())
        assert "direct mode None" in _invalid(vif, VF_NETDEV)

    @pytest.mark.parametrize("model", ["e1000!", "E1000", "virtio-net",
                                       "unknown", ""])
    def test_bad_model(self, model):
        message = _invalid(_direct(port_profile=_sriov(model=model)),
                           VF_NETDEV)
        assert repr(model) in message and "virtio" in message

    def test_model_on_hostdev(self):
        message = _invalid(_hostdev(port_profile=_sriov(model="e1000")))
        assert "direct VIFs only" in message

    @pytest.mark.parametrize("teaming", [
        "virtio-0", "ua-", "ua-has space", "ua-a/b", "ua-x'y"])
    def test_bad_teaming_alias(self, teaming):
        message = _invalid(_hostdev(
            port_profile=_sriov(teaming_persistent=teaming)))
        assert repr(teaming) in message and "'ua-'" in message

    def test_teaming_on_itself(self):
        message = _invalid(_hostdev(
            port_profile=_sriov(teaming_persistent=ALIAS)))
        assert "names this VF itself" in message

    def test_teaming_on_direct(self):
        profile = _sriov(teaming_persistent="ua-virtio-0")
        message = _invalid(_direct(port_profile=profile), VF_NETDEV)
        assert "only for hostdev" in message

    def test_unsupported_port_profile(self):
        profile = osv_vif.VIFPortProfileOpenVSwitch(interface_id=VIF_ID)
        message = _invalid(_hostdev(port_profile=profile))
        assert "VIFPortProfileOpenVSwitch" in message

    def test_unsupported_virtualport_inside_sriov_profile(self):
        port = osv_vif.VIFPortProfileOpenVSwitch(interface_id=VIF_ID)
        message = _invalid(_hostdev(port_profile=_sriov(virtualport=port)))
        assert "VIFPortProfileOpenVSwitch" in message

    def test_qbg_on_hostdev(self):
        assert "802.1Qbg" in _invalid(_hostdev(port_profile=_qbg()))

    def test_virtualport_on_generic_hostdev(self):
        vif = _hostdev(dev_type="generic", port_profile=_qbh())
        assert "generic" in _invalid(vif)

    @pytest.mark.parametrize("profile_id", ["", "p" * 40])
    def test_bad_qbh_profile_id(self, profile_id):
        assert "profile_id" in _invalid(
            _hostdev(port_profile=_qbh(profile_id)))

    @pytest.mark.parametrize("fields, name", [
        (dict(manager_id=0), "manager_id"),
        (dict(manager_id=256), "manager_id"),
        (dict(type_id=0x1000000), "type_id"),
        (dict(type_id_version=-1), "type_id_version"),
    ])
    def test_bad_qbg_numbers(self, fields, name):
        vif = _direct(mode="vepa", port_profile=_qbg(**fields))
        assert f"802.1Qbg {name}" in _invalid(vif, VF_NETDEV)

    @pytest.mark.parametrize("instance", [
        "not-a-uuid", "09b11c538b5c-4eeb-8f00-d84eaa0aaa4f"])
    def test_qbg_instance_id_must_be_a_uuid(self, instance):
        vif = _direct(mode="vepa", port_profile=_qbg(instance_id=instance))
        assert "instance_id" in _invalid(vif, VF_NETDEV)

    def test_qbg_bare_uuid_is_accepted(self):
        bare = INSTANCE.replace("-", "")
        vif = _direct(mode="vepa", port_profile=_qbg(instance_id=bare))
        root = _element(vif, VF_NETDEV)
        assert root.find("virtualport/parameters").get("instanceid") == bare

    def test_qbg_missing_field(self):
        port = osv_vif.VIFPortProfile8021Qbg(
            manager_id=1, type_id=2, type_id_version=3)
        vif = _direct(mode="vepa", port_profile=port)
        assert "instance_id" in _invalid(vif, VF_NETDEV)

    def test_libvirt_sets_vf_vlan_validates_too(self):
        with pytest.raises(exception.InvalidXMLRequest):
            libvirt_xml.libvirt_sets_vf_vlan(_direct())


def test_interface_element_is_what_interface_xml_serializes():
    vif = _direct(mode="bridge")
    element = libvirt_xml.interface_element(vif, VF_NETDEV)
    assert ET.tostring(element, encoding="unicode") == (
        libvirt_xml.interface_xml(vif, VF_NETDEV))


def test_attribute_values_are_escaped_not_concatenated():
    # A profile id with XML metacharacters stays one attribute value.
    profile_id = "a'b\"<c>&d"
    root = _element(_hostdev(port_profile=_qbh(profile_id)))
    assert root.find("virtualport/parameters").get(
        "profileid") == profile_id
