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

"""A process set up as nova-compute sets itself up: its mode and its user.

nova 34.0.0's nova-compute starts with ``monkey_patch.patch(backend=
'threading')`` (nova/cmd/compute.py, its first line), before it imports
anything else. nova/monkey_patch.py then either monkey-patches eventlet
(OS_NOVA_DISABLE_EVENTLET_PATCHING set to anything but 1/true/yes, or
[DEFAULT] concurrency_backend = eventlet): ``eventlet.monkey_patch()``
and oslo.service's EVENTLET backend; or runs with native threads (the
default): it poisons any later import of eventlet (poison_eventlet) and
selects oslo.service's THREADING backend. enter_mode() does exactly
those calls, so that the plugin is tested in both processes nova-compute
can be. It must run before anything else is imported (this module
imports nothing at its top but the standard library).

nova-compute runs as its own user, without capabilities. A test process
can only start as root here (its Python lives under /root), so it
imports what it uses and starts its privsep daemon as root (as sudo
would), then drop_to() the user, with an empty capability set.
"""

from __future__ import annotations

import os
import sys
from typing import Any

MODES = ("eventlet", "native")


class _PoisonEventletImport:
    """nova.monkey_patch.poison_eventlet's import hook."""

    def find_spec(self, fullname: str, path: Any,
                  target: Any = None) -> None:
        if fullname.startswith("eventlet"):
            raise ImportError("The service started in native threading "
                              "mode so it should not import eventlet")


def enter_mode(mode: str) -> None:
    """What nova.monkey_patch.patch() does for mode, in its order."""
    if mode == "eventlet":
        import eventlet
        eventlet.monkey_patch()
        import oslo_service.backend as service
        service.init_backend(service.BackendType.EVENTLET)
    elif mode == "native":
        if "eventlet" in sys.modules:
            raise RuntimeError("eventlet was imported before the native "
                               "threading mode was entered")
        sys.meta_path.insert(0, _PoisonEventletImport())
        import oslo_service.backend as service
        service.init_backend(service.BackendType.THREADING)
    else:
        raise ValueError(f"mode must be one of {MODES}, not {mode!r}")


def describe_mode() -> dict[str, Any]:
    """What the process really runs on: green or native sockets, threads.

    Under eventlet, threading.Thread stays the class of threading, but
    starts green threads: its _start_new_thread is eventlet's.
    """
    import socket
    import threading
    start = threading._start_new_thread  # type: ignore[attr-defined]
    return {"socket": socket.socket.__module__,
            "threads": start.__module__,
            "eventlet_loaded": "eventlet" in sys.modules}


def capabilities() -> int:
    """This process's effective capability set (CapEff), as a bit mask."""
    with open("/proc/self/status", encoding="utf-8") as status:
        for line in status:
            if line.startswith("CapEff:"):
                return int(line.split()[1], 16)
    raise RuntimeError("no CapEff in /proc/self/status")


def drop_to(uid: int, gid: int) -> None:
    """Become uid:gid for good; a non-root uid keeps no capability."""
    os.setgroups([])
    os.setresgid(gid, gid, gid)
    os.setresuid(uid, uid, uid)
    if capabilities() != 0:
        raise RuntimeError("capabilities survived the drop to "
                           f"uid {uid}")
