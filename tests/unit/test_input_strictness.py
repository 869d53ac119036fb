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

"""Input that is almost right is refused, never read as something else.

Booleans given as strings ("false" is not true), integers past what the
kernel stores (a __u32), and identifiers with a trailing newline (which
``re.match`` with ``$`` lets through) on every path that validates input.
"""

from typing import Any

import os_vif.objects
from os_vif.objects import network as osv_network
from os_vif.objects import vif as osv_vif
import pytest

from sriov_vif import conversion
from sriov_vif import discovery
from sriov_vif import exception
from sriov_vif import identifiers
from sriov_vif import objects
from sriov_vif import policy
from sriov_vif import vf_state
from tests.nova_ports import nova_vif

os_vif.objects.register_all()

U32_MAX = 2**32 - 1
VF = "0000:81:10.2"


def _hostdev(**profile):
    return osv_vif.VIFHostDevice(
        id="aaaaaaaa-0000-4000-8000-000000000001",
        address="fa:16:3e:00:00:01", plugin="sriov", dev_type="ethernet",
        dev_address=VF, network=osv_network.Network(vlan=100),
        port_profile=objects.VIFPortProfileSRIOV(**profile))


# Item 5: a coercing BooleanField made "false" true.

@pytest.mark.parametrize("raw, expected", [
    (False, False), (True, True), ("false", False), ("False", False),
    ("off", False), ("no", False), ("0", False), (0, False),
    ("true", True), ("on", True), ("1", True), (1, True)])
@pytest.mark.parametrize("name", ["trusted", "spoofchk"])
def test_profile_booleans_mean_what_they_say(name, raw, expected):
    profile = objects.VIFPortProfileSRIOV(**{name: raw})
    assert getattr(profile, name) is expected
    key = "trust" if name == "trusted" else name
    assert policy.vf_settings(_hostdev(**{name: raw})).requested()[
        key] is expected


@pytest.mark.parametrize("raw", ["maybe", "", "falsey", 2, -1, [], {},
                                 1.0, "true\n1"])
@pytest.mark.parametrize("name", ["trusted", "spoofchk"])
def test_profile_booleans_refuse_anything_else(name, raw):
    with pytest.raises(ValueError, match=name):
        objects.VIFPortProfileSRIOV(**{name: raw})


def test_false_string_from_plug_json_leaves_the_vf_untrusted():
    """The sriov-vif plug path: a VIF primitive whose profile says "false"."""
    primitive = _hostdev().obj_to_primitive()
    primitive["versioned_object.data"]["port_profile"][
        "versioned_object.data"].update(trusted="false", spoofchk="off")
    vif = osv_vif.VIFBase.obj_from_primitive(primitive)
    settings = policy.vf_settings(vif).requested()
    assert settings["trust"] is False
    assert settings["spoofchk"] is False


# Item 6: rates are __u32 in the kernel.

@pytest.mark.parametrize("name", ["min_tx_rate", "max_tx_rate"])
def test_rates_past_u32_are_refused_by_the_profile(name):
    assert getattr(objects.VIFPortProfileSRIOV(**{name: U32_MAX}),
                   name) == U32_MAX
    for bad in (U32_MAX + 1, 2**64, -1, True):
        with pytest.raises(ValueError, match=name):
            objects.VIFPortProfileSRIOV(**{name: bad})


@pytest.mark.parametrize("name", ["min_tx_rate", "max_tx_rate"])
def test_rates_past_u32_are_refused_by_validation(name):
    # both sides of privsep run this validation
    rates: dict[str, Any] = {"min_tx_rate": 0, "max_tx_rate": 0,
                             name: U32_MAX + 1}
    with pytest.raises(exception.InvalidVFSetting, match=name):
        vf_state.validate_settings(vf_state.VFSettings(**rates))
    rates[name] = U32_MAX
    rates["min_tx_rate"] = min(rates["min_tx_rate"], rates["max_tx_rate"])
    vf_state.validate_settings(vf_state.VFSettings(**rates))


# Item 7: a trailing newline passed re.match(...$).

@pytest.mark.parametrize("ifname", ["lo\n", "eth0\n", "\nlo"])
def test_interface_names_with_a_newline_are_refused(ifname):
    with pytest.raises(exception.InvalidInterfaceName):
        vf_state.validate_ifname(ifname)


@pytest.mark.parametrize("mac", ["52:54:00:12:34:56\n",
                                 "00:00:00:00:00:00\n"])
def test_macs_with_a_newline_are_refused(mac):
    with pytest.raises(exception.InvalidVFSetting):
        vf_state.validate_mac(mac)


def test_pci_addresses_with_a_newline_are_refused():
    with pytest.raises(exception.InvalidPciAddress):
        discovery.validate_pci_address(VF + "\n")
    assert not identifiers.is_pci_address(VF + "\n")
    source = nova_vif("direct")
    source["profile"]["pci_slot"] = VF + "\n"
    with pytest.raises(exception.InvalidPortBinding, match="pci_slot"):
        conversion.from_nova_vif(source)


def test_uuids_with_a_newline_are_refused():
    source = nova_vif("direct")
    source["id"] = source["id"] + "\n"
    with pytest.raises(exception.InvalidPortBinding):
        conversion.from_nova_vif(source)
    source = nova_vif("direct")
    source["network"]["id"] = source["network"]["id"] + "\n"
    with pytest.raises(exception.InvalidPortBinding):
        conversion.from_nova_vif(source)
    uuid = "09b11c53-8b5c-4eeb-8f00-d84eaa0aaa4f"
    assert identifiers.is_uuid(uuid)
    assert identifiers.is_uuid(uuid.replace("-", ""), bare=True)
    assert not identifiers.is_uuid(uuid + "\n", bare=True)
    assert not identifiers.is_uuid(uuid.replace("-", ""))


def test_vlan_with_a_newline_is_refused():
    with pytest.raises(exception.InvalidPortBinding, match="vlan"):
        conversion.from_nova_vif(nova_vif("direct", vlan="100\n"))
