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

"""The kernel test harness, booted for real from the host.

The kernel tier can only be trusted if a failing test inside the guest
fails the run on the host: these boot the guest (prepare() makes it ready
first, quickly when it already is) and check the exit status, the output
and the one way back for files, an rwdir. Each boot takes 15-40 s.
"""

import os
from pathlib import Path
import time
import uuid

import pytest

from harness import kernel_guest


def test_guest_status_output_and_rwdir_reach_the_host(tmp_path, capfd):
    report = tmp_path / "report"
    status = kernel_guest.run(
        ["sh", "-c",
         f"uname -r > {report}; grep -c '^netdevsim ' /proc/modules "
         f">> {report}; echo guest-says-hello; exit 3"],
        rwdirs=[tmp_path])

    assert status == 3
    kernel_release, netdevsim_loaded = report.read_text().split()
    assert kernel_release != os.uname().release
    assert kernel_release.endswith("-amd64")
    assert netdevsim_loaded == "1"
    assert "guest-says-hello" in capfd.readouterr().out


def _processes_with(tag: str) -> list[int]:
    pids = []
    for environ in Path("/proc").glob("[0-9]*/environ"):
        try:
            if tag.encode() in environ.read_bytes():
                pids.append(int(environ.parent.name))
        except OSError:
            continue  # ended while we looked
    return pids


def test_a_hung_guest_is_killed_with_all_its_processes(monkeypatch):
    # vng and QEMU inherit our environment: the tag finds exactly them.
    tag = f"KH_RUN_{uuid.uuid4().hex}"
    monkeypatch.setenv("SRIOV_VIF_TEST_RUN_TAG", tag)
    started = time.monotonic()

    with pytest.raises(kernel_guest.KernelGuestTimeout,
                       match="sleep 600 was still running after 5"):
        kernel_guest.run(["sleep", "600"], timeout=5)

    assert time.monotonic() - started < 60
    assert _processes_with(tag) == []
