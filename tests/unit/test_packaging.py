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

"""The wheel holds what nova-compute runs, and nothing of the harness."""

from pathlib import Path
import subprocess
import sys
import zipfile

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def wheel_files(tmp_path_factory):
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps",
         "-w", str(out), str(REPO)],
        check=True, capture_output=True, text=True)
    [wheel] = out.glob("sriov_vif-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def test_only_the_runtime_package_is_installed(wheel_files):
    top = {name.split("/")[0] for name in wheel_files}
    assert {t for t in top if not t.endswith(".dist-info")} == {"sriov_vif"}
    modules = {Path(name).stem for name in wheel_files
               if name.startswith("sriov_vif/") and name.endswith(".py")}
    assert not modules & {"kernel_guest", "sysfs_tree", "demo",
                          "netdevsim_host", "privsep_daemon"}
    assert "plugin" in modules and "journal" in modules


def test_nothing_installed_provisions_a_host(wheel_files):
    for name, data in wheel_files.items():
        if name.endswith(".py"):
            for marker in (b"apt-get", b"virtme", b"qemu-system",
                           b"netdevsim/new_device"):
                assert marker not in data, (name, marker)
