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

"""os_vif.plug and unplug in a process set up as nova-compute is.

Run by tests/kernel/test_nova_compute_modes.py, one process per mode:

    python -m tests.kernel.nova_compute_runner MODE SPEC.json

MODE is eventlet or native (harness/nova_compute.py: what nova 34's
nova/monkey_patch.py does, before anything else is imported). The
process loads os-vif, starts its privsep daemon through the configured
helper_command (as nova-compute does through sudo), becomes nova's user
with no capability, then plugs every VIF of the spec at once, each in a
thread of the mode (green or native), as nova-compute's threads do for
several instances. It prints one JSON line and waits for a line on
stdin (the test reads the VFs back meanwhile), then unplugs them all at
once and prints a second line.
"""

from __future__ import annotations

import sys

from harness import nova_compute

if __name__ == "__main__":
    nova_compute.enter_mode(sys.argv[1])

import json  # noqa: E402  (after the mode, as in nova-compute)
from pathlib import Path  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
from typing import Any  # noqa: E402
import warnings  # noqa: E402

warnings.filterwarnings("ignore")

import os_vif  # noqa: E402
from os_vif.objects import base as osv_base  # noqa: E402
from os_vif.objects import instance_info as osv_instance  # noqa: E402
from oslo_config import cfg  # noqa: E402
from oslo_privsep import priv_context  # noqa: E402

from sriov_vif import discovery  # noqa: E402
from sriov_vif import pf_drivers  # noqa: E402
from sriov_vif import privsep  # noqa: E402
from sriov_vif import vf_config  # noqa: E402

INSTANCE = osv_instance.InstanceInfo(
    uuid="0f0e0d0c-1111-4222-8333-444455556666", name="instance-modes")


def _all_at_once(operation: Any, vifs: list[Any]) -> dict[str, Any]:
    """operation(vif) for every VIF, each in a thread of its own."""
    errors: list[str] = []

    def run(vif: Any) -> None:
        try:
            operation(vif, INSTANCE)
        except Exception as exc:
            errors.append(f"{vif.id}: {exc!r}")

    threads = [threading.Thread(target=run, args=(vif,)) for vif in vifs]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return {"errors": errors, "count": len(vifs),
            "seconds": round(time.monotonic() - started, 3)}


def main(spec_path: str) -> None:
    spec = json.loads(Path(spec_path).read_text())
    cfg.CONF(["--config-file", spec["config_file"]], project="nova")
    os_vif.initialize()
    vifs = [osv_base.VersionedObject.obj_from_primitive(primitive)
            for primitive in spec["vifs"]]
    # What reads files that nova's user cannot read here (entry points,
    # modules imported on first use), done once before the drop: this
    # Python and its packages live under /root.
    pf_drivers.load("netdevsim")
    vf = discovery.find_vf(cfg.CONF.os_vif_sriov.sysfs_root,
                           vifs[0].dev_address)
    vf_config.vf_state_now(vf)
    # nova-compute asks sudo for its daemon; this process is still root
    privsep.vif_plug.start(priv_context.Method.ROOTWRAP)
    nova_compute.drop_to(spec["uid"], spec["uid"])
    report = {"mode": sys.argv[1], "capabilities":
              nova_compute.capabilities(), **nova_compute.describe_mode()}
    print(json.dumps({**report, **_all_at_once(os_vif.plug, vifs)}),
          flush=True)
    sys.stdin.readline()
    print(json.dumps(_all_at_once(os_vif.unplug, vifs)), flush=True)


if __name__ == "__main__":
    main(sys.argv[2])
