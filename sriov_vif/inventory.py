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

"""The host's SR-IOV inventory: sysfs, the PFs' VF tables and the journal.

Operators debug SR-IOV with `ip link show`, `lspci` and the libvirt XML
side by side; this joins what those show with what only sriov-vif knows
(which VIF owns a VF). The VF table of each PF is read once, however many
VFs it has.
"""

from __future__ import annotations

from typing import Any

from oslo_log import log as logging

from sriov_vif import discovery
from sriov_vif import exception
from sriov_vif import journal
from sriov_vif import vf_config
from sriov_vif import vf_state

LOG = logging.getLogger(__name__)


def _owner(record: journal.VFRecord | None) -> dict[str, Any] | None:
    if record is None:
        return None
    return {
        "vif_id": record.owner.vif_id,
        "instance_uuid": record.owner.instance_uuid,
        "instance_name": record.owner.instance_name,
    }


def _kernel_table(pf: discovery.PhysicalFunction
                  ) -> tuple[dict[int, vf_state.VFState], str | None]:
    """The PF's VF table, or an empty one and why it could not be read.

    The PF's netdev may have vanished or been renamed since sysfs was
    read, the driver may refuse VF info, the table may come back short:
    one PF must not hide every other from the operator.
    """
    if pf.ifname is None or not pf.numvfs:
        return {}, None
    try:
        return vf_config.vf_table(pf), None
    except Exception as exc:
        reason = " ".join(str(exc).split()) or type(exc).__name__
        LOG.debug("PF %(pf)s (%(ifname)s): VF table unreadable: %(err)s",
                  {"pf": pf.pci_address, "ifname": pf.ifname,
                   "err": reason})
        return {}, reason


def collect(sysfs_root: str, state: journal.Journal) -> dict[str, Any]:
    """Every SR-IOV PF and its VFs, in the CLI's JSON shape.

    A PF whose VF table (or VF list in sysfs) cannot be read is still
    listed, with "error" saying why and its VFs' kernel columns None.
    """
    records = {a: state.load(a, quarantine=False)
               for a in state.addresses()}
    pfs = []
    for pf in discovery.list_pfs(sysfs_root):
        table, error = _kernel_table(pf)
        try:
            sysfs_vfs = discovery.list_vfs(sysfs_root, pf)
        except exception.SriovVifError as exc:
            sysfs_vfs = []
            error = "; ".join(filter(None, (error, str(exc))))
        vfs = []
        for vf in sysfs_vfs:
            kernel = table.get(vf.index)
            entry: dict[str, Any] = {
                "index": vf.index,
                "pci_address": vf.pci_address,
                "ifname": vf.ifname,
                "driver": vf.driver,
                "mac": None, "vlan": None, "qos": None, "proto": None,
                "trust": None, "spoofchk": None, "link_state": None,
                "min_tx_rate": None, "max_tx_rate": None,
                "owner": _owner(records.get(vf.pci_address)),
            }
            if kernel is not None:
                entry.update(
                    mac=kernel.mac, vlan=kernel.vlan, qos=kernel.qos,
                    proto=kernel.vlan_proto, trust=kernel.trust,
                    spoofchk=kernel.spoofchk, link_state=kernel.link_state,
                    min_tx_rate=kernel.min_tx_rate,
                    max_tx_rate=kernel.max_tx_rate)
            vfs.append(entry)
        pfs.append({
            "pci_address": pf.pci_address,
            "ifname": pf.ifname,
            "driver": pf.driver,
            "numvfs": pf.numvfs,
            "totalvfs": pf.totalvfs,
            "error": error,
            "vfs": vfs,
        })
    return {"pfs": pfs}


def errors(inventory: dict[str, Any]) -> list[str]:
    """One line per PF that could not be read, for the exit status."""
    return [f"PF {pf['pci_address']}: {pf['error']}"
            for pf in inventory["pfs"] if pf.get("error")]


VF_COLUMNS = (
    ("index", "VF"), ("pci_address", "PCI"), ("ifname", "NETDEV"),
    ("driver", "DRIVER"), ("mac", "MAC"), ("vlan", "VLAN"), ("qos", "QOS"),
    ("proto", "PROTO"), ("trust", "TRUST"), ("spoofchk", "SPOOFCHK"),
    ("link_state", "LINK"), ("min_tx_rate", "MIN"), ("max_tx_rate", "MAX"),
    ("owner", "OWNER"),
)


KERNEL_COLUMNS = frozenset(("mac", "vlan", "qos", "proto", "trust",
                            "spoofchk", "link_state", "min_tx_rate",
                            "max_tx_rate"))


def _cell(key: str, value: Any) -> str:
    if value is None:
        return "-"
    if key == "owner":
        return str(value["vif_id"])
    if isinstance(value, bool):
        return "on" if value else "off"
    return str(value)


def render(inventory: dict[str, Any],
           before: dict[str, Any] | None = None) -> str:
    """A text table per PF; cells that differ from before get a '*'."""
    if not inventory["pfs"]:
        return "No SR-IOV physical function found on this host.\n"
    old = {}
    if before is not None:
        old = {vf["pci_address"]: vf
               for pf in before["pfs"] for vf in pf["vfs"]}
    lines = []
    for pf in inventory["pfs"]:
        lines.append(
            f"PF {pf['pci_address']} {pf['ifname'] or '(no netdev)'} "
            f"driver {pf['driver'] or '-'} VFs {pf['numvfs']}/"
            f"{pf['totalvfs']}")
        error = pf.get("error")
        if error:
            lines.append(f"  kernel columns unknown (?): {error}")
        rows = [[title for _, title in VF_COLUMNS]]
        for vf in pf["vfs"]:
            prior = old.get(vf["pci_address"])
            row = []
            for key, _ in VF_COLUMNS:
                cell = ("?" if error and key in KERNEL_COLUMNS
                        else _cell(key, vf[key]))
                if prior is not None and prior[key] != vf[key]:
                    cell = "*" + cell
                row.append(cell)
            rows.append(row)
        widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
        for row in rows:
            lines.append("  " + "  ".join(
                c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
    if before is not None:
        lines.append("(* = changed)")
    return "\n".join(lines) + "\n"
