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

"""The journal on a real host: state_path owned by nova's uid, root's CLI.

Issue 15 items 1, 3 and 10, each as it was reproduced: the real
`sriov-vif` command run as root against a state_path that belongs to
another uid, which planted links in it; a nearly full 16 KiB tmpfs; a
state_path created by nova's uid and by root.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
import pickle
import stat
import subprocess
import sys
import tempfile

import pytest

from sriov_vif import journal
from sriov_vif import vf_state
from tests.functional.conftest import NOVA_UID
from tests.functional.conftest import VF_ADDRESSES

SRIOV_VIF = Path(sys.prefix) / "bin" / "sriov-vif"
VF = VF_ADDRESSES[0]


@pytest.fixture
def host(tmp_path, nl_private_netns, nl_sysfs):
    """A state_path of nova's uid, root's victims, a CLI config."""
    base = Path(tempfile.mkdtemp(prefix="sriov-vif-journal-"))
    base.chmod(0o755)
    state = base / "state"
    state.mkdir(mode=0o700)
    os.chown(state, NOVA_UID, NOVA_UID)
    victim_dir = base / "victim-dir"
    victim_dir.mkdir(mode=0o755)
    victim_file = base / "victim-file"
    victim_file.write_text("root's\n")
    conf = base / "sriov.conf"
    conf.write_text(f"[os_vif_sriov]\nsysfs_root = {nl_sysfs.root}\n"
                    f"state_path = {state}\n")
    yield base, state, victim_dir, victim_file, conf
    subprocess.run(["rm", "-rf", str(base)], check=False)


def as_nova(planter):
    """Run planter() in a child with nova's uid, as a hostile owner would."""
    pid = os.fork()
    if pid == 0:  # pragma: no cover (child)
        try:
            os.setgroups([])
            os.setgid(NOVA_UID)
            os.setuid(NOVA_UID)
            planter()
        except BaseException:
            os._exit(1)
        os._exit(0)
    _pid, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0


def sriov_vif(conf, *argv):
    return subprocess.run([str(SRIOV_VIF), "--config-file", str(conf),
                           *argv], capture_output=True, text=True,
                          timeout=120, check=False)


def owner(path):
    st = os.lstat(path)
    return st.st_uid, st.st_gid


# Item 1.

def test_root_restore_never_chowns_what_a_locks_symlink_points_to(host):
    _base, state, victim_dir, _victim_file, conf = host
    as_nova(lambda: os.symlink(victim_dir, state / "locks"))

    result = sriov_vif(conf, "restore", VF)

    assert result.returncode == 1
    last = result.stderr.splitlines()[-1]
    assert last.startswith("sriov-vif: error: ")
    assert "locks" in last and "symbolic link" in last
    assert owner(victim_dir) == (0, 0)
    assert stat.S_IMODE(victim_dir.stat().st_mode) == 0o755


def test_root_restore_never_chowns_a_lock_file_symlink_target(host):
    _base, state, _victim_dir, victim_file, conf = host

    def plant():
        (state / "locks").mkdir(mode=0o700)
        os.symlink(victim_file, state / "locks" / f"{VF}.lock")

    as_nova(plant)
    result = sriov_vif(conf, "restore", VF)

    assert result.returncode == 1
    last = result.stderr.splitlines()[-1]
    assert last.startswith("sriov-vif: error: ")
    assert f"{VF}.lock" in last and "symbolic link" in last
    assert owner(victim_file) == (0, 0)
    assert victim_file.read_text() == "root's\n"


def test_root_restore_with_an_honest_directory_hands_files_to_nova(host):
    _base, state, _victim_dir, _victim_file, conf = host
    result = sriov_vif(conf, "restore", VF)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "no VF needed restoring\n"
    assert owner(state / "locks") == (NOVA_UID, NOVA_UID)
    assert owner(state / "locks" / f"{VF}.lock") == (NOVA_UID, NOVA_UID)


# Item 3.

def _record(instance_name):
    return journal.VFRecord(
        pci_address=VF, pf_pci_address="0000:81:00.0", pf_ifname="nlvb",
        vf_index=0,
        owner=journal.Owner("vif-1", "8f8e7a2b-1111-4444-8888-000000000001",
                            instance_name),
        original=vf_state.VFState(
            index=0, mac="52:54:00:aa:bb:cc", vlan=7, qos=1,
            vlan_proto="802.1ad", spoofchk=True, trust=False,
            link_state="auto", min_tx_rate=0, max_tx_rate=10),
        changed=("mac", "vlan"))


@contextlib.contextmanager
def tiny_tmpfs(base):
    mount = base / "tiny"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o",
                    f"size=16k,mode=0700,uid={NOVA_UID},gid={NOVA_UID}",
                    "tmpfs", str(mount)], check=True)
    try:
        yield mount
    finally:
        subprocess.run(["umount", str(mount)], check=True)


def test_a_full_filesystem_never_replaces_a_good_record(host):
    base = host[0]
    # three pages each: the second record cannot fit beside the first
    good = _record("i" * 9000)
    bigger = _record("j" * 9500)
    outcome = base / "outcome"

    with tiny_tmpfs(base) as mount:
        def nova_compute():
            j = journal.Journal(str(mount))
            j.save(good)
            try:
                j.save(bigger)
                error = None
            except Exception as exc:
                error = str(exc)
            result = (error, j.load(VF) == good, sorted(os.listdir(mount)))
            fd = os.open(outcome, os.O_WRONLY | os.O_CREAT, 0o644)
            os.write(fd, pickle.dumps(result))
            os.close(fd)

        outcome.touch()
        os.chown(outcome, NOVA_UID, NOVA_UID)
        as_nova(nova_compute)
        error, good_kept, names = pickle.loads(outcome.read_bytes())

    assert error is not None and VF in error and "No space" in error
    assert good_kept
    assert names == [f"{VF}.json"]


# Item 10.

def test_root_refuses_a_missing_state_path(host):
    base, state, _victim_dir, _victim_file, conf = host
    missing = base / "not-yet" / "state"
    conf.write_text(conf.read_text().replace(str(state), str(missing)))
    result = sriov_vif(conf, "restore", VF)
    assert result.returncode == 1
    assert "owned by the user nova-compute runs as" in result.stderr
    assert not missing.parent.exists()


def test_nova_creates_a_missing_state_path_private_all_the_way(host):
    base = host[0]
    top = base / "lib"
    top.mkdir(mode=0o777)
    top.chmod(0o777)
    missing = top / "sriov_vif" / "journal" / "state"
    def save_as_nova():
        os.umask(0o022)
        journal.Journal(str(missing)).save(_record("x"))

    as_nova(save_as_nova)
    for path in (top / "sriov_vif", top / "sriov_vif" / "journal", missing):
        assert stat.S_IMODE(path.stat().st_mode) == 0o700, path
        assert owner(path) == (NOVA_UID, NOVA_UID)
