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

"""nova-compute, set up as it sets itself up, in the netdevsim guest.

The nova tier (tools/nova-tier.sh) runs these tests in the kernel guest
with the interpreter of its own environment, where nova 34.0.0 carries
nova-patches/34.0.0 and sriov-vif is installed from this repository. The
set-up is nova-compute's own (nova/cmd/compute.py): nova's configuration
files are parsed (nova.conf with [libvirt] use_os_vif_for_sriov, and
sriov-vif's file with [os_vif_sriov]), then os_vif.initialize() loads
the plugins, which registers [os_vif_sriov]; the privsep daemon is
started by helper_command with sriov-vif's file, the way a deployment
starts it. Outside the guest the session stops, as in tests/kernel.
"""

from __future__ import annotations

from collections.abc import Iterator
import dataclasses
from pathlib import Path

from nova import config as nova_config
from nova import objects as nova_objects
import os_vif
import pytest

from harness import netdevsim_host
from harness import privsep_daemon
from sriov_vif import privsep

# Stops the session outside the guest or without netdevsim.
from tests.kernel.conftest import kernel_test_guest  # noqa: F401


@dataclasses.dataclass(frozen=True)
class NovaCompute:
    """Where nova-compute's configuration points sriov-vif.

    workdir holds the sysfs-shaped tree (workdir/sys, the configured
    sysfs_root) and the journal (workdir/state, the configured
    state_path), as harness.netdevsim_host lays them out.
    """

    workdir: Path


@pytest.fixture(scope="session")
def nova_compute(
        tmp_path_factory: pytest.TempPathFactory) -> Iterator[NovaCompute]:
    workdir = tmp_path_factory.mktemp("nova-compute")
    sriov_vif_conf = netdevsim_host.NetdevsimHost(workdir).write_config()
    nova_conf = workdir / "nova.conf"
    nova_conf.write_text("[libvirt]\nuse_os_vif_for_sriov = true\n")
    nova_config.parse_args(
        ["nova-compute", "--config-file", str(nova_conf),
         "--config-file", sriov_vif_conf],
        init_rpc=False, configure_db=False)
    nova_objects.register_all()
    os_vif.initialize()
    with privsep_daemon.started(privsep.vif_plug,
                                config_file=sriov_vif_conf):
        yield NovaCompute(workdir=workdir)
