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

"""The fixture trees must have the shape of a real /sys."""

from __future__ import annotations

import os
import pathlib
import re

import pytest

from harness import sysfs_tree
from sriov_vif import exception

PF = "0000:81:00.0"


@pytest.fixture
def tree(tmp_path: pathlib.Path) -> sysfs_tree.SysfsTree:
    return sysfs_tree.SysfsTree(tmp_path / "sys")


def _read(*parts: str) -> str:
    with open(os.path.join(*parts)) as f:
        return f.read()


def _real(tree: sysfs_tree.SysfsTree, address: str) -> str:
    return os.path.realpath(tree.device_dir(address))


@pytest.mark.parametrize("pf, index, offset, stride, expected", [
    (PF, 0, 0x80, 1, "0000:81:10.0"),
    (PF, 2, 0x80, 1, "0000:81:10.2"),
    (PF, 127, 0x80, 1, "0000:81:1f.7"),
    (PF, 128, 0x80, 1, "0000:82:00.0"),
    (PF, 255, 0x80, 1, "0000:82:0f.7"),
    ("0000:3b:00.1", 0, 0x0f, 1, "0000:3b:02.0"),
    ("0000:3b:00.1", 3, 0x0f, 2, "0000:3b:02.6"),
    ("0001:af:00.0", 1, 0x08, 1, "0001:af:01.1"),
])
def test_vf_address_follows_offset_and_stride(pf, index, offset, stride,
                                              expected):
    assert sysfs_tree.vf_address(pf, index, offset, stride) == expected


def test_vf_address_past_the_last_bus():
    with pytest.raises(ValueError, match="past bus ff"):
        sysfs_tree.vf_address("0000:ff:00.0", 0, 0x100, 1)


def test_predictable_name():
    assert sysfs_tree.predictable_name(PF) == "enp129s0f0"
    assert sysfs_tree.predictable_name("0000:81:10.2") == "enp129s16f2"


def test_devices_are_relative_links_into_the_device_hierarchy(tree):
    tree.add_pf(PF, numvfs=2)
    link = os.readlink(tree.device_dir(PF))
    assert re.fullmatch(
        r"\.\./\.\./\.\./devices/pci0000:00/0000:00:[0-9a-f]{2}\.0/"
        + re.escape(PF), link)
    assert os.path.isdir(tree.device_dir(PF))


def test_vfs_sit_beside_their_pf_even_on_the_next_bus(tree):
    built = tree.add_pf(PF, numvfs=200, totalvfs=256)
    assert built.vf(199).pci_address == "0000:82:08.7"
    parent = os.path.dirname(_real(tree, PF))
    assert os.path.dirname(_real(tree, "0000:82:08.7")) == parent


def test_physfn_and_virtfn_links(tree):
    tree.add_pf(PF, numvfs=3)
    pf_dir = tree.device_dir(PF)
    assert [os.readlink(os.path.join(pf_dir, f"virtfn{n}"))
            for n in range(3)] == [
        "../0000:81:10.0", "../0000:81:10.1", "../0000:81:10.2"]
    assert os.readlink(
        os.path.join(tree.device_dir("0000:81:10.1"), "physfn")) == (
        "../" + PF)
    assert not os.path.exists(os.path.join(pf_dir, "virtfn3"))


def test_driver_links_both_ways(tree):
    tree.add_pf(PF, numvfs=1, driver="ice", vf_driver="vfio-pci")
    drivers = os.path.join(tree.root, "bus", "pci", "drivers")
    for address, driver in ((PF, "ice"), ("0000:81:10.0", "vfio-pci")):
        link = os.path.join(tree.device_dir(address), "driver")
        assert not os.path.isabs(os.readlink(link))
        assert os.path.realpath(link) == os.path.realpath(
            os.path.join(drivers, driver))
        assert os.path.realpath(
            os.path.join(drivers, driver, address)) == _real(tree, address)


def test_sriov_files(tree):
    tree.add_pf(PF, numvfs=8, totalvfs=64, offset=0x80, stride=1,
                numa_node=1)
    pf_dir = tree.device_dir(PF)
    assert _read(pf_dir, "sriov_numvfs") == "8\n"
    assert _read(pf_dir, "sriov_totalvfs") == "64\n"
    assert _read(pf_dir, "sriov_offset") == "128\n"
    assert _read(pf_dir, "sriov_stride") == "1\n"
    assert _read(pf_dir, "numa_node") == "1\n"
    assert _read(tree.device_dir("0000:81:10.0"), "numa_node") == "1\n"


def test_old_kernel_has_no_offset_files(tree):
    tree.add_pf(PF, numvfs=2, offset_stride_files=False)
    assert not os.path.exists(
        os.path.join(tree.device_dir(PF), "sriov_stride"))


def test_unknown_numa_node_is_minus_one(tree):
    built = tree.add_pf(PF, numa_node=None)
    assert _read(tree.device_dir(PF), "numa_node") == "-1\n"
    assert built.numa_node is None


def test_netdevs(tree):
    tree.add_pf(PF, ["eni10np1"], port_names=["p1"], numvfs=1,
                representors=["eni10npf0vf0"])
    net = os.path.join(tree.device_dir(PF), "net")
    assert sorted(os.listdir(net)) == ["eni10np1", "eni10npf0vf0"]
    assert _read(net, "eni10np1", "phys_port_name") == "p1\n"
    assert _read(net, "eni10npf0vf0", "phys_port_name") == "pf0vf0\n"
    assert _read(net, "eni10np1", "dev_port") == "0\n"
    assert re.fullmatch(r"([0-9a-f]{2}:){5}[0-9a-f]{2}\n",
                        _read(net, "eni10np1", "address"))
    vf_net = os.path.join(tree.device_dir("0000:81:10.0"), "net")
    assert os.listdir(vf_net) == ["eni10np1v0"]
    assert not os.path.exists(
        os.path.join(vf_net, "eni10np1v0", "phys_port_name"))


def test_class_net_links(tree):
    tree.add_pf(PF, numvfs=1)
    class_link = os.path.join(tree.root, "class", "net", "enp129s0f0v0")
    assert os.readlink(class_link).startswith("../../devices/pci0000:00/")
    vf_real = _real(tree, "0000:81:10.0")
    assert os.path.realpath(class_link) == os.path.join(
        vf_real, "net", "enp129s0f0v0")
    assert os.path.realpath(os.path.join(class_link, "device")) == vf_real


def test_real_names_for_the_kernel_tier(tree):
    veths = ["ds0veth0", None, "ds0veth2"]
    built = tree.add_pf(PF, ["eni10np1"], driver="netdevsim", numvfs=3,
                        vf_ifnames=veths)
    assert [vf.ifname for vf in built.vfs] == veths
    named = tree.add_pf("0000:82:00.0", ["eni11np1"], numvfs=2, offset=0x10,
                        vf_ifnames=lambda n: f"vf{n}")
    assert [vf.ifname for vf in named.vfs] == ["vf0", "vf1"]


def test_set_numvfs_replaces_every_vf(tree):
    tree.add_pf(PF, numvfs=4, vf_driver="iavf")
    built = tree.set_numvfs(PF, 0)
    assert built.vfs == ()
    pf_dir = tree.device_dir(PF)
    assert not [n for n in os.listdir(pf_dir) if n.startswith("virtfn")]
    assert _read(pf_dir, "sriov_numvfs") == "0\n"
    assert os.listdir(os.path.join(tree.root, "class", "net")) == [
        "enp129s0f0"]
    assert os.listdir(
        os.path.join(tree.root, "bus", "pci", "drivers", "iavf")) == []
    assert sorted(os.listdir(os.path.dirname(_real(tree, PF)))) == [PF]
    assert tree.set_numvfs(PF, 2).vf(1).pci_address == "0000:81:10.1"


def test_bind_swaps_driver_and_netdevs(tree):
    tree.add_pf(PF, numvfs=1)
    vf = "0000:81:10.0"
    tree.bind(vf, "vfio-pci")
    assert os.path.basename(
        os.readlink(os.path.join(tree.device_dir(vf), "driver"))) == (
        "vfio-pci")
    assert not os.path.exists(os.path.join(tree.device_dir(vf), "net"))
    tree.bind(vf, None)
    assert not os.path.lexists(os.path.join(tree.device_dir(vf), "driver"))


@pytest.mark.parametrize("kwargs, message", [
    ({"numvfs": 65, "totalvfs": 64}, "0 to 64 VFs"),
    ({"numvfs": 1, "vf_driver": "vfio-pci", "vf_ifnames": ["x"]},
     "no netdev"),
    ({"numvfs": 2, "vf_ifnames": ["only_one"]}, "names 1 VFs"),
    ({"ifnames": ["a", "b"], "port_names": ["p0"]}, "one entry per"),
])
def test_impossible_layouts_are_refused(tree, kwargs, message):
    with pytest.raises(ValueError, match=message):
        tree.add_pf(PF, **kwargs)


def test_address_used_twice(tree):
    tree.add_pf(PF, numvfs=1)
    with pytest.raises(ValueError, match="0000:81:10.0 already exists"):
        tree.add_device("0000:81:10.0")


def test_netdev_name_used_twice(tree):
    tree.add_pf(PF)
    with pytest.raises(ValueError, match="enp129s0f0 already exists"):
        tree.add_device("0000:03:00.0", ifnames=["enp129s0f0"])


def test_unsafe_names_are_refused_before_anything_is_built(tree):
    with pytest.raises(exception.InvalidInterfaceName):
        tree.add_pf(PF, ["../../etc"])
    assert not os.path.lexists(tree.device_dir(PF))
    with pytest.raises(exception.InvalidPciAddress):
        tree.add_pf("../0000:81:00.0")
    with pytest.raises(ValueError, match="not a name"):
        tree.add_device("0000:03:00.0", driver="../x")
