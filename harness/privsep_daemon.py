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

"""A privsep daemon started the way a deployment starts it.

helper_command in the context's config section names this environment's
privsep-helper and oslo.privsep runs it and talks to it over its socket,
as nova-compute's would through sudo or rootwrap. Started eagerly, so that
a daemon that cannot start fails where it is asked for, with oslo.privsep's
own error, and in the network namespace of the caller.
"""

from __future__ import annotations

from collections.abc import Iterator
import contextlib
from pathlib import Path
import shlex
import sys

from oslo_config import cfg
from oslo_privsep import priv_context


def helper_command(config_file: str | None = None, **env: str) -> str:
    """This environment's privsep-helper, with env set for the daemon.

    config_file is the daemon's: oslo.privsep passes none to a
    helper_command, and the daemon reads [os_vif_sriov] sysfs_root from it.
    """
    helper = Path(sys.prefix) / "bin" / "privsep-helper"
    if not helper.is_file():
        raise FileNotFoundError(
            f"{helper} is missing: oslo.privsep is not installed in "
            f"{sys.prefix}")
    assignments = [f"{name}={value}" for name, value in sorted(env.items())]
    command = [str(helper)]
    if config_file is not None:
        command += ["--config-file", config_file]
    if assignments:
        command = ["env", *assignments, *command]
    return shlex.join(command)


@contextlib.contextmanager
def started(context: priv_context.PrivContext,
            config_file: str | None = None,
            **env: str) -> Iterator[priv_context.PrivContext]:
    """Start context's daemon (stopping one left running), stop it after."""
    command = helper_command(config_file, **env)
    context.stop()
    cfg.CONF.set_override("helper_command", command,
                          group=context.cfg_section)
    try:
        context.start(priv_context.Method.ROOTWRAP)
        yield context
    finally:
        context.stop()
        cfg.CONF.clear_override("helper_command", group=context.cfg_section)
