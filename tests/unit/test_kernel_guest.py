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

"""The logic of the kernel test harness that needs no guest.

Booting the guest for real is proven by the functional test
tests/functional/test_kernel_guest.py and by the kernel tier itself.
"""

import os
from pathlib import Path
import shutil
import subprocess
import sys

import pytest

from harness import kernel_guest


def test_current_kver_comes_from_the_metapackage():
    assert kernel_guest._current_kver(
        ["linux-image-6.1.0-56-amd64"]) == "6.1.0-56-amd64"


def test_current_kver_refuses_an_unexpected_dependency():
    dependencies = ["linux-image-6.1.0-56-cloud-amd64", "initramfs-tools"]

    with pytest.raises(kernel_guest.KernelGuestError,
                       match="names no linux-image-<version>-amd64"):
        kernel_guest._current_kver(dependencies)


def test_source_package_follows_the_kernel_series():
    assert kernel_guest._source_package("6.1.0-56-amd64") == (
        "linux-source-6.1")
    assert kernel_guest._source_package("6.12.0-3-amd64") == (
        "linux-source-6.12")


def test_default_cache_dir_honours_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv(kernel_guest.CACHE_DIR_ENV, str(tmp_path))
    assert kernel_guest.default_cache_dir() == tmp_path

    monkeypatch.delenv(kernel_guest.CACHE_DIR_ENV)
    assert kernel_guest.default_cache_dir() == (
        Path.home() / ".cache" / "sriov-vif" / "kernel-guest")


def test_guest_script_runs_the_command_verbatim(tmp_path):
    command = [sys.executable, "-c",
               "import sys; print(sys.argv[1:])", "a b", "it's", "--"]
    script = kernel_guest._guest_script(
        command, "6.1.0-56-amd64", tmp_path, cached=[])
    # Run the script's last line, the command, with a real shell.
    exec_line = script.splitlines()[-1]
    assert exec_line.startswith("exec ")

    result = subprocess.run(["sh", "-c", exec_line[len("exec "):]],
                            capture_output=True, text=True, check=True)

    assert result.stdout == "['a b', \"it's\", '--']\n"


def test_guest_script_marks_the_guest_and_loads_netdevsim_first(tmp_path):
    script = kernel_guest._guest_script(
        ["true"], "6.1.0-56-amd64", tmp_path, cached=[Path("/opt/x y")])
    lines = script.splitlines()

    assert (f"export {kernel_guest.GUEST_KERNEL_ENV}=6.1.0-56-amd64"
            in lines)
    assert "  mount --bind '/run/sriov-vif-host/opt/x y' '/opt/x y'" in lines
    assert lines.index("if ! modprobe netdevsim; then") < lines.index(
        "exec true")
    assert f"  exit {kernel_guest.GUEST_SETUP_FAILED}" in lines


def test_cached_dirs_leave_rwdirs_alone(tmp_path, monkeypatch):
    repo = tmp_path / "repo"
    venv = repo / ".tox" / "kernel"
    venv.mkdir(parents=True)
    monkeypatch.setattr(sys, "prefix", str(venv))

    assert repo in kernel_guest._cached_dirs(repo, rwdirs=[])
    # An rwdir inside the repository: binding the repo over it would
    # hide the writable mount, the venv beside it is still cached.
    cached = kernel_guest._cached_dirs(repo, rwdirs=[repo / "results"])
    assert repo not in cached
    assert venv in cached


def test_in_guest_needs_the_guest_kernel_release(monkeypatch):
    monkeypatch.setenv(kernel_guest.GUEST_KERNEL_ENV, "0.0.0-not-this")
    assert not kernel_guest.in_guest()

    monkeypatch.setenv(kernel_guest.GUEST_KERNEL_ENV, os.uname().release)
    assert kernel_guest.in_guest()


@pytest.mark.parametrize("dev_id, numvfs, max_vfs, reason", [
    (-1, 8, None, "device id must be >= 0"),
    (10, -1, None, "numvfs -1 must be >= 0"),
    (10, 8, 4, "max_vfs 4 is below numvfs 8"),
])
def test_bad_netdevsim_requests_fail_before_touching_sysfs(
        dev_id, numvfs, max_vfs, reason):
    with pytest.raises(kernel_guest.NetdevsimError, match=reason):
        kernel_guest.create_netdevsim_pf(dev_id, numvfs, max_vfs)


def test_netdevsim_devices_are_only_made_in_the_guest(monkeypatch):
    monkeypatch.delenv(kernel_guest.GUEST_KERNEL_ENV, raising=False)

    with pytest.raises(kernel_guest.NetdevsimError, match="only made inside"):
        kernel_guest.create_netdevsim_pf(10, 8)
    with pytest.raises(kernel_guest.NetdevsimError, match="only made inside"):
        kernel_guest.destroy_netdevsim(10)


def test_run_refuses_a_missing_rwdir_before_preparing(tmp_path):
    with pytest.raises(kernel_guest.KernelGuestError,
                       match="is not an existing directory"):
        kernel_guest.run(["true"], rwdirs=[tmp_path / "missing"])


def test_run_refuses_a_missing_or_unquotable_disk_before_preparing(
        tmp_path, monkeypatch):
    def no_prepare(*args, **kwargs):
        raise AssertionError("prepared the guest for a bad disk")

    monkeypatch.setattr(kernel_guest, "prepare", no_prepare)
    comma, space = tmp_path / "a,b.img", tmp_path / "a b.img"
    comma.write_bytes(b"")
    space.write_bytes(b"")
    for disk in (tmp_path / "missing.img", comma, space, tmp_path):
        with pytest.raises(kernel_guest.KernelGuestError,
                           match="not an existing file whose path"):
            kernel_guest.run(["true"], disks=[disk])


def test_disks_are_virtio_blk_with_flushes_and_a_serial_each():
    options = kernel_guest._disk_qemu_opts(
        [Path("/tmp/one.img"), Path("/tmp/two.img")]).split(" ")

    assert options == [
        "-drive", "if=none,id=sriov-vif-disk0,file=/tmp/one.img,"
                  "format=raw,cache=writeback",
        "-device", "virtio-blk-pci,drive=sriov-vif-disk0,"
                   "serial=sriov-vif-disk0",
        "-drive", "if=none,id=sriov-vif-disk1,file=/tmp/two.img,"
                  "format=raw,cache=writeback",
        "-device", "virtio-blk-pci,drive=sriov-vif-disk1,"
                   "serial=sriov-vif-disk1"]


def test_command_line_keeps_the_guest_command_whole():
    options, command = kernel_guest._split_command(
        ["run", "--timeout", "5", "--", "sh", "-c", "x", "--", "y"])

    assert options == ["run", "--timeout", "5"]
    assert command == ["sh", "-c", "x", "--", "y"]


def test_command_line_run_without_a_command_is_an_error(capsys):
    with pytest.raises(SystemExit) as exit_info:
        kernel_guest.main(["run"])

    assert exit_info.value.code == 2
    assert "after --" in capsys.readouterr().err


def test_failed_preparation_step_shows_the_tool_output():
    with pytest.raises(kernel_guest.KernelGuestError) as error:
        kernel_guest._command_output(
            ["sh", "-c", "echo first; echo 'the reason' >&2; exit 7"],
            "do the thing")

    message = str(error.value)
    assert message.startswith("Kernel test guest: cannot do the thing:")
    assert "exited with 7" in message
    assert "the reason" in message


def test_missing_vng_is_named_not_installed(monkeypatch):
    monkeypatch.setattr(kernel_guest, "_installed_vng", lambda: None)

    with pytest.raises(kernel_guest.KernelGuestError) as error:
        kernel_guest._find_vng()

    message = str(error.value)
    assert message.count("Kernel test guest:") == 1
    assert "pip install 'virtme-ng>=1.42,<2'" in message


def test_missing_packages_are_all_named_with_the_command(monkeypatch):
    on_path = {"make", "gcc", "dpkg-deb", "apt-get", "xz", "depmod"}
    monkeypatch.setattr(shutil, "which",
                        lambda tool: f"/usr/bin/{tool}"
                        if tool in on_path else None)

    with pytest.raises(kernel_guest.KernelGuestError) as error:
        kernel_guest._check_host("0.0.0-0-none")

    message = str(error.value)
    assert ("missing Debian packages: busybox-static qemu-system-x86 udev "
            "linux-headers-0.0.0-0-none;") in message
    assert "tools/install-packages.sh guest" in message


def test_cached_dirs_never_hide_the_guests_writable_overlays(monkeypatch):
    monkeypatch.setattr(sys, "prefix", "/usr")

    cached = kernel_guest._cached_dirs(Path("/tmp"), rwdirs=[])

    assert Path("/tmp") not in cached
    assert Path("/usr") not in cached
