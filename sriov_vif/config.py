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

"""Options of the sriov plugin, registered by os-vif in [os_vif_sriov].

os-vif registers a plugin's CONFIG_OPTS itself under os_vif_<entry point>;
list_opts is for oslo-config-generator and the docs, and must import
without libvirt, root or hardware.
"""

from __future__ import annotations

from oslo_config import cfg
from oslo_privsep import priv_context

GROUP = "os_vif_sriov"
PRIVSEP_GROUP = "sriov_vif_privileged"

CONFIG_OPTS: list[cfg.Opt] = [
    cfg.StrOpt(
        "sysfs_root",
        default="/sys",
        help="Directory where sysfs is mounted. VFs and their PFs are "
             "discovered under <sysfs_root>/bus/pci/devices. Change it only "
             "to point the plugin at a prepared tree (tests, the demo)."),
    cfg.StrOpt(
        "state_path",
        default="/var/lib/sriov_vif",
        help="Directory where the original state of every VF the plugin "
             "changed is journaled, one file per VF, so that unplug and "
             "'sriov-vif restore' can put it back after a crash or restart "
             "of nova-compute. Must survive restarts of the service and "
             "belong to the user nova-compute runs as; records are "
             "readable by that user only."),
    cfg.StrOpt(
        "unsupported_attribute_action",
        default="fail",
        choices=[
            ("fail", "Fail the plug when the PF driver cannot apply a "
                     "requested VF attribute."),
            ("warn", "Log a warning, skip the attribute the PF driver cannot "
                     "apply and apply the rest."),
        ],
        help="What to do when a port asks for a VF attribute that the PF's "
             "driver does not support (link state on igb, minimum rate on "
             "some Intel NICs, ...)."),
    cfg.StrOpt(
        "released_vf_mac",
        default="zero",
        choices=[
            ("zero", "Set the VF's MAC to 00:00:00:00:00:00 on unplug, as "
                     "nova does, so a MAC left on a free VF cannot attract "
                     "traffic meant for a port that moved elsewhere."),
            ("restore", "Put back the MAC the VF had before it was plugged."),
        ],
        help="Which MAC a VF gets when it is unplugged."),
]


def list_opts() -> list[tuple[str, list[cfg.Opt]]]:
    return [
        (GROUP, CONFIG_OPTS),
        (PRIVSEP_GROUP, list(priv_context.OPTS)),
    ]
