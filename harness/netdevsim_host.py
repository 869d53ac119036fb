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

"""An SR-IOV host made of netdevsim PFs, inside the kernel guest.

The one recipe the kernel tier, the demo and the benchmarks share: real
netdevsim PFs with VFs (the kernel's VF table and netlink are real), a
sysfs-shaped tree that gives their VFs PCI addresses (netdevsim VFs have
none), and the plugin's [os_vif_sriov] sysfs_root and state_path pointed
at the tree and a journal directory, for os_vif.plug in this process or
for a sriov-vif command through a config file.
"""

from __future__ import annotations

import os
from pathlib import Path

import os_vif
from oslo_config import cfg

from harness import kernel_guest
from harness import sysfs_tree
from sriov_vif import config


class NetdevsimHost:
    """netdevsim PFs seen through one sysfs tree, with one journal."""

    def __init__(self, workdir: Path,
                 tree: sysfs_tree.SysfsTree | None = None) -> None:
        """PFs go into tree (default: workdir/sys); the journal into
        workdir/state, made here as a deployment makes it (as root,
        sriov-vif refuses to create it).

        A privsep daemon resolves VFs under its own sysfs_root: pass the
        tree at that root, or start the daemon with write_config().
        """
        self.tree = tree or sysfs_tree.SysfsTree(str(workdir / "sys"))
        self.state_path = str(workdir / "state")
        os.makedirs(self.state_path, mode=0o700, exist_ok=True)
        self._workdir = workdir
        self._dev_ids: list[int] = []
        self._configured = False

    def add_pf(self, dev_id: int, pci_address: str, numvfs: int, *,
               max_vfs: int | None = None, vf_driver: str = "vfio-pci",
               vf_ifnames: sysfs_tree.VFNames = None) -> sysfs_tree.BuiltPF:
        """A netdevsim PF with numvfs VFs at pci_address in the tree.

        vf_ifnames names stand-in VF netdevs (veths) for the VFs that need
        one; netdevsim VFs have no netdev of their own.
        """
        ifname = kernel_guest.create_netdevsim_pf(dev_id, numvfs, max_vfs)
        self._dev_ids.append(dev_id)
        return self.tree.add_pf(
            pci_address, [ifname], driver="netdevsim", numvfs=numvfs,
            totalvfs=max_vfs or numvfs, vf_driver=vf_driver,
            vf_ifnames=vf_ifnames)

    def configure_plugin(self) -> None:
        """Load os-vif's plugins and point ours at the tree and journal."""
        os_vif.initialize()  # registers [os_vif_sriov]
        cfg.CONF.set_override("sysfs_root", self.tree.root, config.GROUP)
        cfg.CONF.set_override("state_path", self.state_path, config.GROUP)
        self._configured = True

    def write_config(self) -> str:
        """The same options as a config file.

        For a sriov-vif command, or as the privsep daemon's config file.
        """
        path = self._workdir / "sriov-vif.conf"
        path.write_text(f"[{config.GROUP}]\nsysfs_root = {self.tree.root}\n"
                        f"state_path = {self.state_path}\n")
        return str(path)

    def release(self) -> None:
        """Undo configure_plugin's overrides and delete the PFs."""
        if self._configured:
            for opt in config.CONFIG_OPTS:
                cfg.CONF.clear_override(opt.name, config.GROUP)
            self._configured = False
        while self._dev_ids:
            kernel_guest.destroy_netdevsim(self._dev_ids.pop())
