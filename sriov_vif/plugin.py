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

"""The os-vif plugin `sriov`: VIFHostDevice and VIFDirect on SR-IOV VFs.

Construction must stay cheap and harmless: os-vif instantiates every
plugin at initialize(), and so does oslo-config-generator, on machines with
no root, no hardware and no network.
"""

from __future__ import annotations

from os_vif import objects as osv_objects
from os_vif import plugin as osv_plugin
from os_vif.objects import host_info
from os_vif.objects import vif as osv_vif

from sriov_vif import config
from sriov_vif import objects

PLUGIN_NAME = "sriov"

SUPPORTED_VIFS = (osv_vif.VIFHostDevice, osv_vif.VIFDirect)
SUPPORTED_PORT_PROFILES = (
    objects.VIFPortProfileSRIOV,
    osv_vif.VIFPortProfile8021Qbh,
    osv_vif.VIFPortProfile8021Qbg,
)


class SriovPlugin(osv_plugin.PluginBase):
    """Configures the VF behind a VIF on its PF and restores it on unplug."""

    CONFIG_OPTS = config.CONFIG_OPTS

    def describe(self) -> osv_objects.host_info.HostPluginInfo:
        profiles = [
            host_info.HostPortProfileInfo(
                profile_object_name=cls.__name__,
                min_version="1.0",
                max_version=cls.VERSION,
            )
            for cls in SUPPORTED_PORT_PROFILES
        ]
        return host_info.HostPluginInfo(
            plugin_name=PLUGIN_NAME,
            vif_info=[
                host_info.HostVIFInfo(
                    vif_object_name=cls.__name__,
                    min_version="1.0",
                    max_version=cls.VERSION,
                    supported_port_profiles=profiles,
                )
                for cls in SUPPORTED_VIFS
            ],
        )

    def plug(self, vif: osv_vif.VIFBase,
             instance_info: osv_objects.instance_info.InstanceInfo) -> None:
        raise NotImplementedError("plug lands with issue 6")

    def unplug(self, vif: osv_vif.VIFBase,
               instance_info: osv_objects.instance_info.InstanceInfo) -> None:
        raise NotImplementedError("unplug lands with issue 6")
