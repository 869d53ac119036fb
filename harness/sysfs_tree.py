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

"""Sysfs-shaped trees of SR-IOV devices, for tests and the demo.

Discovery has to be proven on the shape a real host has, and no test
machine has SR-IOV hardware: netdevsim VFs have no PCI functions at all.
So this builder lays out, under any directory, what the kernel shows
under /sys: device directories below devices/pci<domain>:00/, relative
symlinks to them from bus/pci/devices/, driver links into
bus/pci/drivers/, physfn and virtfn<N> links, net/<ifname>/ directories
with phys_port_name, dev_port and address, class/net/<ifname> links, and
the PF's sriov_* and numa_node files. VF addresses follow the PCIe rule
(PF routing ID + offset + index * stride), so discovery's arithmetic is
checked against an independent forward computation.

The kernel test tier, the demo and the benchmarks build trees too (see
netdevsim_host): they name the real netdevsim PF and real veths as the
netdevs, and the plugin then drives those through netlink. Nothing here
needs root.
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Sequence
import dataclasses
import os
import shutil
from typing import Final

from sriov_vif import discovery
from sriov_vif import vf_state

# Drivers that take a VF without giving it a netdev (passthrough, DPDK).
NO_NETDEV_DRIVERS: Final = frozenset(
    {"vfio-pci", "pci-stub", "uio_pci_generic", "igb_uio"})

VFNames = Callable[[int], str | None] | Sequence[str | None] | None


@dataclasses.dataclass(frozen=True)
class BuiltVF:
    pci_address: str
    index: int
    driver: str | None
    ifname: str | None


@dataclasses.dataclass(frozen=True)
class BuiltPF:
    """What add_pf or set_numvfs laid out: the expected discovery result."""

    pci_address: str
    ifnames: tuple[str, ...]
    representors: tuple[str, ...]
    driver: str | None
    numa_node: int | None
    totalvfs: int
    offset: int
    stride: int
    vfs: tuple[BuiltVF, ...]

    @property
    def numvfs(self) -> int:
        return len(self.vfs)

    def vf(self, index: int) -> BuiltVF:
        return self.vfs[index]


@dataclasses.dataclass
class _PFSpec:
    """What set_numvfs needs to recreate a PF's VFs the same way."""

    built: BuiltPF
    vf_driver: str | None
    vf_ifnames: VFNames


def vf_address(pf_address: str, index: int, offset: int, stride: int) -> str:
    """The PCI address the kernel gives VF index of the PF at pf_address.

    A VF's routing ID (bus << 8 | devfn) is the PF's plus offset + index *
    stride; past devfn 0xff it spills onto the next bus numbers.
    """
    discovery.validate_pci_address(pf_address)
    domain, bus, slot_function = pf_address.split(":")
    slot, function = slot_function.split(".")
    rid = ((int(bus, 16) << 8 | int(slot, 16) << 3 | int(function))
           + offset + index * stride)
    if rid > 0xffff:
        raise ValueError(
            f"VF {index} of {pf_address} would be past bus ff "
            f"(offset {offset:#x}, stride {stride})")
    return f"{domain}:{rid >> 8:02x}:{(rid & 0xff) >> 3:02x}.{rid & 7}"


def predictable_name(pci_address: str) -> str:
    """The udev/systemd name of a PCI netdev, e.g. enp129s0f0."""
    _, bus, slot_function = pci_address.split(":")
    slot, function = slot_function.split(".")
    return f"enp{int(bus, 16)}s{int(slot, 16)}f{function}"


class SysfsTree:
    """Builds devices under root the way the kernel lays them out in /sys.

    Refuses layouts the kernel never produces (two devices at one
    address, a netdev name used twice, more VFs than sriov_totalvfs), so
    that a test cannot pass on a tree no host could have.
    """

    def __init__(self, root: discovery.StrPath) -> None:
        self.root = os.fspath(root)
        self._mac_serial = 0
        self._pfs: dict[str, _PFSpec] = {}
        for part in (("bus", "pci", "devices"), ("bus", "pci", "drivers"),
                     ("class", "net"), ("devices",)):
            os.makedirs(os.path.join(self.root, *part), exist_ok=True)

    # Paths.

    def device_dir(self, pci_address: str) -> str:
        """The bus/pci/devices/<address> entry (a symlink, as in /sys)."""
        discovery.validate_pci_address(pci_address)
        return os.path.join(self.root, "bus", "pci", "devices", pci_address)

    def _bridge_dir(self, pci_address: str) -> str:
        """Where a device on pci_address's bus sits below devices/.

        Bus 0 hangs off the host bridge; other buses off a root port,
        as on a real board (0000:81:00.0 under 0000:00:02.0).
        """
        domain, bus, _ = pci_address.split(":")
        host = os.path.join(self.root, "devices", f"pci{domain}:00")
        if bus == "00":
            return host
        port = (int(bus, 16) - 1) % 0x1f + 1
        return os.path.join(host, f"{domain}:00:{port:02x}.0")

    # Building.

    def add_device(self, pci_address: str, driver: str | None = None,
                   ifnames: Sequence[str] = (),
                   numa_node: int | None = 0) -> str:
        """A PCI function without SR-IOV; returns its device directory."""
        real = self._add_function(
            pci_address, self._bridge_dir(pci_address), driver, numa_node)
        for dev_port, ifname in enumerate(ifnames):
            self._add_netdev(real, ifname, port_name=None, dev_port=dev_port)
        return self.device_dir(pci_address)

    def add_pf(self, pci_address: str, ifnames: Sequence[str] | None = None,
               *, driver: str | None = "ice", numvfs: int = 0,
               totalvfs: int = 64, vf_driver: str | None = "iavf",
               vf_ifnames: VFNames = None, numa_node: int | None = 0,
               representors: Sequence[str] = (),
               port_names: Sequence[str | None] | None = None,
               dev_ports: Sequence[int] | None = None,
               offset: int = 0x80, stride: int = 1,
               offset_stride_files: bool = True) -> BuiltPF:
        """An SR-IOV PF with numvfs VFs.

        ifnames are the PF's own netdevs (default: its predictable name;
        empty: none, as when bound to vfio-pci); port_names and dev_ports
        go with them (default: no phys_port_name file, which reads like a
        driver that has none; dev_port 0, 1, ...). representors are extra
        netdevs of the PF with phys_port_name pf<function>vf<N>, as in
        switchdev mode. vf_ifnames gives VF netdev names: a callable of
        the index or a sequence (None: no netdev); by default VFs bound to
        a netdev driver are named <first PF ifname>v<index>.
        offset_stride_files=False leaves out sriov_offset and
        sriov_stride, as older kernels do.
        """
        discovery.validate_pci_address(pci_address)
        own = (tuple(ifnames) if ifnames is not None
               else (predictable_name(pci_address),))
        for ifname in own + tuple(representors):
            vf_state.validate_ifname(ifname)
        names = tuple(port_names) if port_names is not None else (
            (None,) * len(own))
        ports = tuple(dev_ports) if dev_ports is not None else tuple(
            range(len(own)))
        if len(names) != len(own) or len(ports) != len(own):
            raise ValueError("port_names and dev_ports need one entry per "
                             "PF ifname")
        if vf_ifnames is not None and (
                vf_driver is None or vf_driver in NO_NETDEV_DRIVERS):
            raise ValueError(f"VFs bound to {vf_driver or 'no driver'} "
                             "have no netdev: drop vf_ifnames")
        real = self._add_function(
            pci_address, self._bridge_dir(pci_address), driver, numa_node)
        _write(real, "sriov_totalvfs", totalvfs)
        _write(real, "sriov_numvfs", 0)
        if offset_stride_files:
            _write(real, "sriov_offset", offset)
            _write(real, "sriov_stride", stride)
        for ifname, port_name, dev_port in zip(own, names, ports, strict=True):
            self._add_netdev(real, ifname, port_name, dev_port)
        function = pci_address[-1]
        for number, ifname in enumerate(representors):
            self._add_netdev(real, ifname, f"pf{function}vf{number}", 0)
        self._pfs[pci_address] = _PFSpec(
            built=BuiltPF(
                pci_address=pci_address, ifnames=own,
                representors=tuple(representors), driver=driver,
                numa_node=(numa_node if numa_node is not None
                           and numa_node >= 0 else None),
                totalvfs=totalvfs, offset=offset, stride=stride, vfs=()),
            vf_driver=vf_driver, vf_ifnames=vf_ifnames)
        return self.set_numvfs(pci_address, numvfs)

    def set_numvfs(self, pf_address: str, numvfs: int) -> BuiltPF:
        """Replace a PF's VFs with numvfs new ones, as sriov_numvfs does.

        The kernel removes every VF (devices, links, netdevs) before it
        creates the new set; so does this.
        """
        spec = self._pfs[pf_address]
        built = spec.built
        if not 0 <= numvfs <= built.totalvfs:
            raise ValueError(f"{pf_address} takes 0 to {built.totalvfs} VFs, "
                             f"not {numvfs}")
        pf_real = os.path.realpath(self.device_dir(pf_address))
        for vf in built.vfs:
            self._remove_function(vf.pci_address)
            os.unlink(os.path.join(pf_real, f"virtfn{vf.index}"))
        _write(pf_real, "sriov_numvfs", 0)
        vfs = tuple(self._add_vf(spec, pf_real, index)
                    for index in range(numvfs))
        _write(pf_real, "sriov_numvfs", numvfs)
        spec.built = dataclasses.replace(built, vfs=vfs)
        return spec.built

    def bind(self, pci_address: str, driver: str | None,
             ifnames: Sequence[str] = ()) -> None:
        """Rebind a function: its netdevs go, the new driver's come.

        Like unbinding iavf and binding vfio-pci (ifnames empty) or the
        reverse; the PF's built description is not updated.
        """
        real = os.path.realpath(self.device_dir(pci_address))
        self._unbind(real)
        if driver is not None:
            self._bind(real, driver)
        for dev_port, ifname in enumerate(ifnames):
            self._add_netdev(real, ifname, port_name=None, dev_port=dev_port)

    def _add_vf(self, spec: _PFSpec, pf_real: str, index: int) -> BuiltVF:
        built = spec.built
        address = vf_address(built.pci_address, index, built.offset,
                             built.stride)
        # VFs sit beside their PF, even when they spill onto the next bus.
        real = self._add_function(address, os.path.dirname(pf_real),
                                  spec.vf_driver, built.numa_node)
        _relative_symlink(pf_real, os.path.join(real, "physfn"))
        _relative_symlink(real, os.path.join(pf_real, f"virtfn{index}"))
        ifname = self._vf_ifname(spec, address, index)
        if ifname is not None:
            self._add_netdev(real, ifname, port_name=None, dev_port=0)
        return BuiltVF(pci_address=address, index=index,
                       driver=spec.vf_driver, ifname=ifname)

    @staticmethod
    def _vf_ifname(spec: _PFSpec, address: str, index: int) -> str | None:
        if spec.vf_driver is None or spec.vf_driver in NO_NETDEV_DRIVERS:
            return None
        names = spec.vf_ifnames
        if names is None:
            ifnames = spec.built.ifnames
            return (f"{ifnames[0]}v{index}" if ifnames
                    else predictable_name(address))
        if callable(names):
            return names(index)
        if index >= len(names):
            raise ValueError(f"vf_ifnames names {len(names)} VFs; VF "
                             f"{index} of {spec.built.pci_address} has none")
        return names[index]

    def _add_function(self, pci_address: str, parent: str,
                      driver: str | None, numa_node: int | None) -> str:
        link = self.device_dir(pci_address)
        if os.path.lexists(link):
            raise ValueError(f"PCI device {pci_address} already exists")
        real = os.path.join(parent, pci_address)
        os.makedirs(real)
        _write(real, "numa_node", -1 if numa_node is None else numa_node)
        _relative_symlink(real, link)
        if driver is not None:
            self._bind(real, driver)
        return real

    def _remove_function(self, pci_address: str) -> None:
        link = self.device_dir(pci_address)
        real = os.path.realpath(link)
        self._unbind(real)
        os.unlink(link)
        shutil.rmtree(real)

    def _bind(self, real: str, driver: str) -> None:
        if "/" in driver or driver in ("", ".", ".."):
            raise ValueError(f"driver name {driver!r} is not a name")
        driver_dir = os.path.join(self.root, "bus", "pci", "drivers", driver)
        os.makedirs(driver_dir, exist_ok=True)
        _relative_symlink(driver_dir, os.path.join(real, "driver"))
        _relative_symlink(
            real, os.path.join(driver_dir, os.path.basename(real)))

    def _unbind(self, real: str) -> None:
        driver_link = os.path.join(real, "driver")
        if os.path.lexists(driver_link):
            driver_dir = os.path.realpath(driver_link)
            os.unlink(os.path.join(driver_dir, os.path.basename(real)))
            os.unlink(driver_link)
        net_dir = os.path.join(real, "net")
        if os.path.isdir(net_dir):
            for ifname in os.listdir(net_dir):
                os.unlink(os.path.join(self.root, "class", "net", ifname))
            shutil.rmtree(net_dir)

    def _add_netdev(self, real: str, ifname: str, port_name: str | None,
                    dev_port: int) -> None:
        vf_state.validate_ifname(ifname)
        class_link = os.path.join(self.root, "class", "net", ifname)
        if os.path.lexists(class_link):
            raise ValueError(f"netdev {ifname} already exists in this tree")
        netdev_dir = os.path.join(real, "net", ifname)
        os.makedirs(netdev_dir)
        self._mac_serial += 1
        serial = self._mac_serial
        _write(netdev_dir, "address",
               f"02:00:00:{serial >> 16 & 0xff:02x}:"
               f"{serial >> 8 & 0xff:02x}:{serial & 0xff:02x}")
        _write(netdev_dir, "dev_port", dev_port)
        if port_name is not None:
            _write(netdev_dir, "phys_port_name", port_name)
        _relative_symlink(real, os.path.join(netdev_dir, "device"))
        _relative_symlink(netdev_dir, class_link)


def _write(directory: str, name: str, value: object) -> None:
    with open(os.path.join(directory, name), "w", encoding="ascii") as attr:
        attr.write(f"{value}\n")


def _relative_symlink(target: str, link: str) -> None:
    """A symlink written relative, as sysfs writes its own."""
    os.symlink(os.path.relpath(target, os.path.dirname(link)), link)
