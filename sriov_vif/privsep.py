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

"""The one privsep context of sriov-vif.

Only CAP_NET_ADMIN: every privileged thing this library does is a netlink
request that changes a link (VF attributes on the PF, the MAC and state of
a VF netdev). Reading needs no capability at all and is done in the
caller's process (sriov_vif.rtnl), which must share the daemon's network
namespace, as nova-compute and the daemon it starts do.

The prefix is the one module that may declare entrypoints,
sriov_vif.privileged: oslo.privsep refuses a decorated function of any
other module (it compares the function's module name with the prefix),
so nothing else in the package, a test helper included, can add to the
privileged surface. The pypath names this object as rootwrap filters
and sudoers rules spell it: it must not change.
"""

from oslo_privsep import capabilities as caps
from oslo_privsep import priv_context

PRIVILEGED_MODULE = "sriov_vif.privileged"
# Seconds a call may wait for the daemon's answer. When the daemon dies
# with a request outstanding, oslo.privsep's reader thread can die with it
# and never wake the caller: without a bound, a plug (and nova-compute's
# thread) would wait forever (seen in the kernel tier's SIGKILL test). One
# netlink request takes milliseconds, a few seconds under emulation.
CALL_TIMEOUT = 30.0

vif_plug = priv_context.PrivContext(
    PRIVILEGED_MODULE,
    cfg_section="sriov_vif_privileged",
    pypath=__name__ + ".vif_plug",
    capabilities=[caps.CAP_NET_ADMIN],
    timeout=CALL_TIMEOUT,
)

# The daemon imports the entrypoints (and everything they use) here, as
# root, before oslo.privsep drops to [sriov_vif_privileged] user: a daemon
# running as nova's user then needs no read access to the code, and an
# import error shows when the daemon starts, not at the first request.
from sriov_vif import privileged  # noqa: E402,F401,I202
