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

"""Discovery on sysfs-shaped trees built on the real filesystem."""

from __future__ import annotations

import errno
import os
import pathlib

import pytest

from harness import sysfs_tree
from sriov_vif import discovery
from sriov_vif import exception
from sriov_vif import identifiers

PF = "0000:81:00.0"
VF2 = "0000:81:10.2"


@pytest.fixture
def tree(tmp_path: pathlib.Path) -> sysfs_tree.SysfsTree:
    return sysfs_tree.SysfsTree(tmp_path / "sys")


def _write(path: str, text: str) -> None:
    with open(path, "w") as f:
        f.write(text)


class FsCalls:
    """Records the paths discovery opens, reads links and directories of.

    It wraps the real os functions (the reads still happen on the real
    tree); it only makes the cost of a lookup observable.
    """

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.readlink: list[str] = []
        self.scandir: list[str] = []
        self.listdir: list[str] = []
        self.open: list[str] = []
        for name in ("readlink", "scandir", "listdir", "open"):
            monkeypatch.setattr(os, name, self._recording(name))

    def _recording(self, name):
        real = getattr(os, name)
        calls = getattr(self, name)

        def wrapper(path=".", *args, **kwargs):
            calls.append(os.fspath(path))
            return real(path, *args, **kwargs)
        return wrapper


# The common path.

def test_find_vf_with_netdev(tree):
    built = tree.add_pf(PF, driver="ice", numvfs=8, totalvfs=64,
                        vf_driver="iavf", numa_node=1)
    vf = discovery.find_vf(tree.root, VF2)
    assert vf == discovery.VirtualFunction(
        pci_address=VF2,
        index=2,
        pf=discovery.PhysicalFunction(
            pci_address=PF, ifname="enp129s0f0", driver="ice",
            numvfs=8, totalvfs=64),
        ifname="enp129s0f0v2",
        driver="iavf",
    )
    assert vf.ifname == built.vf(2).ifname


def test_find_vf_accepts_a_path_object(tree, tmp_path):
    tree.add_pf(PF, numvfs=4)
    assert discovery.find_vf(tmp_path / "sys", VF2).index == 2


def test_every_vf_is_found_at_its_index(tree):
    built = tree.add_pf(PF, numvfs=16, offset=0x10, stride=2)
    for vf in built.vfs:
        found = discovery.find_vf(tree.root, vf.pci_address)
        assert (found.index, found.ifname) == (vf.index, vf.ifname)


def test_vf_bound_to_vfio_pci_has_no_netdev(tree):
    tree.add_pf(PF, numvfs=4, vf_driver="vfio-pci")
    vf = discovery.find_vf(tree.root, VF2)
    assert (vf.index, vf.driver, vf.ifname) == (2, "vfio-pci", None)
    assert vf.pf.ifname == "enp129s0f0"


def test_unbound_vf_has_no_driver_and_no_netdev(tree):
    tree.add_pf(PF, numvfs=4, vf_driver=None)
    vf = discovery.find_vf(tree.root, VF2)
    assert (vf.driver, vf.ifname) == (None, None)


def test_vf_rebound_to_vfio_pci_loses_its_netdev(tree):
    tree.add_pf(PF, numvfs=4)
    tree.bind(VF2, "vfio-pci")
    vf = discovery.find_vf(tree.root, VF2)
    assert (vf.driver, vf.ifname) == ("vfio-pci", None)


def test_pf_of_a_vf_on_another_domain_and_function(tree):
    pf = "0001:3b:00.1"
    built = tree.add_pf(pf, ["ens2f1"], driver="i40e", numvfs=4,
                        offset=0x0f, stride=1, vf_driver="iavf")
    assert built.vf(0).pci_address == "0001:3b:02.0"
    vf = discovery.find_vf(tree.root, "0001:3b:02.3")
    assert (vf.index, vf.pf.pci_address, vf.pf.ifname) == (3, pf, "ens2f1")
    assert vf.ifname == "ens2f1v3"


def test_unreadable_pf_attribute_names_vf_and_file(tree):
    tree.add_pf(PF, numvfs=4)
    _write(os.path.join(tree.device_dir(PF), "sriov_numvfs"), "four\n")
    with pytest.raises(exception.PhysicalFunctionError) as err:
        discovery.find_vf(tree.root, VF2)
    assert VF2 in str(err.value)
    assert f"{PF}/sriov_numvfs" in str(err.value)
    assert "'four' is not an integer" in str(err.value)


# Address validation.

@pytest.mark.parametrize("address", [
    "",
    "0000:81:10",
    "0000:81:10.8",
    "0000:81:20.0",
    "81:10.2",
    "00000:81:10.2",
    "0000:81:10.2\n",
    " 0000:81:10.2",
    "0000:81:10x2",
    "0000:81:10.2/..",
    "../../../etc",
    "0000:81:10.2/../../../../../etc",
    None,
    1234,
])
def test_malformed_address_is_refused(tree, address):
    tree.add_pf(PF, numvfs=4)
    with pytest.raises(exception.InvalidPciAddress) as err:
        discovery.find_vf(tree.root, address)
    assert repr(address) in str(err.value)
    with pytest.raises(exception.InvalidPciAddress):
        discovery.vf_netdev(tree.root, address)


def test_upper_case_address_is_refused_with_the_reason(tree):
    tree.add_pf(PF, numvfs=16)
    with pytest.raises(exception.InvalidPciAddress) as err:
        discovery.find_vf(tree.root, "0000:81:1A.2")
    assert "lower case" in str(err.value)
    assert "0000:81:1A.2" in str(err.value)


def test_validate_returns_the_canonical_address():
    assert discovery.validate_pci_address("0000:af:1f.7") == "0000:af:1f.7"


def test_traversal_never_reaches_the_filesystem(tree, tmp_path):
    # A directory the traversal would reach if it were joined into a path:
    # it looks like a PF, so a joined path would give NotAVirtualFunction.
    escape = tmp_path / "escape"
    escape.mkdir()
    (escape / "sriov_totalvfs").write_text("8\n")
    address = "../../../../escape"
    assert os.path.isdir(
        os.path.join(tree.root, "bus", "pci", "devices", address))
    with pytest.raises(exception.InvalidPciAddress):
        discovery.find_vf(tree.root, address)


# Errors on the VF side.

def test_missing_address(tree):
    tree.add_pf(PF, numvfs=4)
    with pytest.raises(exception.PciDeviceNotFound) as err:
        discovery.find_vf(tree.root, "0000:81:11.0")
    assert "0000:81:11.0" in str(err.value)
    assert tree.root in str(err.value)


def test_missing_sysfs_root(tmp_path):
    with pytest.raises(exception.PciDeviceNotFound) as err:
        discovery.find_vf(tmp_path / "nowhere", VF2)
    assert VF2 in str(err.value)


def test_pf_given_where_a_vf_is_expected(tree):
    tree.add_pf(PF, numvfs=4)
    with pytest.raises(exception.NotAVirtualFunction) as err:
        discovery.find_vf(tree.root, PF)
    assert PF in str(err.value)
    assert "SR-IOV PF" in str(err.value)


def test_device_without_sriov_is_not_a_vf(tree):
    tree.add_device("0000:03:00.0", driver="e1000e", ifnames=["eno1"])
    with pytest.raises(exception.NotAVirtualFunction) as err:
        discovery.find_vf(tree.root, "0000:03:00.0")
    assert "0000:03:00.0" in str(err.value)
    assert "no physfn link" in str(err.value)


def test_vf_index_beyond_numvfs(tree):
    tree.add_pf(PF, numvfs=8)
    _write(os.path.join(tree.device_dir(PF), "sriov_numvfs"), "4\n")
    with pytest.raises(exception.VFNotEnabled) as err:
        discovery.find_vf(tree.root, "0000:81:10.6")
    message = str(err.value)
    assert "0000:81:10.6" in message and PF in message
    assert "index 6 is beyond sriov_numvfs 4" in message


def test_vf_the_pf_does_not_list(tree):
    tree.add_pf(PF, numvfs=4)
    os.unlink(os.path.join(tree.device_dir(PF), "virtfn2"))
    with pytest.raises(exception.VFNotEnabled) as err:
        discovery.find_vf(tree.root, VF2)
    assert VF2 in str(err.value)
    assert "no virtfn link" in str(err.value)


def test_physfn_pointing_outside_the_devices(tree):
    tree.add_pf(PF, numvfs=4)
    os.unlink(tree.device_dir(PF))
    with pytest.raises(exception.PhysicalFunctionError) as err:
        discovery.find_vf(tree.root, VF2)
    assert VF2 in str(err.value) and PF in str(err.value)


def test_physfn_pointing_at_something_else(tree):
    tree.add_pf(PF, numvfs=4)
    physfn = os.path.join(tree.device_dir(VF2), "physfn")
    os.unlink(physfn)
    os.symlink("../../../../../etc", physfn)
    with pytest.raises(exception.PhysicalFunctionError) as err:
        discovery.find_vf(tree.root, VF2)
    assert VF2 in str(err.value)
    assert "'etc'" in str(err.value)


# The PF's netdev.

def test_pf_without_netdev_bound_to_vfio_pci(tree):
    tree.add_pf(PF, [], driver="vfio-pci", numvfs=4, vf_driver="vfio-pci")
    with pytest.raises(exception.PhysicalFunctionError) as err:
        discovery.find_vf(tree.root, VF2)
    message = str(err.value)
    assert VF2 in message and PF in message
    assert "no netdev (driver vfio-pci)" in message


def test_pf_without_driver(tree):
    tree.add_pf(PF, [], driver=None, numvfs=4, vf_driver="vfio-pci")
    with pytest.raises(exception.PhysicalFunctionError) as err:
        discovery.find_vf(tree.root, VF2)
    assert VF2 in str(err.value)
    assert "no driver bound" in str(err.value)


def test_pf_with_only_representors(tree):
    tree.add_pf(PF, [], driver="mlx5_core", numvfs=4,
                representors=["eth0", "eth1"], vf_driver="mlx5_core")
    with pytest.raises(exception.PhysicalFunctionError) as err:
        discovery.find_vf(tree.root, VF2)
    message = str(err.value)
    assert VF2 in message
    assert "only switchdev representors (eth0, eth1)" in message


def test_switchdev_uplink_is_chosen_over_representors(tree):
    # The representors sort before the uplink by name and have the same
    # dev_port: only their phys_port_name tells them apart.
    tree.add_pf(PF, ["zz_uplink"], port_names=["p0"], driver="mlx5_core",
                numvfs=4, representors=["aa_rep0", "aa_rep1", "aa_rep2"],
                vf_driver="mlx5_core")
    assert discovery.find_vf(tree.root, VF2).pf.ifname == "zz_uplink"


@pytest.mark.parametrize("port_name", ["pf0vf3", "pf1sf2", "c1pf0vf3",
                                       "pf0", "pf12vf255"])
def test_representor_port_names(tree, port_name):
    tree.add_pf(PF, ["a_rep", "b_port"], port_names=[port_name, None],
                numvfs=1)
    assert discovery.find_vf(tree.root, "0000:81:10.0").pf.ifname == (
        "b_port")


@pytest.mark.parametrize("port_name", ["p0", "p1", "p0s1", "", None])
def test_port_names_of_a_pf_port(tree, port_name):
    tree.add_pf(PF, ["a_port", "b_port"], port_names=[port_name, None],
                dev_ports=[0, 1], numvfs=1)
    assert discovery.find_vf(tree.root, "0000:81:10.0").pf.ifname == (
        "a_port")


def test_lowest_dev_port_wins_over_name_order(tree):
    tree.add_pf(PF, ["ens1a", "ens1b"], port_names=["p1", "p0"],
                dev_ports=[1, 0], numvfs=1)
    assert discovery.find_vf(tree.root, "0000:81:10.0").pf.ifname == "ens1b"


def test_dev_port_tie_goes_to_the_first_name(tree):
    tree.add_pf(PF, ["ens1b", "ens1a"], dev_ports=[0, 0], numvfs=1)
    assert discovery.find_vf(tree.root, "0000:81:10.0").pf.ifname == "ens1a"


def test_port_name_unsupported_by_the_real_kernel():
    """A real netdev whose driver has no phys_port_name (EOPNOTSUPP)."""
    for ifname in sorted(os.listdir("/sys/class/net")):
        netdev = os.path.join("/sys/class/net", ifname)
        try:
            with open(os.path.join(netdev, "phys_port_name")) as f:
                f.read()
        except OSError as exc:
            if exc.errno == errno.EOPNOTSUPP and os.path.isdir(
                    os.path.join(netdev, "device", "net")):
                break
    else:
        pytest.skip("no netdev without phys_port_name on this host")
    device = os.path.realpath(os.path.join(netdev, "device"))
    own, representors = discovery._own_netdevs(device)
    assert own in os.listdir(os.path.join(device, "net"))
    assert representors == []


# Cost: a fixed handful of reads however many VFs the PF has.

def _lookup_cost(monkeypatch, root, address):
    with monkeypatch.context() as patch:
        calls = FsCalls(patch)
        vf = discovery.find_vf(root, address)
    return vf, calls


@pytest.mark.parametrize("index, address", [
    (0, "0000:81:10.0"), (127, "0000:81:1f.7"), (128, "0000:82:00.0"),
    (200, "0000:82:09.0"), (255, "0000:82:0f.7")])
def test_256_vfs_are_found_with_constant_reads(tree, monkeypatch, index,
                                               address):
    tree.add_pf(PF, numvfs=256, totalvfs=256, vf_driver="vfio-pci")
    vf, calls = _lookup_cost(monkeypatch, tree.root, address)
    assert vf.index == index
    pf_dir = tree.device_dir(PF)
    # physfn, the one virtfn link, and each side's driver link.
    assert sorted(calls.readlink) == sorted([
        os.path.join(tree.device_dir(address), "physfn"),
        os.path.join(pf_dir, f"virtfn{index}"),
        os.path.join(tree.device_dir(address), "driver"),
        os.path.join(pf_dir, "driver"),
    ])
    # Only the net/ directories are listed, never the PF's 256 links.
    assert pf_dir not in calls.scandir
    assert all(path.endswith("/net") for path in calls.scandir)
    assert calls.listdir == []


def test_cost_does_not_grow_with_the_vf_count(tmp_path, monkeypatch):
    small = sysfs_tree.SysfsTree(tmp_path / "small")
    small.add_pf(PF, numvfs=4, totalvfs=256)
    large = sysfs_tree.SysfsTree(tmp_path / "large")
    large.add_pf(PF, numvfs=256, totalvfs=256)
    _, few = _lookup_cost(monkeypatch, small.root, "0000:81:10.3")
    _, many = _lookup_cost(monkeypatch, large.root, "0000:81:10.3")
    assert len(many.readlink) == len(few.readlink)
    assert len(many.scandir) == len(few.scandir)


def test_kernel_without_offset_and_stride_files(tree, monkeypatch):
    tree.add_pf(PF, numvfs=256, totalvfs=256, offset=0x40, stride=2,
                offset_stride_files=False)
    assert not os.path.exists(
        os.path.join(tree.device_dir(PF), "sriov_offset"))
    vf, calls = _lookup_cost(monkeypatch, tree.root, "0000:83:03.0")
    assert vf.index == 236
    pf_dir = tree.device_dir(PF)
    links = {os.path.basename(path) for path in calls.readlink
             if path.startswith(pf_dir + "/")}
    assert links == {"virtfn0", "virtfn1", "virtfn236", "driver"}
    assert pf_dir not in calls.scandir


def test_kernel_without_offset_files_and_a_single_vf(tree):
    tree.add_pf(PF, numvfs=1, offset=0x08, offset_stride_files=False)
    assert discovery.find_vf(tree.root, "0000:81:01.0").index == 0


def test_links_that_break_the_pcie_rule_are_still_resolved(tree):
    built = tree.add_pf(PF, numvfs=8)
    pf_dir = tree.device_dir(PF)
    for index, other in ((2, 5), (5, 2)):
        link = os.path.join(pf_dir, f"virtfn{index}")
        os.unlink(link)
        os.symlink("../" + built.vf(other).pci_address, link)
    assert discovery.find_vf(tree.root, VF2).index == 5
    assert discovery.find_vf(tree.root, "0000:81:10.5").index == 2


# Nothing goes stale.

def test_numvfs_change_is_seen_by_the_next_call(tree):
    tree.add_pf(PF, numvfs=8)
    assert discovery.find_vf(tree.root, VF2).pf.numvfs == 8
    tree.set_numvfs(PF, 2)
    with pytest.raises(exception.PciDeviceNotFound):
        discovery.find_vf(tree.root, VF2)
    assert discovery.find_vf(tree.root, "0000:81:10.1").pf.numvfs == 2
    tree.set_numvfs(PF, 4)
    vf = discovery.find_vf(tree.root, VF2)
    assert (vf.index, vf.pf.numvfs) == (2, 4)


def test_vf_netdev_follows_rebinding(tree):
    tree.add_pf(PF, numvfs=4)
    assert discovery.vf_netdev(tree.root, VF2) == "enp129s0f0v2"
    tree.bind(VF2, "vfio-pci")
    assert discovery.vf_netdev(tree.root, VF2) is None
    tree.bind(VF2, "iavf", ["renamed0"])
    assert discovery.vf_netdev(tree.root, VF2) == "renamed0"


def test_vf_netdev_of_a_missing_device(tree):
    with pytest.raises(exception.PciDeviceNotFound) as err:
        discovery.vf_netdev(tree.root, VF2)
    assert VF2 in str(err.value)


# Inventory.

def test_list_pfs(tree):
    tree.add_pf("0000:81:00.1", ["enp129s0f1"], numvfs=2, offset=0x8f,
                numa_node=None)
    tree.add_pf(PF, numvfs=4, driver="ice")
    tree.add_pf("0000:05:00.0", [], driver="vfio-pci", numvfs=0)
    tree.add_device("0000:03:00.0", driver="e1000e", ifnames=["eno1"])
    # A VMD domain: a real sysfs name that is no os-vif PCI address.
    os.makedirs(os.path.join(tree.root, "bus", "pci", "devices",
                             "10000:00:00.0"))
    pfs = discovery.list_pfs(tree.root)
    assert pfs == [
        discovery.PhysicalFunction("0000:05:00.0", None, "vfio-pci", 0,
                                   64),
        discovery.PhysicalFunction(PF, "enp129s0f0", "ice", 4, 64),
        discovery.PhysicalFunction("0000:81:00.1", "enp129s0f1", "ice", 2,
                                   64),
    ]


def test_list_pfs_without_pci_devices(tmp_path):
    with pytest.raises(exception.SysfsReadError) as err:
        discovery.list_pfs(tmp_path)
    assert str(tmp_path) in str(err.value)


def test_list_pfs_on_the_real_sysfs():
    pfs = discovery.list_pfs("/sys")
    for pf in pfs:
        assert os.path.isfile(os.path.join(
            "/sys/bus/pci/devices", pf.pci_address, "sriov_totalvfs"))


def test_real_sysfs_device_that_is_no_vf():
    devices = "/sys/bus/pci/devices"
    plain = [name for name in sorted(os.listdir(devices))
             if not os.path.lexists(os.path.join(devices, name, "physfn"))
             and identifiers.is_pci_address(name)]
    if not plain:
        pytest.skip("no PCI device without physfn on this host")
    with pytest.raises(exception.NotAVirtualFunction) as err:
        discovery.find_vf("/sys", plain[0])
    assert plain[0] in str(err.value)


def test_list_vfs(tree):
    built = tree.add_pf(PF, numvfs=256, totalvfs=256)
    tree.bind("0000:81:10.3", "vfio-pci")
    pf = discovery.list_pfs(tree.root)[0]
    vfs = discovery.list_vfs(tree.root, pf)
    assert [vf.index for vf in vfs] == list(range(256))
    assert [vf.pci_address for vf in vfs] == [
        vf.pci_address for vf in built.vfs]
    assert vfs[3] == discovery.VirtualFunction(
        "0000:81:10.3", 3, pf, None, "vfio-pci")
    assert vfs[255] == discovery.VirtualFunction(
        "0000:82:0f.7", 255, pf, "enp129s0f0v255", "iavf")


def test_list_vfs_agrees_with_find_vf(tree):
    tree.add_pf(PF, numvfs=8, offset=0x10, stride=4)
    pf = discovery.list_pfs(tree.root)[0]
    for vf in discovery.list_vfs(tree.root, pf):
        assert discovery.find_vf(tree.root, vf.pci_address) == vf


def test_list_vfs_refuses_a_bad_pf_address(tree):
    pf = discovery.PhysicalFunction("../..", "x", None, 0, 0)
    with pytest.raises(exception.InvalidPciAddress):
        discovery.list_vfs(tree.root, pf)


def test_list_vfs_names_a_bad_virtfn_link(tree):
    tree.add_pf(PF, numvfs=2)
    link = os.path.join(tree.device_dir(PF), "virtfn1")
    os.unlink(link)
    os.symlink("../garbage", link)
    pf = discovery.list_pfs(tree.root)[0]
    with pytest.raises(exception.SysfsReadError) as err:
        discovery.list_vfs(tree.root, pf)
    assert f"{PF}/virtfn1" in str(err.value)


def test_find_vfs_reads_the_pfs_vf_layout_once_for_all_its_vfs(
        tree, monkeypatch):
    # A restore of 256 VFs resolves them with one find_vfs in
    # nova-compute: the PF's offset and stride are the same for every VF.
    built = tree.add_pf(PF, driver="ice", numvfs=8, totalvfs=8,
                        vf_driver="iavf")
    calls = FsCalls(monkeypatch)
    _pf, found = discovery.find_vfs(
        tree.root, PF, [vf.pci_address for vf in built.vfs])

    assert {address: vf.index for address, vf in found.items()} == {
        vf.pci_address: vf.index for vf in built.vfs}
    opened = [os.path.basename(path) for path in calls.open]
    assert opened.count("sriov_offset") == 1
    assert opened.count("sriov_stride") == 1


# confirm_vfs: the privileged daemon's check of the caller's VF indexes.

def test_confirm_vfs_gives_the_pf_netdev_after_one_link_per_vf(
        tree, monkeypatch):
    built = tree.add_pf(PF, ["enp129s0f0"], driver="ice", numvfs=8,
                        vf_driver="iavf")
    calls = FsCalls(monkeypatch)
    assert discovery.confirm_vfs(tree.root, PF, {
        built.vf(2).pci_address: 2, built.vf(7).pci_address: 7}) == (
        "enp129s0f0")
    # the PF's virtfn links and its netdev: no driver, counts or layout
    assert [os.path.basename(p) for p in calls.readlink] == [
        "virtfn2", "virtfn7"]
    assert calls.scandir == [f"{tree.device_dir(PF)}/net"]
    assert [os.path.basename(path) for path in calls.open] == [
        "phys_port_name"]


@pytest.mark.parametrize("address, index", [
    (VF2, 3),            # another VF's index
    (VF2, -1),
    (VF2, True),
    (VF2, "2"),
    (VF2, 9),            # past the PF's VFs
])
def test_confirm_vfs_refuses_a_vf_not_at_the_index_given(tree, address,
                                                         index):
    tree.add_pf(PF, numvfs=8)
    with pytest.raises(exception.VFNotEnabled) as err:
        discovery.confirm_vfs(tree.root, PF, {address: index})
    assert f"it is VF 2 of PF {PF}, not VF {index}" in str(err.value)


def test_confirm_vfs_says_why_an_address_is_no_vf(tree):
    tree.add_pf(PF, numvfs=2)
    with pytest.raises(exception.PciDeviceNotFound):
        discovery.confirm_vfs(tree.root, PF, {"0000:81:10.7": 7})
    with pytest.raises(exception.NotAVirtualFunction):
        discovery.confirm_vfs(tree.root, PF, {PF: 0})
    with pytest.raises(exception.InvalidPciAddress):
        discovery.confirm_vfs(tree.root, PF, {"../..": 0})


def test_confirm_vfs_refuses_a_pf_with_only_representors(tree):
    built = tree.add_pf(PF, [], driver="mlx5_core", numvfs=2,
                        representors=["eth0", "eth1"],
                        vf_driver="mlx5_core")
    with pytest.raises(exception.PFUnusable) as err:
        discovery.confirm_vfs(tree.root, PF, {built.vf(0).pci_address: 0})
    assert "only switchdev representors" in str(err.value)


def test_one_pf_netdev_needs_no_dev_port(tree):
    # dev_port only orders several ports; a PF with one is not read.
    tree.add_pf(PF, ["enp129s0f0"], numvfs=1)
    os.unlink(f"{tree.device_dir(PF)}/net/enp129s0f0/dev_port")
    _write(f"{tree.device_dir(PF)}/net/enp129s0f0/phys_port_name", "p0\n")
    assert discovery.find_vf(tree.root, "0000:81:10.0").pf.ifname == (
        "enp129s0f0")
