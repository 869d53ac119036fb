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

"""The journal against a hostile directory owner, bad records, a full disk.

state_path belongs to nova-compute's user while an operator's CLI runs
as root: nothing that user plants there (symlinks, hard links, FIFOs,
records that parse but are not records) may make root touch another file
or stop the journal. The functional tier repeats the symlink cases with
the real `sriov-vif` command as root.
"""

import errno
import fcntl
import json
import os
import stat

import pytest

from sriov_vif import exception
from sriov_vif import journal
from tests.unit.test_journal import ADDRESS
from tests.unit.test_journal import _record

NOVA_UID = 4242
as_root = pytest.mark.skipif(os.geteuid() != 0, reason="chown needs root")


@pytest.fixture
def state(tmp_path):
    path = tmp_path / "state"
    path.mkdir(mode=0o700)
    if os.geteuid() == 0:
        os.chown(path, NOVA_UID, NOVA_UID)
    return path


@pytest.fixture
def victim(tmp_path):
    """A root-owned file and directory the nova user points links at."""
    victim_dir = tmp_path / "victim-dir"
    victim_dir.mkdir(mode=0o755)
    victim_file = tmp_path / "victim-file"
    victim_file.write_text("precious\n")
    victim_file.chmod(0o644)
    return victim_dir, victim_file


def _unchanged(victim):
    victim_dir, victim_file = victim
    for path in victim:
        st = os.lstat(path)
        assert (st.st_uid, st.st_gid) == (os.geteuid(), os.getegid()), path
    assert stat.S_IMODE(os.stat(victim_dir).st_mode) == 0o755
    assert stat.S_IMODE(os.stat(victim_file).st_mode) == 0o644
    assert victim_file.read_text() == "precious\n"


# Item 1: links planted by the owner of state_path.

@as_root
def test_a_locks_symlink_is_refused_not_chowned(state, victim):
    (state / "locks").symlink_to(victim[0])
    j = journal.Journal(str(state))
    with pytest.raises(exception.JournalError, match="locks"):
        with j.locked(ADDRESS):
            pass
    _unchanged(victim)


@as_root
def test_a_lock_file_symlink_is_refused_not_chowned(state, victim):
    (state / "locks").mkdir()
    os.chown(state / "locks", NOVA_UID, NOVA_UID)
    (state / "locks" / (ADDRESS + ".lock")).symlink_to(victim[1])
    j = journal.Journal(str(state))
    with pytest.raises(exception.JournalError, match="symbolic link"):
        with j.locked(ADDRESS):
            pass
    _unchanged(victim)


@as_root
def test_a_lock_file_hard_link_is_refused_not_chowned(state, victim):
    (state / "locks").mkdir()
    os.link(victim[1], state / "locks" / (ADDRESS + ".lock"))
    j = journal.Journal(str(state))
    with pytest.raises(exception.JournalError, match="links"):
        with j.locked(ADDRESS):
            pass
    _unchanged(victim)


@as_root
@pytest.mark.parametrize("planted", [
    ADDRESS + ".json.tmp", "." + ADDRESS + ".json.tmp"])
def test_a_planted_temporary_file_is_never_written_through(state, victim,
                                                           planted):
    (state / planted).symlink_to(victim[1])
    j = journal.Journal(str(state))
    j.save(_record())
    _unchanged(victim)
    assert j.load(ADDRESS) == _record()
    record = state / (ADDRESS + ".json")
    assert not record.is_symlink()
    assert (record.stat().st_uid, record.stat().st_gid) == (NOVA_UID,
                                                           NOVA_UID)


@as_root
def test_a_record_symlink_is_moved_aside_not_read_or_chowned(state,
                                                             victim):
    (state / (ADDRESS + ".json")).symlink_to(victim[1])
    j = journal.Journal(str(state))
    assert j.load(ADDRESS) is None
    _unchanged(victim)
    [aside] = state.glob(ADDRESS + ".json.corrupt-*")
    assert aside.is_symlink()
    j.save(_record())
    with j.locked(ADDRESS):
        j.remove(ADDRESS)
    _unchanged(victim)


def test_a_fifo_for_a_record_does_not_hang_the_reader(state):
    os.mkfifo(state / (ADDRESS + ".json"))
    assert journal.Journal(str(state)).load(ADDRESS) is None


@as_root
def test_root_still_hands_its_files_to_the_directory_owner(state):
    j = journal.Journal(str(state))
    j.save(_record())
    with j.locked(ADDRESS):
        pass
    for path in (state / (ADDRESS + ".json"), state / "locks",
                 state / "locks" / (ADDRESS + ".lock")):
        st = os.lstat(path)
        assert (st.st_uid, st.st_gid) == (NOVA_UID, NOVA_UID), path


# Item 2: records that parse as JSON but are not records.

@pytest.mark.parametrize("content", [
    "[]", '"a string"', "42", "null", "true",
    "[" * 50000 + "]" * 50000,
    '{"version": 1, "owner": []}',
    json.dumps(dict(_record().to_primitive(), owner="vif-1")),
    json.dumps(dict(_record().to_primitive(), original=[1])),
    json.dumps(dict(_record().to_primitive(), changed="mac")),
    json.dumps(dict(_record().to_primitive(), netdev=["x"])),
    json.dumps(dict(_record().to_primitive(), pf_ifname="lo\n")),
    json.dumps(dict(_record().to_primitive(), owner={"vif_id": [1]})),
    "\udcff".encode("utf-8", "surrogatepass").decode("latin-1"),
])
def test_any_unreadable_record_is_quarantined_and_logged(state, caplog,
                                                         content):
    (state / (ADDRESS + ".json")).write_text(content, encoding="latin-1")
    j = journal.Journal(str(state))
    assert j.load(ADDRESS) is None
    assert list(state.glob(ADDRESS + ".json.corrupt-*"))
    assert ADDRESS in caplog.text and "unreadable" in caplog.text
    assert j.addresses() == []


def test_an_oversized_record_is_quarantined(state):
    (state / (ADDRESS + ".json")).write_text(
        " " * (journal.MAX_RECORD_SIZE + 1))
    assert journal.Journal(str(state)).load(ADDRESS) is None
    assert list(state.glob(ADDRESS + ".json.corrupt-*"))


def test_two_quarantines_in_one_second_keep_both(state):
    j = journal.Journal(str(state))
    for content in ("[]", "{}"):
        (state / (ADDRESS + ".json")).write_text(content)
        assert j.load(ADDRESS) is None
    assert sorted(p.read_text() for p in
                  state.glob(ADDRESS + ".json.corrupt-*")) == ["[]", "{}"]


# Item 3: a short write is no success.

def test_a_short_write_is_completed(state, monkeypatch):
    real_write = os.write

    def short(fd, data):
        return real_write(fd, bytes(data[:7]))

    monkeypatch.setattr(os, "write", short)
    j = journal.Journal(str(state))
    j.save(_record())
    monkeypatch.undo()
    assert j.load(ADDRESS) == _record()


@pytest.mark.parametrize("failure", ["zero", "enospc"])
def test_a_failed_write_keeps_the_good_record(state, monkeypatch, failure):
    j = journal.Journal(str(state))
    j.save(_record())
    good = (state / (ADDRESS + ".json")).read_bytes()
    real_write = os.write
    calls = []

    def failing(fd, data):
        calls.append(len(data))
        if len(calls) == 1:
            return real_write(fd, bytes(data[:10]))
        if failure == "zero":
            return 0
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "write", failing)
    with pytest.raises(exception.JournalError, match=ADDRESS):
        j.save(_record(changed=("mac", "trust", "vlan")))
    monkeypatch.undo()
    assert (state / (ADDRESS + ".json")).read_bytes() == good
    assert sorted(os.listdir(state)) == [ADDRESS + ".json"]


def test_remove_sweeps_temporaries_a_crash_left(state):
    j = journal.Journal(str(state))
    j.save(_record())
    (state / f".{ADDRESS}.json.0123456789abcdef.tmp").write_text("{")
    (state / ".0000:81:10.3.json.0123456789abcdef.tmp").write_text("{")
    j.remove(ADDRESS)
    assert sorted(os.listdir(state)) == [
        ".0000:81:10.3.json.0123456789abcdef.tmp"]


# Item 10: a state_path the journal creates is private all the way.

def test_created_state_path_is_0700_in_every_component(tmp_path):
    path = tmp_path / "a" / "b" / "state"
    old = os.umask(0o022)
    try:
        journal.Journal(str(path)).save(_record())
    finally:
        os.umask(old)
    for component in (tmp_path / "a", tmp_path / "a" / "b", path):
        assert stat.S_IMODE(component.stat().st_mode) == 0o700, component


def test_a_lock_timeout_names_the_vf_and_its_lock_file(state, monkeypatch):
    monkeypatch.setattr(journal, "LOCK_TIMEOUT", 0.1)
    j = journal.Journal(str(state))
    with j.locked(ADDRESS):
        pass  # creates locks/<VF>.lock
    # another process's hold: an flock on another open file description
    holder = os.open(state / "locks" / (ADDRESS + ".lock"), os.O_RDWR)
    fcntl.flock(holder, fcntl.LOCK_EX)
    try:
        with pytest.raises(exception.JournalError) as err:
            with j.locked(ADDRESS):
                pass
    finally:
        os.close(holder)
    message = str(err.value)
    assert f"locks/{ADDRESS}.lock" in message
    assert f"VF {ADDRESS} stayed locked" in message
