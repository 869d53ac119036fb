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

"""The CLI's failures are one line that says what to do.

Ctrl-C while waiting for a VF's lock, a JSON file that is not JSON, a
non-root run without a helper command, and a root run against a missing
state_path (which it must not create owned by root).
"""

import json
import os
from pathlib import Path
import signal
import subprocess
import sys
import time

import os_vif.objects
from os_vif.objects import network as osv_network
from os_vif.objects import vif as osv_vif
from oslo_config import cfg
import pytest

from harness import sysfs_tree
from sriov_vif import cli
from sriov_vif import journal
from sriov_vif import privsep

PF = "0000:81:00.0"
VF = "0000:81:10.2"
REPO = Path(__file__).resolve().parents[2]
# The CLI with its privileged daemon left out: what is tested here happens
# before or without any netlink request.
NO_DAEMON = ("import sys\n"
             "from sriov_vif import cli\n"
             "cli._start_privsep = lambda: None\n"
             "sys.exit(cli.main(sys.argv[1:]))\n")


@pytest.fixture(autouse=True)
def fresh_config():
    yield
    cfg.CONF.reset()


@pytest.fixture
def conf(tmp_path):
    path = tmp_path / "sriov.conf"
    path.write_text(f"[os_vif_sriov]\nsysfs_root = {tmp_path / 'sys'}\n"
                    f"state_path = {tmp_path / 'state'}\n")
    return str(path)


def _run(capsys, *argv):
    status = cli.main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


def _holds_open(pid, path):
    fd_dir = Path(f"/proc/{pid}/fd")
    try:
        return any(os.readlink(fd) == path for fd in fd_dir.iterdir())
    except OSError:
        return False


def _default_sigint():
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_ctrl_c_while_waiting_for_a_lock_is_one_line(tmp_path, conf):
    state = journal.Journal(str(tmp_path / "state"))
    lock = str(tmp_path / "state" / "locks" / (VF + ".lock"))
    with state.locked(VF):
        # A shell starts background jobs with SIGINT ignored, and Python
        # keeps an ignored SIGINT: give the command an operator's.
        proc = subprocess.Popen(
            [sys.executable, "-c", NO_DAEMON, "--config-file", conf,
             "restore", VF], cwd=REPO, stderr=subprocess.PIPE, text=True,
            preexec_fn=_default_sigint)
        try:
            deadline = time.monotonic() + 60
            while not _holds_open(proc.pid, lock):
                assert proc.poll() is None, proc.stderr.read()
                assert time.monotonic() < deadline
                time.sleep(0.05)
            proc.send_signal(signal.SIGINT)
            _out, err = proc.communicate(timeout=30)
        finally:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130
    assert err.splitlines() == ["sriov-vif: interrupted"], err


@pytest.mark.parametrize("content", ["{not json", "\xff\xfe"])
def test_json_errors_name_the_file(tmp_path, capsys, content):
    bad = tmp_path / "vif.json"
    bad.write_bytes(content.encode("latin-1"))
    status, _out, err = _run(capsys, "xml", str(bad))
    assert status == 1
    assert len(err.splitlines()) == 1
    assert str(bad) in err and "not valid JSON" in err


def test_non_root_without_helper_command_says_what_to_do(
        tmp_path, capsys, conf, monkeypatch):
    tree = sysfs_tree.SysfsTree(str(tmp_path / "sys"))
    tree.add_pf(PF, ["enp129s0f0"], driver="ice", numvfs=4, totalvfs=8)
    monkeypatch.setattr(os, "geteuid", lambda: 4242)
    # no sudo to be found: oslo.privsep's default helper cannot start
    monkeypatch.setenv("PATH", str(tmp_path))
    privsep.vif_plug.stop()
    try:
        status, _out, err = _run(capsys, "--config-file", conf, "restore",
                                 "--all")
    finally:
        privsep.vif_plug.stop()
    assert status == 1
    assert len(err.splitlines()) == 1, err
    assert ("run as root or configure [sriov_vif_privileged] "
            "helper_command") in err


@pytest.mark.parametrize("argv", [["restore", VF], ["plug", "VIF"],
                                  ["unplug", "VIF"]])
def test_root_never_creates_a_missing_state_path(tmp_path, capsys, conf,
                                                 monkeypatch, argv):
    vif = tmp_path / "vif.json"
    vif.write_text(_hostdev_json())
    argv = [str(vif) if arg == "VIF" else arg for arg in argv]
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    monkeypatch.setattr(cli, "_start_privsep", lambda: None)
    status, _out, err = _run(capsys, "--config-file", conf, *argv)
    assert status == 1
    assert len(err.splitlines()) == 1, err
    assert "state_path" in err and "owned by the user nova-compute" in err
    assert not (tmp_path / "state").exists()


def test_root_restore_all_on_a_missing_state_path_has_nothing_to_do(
        tmp_path, capsys, conf, monkeypatch):
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    monkeypatch.setattr(cli, "_start_privsep", lambda: None)
    status, out, err = _run(capsys, "--config-file", conf, "restore",
                            "--all")
    assert (status, out) == (0, "no VF needed restoring\n"), err
    assert not (tmp_path / "state").exists()


def _hostdev_json():
    os_vif.objects.register_all()
    vif = osv_vif.VIFHostDevice(
        id="aaaaaaaa-0000-4000-8000-000000000001",
        address="fa:16:3e:00:00:01", plugin="sriov", dev_type="ethernet",
        dev_address=VF, network=osv_network.Network(vlan=100))
    return json.dumps(vif.obj_to_primitive())
