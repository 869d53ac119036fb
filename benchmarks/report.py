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


"""From the raw timings and counts of one run to the table and the page.

Machines are noisy and the guest runs under software emulation, so the
table gives medians, and every figure next to the one it is compared with
in the same run and their ratio: a lone absolute time would say more
about the machine than about the code.
"""

from __future__ import annotations

from collections.abc import Sequence
import dataclasses
import statistics
from typing import Any
from typing import Final

DOC_TITLE: Final = "Benchmarks"
HEADERS: Final = ("Measurement", "sriov-vif", "Compared with", "Ratio")
_KIND_ORDER: Final = ("read", "change", "probe")


@dataclasses.dataclass(frozen=True)
class Row:
    measurement: str
    ours: str
    comparison: str
    ratio: str

    def cells(self) -> tuple[str, str, str, str]:
        return (self.measurement, self.ours, self.comparison, self.ratio)


def median(values: Sequence[float]) -> float:
    if not values:
        raise ValueError("no measurements to take the median of")
    return float(statistics.median(values))


def ratio(numerator: float, denominator: float) -> float:
    if denominator <= 0:
        raise ValueError(f"cannot divide by {denominator}")
    return numerator / denominator


def ms(value: float) -> str:
    return f"{value:.0f} ms" if value >= 100 else f"{value:.1f} ms"


def times(value: float) -> str:
    return f"{value:.2f}"


def _plural(count: str, kind: str) -> str:
    if kind.startswith("type "):
        return f"{count} x {kind}"
    return f"{count} {kind}" + ("" if count == "1" else "s")


def count_text(repeats: Sequence[dict[str, int]]) -> str:
    """"1 read + 1 change"; a kind that varied shows its range ("1-2")."""
    kinds = {kind for counts in repeats for kind in counts}
    ordered = [k for k in _KIND_ORDER if k in kinds] + sorted(
        kinds - set(_KIND_ORDER))
    parts = []
    for kind in ordered:
        values = [counts.get(kind, 0) for counts in repeats]
        low, high = min(values), max(values)
        count = str(low) if low == high else f"{low}-{high}"
        parts.append(_plural(count, kind))
    return " + ".join(parts) if parts else "none"


def total(repeats: Sequence[dict[str, int]]) -> float:
    """Median number of requests of any kind per operation."""
    return median([sum(counts.values()) for counts in repeats])


def _roundtrip_rows(data: dict[str, Any]) -> list[Row]:
    n = data["iterations"]
    rows = []
    ours_rt = [p + u for p, u in zip(data["ours_plug_ms"],
                                     data["ours_unplug_ms"], strict=True)]
    legacy_rt = [p + u for p, u in zip(data["legacy_plug_ms"],
                                       data["legacy_unplug_ms"], strict=True)]
    for label, ours, legacy in (
            ("Plug + unplug of one VIF", ours_rt, legacy_rt),
            ("Plug alone", data["ours_plug_ms"], data["legacy_plug_ms"]),
            ("Unplug alone", data["ours_unplug_ms"],
             data["legacy_unplug_ms"])):
        mine, theirs = median(ours), median(legacy)
        rows.append(Row(
            f"{label}, median of {n} (interleaved)", ms(mine),
            f"nova legacy: {ms(theirs)}",
            f"legacy / sriov-vif = {times(ratio(theirs, mine))}"))
    return rows


def _netlink_rows(data: dict[str, Any]) -> list[Row]:
    rows = []
    for operation in ("plug", "unplug"):
        ours = data["ours"][operation]
        legacy = data["legacy"][operation]
        rows.append(Row(
            f"rtnetlink requests per {operation} (counted with nlmon, "
            f"{data['repeats']} runs)",
            count_text(ours), f"nova legacy: {count_text(legacy)}",
            f"legacy / sriov-vif = {times(ratio(total(legacy), total(ours)))}"
        ))
    return rows


def _scale_rows(data: dict[str, Any]) -> list[Row]:
    base = data["8"]
    n = len(base["plug_ms"])
    rows = [Row(f"Plug latency, PF with 8 VFs, median of {n}",
                ms(median(base["plug_ms"])), "(baseline)", "")]
    for size in ("64", "256"):
        entry = data[size]
        plug = median(entry["plug_ms"])
        rows.append(Row(
            f"Plug latency, PF with {size} VFs, median of "
            f"{len(entry['plug_ms'])}",
            ms(plug), f"8 VFs: {ms(median(base['plug_ms']))}",
            f"{size} / 8 = {times(ratio(plug, median(base['plug_ms'])))}"))
    unplug_256 = median(data["256"]["unplug_ms"])
    unplug_8 = median(base["unplug_ms"])
    rows.append(Row(
        f"Unplug latency, PF with 256 VFs, median of "
        f"{len(data['256']['unplug_ms'])}",
        ms(unplug_256), f"8 VFs: {ms(unplug_8)}",
        f"256 / 8 = {times(ratio(unplug_256, unplug_8))}"))
    return rows


def _rate(count: int, seconds: float) -> str:
    return f"{seconds:.1f} s, {count / seconds:.1f}/s"


def _parallel_rows(data: dict[str, Any]) -> list[Row]:
    count, threads = data["count"], data["threads"]
    rows = []
    for operation in ("plug", "unplug"):
        par = data[f"parallel_{operation}_s"]
        seq = data[f"sequential_{operation}_s"]
        rows.append(Row(
            f"{count} {operation}s on one PF, {threads} threads "
            f"(total, {operation}s per second)",
            _rate(count, par), f"one after another: {_rate(count, seq)}",
            f"sequential / threads = {times(ratio(seq, par))}"))
    return rows


def _xml_rows(results: dict[str, Any]) -> list[Row]:
    guest = median(results["xml_guest"])
    plug_ms = median(results["roundtrip"]["ours_plug_ms"])
    plugs_per_s = 1000 / plug_ms
    rows = [Row(
        "libvirt XML rendering in the guest (VIFs per second, median of "
        f"{len(results['xml_guest'])} batches)",
        f"{guest:.0f}/s", f"plugs in the guest: {plugs_per_s:.1f}/s",
        f"XML / plug = {times(ratio(guest, plugs_per_s))}")]
    if results.get("xml_host"):
        host = median(results["xml_host"])
        rows.append(Row(
            "libvirt XML rendering on the host, no emulation (VIFs per "
            f"second, median of {len(results['xml_host'])} batches)",
            f"{host:.0f}/s", f"in the guest: {guest:.0f}/s",
            f"host / guest = {times(ratio(host, guest))}"))
    return rows


def build_rows(results: dict[str, Any]) -> list[Row]:
    return [*_roundtrip_rows(results["roundtrip"]),
            *_netlink_rows(results["netlink"]),
            *_scale_rows(results["scale"]),
            *_parallel_rows(results["parallel"]),
            *_xml_rows(results)]


def render_text(rows: Sequence[Row]) -> str:
    """Aligned columns for a terminal or a CI log."""
    table = [HEADERS, *(row.cells() for row in rows)]
    widths = [max(len(line[i]) for line in table)
              for i in range(len(HEADERS))]
    lines = []
    for number, line in enumerate(table):
        lines.append("  ".join(cell.ljust(width) for cell, width
                               in zip(line, widths, strict=True)).rstrip())
        if number == 0:
            lines.append("  ".join("-" * width for width in widths))
    return "\n".join(lines) + "\n"


def _rst_cell(text: str) -> str:
    """A cell's text, literal in reST: no markup, no empty cell."""
    if not text:
        return "\\-"
    escaped = text.replace("\\", "\\\\")
    for char in "*`|_[]":
        escaped = escaped.replace(char, "\\" + char)
    return escaped


def render_rst(rows: Sequence[Row], *, date: str, machine: str,
               wall_seconds: float, notes: Sequence[str]) -> str:
    """The whole doc/source/benchmarks.rst page."""
    lines = [
        ".. This page is written by benchmarks/run.py (tox -e bench);",
        "   edit the runner, not the page.",
        "",
        "=" * len(DOC_TITLE),
        DOC_TITLE,
        "=" * len(DOC_TITLE),
        "",
        "How fast sriov-vif plugs and unplugs SR-IOV VFs, how that cost "
        "grows, and",
        "how it compares with what nova-compute does today (its legacy "
        "path: ``ip link",
        "set PF vf N mac M vlan V`` and ``ip link set PF vf N trust on|off`` "
        "run by a",
        "privsep daemon). Every figure comes from one run, next to what it "
        "is compared",
        "with in that same run. Regenerate the page with ``tox -e bench``.",
        "",
        f"* Date: {date}",
        f"* Machine: {machine}",
        f"* Wall time of the run: {wall_seconds:.0f} s",
        "",
        ".. list-table::",
        "   :header-rows: 1",
        "   :widths: 40 20 25 15",
        "",
    ]
    for line in (HEADERS, *(row.cells() for row in rows)):
        first, *rest = line
        lines.append(f"   * - {_rst_cell(first)}")
        lines.extend(f"     - {_rst_cell(cell)}" for cell in rest)
    lines += ["", "How it was measured", "-" * len("How it was measured"),
              ""]
    for note in notes:
        lines.append(f"* {note}")
    return "\n".join(lines) + "\n"
