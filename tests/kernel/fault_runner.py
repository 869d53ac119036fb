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

"""SIGKILL `sriov-vif plug` or its privsep daemon at random moments.

Run by tests/kernel/test_faults.py as a process of its own:

    python -m tests.kernel.fault_runner SPEC.json

Every operation is `sriov-vif` itself (cli.main, as root, forking its own
privsep daemon) in a child forked from this process, which has imported
everything once: a fresh process per operation at the cost of a fork,
not of importing oslo and os-vif again under software emulation. Each
round picks a VF and a victim (the plug process, or its privsep daemon
once it is up), kills it after a random delay within the time a plug
takes, then either replugs and unplugs the VIF (nova-compute restarting)
or runs `sriov-vif restore` on the VF (the operator). The rounds stop at
a round count or a time budget, whichever comes first. Prints one JSON
line: what was done, for the test to assert on.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
import random
import signal
import sys
import time
from typing import Any
import warnings

warnings.filterwarnings("ignore")

import os_vif  # noqa: E402  (after the warning filter)

from sriov_vif import cli  # noqa: E402

# An operation that takes longer than this is stuck: fail, do not hang.
OPERATION_TIMEOUT = 120.0
# oslo.privsep 3.12 can leave a client waiting forever when its daemon is
# killed during the start handshake: the reader thread dies with
# ConnectionResetError instead of seeing EOF and never wakes the ping
# (privsep.CALL_TIMEOUT bounds calls, not the handshake). A plug whose
# daemon was killed and that is still running after this long is ended
# here, as an operator would restart a stuck nova-compute, and the round
# goes on to the repair, which is what the test proves.
STUCK_AFTER = 40.0
# Every operation's stderr, for the test to show when something fails.
LOG_FILE = os.devnull


def _children(pid: int) -> list[int]:
    """Processes whose parent is pid, as its threads' children files say.

    One small read per thread of pid: scanning every /proc/*/stat under
    emulation took longer than a plug's privsep daemon now lives, and
    the daemon could come and go unseen.
    """
    children = []
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except FileNotFoundError:
        return []
    for task in tasks:
        try:
            text = Path(f"/proc/{pid}/task/{task}/children").read_text()
        except OSError:
            continue
        children += [int(child) for child in text.split()]
    return children


def _exited(pid: int) -> bool:
    """pid (our child) has exited; it stays reapable."""
    info = os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
    return info is not None


def _wait(pid: int, deadline: float, stuck_ok: bool = False) -> int | None:
    """pid's exit status; None if stuck_ok and it ran past deadline."""
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            if stuck_ok:
                return None
            raise RuntimeError(f"operation {pid} still running after "
                               f"{OPERATION_TIMEOUT} s")
        time.sleep(0.005)


def _start(argv: list[str]) -> int:
    """Fork a child that runs `sriov-vif ARGV` and exits with its status."""
    sys.stdout.flush()
    pid = os.fork()
    if pid == 0:  # pragma: no cover (child)
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            log = os.open(LOG_FILE, os.O_WRONLY | os.O_APPEND | os.O_CREAT,
                          0o600)
            os.dup2(devnull, 1)
            os.dup2(log, 2)
            os.write(2, f"--- {os.getpid()}: sriov-vif {argv[2:]}\n"
                     .encode())
            status = cli.main(argv)
        except BaseException:
            status = 99
        os._exit(status)
    return pid


def run(argv: list[str]) -> int | None:
    return _wait(_start(argv), time.monotonic() + OPERATION_TIMEOUT)


def _daemon_of(pid: int, deadline: float) -> int | None:
    """The plug's privsep daemon (its forked child), once it exists."""
    while time.monotonic() < deadline:
        children = _children(pid)
        if children:
            return children[0]
        if _exited(pid):
            return None
        time.sleep(0.002)
    return None


def main(spec_path: str) -> None:
    global LOG_FILE
    spec = json.loads(Path(spec_path).read_text())
    LOG_FILE = spec["log_file"]
    conf = ["--config-file", spec["config_file"]]
    rng = random.Random(spec["seed"])
    vifs: dict[str, str] = spec["vifs"]  # PCI address -> VIF JSON file
    addresses = sorted(vifs)
    # Loaded once here, inherited by every operation's fork.
    os_vif.initialize()
    started = time.monotonic()

    # How long a whole plug takes here: the range of the random moments.
    first = addresses[0]
    t0 = time.monotonic()
    assert run([*conf, "plug", vifs[first]]) == 0
    plug_seconds = time.monotonic() - t0
    assert run([*conf, "unplug", vifs[first]]) == 0

    rounds: list[dict[str, Any]] = []
    for number in range(spec["max_rounds"]):
        if (number >= spec["min_rounds"]
                and time.monotonic() - started > spec["budget_seconds"]):
            break
        address = rng.choice(addresses)
        victim = "plug" if number % 2 == 0 else "daemon"
        delay = rng.uniform(0, 0.9 * plug_seconds)
        pid = _start([*conf, "plug", vifs[address]])
        t0 = time.monotonic()
        target: int | None = pid
        if victim == "daemon":
            target = _daemon_of(pid, t0 + OPERATION_TIMEOUT)
        time.sleep(max(0.0, delay - (time.monotonic() - t0)))
        killed = False
        if target is not None:
            try:
                os.kill(target, signal.SIGKILL)
                killed = True
            except ProcessLookupError:
                pass
        if victim == "daemon" and killed:
            status = _wait(pid, time.monotonic() + STUCK_AFTER,
                           stuck_ok=True)
        else:
            status = _wait(pid, time.monotonic() + OPERATION_TIMEOUT)
        if number % 4 in (0, 1):
            # nova-compute restarted: it replugs, later the VIF goes away
            repair = [run([*conf, "plug", vifs[address]]),
                      run([*conf, "unplug", vifs[address]])]
            how = "replug+unplug"
        else:
            repair = [run([*conf, "restore", address])]
            how = "restore"
        rounds.append({"vf": address, "victim": victim,
                       "delay": round(delay, 3), "killed": killed,
                       # None: stuck after its daemon died, ended here
                       "plug_status": status, "repair": how,
                       "repair_status": repair})
    print(json.dumps({"plug_seconds": round(plug_seconds, 3),
                      "seconds": round(time.monotonic() - started, 1),
                      "rounds": rounds}), flush=True)


if __name__ == "__main__":
    main(sys.argv[1])
