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

"""PF driver profiles, loaded through the entry points pip installed."""

import sys

import pytest
from stevedore import extension

from sriov_vif import pf_drivers
from sriov_vif.vf_state import VFSettings


@pytest.fixture(autouse=True)
def fresh_cache():
    pf_drivers.load.cache_clear()
    yield
    pf_drivers.load.cache_clear()


@pytest.mark.parametrize("name, profile", [
    ("default", pf_drivers.DEFAULT),
    ("igb", pf_drivers.IGB),
    ("ixgbe", pf_drivers.IXGBE),
    ("i40e", pf_drivers.I40E),
    ("ice", pf_drivers.ICE),
    ("mlx5_core", pf_drivers.MLX5_CORE),
    ("netdevsim", pf_drivers.NETDEVSIM),
])
def test_every_profile_is_registered_under_its_driver_name(name, profile):
    assert pf_drivers.load(name) is profile
    assert profile.name == name


@pytest.mark.parametrize("name", ["bnxt_en", "", "qede"])
def test_unknown_drivers_get_the_default_profile(name):
    assert pf_drivers.load(name) is pf_drivers.DEFAULT


def test_default_profile_is_conservative():
    # nothing is assumed missing (the kernel's answer decides, with a
    # rollback) but the MAC is verified by reading it back
    assert pf_drivers.DEFAULT.unsupported == frozenset()
    assert pf_drivers.DEFAULT.async_mac is True


def test_igb_cannot_do_link_state_min_rate_or_8021ad():
    request = VFSettings(mac="52:54:00:00:00:01", link_state="enable",
                         min_tx_rate=10, max_tx_rate=100, vlan=5, qos=0,
                         vlan_proto="802.1ad")
    assert pf_drivers.IGB.cannot_apply(request) == [
        ("link_state=enable", ("link_state",)),
        ("min_tx_rate=10", ("min_tx_rate",)),
        ("vlan_proto=802.1ad", ("vlan", "qos", "vlan_proto")),
    ]


def test_intel_min_rate_and_protocol_gaps():
    request = VFSettings(min_tx_rate=10, max_tx_rate=100, vlan=5, qos=1,
                         vlan_proto="802.1ad", link_state="enable")
    for profile in (pf_drivers.IXGBE, pf_drivers.I40E):
        assert [what for what, _ in profile.cannot_apply(request)] == [
            "min_tx_rate=10", "vlan_proto=802.1ad"]
    assert pf_drivers.I40E.async_mac is True
    assert pf_drivers.ICE.cannot_apply(request) == []


def test_mlx5_refuses_only_8021ad():
    assert pf_drivers.MLX5_CORE.cannot_apply(VFSettings(
        min_tx_rate=10, max_tx_rate=100, link_state="disable", trust=True,
        vlan=5, qos=0, vlan_proto="802.1Q")) == []
    assert pf_drivers.MLX5_CORE.cannot_apply(VFSettings(
        vlan_proto="802.1ad")) == [
            ("vlan_proto=802.1ad", ("vlan", "qos", "vlan_proto"))]


def test_netdevsim_does_everything():
    assert pf_drivers.NETDEVSIM.cannot_apply(VFSettings(
        mac="52:54:00:00:00:01", vlan=5, qos=7, vlan_proto="802.1ad",
        spoofchk=True, trust=True, link_state="disable", min_tx_rate=1,
        max_tx_rate=2)) == []


def test_profile_refuses_unknown_names():
    with pytest.raises(ValueError, match="unknown VF attributes"):
        pf_drivers.PFDriverProfile(name="x", unsupported=frozenset({"mtu"}))
    with pytest.raises(ValueError, match="unknown VLAN protocols"):
        pf_drivers.PFDriverProfile(
            name="x", vlan_protocols=frozenset({"802.1x"}))


@pytest.fixture
def vendor_package(tmp_path, monkeypatch):
    """install(entry_point): a vendor's distribution on sys.path."""
    # What a process sees of entry points is cached per namespace:
    # a vendor package is installed before nova-compute starts, not after.
    monkeypatch.setattr(extension.ExtensionManager, "ENTRY_POINT_CACHE", {})
    monkeypatch.syspath_prepend(str(tmp_path))

    def install(entry_point):
        (tmp_path / "acme_nic_profile.py").write_text(
            "from sriov_vif import pf_drivers\n"
            "PROFILE = pf_drivers.PFDriverProfile(\n"
            "    name='acme_nic', unsupported=frozenset({'trust'}))\n"
            "NOT_A_PROFILE = object()\n")
        dist_info = tmp_path / "acme_nic_profile-1.0.dist-info"
        dist_info.mkdir()
        (dist_info / "METADATA").write_text(
            "Metadata-Version: 2.1\nName: acme-nic-profile\nVersion: 1.0\n")
        (dist_info / "entry_points.txt").write_text(
            f"[sriov_vif.pf_drivers]\n{entry_point}\n")

    yield install
    sys.modules.pop("acme_nic_profile", None)


def test_a_vendor_adds_a_profile_with_an_entry_point(vendor_package):
    vendor_package("acme_nic = acme_nic_profile:PROFILE")

    profile = pf_drivers.load("acme_nic")

    assert profile.name == "acme_nic"
    assert profile.cannot_apply(VFSettings(trust=True)) == [
        ("trust=True", ("trust",))]
    assert pf_drivers.load("igb") is pf_drivers.IGB


def test_an_entry_point_that_is_not_a_profile_is_refused(vendor_package):
    vendor_package("acme_nic = acme_nic_profile:NOT_A_PROFILE")

    with pytest.raises(TypeError, match="'acme_nic' in sriov_vif.pf_drivers"
                                        " is object, not a PFDriverProfile"):
        pf_drivers.load("acme_nic")
