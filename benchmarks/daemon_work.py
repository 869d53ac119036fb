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


"""sriov-vif's daemon-side work, timed inside a privsep daemon.

A plug's privileged round trip is oslo.privsep's handling of the call
(the message both ways, the daemon's threads) plus what change_vfs does
in the daemon. The client cannot see where one ends: this entrypoint of
the floor's context runs change_vfs's own function (not its privsep
wrapper) in the benchmark's daemon, which has the same capability and
configuration as sriov-vif's, and returns the milliseconds it took
there. What a round trip costs beyond that is oslo.privsep's.

It exists only inside the benchmark's guest.
"""

from __future__ import annotations

import time
from typing import Any
from typing import Final

from benchmarks import floor
from sriov_vif import privileged

# Runs straight after the first, of which the fastest is the warm one.
WARM_RUNS: Final = 4


@floor.floor_pctxt.entrypoint
def change_vfs_in_daemon(pf_address: str, pf_ifname: str,
                         vfs: list[dict[str, Any]]) -> list[float]:
    """privileged.change_vfs's work in this daemon; [first, warm] in ms.

    The first run is what a plug's round trip pays: the daemon's code
    and data as the switch from the caller's process left them. The
    fastest of WARM_RUNS more, straight after, runs them warm: the
    difference is what the first pays for coming cold, which emulation
    makes large.
    """
    # An oslo.privsep entrypoint is a partial of the context's wrapper
    # and the function it wraps.
    function = privileged.change_vfs.args[0]
    times = []
    for _run in range(1 + WARM_RUNS):
        started = time.perf_counter()
        function(pf_address, pf_ifname, vfs)
        times.append((time.perf_counter() - started) * 1000)
    return [times[0], min(times[1:])]
