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

"""The test harness of sriov-vif: never installed, never on a compute node.

The demo, the test tiers and the benchmarks share it: a Debian kernel with
netdevsim VFs under QEMU (kernel_guest), sysfs-shaped trees that give
netdevsim VFs PCI addresses (sysfs_tree), the two put together with the
plugin pointed at them (netdevsim_host), the privsep daemon started the
way a deployment starts it (privsep_daemon), and readers that share no
code with sriov_vif (iproute, rtnl_readback). It installs nothing: what
it lacks it names, and the test and demo commands install it.
"""
