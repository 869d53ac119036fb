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


"""The pure logic of the benchmark runner: counting and the report."""

import struct

import pytest

from benchmarks import nlcount
from benchmarks import report

NLM_F_ACK = 0x4
NLM_F_DUMP = 0x300


def _message(msg_type, flags, attrs_len=0):
    body = bytes(16 + attrs_len)  # ifinfomsg and attribute bytes
    return struct.pack("=IHHII", 16 + len(body), msg_type, flags, 1,
                       0) + body


def test_requests_are_told_from_replies_and_classified():
    packet = b"".join([
        _message(nlcount.RTM_GETLINK, nlcount.NLM_F_REQUEST | NLM_F_DUMP),
        _message(nlcount.RTM_NEWLINK, nlcount.NLM_F_REQUEST | NLM_F_ACK),
        _message(nlcount.RTM_SETLINK, nlcount.NLM_F_REQUEST | NLM_F_ACK,
                 attrs_len=40),
        _message(nlcount.RTM_NEWLINK, 0, attrs_len=200),  # a reply
        _message(2, 0x100),  # an ack
        _message(20, nlcount.NLM_F_REQUEST),  # RTM_NEWADDR
    ])
    assert list(nlcount.requests_in(packet)) == [
        "read", "probe", "change", "type 20"]


def test_a_truncated_or_corrupt_packet_ends_the_walk():
    whole = _message(nlcount.RTM_GETLINK, nlcount.NLM_F_REQUEST)
    corrupt = struct.pack("=IHHII", 3, nlcount.RTM_GETLINK,
                          nlcount.NLM_F_REQUEST, 0, 0)
    assert list(nlcount.requests_in(whole + corrupt)) == ["read"]
    assert list(nlcount.requests_in(whole[:10])) == []


def test_count_text_orders_kinds_and_shows_ranges():
    assert report.count_text([{"change": 1, "read": 1}] * 3) == (
        "1 read + 1 change")
    assert report.count_text([
        {"read": 3, "change": 2, "probe": 2},
        {"read": 2, "change": 2, "probe": 2, "type 20": 1}]) == (
        "2-3 reads + 2 changes + 2 probes + 0-1 x type 20")
    assert report.count_text([{}]) == "none"


def test_median_and_ratio_refuse_what_has_no_answer():
    assert report.median([5.0, 1.0, 3.0]) == 3.0
    assert report.median([1.0, 2.0]) == 1.5
    with pytest.raises(ValueError):
        report.median([])
    with pytest.raises(ValueError):
        report.ratio(1.0, 0.0)


def _results():
    return {
        "roundtrip": {
            "iterations": 3,
            "ours_plug_ms": [10.0, 12.0, 50.0],
            "ours_unplug_ms": [10.0, 8.0, 10.0],
            "legacy_plug_ms": [40.0, 45.0, 41.0],
            "legacy_unplug_ms": [40.0, 35.0, 60.0],
        },
        "netlink": {
            "repeats": 2, "idle_seconds": 1.0, "idle": {},
            "ours": {"plug": [{"read": 1, "change": 1}] * 2,
                     "unplug": [{"read": 1, "change": 1}] * 2},
            "legacy": {"plug": [{"read": 3, "change": 2, "probe": 2}] * 2,
                       "unplug": [{"read": 3, "change": 2,
                                   "probe": 2}] * 2},
        },
        "scale": {
            "8": {"plug_ms": [10.0, 20.0, 30.0], "unplug_ms": [10.0] * 3},
            "64": {"plug_ms": [30.0, 40.0, 50.0], "unplug_ms": [20.0] * 3},
            "256": {"plug_ms": [100.0, 90.0, 80.0],
                    "unplug_ms": [50.0] * 3},
        },
        "parallel": {"count": 64, "threads": 64, "parallel_plug_s": 2.0,
                     "parallel_unplug_s": 4.0, "sequential_plug_s": 8.0,
                     "sequential_unplug_s": 4.0},
        "xml_guest": [900.0, 1000.0, 1100.0],
        "xml_host": [20000.0],
    }


def _row(rows, start):
    return next(row for row in rows if row.measurement.startswith(start))


def test_rows_compare_medians_of_the_same_run():
    rows = report.build_rows(_results())
    # Round trips pair each plug with its own unplug: 20, 20, 60 / 80,
    # 80, 101.
    trip = _row(rows, "Plug + unplug")
    assert (trip.ours, trip.comparison, trip.ratio) == (
        "20.0 ms", "nova legacy: 80.0 ms", "legacy / sriov-vif = 4.00")
    # Plugs alone: 12 ms against 41 ms.
    assert _row(rows, "Plug alone").ratio == "legacy / sriov-vif = 3.42"
    requests = _row(rows, "rtnetlink requests per plug")
    assert (requests.ours, requests.ratio) == (
        "1 read + 1 change", "legacy / sriov-vif = 3.50")
    assert _row(rows, "Plug latency, PF with 256").ratio == "256 / 8 = 4.50"
    assert _row(rows, "Plug latency, PF with 64").ratio == "64 / 8 = 2.00"
    assert _row(rows, "Unplug latency, PF with 256").ratio == (
        "256 / 8 = 5.00")
    threads = _row(rows, "64 plugs")
    assert (threads.ours, threads.ratio) == (
        "2.0 s, 32.0/s", "sequential / threads = 4.00")
    # One plug takes 12 ms in the guest: 83.3 plugs/s.
    assert _row(rows, "libvirt XML rendering in the guest").ratio == (
        "XML / plug = 12.00")
    assert _row(rows, "libvirt XML rendering on the host").ratio == (
        "host / guest = 20.00")


def test_text_table_keeps_its_columns_aligned():
    text = report.render_text(report.build_rows(_results()))
    lines = text.splitlines()
    starts = [i for i in range(1, len(lines[1]))
              if lines[1][i] == "-" and lines[1][i - 1] == " "]
    assert len(starts) == 3
    for line in lines[2:]:
        for start in starts:
            if len(line) > start:  # an empty last cell is stripped
                assert line[start - 2:start] == "  ", line
                assert line[start] != " ", line


def test_rst_page_is_a_list_table_docutils_reads_cleanly():
    rows = report.build_rows(_results())
    page = report.render_rst(rows, date="2025-01-01 00:00 UTC",
                             machine="Python 3.11 (Debian 12)",
                             wall_seconds=300.0,
                             notes=["a *note* with ``literal``"])
    assert page.count("   * - ") == len(rows) + 1
    assert "Wall time of the run: 300 s" in page
    docutils_core = pytest.importorskip("docutils.core")
    doc = docutils_core.publish_doctree(
        page, settings_overrides={"report_level": 2, "halt_level": 2})
    tables = list(doc.findall(
        lambda node: node.tagname == "table"))
    assert len(tables) == 1
    assert len(list(tables[0].findall(
        lambda node: node.tagname == "row"))) == len(rows) + 1
