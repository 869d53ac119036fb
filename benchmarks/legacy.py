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


"""What nova-compute's legacy SR-IOV path does to a VF, for comparison.

nova plugs its hw_veb VIFs without os-vif: it finds the PF netdev and the
VF number from sysfs, then runs ``ip link set PF vf N mac M vlan V`` and
``ip link set PF vf N trust on|off`` as subprocesses of a privsep daemon
(its sys_admin context), one entrypoint call per command; on unplug it
zeroes the MAC and the VLAN and turns trust off. The benchmark measures
sriov-vif against this path on the same VF of the same kernel, so the
path is rebuilt here the way nova runs it: a privsep context of its own,
started by the same privsep-helper as sriov-vif's, with nova's
capabilities, calling iproute2 through oslo.concurrency and accepting the
exit codes nova accepts. Like nova, it reads nothing back: the benchmark
checks the VF itself.
"""

from __future__ import annotations

import glob
import os
import re
from typing import Final

from oslo_concurrency import processutils
from oslo_privsep import capabilities as caps
from oslo_privsep import priv_context

CFG_SECTION: Final = "sriov_vif_bench_legacy"
ZERO_MAC: Final = "00:00:00:00:00:00"
# nova treats iproute2's exit codes 2 and 254 as success.
_ACCEPTED_EXIT_CODES: Final = [0, 2, 254]
_VIRTFN_RE: Final = re.compile(r"virtfn(\d+)$")

# nova's sys_admin_pctxt keeps these capabilities.
legacy_pctxt = priv_context.PrivContext(
    "benchmarks",
    cfg_section=CFG_SECTION,
    pypath=__name__ + ".legacy_pctxt",
    capabilities=[caps.CAP_CHOWN, caps.CAP_DAC_OVERRIDE,
                  caps.CAP_DAC_READ_SEARCH, caps.CAP_FOWNER,
                  caps.CAP_NET_ADMIN, caps.CAP_SYS_ADMIN],
)


@legacy_pctxt.entrypoint
def set_device_macaddr_and_vlan(dev: str, vf_num: int, mac_addr: str,
                                vlan: int) -> None:
    processutils.execute(
        "ip", "link", "set", dev, "vf", str(vf_num), "mac", mac_addr,
        "vlan", str(vlan), check_exit_code=_ACCEPTED_EXIT_CODES)


@legacy_pctxt.entrypoint
def set_device_trust(dev: str, vf_num: int, trusted: bool) -> None:
    processutils.execute(
        "ip", "link", "set", dev, "vf", str(vf_num), "trust",
        "on" if trusted else "off", check_exit_code=_ACCEPTED_EXIT_CODES)


def _pf_ifname(sysfs_root: str, pci_address: str) -> str:
    """The first netdev of the VF's PF, as nova picks it."""
    net = os.path.join(sysfs_root, "bus", "pci", "devices", pci_address,
                       "physfn", "net")
    return os.listdir(net)[0]


def _vf_num(sysfs_root: str, pci_address: str) -> int:
    """The VF number, by resolving the PF's virtfn links until one fits."""
    pattern = os.path.join(sysfs_root, "bus", "pci", "devices", pci_address,
                           "physfn", "virtfn*")
    for link in glob.iglob(pattern):
        if os.path.basename(os.readlink(link)) == pci_address:
            match = _VIRTFN_RE.search(link)
            if match:
                return int(match.group(1))
    raise LookupError(f"{pci_address} is no VF under {sysfs_root}")


def plug(sysfs_root: str, pci_address: str, mac: str, vlan: int,
         trusted: bool) -> None:
    """nova's plug of a port with a MAC, a VLAN and the trusted flag."""
    pf = _pf_ifname(sysfs_root, pci_address)
    vf_num = _vf_num(sysfs_root, pci_address)
    set_device_macaddr_and_vlan(pf, vf_num, mac, vlan)
    if trusted:
        set_device_trust(pf, vf_num, True)


def unplug(sysfs_root: str, pci_address: str) -> None:
    """nova's unplug: MAC and VLAN zeroed, trust off; nothing restored."""
    pf = _pf_ifname(sysfs_root, pci_address)
    vf_num = _vf_num(sysfs_root, pci_address)
    set_device_macaddr_and_vlan(pf, vf_num, ZERO_MAC, 0)
    set_device_trust(pf, vf_num, False)
