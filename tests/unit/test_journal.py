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

import contextlib
import json
import os
import stat
import subprocess
import sys
import threading
import time
from typing import Any

import pytest

from sriov_vif import exception
from sriov_vif import journal
from sriov_vif import vf_state

ADDRESS = "0000:81:10.2"


def _record(**kw):
    fields: dict[str, Any] = dict(
        pci_address=ADDRESS, pf_pci_address="0000:81:00.0",
        pf_ifname="enp129s0f0", vf_index=2,
        owner=journal.Owner("vif-1", "inst-uuid", "instance-0001"),
        original=vf_state.VFState(
            index=2, mac="52:54:00:aa:bb:cc", vlan=7, qos=1,
            vlan_proto="802.1ad", spoofchk=None, trust=False,
            link_state="auto", min_tx_rate=0, max_tx_rate=10),
        changed=("mac", "vlan"),
        netdev=journal.NetdevOriginal("enp129s0f0v2", "52:54:00:00:00:01",
                                      False),
        netdev_changed=("mac", "up"))
    fields.update(kw)
    return journal.VFRecord(**fields)


def test_round_trip_is_exact(tmp_path):
    j = journal.Journal(str(tmp_path / "state"))
    record = _record()
    j.save(record)
    assert j.load(ADDRESS) == record
    assert j.addresses() == [ADDRESS]


def test_files_are_root_only_and_no_temporary_is_left(tmp_path):
    state = tmp_path / "state"
    j = journal.Journal(str(state))
    j.save(_record())
    assert stat.S_IMODE(os.stat(state).st_mode) == 0o700
    path = state / (ADDRESS + ".json")
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert sorted(os.listdir(state)) == [ADDRESS + ".json"]


def test_save_replaces_atomically(tmp_path):
    j = journal.Journal(str(tmp_path))
    j.save(_record())
    j.save(_record(changed=("mac", "trust", "vlan")))
    assert j.load(ADDRESS).changed == ("mac", "trust", "vlan")
    assert j.addresses() == [ADDRESS]


def test_many_records_go_with_their_leftovers_and_one_fsync(tmp_path,
                                                            monkeypatch):
    state = tmp_path / "state"
    j = journal.Journal(str(state))
    addresses = [f"0000:81:10.{i}" for i in range(5)]
    for i, address in enumerate(addresses):
        j.save(_record(pci_address=address, vf_index=i))
    # what a save killed before its rename leaves
    (state / f".{addresses[1]}.json.0a1b2c3d.tmp").write_text("{")
    (state / f".{addresses[4]}.json.0a1b2c3d.tmp").write_text("{")
    fsyncs: list[int] = []
    monkeypatch.setattr(os, "fsync", fsyncs.append)
    j.remove_many(addresses[:2] + ["0000:81:11.0"])  # one never saved
    assert len(fsyncs) == 1
    assert sorted(os.listdir(state)) == sorted(
        [f"{a}.json" for a in addresses[2:]]
        + [f".{addresses[4]}.json.0a1b2c3d.tmp"])
    fsyncs.clear()
    j.remove_many(["0000:81:11.0"])  # nothing to remove: no fsync
    j.remove_many([])
    assert fsyncs == []


def test_missing_record_is_none_and_remove_is_idempotent(tmp_path):
    j = journal.Journal(str(tmp_path / "never-created"))
    assert j.load(ADDRESS) is None
    assert j.addresses() == []
    j.save(_record())
    j.remove(ADDRESS)
    j.remove(ADDRESS)
    assert j.load(ADDRESS) is None


@pytest.mark.parametrize("content", [
    "{not json", json.dumps({"version": 99}), json.dumps({"version": 1}),
    json.dumps(dict(_record().to_primitive(), vf_index=-1)),
])
def test_corrupt_record_is_moved_aside_and_logged(tmp_path, caplog, content):
    j = journal.Journal(str(tmp_path))
    (tmp_path / (ADDRESS + ".json")).write_text(content)
    assert j.load(ADDRESS) is None
    [aside] = tmp_path.glob(ADDRESS + ".json.corrupt-*")
    assert aside.read_text() == content
    assert j.addresses() == []
    assert ADDRESS in caplog.text and "unreadable" in caplog.text


def test_addresses_are_validated_before_touching_paths(tmp_path):
    j = journal.Journal(str(tmp_path))
    with pytest.raises(exception.InvalidPciAddress):
        j.load("../../etc/passwd")
    with pytest.raises(exception.InvalidPciAddress):
        with j.locked("0000:81:10.2/../x"):
            pass


def test_lock_serializes_threads_on_one_vf(tmp_path):
    j = journal.Journal(str(tmp_path))
    inside = []
    overlaps = []

    def worker():
        with j.locked(ADDRESS):
            inside.append(1)
            if len(inside) > 1:
                overlaps.append(True)
            time.sleep(0.01)
            inside.pop()

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert overlaps == []


def test_lock_excludes_other_processes(tmp_path):
    script = (
        "import sys\n"
        "from sriov_vif import journal\n"
        "with journal.Journal(sys.argv[1]).locked(sys.argv[2]):\n"
        "    print('locked', flush=True)\n")
    j = journal.Journal(str(tmp_path))
    with j.locked(ADDRESS):
        other = subprocess.Popen(
            [sys.executable, "-c", script, str(tmp_path), ADDRESS],
            stdout=subprocess.PIPE, text=True)
        with pytest.raises(subprocess.TimeoutExpired):
            other.wait(timeout=1.0)
    out, _ = other.communicate(timeout=30)
    assert out == "locked\n" and other.returncode == 0


def test_unreadable_record_is_an_error_not_corruption(tmp_path,
                                                      monkeypatch):
    j = journal.Journal(str(tmp_path))
    j.save(_record())

    real_open = os.open

    def denied(path, *args, **kwargs):
        if str(path).endswith(".json"):
            raise PermissionError(13, "Permission denied")
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(os, "open", denied)
    with pytest.raises(exception.JournalError, match="Permission denied"):
        j.load(ADDRESS)
    monkeypatch.undo()
    assert j.load(ADDRESS) == _record()


def test_stray_files_are_not_taken_for_records(tmp_path, caplog):
    j = journal.Journal(str(tmp_path))
    j.save(_record())
    (tmp_path / "notes.json").write_text("{}")
    (tmp_path / (ADDRESS + ".json.corrupt")).write_text("{")
    assert j.addresses() == [ADDRESS]
    assert "notes.json" in caplog.text


def test_a_record_under_another_vfs_name_is_not_trusted(tmp_path):
    j = journal.Journal(str(tmp_path))
    j.save(_record())
    other = "0000:81:10.3"
    os.replace(tmp_path / (ADDRESS + ".json"), tmp_path / (other + ".json"))
    assert j.load(other) is None
    assert list(tmp_path.glob(other + ".json.corrupt-*"))


def test_inventory_reads_leave_a_corrupt_record_in_place(tmp_path):
    j = journal.Journal(str(tmp_path))
    (tmp_path / (ADDRESS + ".json")).write_text("{")
    assert j.load(ADDRESS, quarantine=False) is None
    assert (tmp_path / (ADDRESS + ".json")).read_text() == "{"


@contextlib.contextmanager
def _held_elsewhere(state_path, address):
    """The VF's lock held by another process until the block ends."""
    script = (
        "import sys, time\n"
        "from sriov_vif import journal\n"
        "with journal.Journal(sys.argv[1]).locked(sys.argv[2]):\n"
        "    print('locked', flush=True)\n"
        "    time.sleep(30)\n")
    holder = subprocess.Popen(
        [sys.executable, "-c", script, str(state_path), address],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline() == "locked\n"
        yield
    finally:
        holder.kill()
        holder.wait()


def test_a_stuck_holder_becomes_an_error(tmp_path, monkeypatch):
    monkeypatch.setattr(journal, "LOCK_TIMEOUT", 0.3)
    with _held_elsewhere(tmp_path, ADDRESS):
        with pytest.raises(exception.JournalError, match="stayed locked"):
            with journal.Journal(str(tmp_path)).locked(ADDRESS):
                pass


def test_unusable_state_path_is_an_error_naming_it(tmp_path):
    blocker = tmp_path / "state"
    blocker.write_text("a file where the directory should be")
    j = journal.Journal(str(blocker))
    with pytest.raises(exception.JournalError, match=str(blocker)):
        j.save(_record())
    with pytest.raises(exception.JournalError, match=str(blocker)):
        with j.locked(ADDRESS):
            pass


def test_many_locks_are_held_together_and_a_refused_one_is_named(
        tmp_path, monkeypatch):
    monkeypatch.setattr(journal, "LOCK_TIMEOUT", 0.3)
    other = "0000:81:10.3"
    third = "0000:81:10.4"
    j = journal.Journal(str(tmp_path))
    with _held_elsewhere(tmp_path, other):
        with j.locked_many([ADDRESS, other, third]) as refused:
            # The other process's VF is refused, naming it; the two
            # others are held (a thread of this process waits for them).
            assert list(refused) == [other]
            assert isinstance(refused[other], exception.JournalError)
            assert "stayed locked" in str(refused[other])
            got: list[None] = []
            waiter = threading.Thread(
                target=lambda: got.append(j.locked(third).__enter__()))
            waiter.start()
            waiter.join(timeout=0.5)
            assert waiter.is_alive()
        waiter.join(timeout=10)
        assert got == [None]


def test_many_locks_refuse_each_bad_address_alone(tmp_path):
    j = journal.Journal(str(tmp_path))
    with j.locked_many(["../../etc", ADDRESS]) as refused:
        assert list(refused) == ["../../etc"]
        assert isinstance(refused["../../etc"], exception.InvalidPciAddress)
    assert not (tmp_path.parent / "etc.lock").exists()
    # an unusable state_path refuses every VF, naming the path
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with journal.Journal(str(blocker)).locked_many(
            [ADDRESS, "0000:81:10.3"]) as refused:
        assert sorted(refused) == [ADDRESS, "0000:81:10.3"]
        assert str(blocker) in str(refused[ADDRESS])


def test_many_records_are_loaded_each_as_load_gives_it(tmp_path):
    j = journal.Journal(str(tmp_path))
    j.save(_record())
    corrupt = "0000:81:10.3"
    (tmp_path / (corrupt + ".json")).write_text("{")
    loaded = j.load_many([ADDRESS, corrupt, "0000:81:10.4", "bad"])
    assert loaded[ADDRESS] == _record()
    assert loaded[corrupt] is None  # moved aside, as load() does
    assert list(tmp_path.glob(corrupt + ".json.corrupt-*"))
    assert loaded["0000:81:10.4"] is None
    assert isinstance(loaded["bad"], exception.InvalidPciAddress)
    assert journal.Journal(str(tmp_path / "none")).load_many(
        [ADDRESS]) == {ADDRESS: None}
