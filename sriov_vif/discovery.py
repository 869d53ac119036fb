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

"""From a VF's PCI address to the PF, index and netdevs plug needs.

Plug starts from vif.dev_address and must learn, before anything
privileged runs, which PF netdev carries the VF, the VF's index on it and
whether the VF has a host netdev of its own (not when bound to vfio-pci).
All of it is read from sysfs under a root the caller passes in
([os_vif_sriov] sysfs_root), so that tests and the demo can use a prepared
tree (see harness.sysfs_tree).

Rules a reader of the code should know:

* A PCI address must be in the form sysfs and os-vif write it,
  ``dddd:bb:ss.f`` in lower-case hex. Upper case is refused, not folded:
  the address also names the VF's lock and journal files, so one VF must
  have exactly one spelling. It is validated before it is joined into any
  path, so nothing like ``../..`` can lead out of the tree.
* The VF index is computed, not searched for. The kernel places a VF at
  the PF's routing ID (bus << 8 | devfn) plus ``sriov_offset + index *
  sriov_stride``, the PCIe SR-IOV rule; both numbers are read from the
  PF's sysfs files or, on kernels that lack those files, derived from the
  ``virtfn0`` and ``virtfn1`` links. The candidate is confirmed by reading
  the one link ``virtfn<index>``. Only when that fails (a tree that breaks
  the rule) are the ``virtfn*`` links read one by one, stopping at the
  match. So a lookup costs the same few reads with 4 VFs or 256, where
  nova and neutron's agent resolve every link.
* A PF can carry several netdevs under ``net/``. Switchdev representors
  (phys_port_name ``pf0vf3``, ``pf0sf1``, ``c1pf0vf3``, or ``pf0`` for a
  host PF seen from a SmartNIC) are never the PF's own netdev and are
  skipped. Of the rest, the one with the lowest ``dev_port`` wins and a
  tie goes to the alphabetically first name. A netdev whose phys_port_name
  is empty or unreadable (drivers without one answer EOPNOTSUPP) is a
  port, not a representor. nova picks one arbitrarily; a fixed rule gives
  plug and restore the same PF netdev every time.
* Nothing is cached: sriov_numvfs can change between two plugs, which
  moves or removes VFs, so every call reads what it needs afresh.
"""

from __future__ import annotations

import dataclasses
import errno
import os
import re
from typing import Final

from sriov_vif import exception
from sriov_vif import identifiers

# os-vif's PCIAddress pattern accepts any character for the dot and a
# trailing newline; ours is matched in full.
_PCI_ADDRESS_RE: Final = identifiers.PCI_ADDRESS_RE
_VIRTFN_RE: Final = re.compile(r"virtfn([0-9]+)")
_REPRESENTOR_RE: Final = re.compile(r"(c[0-9]+)?pf[0-9]+((vf|sf)[0-9]+)?")
# Drivers that implement no phys_port_name answer EOPNOTSUPP on read.
_NO_PORT_NAME: Final = (errno.ENOENT, errno.EOPNOTSUPP)
# sysfs shows an attribute in at most one page; one read gets it whole.
_SYSFS_PAGE: Final = 4096

StrPath = str | os.PathLike[str]


@dataclasses.dataclass(frozen=True)
class PhysicalFunction:
    """An SR-IOV PF as sysfs shows it now.

    ifname is None when the PF has no netdev of its own (bound to vfio-pci,
    unbound, or only switchdev representors); find_vf refuses such a PF.
    """

    pci_address: str
    ifname: str | None
    driver: str | None
    numvfs: int
    totalvfs: int


@dataclasses.dataclass(frozen=True)
class VirtualFunction:
    """A VF: its index on its PF, and its own netdev if it has one."""

    pci_address: str
    index: int
    pf: PhysicalFunction
    ifname: str | None
    driver: str | None

    def own_netdev(self) -> str:
        """The VF's host netdev, which a direct VIF's macvtap sits on.

        :raises VFNetdevNotFound: the VF has none, being bound to vfio-pci
            (or to no driver); nova-compute reports this case as a missing
            PCI device, so the one check serves plug and the device XML.
        """
        if self.ifname is None:
            raise exception.VFNetdevNotFound(
                address=self.pci_address, driver=self.driver or "none")
        return self.ifname


def validate_pci_address(address: object) -> str:
    """Return address if it is a canonical PCI address, else raise."""
    if not isinstance(address, str):
        raise exception.InvalidPciAddress(
            address=address, reason="must be a string")
    if _PCI_ADDRESS_RE.fullmatch(address):
        return address
    if _PCI_ADDRESS_RE.fullmatch(address.lower()):
        reason = "must be lower case, as sysfs and os-vif write it"
    else:
        reason = ("must be domain:bus:slot.function in hex, "
                  "like 0000:81:10.2")
    raise exception.InvalidPciAddress(address=address, reason=reason)


def find_vf(sysfs_root: StrPath, pci_address: str) -> VirtualFunction:
    """Everything plug needs to know about the VF at pci_address."""
    address = validate_pci_address(pci_address)
    root = os.fspath(sysfs_root)
    # Directories are checked only to explain a failed read: every path
    # walked costs each plug and unplug.
    vf_dir = _device_dir(root, address)
    pf_address = _physfn_address(root, vf_dir, address)
    pf_dir = _device_dir(root, pf_address)
    try:
        pf, representors = _read_pf(pf_dir, pf_address)
    except exception.SysfsReadError as exc:
        reason = (str(exc) if os.path.isdir(pf_dir) else
                  f"its physfn {pf_address} is not in {_devices_dir(root)}")
        raise exception.PhysicalFunctionError(
            address=address, reason=reason) from exc
    index = _vf_index(pf_dir, pf_address, address, pf.numvfs)
    if index is None:
        raise exception.VFNotEnabled(
            address=address, pf_address=pf_address,
            reason=("the PF has no virtfn link to it "
                    f"(sriov_numvfs is {pf.numvfs})"))
    if index >= pf.numvfs:
        raise exception.VFNotEnabled(
            address=address, pf_address=pf_address,
            reason=(f"its index {index} is beyond sriov_numvfs "
                    f"{pf.numvfs}"))
    if pf.ifname is None:
        raise exception.PhysicalFunctionError(
            address=address, reason=_no_netdev_reason(pf, representors))
    return _virtual_function(vf_dir, address, index, pf)


def find_pf(sysfs_root: StrPath, pci_address: str) -> PhysicalFunction:
    """The SR-IOV PF at pci_address, which must have a netdev of its own."""
    address = validate_pci_address(pci_address)
    root = os.fspath(sysfs_root)
    pf_dir = _device_dir(root, address)
    if _read_int(f"{pf_dir}/sriov_totalvfs") is None:
        _existing_device_dir(root, address)
        raise exception.PFUnusable(address=address,
                                   reason="it is not an SR-IOV PF")
    pf, representors = _read_pf(pf_dir, address)
    if pf.ifname is None:
        raise exception.PFUnusable(
            address=address, reason=_no_netdev_reason(pf, representors))
    return pf


def find_vfs(sysfs_root: StrPath, pf_address: str,
             addresses: list[str]
             ) -> tuple[PhysicalFunction, dict[str, VirtualFunction]]:
    """The PF at pf_address and those of addresses that are its VFs now.

    The PF is read once, and each VF is confirmed by the PF's own
    virtfn link to it: restoring 256 VFs of a PF does not read the PF
    256 times. An address that is not an enabled VF of this PF is left
    out of the answer; find_vf says why.
    """
    pf = find_pf(sysfs_root, pf_address)
    pf_dir = _device_dir(os.fspath(sysfs_root), pf.pci_address)
    layout = _layout(pf_dir, pf.pci_address, pf.numvfs)
    found = {}
    for address in addresses:
        address = validate_pci_address(address)
        index = _vf_index(pf_dir, pf.pci_address, address, pf.numvfs,
                          layout)
        if index is None or index >= pf.numvfs:
            continue
        found[address] = _virtual_function(
            _sibling_dir(pf_dir, address), address, index, pf)
    return pf, found


def confirm_vfs(sysfs_root: StrPath, pf_address: str,
                indexes: dict[str, int]) -> str:
    """The PF's own netdev, once every address is its VF at indexes[address].

    For a reader that is told each VF's index by someone it does not
    trust (the privileged daemon): the PF's own ``virtfn<index>`` link,
    which the kernel keeps for enabled VFs only, must name the VF. That
    one read per VF and the PF's netdev are all it costs; the PF's
    driver, VF counts and layout are read only to explain a refusal.
    """
    address = validate_pci_address(pf_address)
    root = os.fspath(sysfs_root)
    pf_dir = _device_dir(root, address)
    for vf_address, index in indexes.items():
        vf_address = validate_pci_address(vf_address)
        if (isinstance(index, bool) or not isinstance(index, int)
                or index < 0 or _link_name(
                    f"{pf_dir}/virtfn{index}") != vf_address):
            # find_vf names the reason: no device, not a VF, not enabled
            vf = find_vf(root, vf_address)
            raise exception.VFNotEnabled(
                address=vf_address, pf_address=address,
                reason=f"it is VF {vf.index} of PF {vf.pf.pci_address}, "
                       f"not VF {index} of PF {address}")
    ifname = _own_netdevs(pf_dir)[0]
    if ifname is None:
        find_pf(root, address)  # raises, saying why
        raise exception.PFUnusable(address=address,
                                   reason="its netdev vanished")
    return ifname


def vf_netdev(sysfs_root: StrPath, pci_address: str) -> str | None:
    """The VF's netdev now, or None: names change when a VF is rebound."""
    address = validate_pci_address(pci_address)
    vf_dir = _existing_device_dir(os.fspath(sysfs_root), address)
    return _own_netdevs(vf_dir)[0]


def list_pfs(sysfs_root: StrPath) -> list[PhysicalFunction]:
    """Every SR-IOV capable PF of the host, by PCI address.

    Devices whose names are not canonical PCI addresses (a VMD domain
    wider than four digits) are left out: os-vif cannot name them either.
    """
    devices = _devices_dir(os.fspath(sysfs_root))
    try:
        names = sorted(os.listdir(devices))
    except OSError as exc:
        raise exception.SysfsReadError(
            path=devices, reason=_strerror(exc)) from exc
    pfs = []
    for name in names:
        if not _PCI_ADDRESS_RE.fullmatch(name):
            continue
        device_dir = f"{devices}/{name}"
        if os.path.isfile(f"{device_dir}/sriov_totalvfs"):
            pfs.append(_read_pf(device_dir, name)[0])
    return pfs


def list_vfs(sysfs_root: StrPath,
             pf: PhysicalFunction) -> list[VirtualFunction]:
    """The VFs pf has now, by index; pf is one list_pfs returned."""
    pf_address = validate_pci_address(pf.pci_address)
    pf_dir = _existing_device_dir(os.fspath(sysfs_root), pf_address)
    vfs = []
    for index, link in _virtfn_links(pf_dir):
        address = _link_name(link)
        if address is None:
            continue  # VFs are being removed while we read
        if not _PCI_ADDRESS_RE.fullmatch(address):
            raise exception.SysfsReadError(
                path=link, reason=f"points to {address!r}, not a PCI device")
        vfs.append(_virtual_function(
            _sibling_dir(pf_dir, address), address, index, pf))
    return sorted(vfs, key=lambda vf: vf.index)


def _virtual_function(vf_dir: str, address: str, index: int,
                      pf: PhysicalFunction) -> VirtualFunction:
    """The VF at vf_dir, index on pf, with its netdev and driver now."""
    return VirtualFunction(
        pci_address=address,
        index=index,
        pf=pf,
        ifname=_own_netdevs(vf_dir)[0],
        driver=_link_name(f"{vf_dir}/driver"),
    )


def _sibling_dir(device_dir: str, address: str) -> str:
    """The directory of the device at address, beside device_dir."""
    return f"{os.path.dirname(device_dir)}/{address}"


def _devices_dir(root: str) -> str:
    return os.path.join(root, "bus", "pci", "devices")


def _device_dir(root: str, address: str) -> str:
    """Path of a device; address must have passed validation."""
    return f"{_devices_dir(root)}/{address}"


def _existing_device_dir(root: str, address: str) -> str:
    path = _device_dir(root, address)
    if not os.path.isdir(path):
        raise exception.PciDeviceNotFound(address=address, sysfs_root=root)
    return path


def _physfn_address(root: str, vf_dir: str, address: str) -> str:
    physfn = f"{vf_dir}/physfn"
    pf_address = _link_name(physfn)
    if pf_address is None:
        _existing_device_dir(root, address)
        if os.path.isfile(f"{vf_dir}/sriov_totalvfs"):
            reason = ("it is an SR-IOV PF; give the address of one of its "
                      "VFs (virtfn* links)")
        else:
            reason = "it has no physfn link"
        raise exception.NotAVirtualFunction(address=address, reason=reason)
    if not _PCI_ADDRESS_RE.fullmatch(pf_address):
        raise exception.PhysicalFunctionError(
            address=address,
            reason=f"its physfn link points to {pf_address!r}, "
                   "not a PCI device")
    return pf_address


def _read_pf(pf_dir: str,
             pf_address: str) -> tuple[PhysicalFunction, list[str]]:
    """The PF, and the names of the representors skipped among its netdevs.

    The representors only serve to explain why a PF has no netdev.
    """
    ifname, representors = _own_netdevs(pf_dir)
    pf = PhysicalFunction(
        pci_address=pf_address,
        ifname=ifname,
        driver=_link_name(f"{pf_dir}/driver"),
        numvfs=_read_required_int(pf_dir, "sriov_numvfs"),
        totalvfs=_read_required_int(pf_dir, "sriov_totalvfs"),
    )
    return pf, representors


def _no_netdev_reason(pf: PhysicalFunction, representors: list[str]) -> str:
    if representors:
        return (f"PF {pf.pci_address} has only switchdev representors ("
                + ", ".join(representors) + ") and no netdev of its own")
    driver = ("no driver bound" if pf.driver is None
              else f"driver {pf.driver}")
    return f"PF {pf.pci_address} has no netdev ({driver})"


def _vf_index(pf_dir: str, pf_address: str, address: str, numvfs: int,
              layout: tuple[int, int] | None = None) -> int | None:
    """The index of the PF's virtfn link to address, or None.

    layout is the PF's (offset, stride) when the caller read it already
    (see _layout): find_vfs reads it once per PF, not once per VF.
    """
    if layout is None:
        layout = _layout(pf_dir, pf_address, numvfs)
    candidate = _index_from_routing_id(pf_address, address, layout)
    if candidate is not None and _link_name(
            f"{pf_dir}/virtfn{candidate}") == address:
        return candidate
    for index, link in _virtfn_links(pf_dir):
        if _link_name(link) == address:
            return index
    return None


def _layout(pf_dir: str, pf_address: str, numvfs: int) -> tuple[int, int]:
    """The PF's VF offset and stride: sysfs's, else its first two VFs'."""
    offset = _read_int(f"{pf_dir}/sriov_offset")
    stride = _read_int(f"{pf_dir}/sriov_stride")
    if offset is None or stride is None:
        return _derive_offset_stride(pf_dir, _routing_id(pf_address)[1],
                                     numvfs)
    return offset, stride


def _index_from_routing_id(pf_address: str, address: str,
                           layout: tuple[int, int]) -> int | None:
    """The index the PCIe rule gives address, or None if it gives none."""
    pf_domain, pf_rid = _routing_id(pf_address)
    domain, rid = _routing_id(address)
    if domain != pf_domain:
        return None
    offset, stride = layout
    distance = rid - pf_rid - offset
    if distance == 0:
        return 0
    if stride <= 0 or distance < 0 or distance % stride:
        return None
    return distance // stride


def _derive_offset_stride(pf_dir: str, pf_rid: int,
                          numvfs: int) -> tuple[int, int]:
    """Offset and stride as the first two VFs show them; 0, 0 if unknown.

    With a single VF any stride places it, so 1 is as good as any.
    """
    first = _link_name(f"{pf_dir}/virtfn0")
    if first is None or not _PCI_ADDRESS_RE.fullmatch(first):
        return 0, 0
    first_rid = _routing_id(first)[1]
    if numvfs < 2:
        return first_rid - pf_rid, 1
    second = _link_name(f"{pf_dir}/virtfn1")
    if second is None or not _PCI_ADDRESS_RE.fullmatch(second):
        return 0, 0
    return first_rid - pf_rid, _routing_id(second)[1] - first_rid


def _routing_id(address: str) -> tuple[int, int]:
    """(domain, bus << 8 | slot << 3 | function) of a valid address."""
    match = _PCI_ADDRESS_RE.fullmatch(address)
    assert match is not None
    domain, bus, slot, function = (int(part, 16) for part in match.groups())
    return domain, bus << 8 | slot << 3 | function


def _virtfn_links(pf_dir: str) -> list[tuple[int, str]]:
    """(index, path) of each virtfn link, in directory order."""
    try:
        with os.scandir(pf_dir) as entries:
            return [
                (int(match.group(1)), entry.path)
                for entry in entries
                if (match := _VIRTFN_RE.fullmatch(entry.name))
            ]
    except OSError as exc:
        raise exception.SysfsReadError(
            path=pf_dir, reason=_strerror(exc)) from exc


def _own_netdevs(device_dir: str) -> tuple[str | None, list[str]]:
    """The device's own netdev by the rule above, and its representors."""
    net_dir = f"{device_dir}/net"
    try:
        with os.scandir(net_dir) as entries:
            names = [entry.name for entry in entries]
    except FileNotFoundError:
        return None, []
    except OSError as exc:
        raise exception.SysfsReadError(
            path=net_dir, reason=_strerror(exc)) from exc
    ports = []
    representors = []
    for name in sorted(names):
        port_name = _read_text(f"{net_dir}/{name}/phys_port_name",
                               absent=_NO_PORT_NAME)
        if port_name and _REPRESENTOR_RE.fullmatch(port_name):
            representors.append(name)
        else:
            ports.append(name)
    if len(ports) < 2:
        # dev_port only orders several ports: one needs no reading
        return (ports[0] if ports else None), representors
    return min(ports, key=lambda name: (
        _read_int(f"{net_dir}/{name}/dev_port") or 0, name)), representors


def _link_name(path: str) -> str | None:
    """Last component of the symlink at path; None if there is none."""
    try:
        target = os.readlink(path)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise exception.SysfsReadError(
            path=path, reason=_strerror(exc)) from exc
    return os.path.basename(target.rstrip("/"))


def _read_text(path: str,
               absent: tuple[int, ...] = (errno.ENOENT,)) -> str | None:
    """A sysfs attribute's text, or None when its errno is in absent.

    Read with os.open and one os.read rather than open(): a sysfs
    attribute is at most a page, and the io layers (a buffer, a text
    wrapper, a codec) cost more than the read itself, and find_vf reads
    five or more of them on every plug and unplug.
    sysfs attributes are ASCII; utf-8 is the codec every Python has
    loaded already, where "ascii" is imported on first use: which a
    privileged daemon running as nova's user may not be able to do.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        try:
            data = os.read(fd, _SYSFS_PAGE)
        finally:
            os.close(fd)
    except OSError as exc:
        if exc.errno in absent:
            return None
        raise exception.SysfsReadError(
            path=path, reason=_strerror(exc)) from exc
    return data.decode("utf-8", errors="replace").strip()


def _read_int(path: str) -> int | None:
    text = _read_text(path)
    if text is None:
        return None
    try:
        return int(text)
    except ValueError:
        raise exception.SysfsReadError(
            path=path, reason=f"{text!r} is not an integer") from None


def _read_required_int(device_dir: str, name: str) -> int:
    path = f"{device_dir}/{name}"
    value = _read_int(path)
    if value is None:
        raise exception.SysfsReadError(
            path=path, reason="missing: not an SR-IOV PF, or it is gone")
    return value


def _strerror(exc: OSError) -> str:
    return exc.strerror or str(exc)
