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

"""Bound SR-IOV ports, as nova 34 stores them, into os-vif objects.

The VIF dicts below are what nova's own neutron.API._build_vif_model
produced (captured with nova 34.0.0, then JSON-dumped the way nova caches
network info) for ports bound by neutron 29's SR-IOV mechanism driver,
with the binding profile nova itself writes for a VF, a PF and a cyborg
accelerator.
"""

from importlib import metadata
import json

from os_vif.objects import vif as osv_vif
import pytest

from sriov_vif import conversion
from sriov_vif import exception
from sriov_vif import objects
from tests.nova_ports import NETWORK_ID
from tests.nova_ports import PF_ADDRESS
from tests.nova_ports import PORT_ID
from tests.nova_ports import VF_ADDRESS
from tests.nova_ports import nova_vif


def set_fields(obj):
    return {name for name in obj.fields if obj.obj_attr_is_set(name)}


def canonical(primitive):
    """A primitive with its change lists sorted.

    oslo.versionedobjects lists changed fields from a set, so two equal
    objects can list them in different orders (and compare unequal with
    ==, which compares primitives).
    """
    if isinstance(primitive, dict):
        return {key: sorted(value) if key == "versioned_object.changes"
                else canonical(value) for key, value in primitive.items()}
    if isinstance(primitive, list):
        return [canonical(item) for item in primitive]
    return primitive


def assert_round_trips(obj):
    """The object survives nova's serialization: primitive, JSON, back."""
    primitive = json.loads(json.dumps(obj.obj_to_primitive()))
    back = osv_vif.VIFBase.obj_from_primitive(primitive)
    assert type(back) is type(obj)
    assert canonical(back.obj_to_primitive()) == canonical(
        obj.obj_to_primitive())
    assert type(back.port_profile) is objects.VIFPortProfileSRIOV
    assert set_fields(back.port_profile) == set_fields(obj.port_profile)
    assert set_fields(back.network) == set_fields(obj.network)


# vnic type -> (class, dev_type or None, dev_address, active)
CONVERSION_TABLE = [
    ("direct", osv_vif.VIFHostDevice, "ethernet", VF_ADDRESS, False),
    ("accelerator-direct", osv_vif.VIFHostDevice, "ethernet", VF_ADDRESS,
     False),
    ("direct-physical", osv_vif.VIFHostDevice, "generic", PF_ADDRESS, True),
    ("macvtap", osv_vif.VIFDirect, None, VF_ADDRESS, False),
]


@pytest.mark.parametrize(
    "vnic_type, cls, dev_type, dev_address, active", CONVERSION_TABLE)
def test_every_vnic_type_converts_field_by_field(
        vnic_type, cls, dev_type, dev_address, active):
    source = nova_vif(vnic_type)
    vif = conversion.from_nova_vif(source)

    assert type(vif) is cls
    common = {"id", "address", "network", "plugin", "active",
              "preserve_on_delete", "has_traffic_filtering", "port_profile",
              "dev_address"}
    assert vif.id == PORT_ID
    assert vif.address == source["address"]
    assert vif.plugin == "sriov"
    assert vif.active is active
    assert vif.preserve_on_delete is False
    assert vif.has_traffic_filtering is False
    assert vif.dev_address == dev_address
    if cls is osv_vif.VIFDirect:
        assert set_fields(vif) == common | {"vif_name", "mode"}
        assert vif.mode == "passthrough"
        assert vif.vif_name == "tap3f8d1e52-7c"
        # No VLAN netdev exists for an SR-IOV macvtap: the VLAN is the VF's.
        assert not vif.obj_attr_is_set("vlan_name")
    else:
        assert set_fields(vif) == common | {"dev_type"}
        assert vif.dev_type == dev_type

    network = vif.network
    assert set_fields(network) == {
        "id", "label", "subnets", "multi_host", "should_provide_bridge",
        "should_provide_vlan", "vlan", "mtu"}
    assert network.id == NETWORK_ID
    assert network.label == "sriov-net"
    assert network.vlan == 100
    assert network.mtu == 9000
    assert network.should_provide_vlan is False
    assert network.should_provide_bridge is False
    assert network.multi_host is False
    assert len(network.subnets.objects) == 0

    # Nothing in the binding states a VF policy: every field stays unset.
    assert type(vif.port_profile) is objects.VIFPortProfileSRIOV
    assert set_fields(vif.port_profile) == set()

    assert_round_trips(vif)


def test_flat_network_has_no_vlan():
    vif = conversion.from_nova_vif(nova_vif("direct", vlan="0"))
    assert vif.network.obj_attr_is_set("vlan")
    assert vif.network.vlan is None


@pytest.mark.parametrize("raw, vlan", [
    ("1", 1), ("4094", 4094), (100, 100), (0, None), ("0100", 100),
])
def test_vlan_forms(raw, vlan):
    vif = conversion.from_nova_vif(nova_vif("macvtap", vlan=raw))
    assert vif.network.vlan == vlan


def test_pf_passthrough_needs_no_vlan_in_details():
    source = nova_vif("direct-physical")
    del source["details"]["vlan"]
    vif = conversion.from_nova_vif(source)
    assert vif.network.vlan is None
    assert vif.dev_type == "generic"


@pytest.mark.parametrize("raw, trusted", [
    (True, True), (False, False), ("true", True), ("False", False),
    ("yes", True), ("no", False), ("1", True), ("0", False), (1, True),
    (0, False), (" On ", True), ("off", False),
])
def test_trusted_from_profile(raw, trusted):
    source = nova_vif("direct")
    source["profile"]["trusted"] = raw
    vif = conversion.from_nova_vif(source)
    assert set_fields(vif.port_profile) == {"trusted"}
    assert vif.port_profile.trusted is trusted
    assert_round_trips(vif)


def test_port_filter_active_and_preserve_flags_are_carried():
    source = nova_vif("direct", active=True, preserve_on_delete=True)
    source["details"]["port_filter"] = True
    vif = conversion.from_nova_vif(source)
    assert vif.active is True
    assert vif.preserve_on_delete is True
    assert vif.has_traffic_filtering is True


def test_absent_flags_default_like_nova_model():
    source = nova_vif("direct")
    for key in ("active", "preserve_on_delete"):
        del source[key]
    del source["details"]["port_filter"]
    vif = conversion.from_nova_vif(source)
    assert vif.active is False
    assert vif.preserve_on_delete is False
    assert vif.has_traffic_filtering is False


def test_upper_case_addresses_are_lowered():
    source = nova_vif("macvtap", address="FA:16:3E:11:22:AB")
    source["profile"]["pci_slot"] = "0000:AF:1F.7"
    vif = conversion.from_nova_vif(source)
    assert vif.address == "fa:16:3e:11:22:ab"
    assert vif.dev_address == "0000:af:1f.7"


def test_network_without_mtu_label_or_meta():
    source = nova_vif("direct")
    source["network"]["label"] = None
    del source["network"]["meta"]
    vif = conversion.from_nova_vif(source)
    assert vif.network.mtu is None
    assert not vif.network.obj_attr_is_set("label")
    assert_round_trips(vif)


def test_network_bridge_is_kept_when_nova_has_one():
    source = nova_vif("direct")
    source["network"]["bridge"] = "br-sriov"
    assert conversion.from_nova_vif(source).network.bridge == "br-sriov"


def test_macvtap_without_devname_is_named_like_nova():
    source = nova_vif("macvtap", devname=None)
    vif = conversion.from_nova_vif(source)
    assert vif.vif_name == "nic3f8d1e52-7c"


def test_none_details_and_extra_profile_keys_are_tolerated():
    source = nova_vif("direct-physical", details=None)
    source["profile"]["capabilities"] = ["switchdev"]
    vif = conversion.from_nova_vif(source)
    assert vif.network.vlan is None
    assert set_fields(vif.port_profile) == set()


def test_dict_subclasses_like_nova_model_are_accepted():
    class Model(dict):
        """nova.network.model.Model is a plain dict subclass."""

    source = nova_vif("macvtap")
    source["network"] = Model(source["network"])
    vif = conversion.from_nova_vif(Model(source))
    assert type(vif) is osv_vif.VIFDirect


def test_real_nova_model_objects():
    """Only where nova itself is installed (not a dependency of ours)."""
    model = pytest.importorskip("nova.network.model")
    source = nova_vif("direct", vlan="42")
    network = model.Network(
        id=NETWORK_ID, bridge=None, label="sriov-net",
        subnets=[model.Subnet(cidr="10.0.0.0/24")],
        **source["network"]["meta"])
    vif_model = model.VIF(
        id=PORT_ID, address=source["address"], network=network,
        type=model.VIF_TYPE_HW_VEB, details=source["details"],
        devname=source["devname"], active=True,
        vnic_type=model.VNIC_TYPE_DIRECT, profile=source["profile"],
        preserve_on_delete=True, delegate_create=True)
    cached = model.NetworkInfo.hydrate(
        json.loads(model.NetworkInfo([vif_model]).json()))[0]
    for candidate in (vif_model, cached):
        vif = conversion.from_nova_vif(candidate)
        assert vif.network.vlan == 42
        assert vif.network.mtu == 9000
        assert vif.dev_address == VF_ADDRESS
        assert vif.active is True
        assert vif.preserve_on_delete is True


def test_plugin_name_is_our_entry_point():
    names = {ep.name: ep.value
             for ep in metadata.entry_points(group="os_vif")}
    assert names[conversion.PLUGIN_NAME].startswith("sriov_vif.")


# Bad bindings: each one names the port and says what is wrong.

def _mutated(vnic_type, mutate):
    source = nova_vif(vnic_type)
    mutate(source)
    return source


def _set(path, value):
    def mutate(source):
        target = source
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value
    return mutate


def _delete(path):
    def mutate(source):
        target = source
        for key in path[:-1]:
            target = target[key]
        del target[path[-1]]
    return mutate


BAD_BINDINGS = [
    # vif and vnic types
    ("unknown vnic type", "direct", _set(["vnic_type"], "bogus"),
     "vnic type 'bogus'"),
    ("normal port", "direct", _set(["vnic_type"], "normal"),
     "vnic type 'normal'"),
    ("vdpa port", "direct", _set(["vnic_type"], "vdpa"), "vnic type 'vdpa'"),
    ("remote-managed port", "direct", _set(["vnic_type"], "remote-managed"),
     "vnic type 'remote-managed'"),
    ("accelerator PF", "direct-physical",
     _set(["vnic_type"], "accelerator-direct-physical"),
     "vnic type 'accelerator-direct-physical'"),
    ("no vnic type", "direct", _delete(["vnic_type"]), "vnic type None"),
    ("unbound", "direct", _set(["type"], "unbound"), "not bound"),
    ("binding failed", "direct", _set(["type"], "binding_failed"),
     "failed to bind"),
    ("no vif type", "direct", _set(["type"], None), "vif type None"),
    ("switchdev direct bound by OVS", "direct", _set(["type"], "ovs"),
     "vif type 'ovs' is not an SR-IOV binding"),
    ("macvtap agent binding", "macvtap", _set(["type"], "macvtap"),
     "vif type 'macvtap' is not an SR-IOV binding"),
    ("direct as hostdev_physical", "direct",
     _set(["type"], "hostdev_physical"),
     "vnic type 'direct' must be bound as vif type 'hw_veb'"),
    ("macvtap as hostdev_physical", "macvtap",
     _set(["type"], "hostdev_physical"),
     "vnic type 'macvtap' must be bound as vif type 'hw_veb'"),
    ("direct-physical as hw_veb", "direct-physical",
     _set(["type"], "hw_veb"),
     "must be bound as vif type 'hostdev_physical'"),
    # PCI slot
    ("no profile", "direct", _set(["profile"], None), "no 'pci_slot'"),
    ("no pci_slot", "macvtap", _delete(["profile", "pci_slot"]),
     "no 'pci_slot'"),
    ("pci_slot without domain", "direct",
     _set(["profile", "pci_slot"], "81:10.2"), "'81:10.2' is not a PCI"),
    ("pci function 8", "direct",
     _set(["profile", "pci_slot"], "0000:81:10.8"), "is not a PCI"),
    ("pci slot 0x20", "direct",
     _set(["profile", "pci_slot"], "0000:81:20.2"), "is not a PCI"),
    ("pci_slot not a string", "direct-physical",
     _set(["profile", "pci_slot"], 42), "42 is not a PCI"),
    ("pci_slot dot not literal", "direct",
     _set(["profile", "pci_slot"], "0000:81:10:2"), "is not a PCI"),
    ("profile not a mapping", "direct", _set(["profile"], "pci_slot"),
     "'profile' is not a mapping"),
    # VLAN
    ("no vlan on hw_veb", "direct", _delete(["details", "vlan"]),
     "no 'vlan'"),
    ("vlan not numeric", "macvtap", _set(["details", "vlan"], "abc"),
     "'abc' is not a decimal"),
    ("negative vlan", "direct", _set(["details", "vlan"], "-1"),
     "'-1' is not a decimal"),
    ("vlan 4095", "direct", _set(["details", "vlan"], "4095"),
     "outside 0 (flat) to 4094"),
    ("vlan 10000", "direct", _set(["details", "vlan"], "10000"),
     "not a decimal"),
    ("vlan int out of range", "direct", _set(["details", "vlan"], 5000),
     "outside 0 (flat) to 4094"),
    ("vlan with space", "direct", _set(["details", "vlan"], " 100"),
     "not a decimal"),
    ("vlan empty", "direct", _set(["details", "vlan"], ""),
     "not a decimal"),
    ("vlan bool", "direct", _set(["details", "vlan"], True),
     "not a decimal"),
    ("vlan float", "direct", _set(["details", "vlan"], 1.5),
     "not a decimal"),
    ("details not a mapping", "direct", _set(["details"], ["vlan"]),
     "'details' is not a mapping"),
    # MAC
    ("no address", "direct", _delete(["address"]), "no MAC"),
    ("address None", "macvtap", _set(["address"], None), "no MAC"),
    ("malformed MAC", "direct", _set(["address"], "fa:16:3e:11:22"),
     "MAC address 'fa:16:3e:11:22'"),
    ("multicast MAC", "direct", _set(["address"], "01:00:5e:00:00:01"),
     "multicast"),
    ("zero MAC", "direct", _set(["address"], "00:00:00:00:00:00"),
     "must not be all zeros"),
    # network
    ("no network", "direct", _set(["network"], None), "no 'network'"),
    ("network id missing", "direct", _delete(["network", "id"]),
     "network id None"),
    ("network id not a UUID", "direct", _set(["network", "id"], "net1"),
     "network id 'net1'"),
    ("mtu a string", "direct", _set(["network", "meta", "mtu"], "1500"),
     "MTU '1500'"),
    ("mtu zero", "direct", _set(["network", "meta", "mtu"], 0), "MTU 0"),
    ("mtu too big", "direct", _set(["network", "meta", "mtu"], 65536),
     "MTU 65536"),
    ("meta not a mapping", "direct", _set(["network", "meta"], ["mtu"]),
     "'meta' is not a mapping"),
    ("label not a string", "direct", _set(["network", "label"], 7),
     "network 'label'"),
    # flags and policy
    ("trusted neither", "direct", _set(["profile", "trusted"], "maybe"),
     "'trusted' 'maybe'"),
    ("trusted 2", "direct", _set(["profile", "trusted"], 2),
     "'trusted' 2"),
    ("port_filter a string", "direct",
     _set(["details", "port_filter"], "False"), "'port_filter'"),
    ("active a string", "direct", _set(["active"], "yes"), "'active'"),
    ("preserve_on_delete None", "direct",
     _set(["preserve_on_delete"], None), "'preserve_on_delete'"),
    # macvtap device name
    ("devname with slash", "macvtap", _set(["devname"], "tap/1"),
     "devname 'tap/1'"),
    ("devname too long", "macvtap", _set(["devname"], "tap" + "x" * 13),
     "cannot name the macvtap device"),
]


@pytest.mark.parametrize(
    "vnic_type, mutate, reason",
    [pytest.param(v, m, r, id=name) for name, v, m, r in BAD_BINDINGS])
def test_bad_binding_is_refused_naming_the_port(vnic_type, mutate, reason):
    with pytest.raises(exception.InvalidPortBinding) as raised:
        conversion.from_nova_vif(_mutated(vnic_type, mutate))
    message = str(raised.value)
    assert f"Port {PORT_ID} " in message
    assert reason in message


def test_port_without_id_is_refused():
    source = nova_vif("direct")
    del source["id"]
    with pytest.raises(exception.InvalidPortBinding,
                       match="<port without an id>.*no 'id'"):
        conversion.from_nova_vif(source)


def test_port_id_not_a_uuid_is_refused_naming_it():
    with pytest.raises(exception.InvalidPortBinding,
                       match="Port 'port-1' .*not a UUID"):
        conversion.from_nova_vif(nova_vif("direct", id="port-1"))


def test_not_a_mapping_is_refused():
    with pytest.raises(exception.InvalidPortBinding,
                       match="expected a nova VIF mapping, got list"):
        # Deliberately the wrong type, as an untyped caller could pass.
        conversion.from_nova_vif(
            [nova_vif("direct")])  # type: ignore[arg-type]
