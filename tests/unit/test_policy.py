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

import os_vif.objects
from os_vif.objects import network as osv_network
from os_vif.objects import vif as osv_vif
import pytest

from sriov_vif import exception
from sriov_vif import objects
from sriov_vif import policy
from sriov_vif import vf_state

os_vif.objects.register_all()

VIF_ID = "c0ffee00-1111-2222-3333-444455556666"


def _hostdev(**kw):
    fields = dict(id=VIF_ID, address="FA:16:3E:11:22:33", plugin="sriov",
                  dev_type="ethernet", dev_address="0000:81:10.2")
    fields.update(kw)
    return osv_vif.VIFHostDevice(**fields)


def test_flat_network_means_untagged_802_1q():
    vif = _hostdev(network=osv_network.Network(vlan=None))
    assert policy.vf_settings(vif) == vf_state.VFSettings(
        mac="fa:16:3e:11:22:33", vlan=0, qos=0, vlan_proto="802.1Q")


def test_vlan_zero_is_untagged_but_profile_proto_wins():
    profile = objects.VIFPortProfileSRIOV(vlan_proto="802.1ad")
    vif = _hostdev(network=osv_network.Network(vlan=0),
                   port_profile=profile)
    settings = policy.vf_settings(vif)
    assert (settings.vlan, settings.qos, settings.vlan_proto) == (
        0, 0, "802.1ad")


def test_no_network_leaves_vlan_alone():
    settings = policy.vf_settings(_hostdev())
    assert settings.vlan is None and settings.qos is None
    assert settings.requested() == {"mac": "fa:16:3e:11:22:33"}


def test_profile_fields_map_and_unset_fields_stay_unset():
    profile = objects.VIFPortProfileSRIOV(
        trusted=True, spoofchk=False, link_state="enable", min_tx_rate=10,
        max_tx_rate=100, vlan_qos=3, vlan_proto="802.1ad")
    vif = _hostdev(network=osv_network.Network(vlan=100),
                   port_profile=profile)
    assert policy.vf_settings(vif).requested() == {
        "mac": "fa:16:3e:11:22:33", "vlan": 100, "qos": 3,
        "vlan_proto": "802.1ad", "trust": True, "spoofchk": False,
        "link_state": "enable", "min_tx_rate": 10, "max_tx_rate": 100,
    }
    only_trust = objects.VIFPortProfileSRIOV(trusted=False)
    vif = _hostdev(network=osv_network.Network(vlan=100),
                   port_profile=only_trust)
    assert set(policy.vf_settings(vif).requested()) == {
        "mac", "vlan", "trust"}


def test_virtualport_profile_carries_no_vf_policy():
    vif = _hostdev(port_profile=osv_vif.VIFPortProfile8021Qbh(
        profile_id="p1"))
    assert policy.vf_settings(vif).requested() == {
        "mac": "fa:16:3e:11:22:33"}


@pytest.mark.parametrize("profile, message", [
    (objects.VIFPortProfileSRIOV(vlan_qos=8), "qos"),
    (objects.VIFPortProfileSRIOV(min_tx_rate=200, max_tx_rate=100),
     "min_tx_rate"),
])
def test_bad_policy_names_vif_and_setting(profile, message):
    vif = _hostdev(network=osv_network.Network(vlan=10),
                   port_profile=profile)
    with pytest.raises(exception.UnsupportedVIF) as err:
        policy.vf_settings(vif)
    assert VIF_ID in str(err.value) and message in str(err.value)


def test_vlan_out_of_range_is_refused():
    vif = _hostdev(network=osv_network.Network(vlan=4095))
    with pytest.raises(exception.UnsupportedVIF, match="vlan"):
        policy.vf_settings(vif)


def test_multicast_mac_is_refused():
    with pytest.raises(exception.UnsupportedVIF, match="multicast"):
        policy.vf_settings(_hostdev(address="01:00:5e:00:00:01"))


def test_other_vif_types_are_refused():
    vif = osv_vif.VIFBridge(id=VIF_ID, address="fa:16:3e:11:22:33",
                            plugin="sriov", bridge_name="br0")
    with pytest.raises(exception.UnsupportedVIF, match="VIFBridge"):
        policy.vf_settings(vif)


def test_only_direct_needs_a_vf_netdev():
    direct = osv_vif.VIFDirect(
        id=VIF_ID, address="fa:16:3e:11:22:33", plugin="sriov",
        dev_address="0000:81:10.2", mode="passthrough", vif_name="m0")
    assert policy.needs_vf_netdev(direct)
    assert not policy.needs_vf_netdev(_hostdev())
