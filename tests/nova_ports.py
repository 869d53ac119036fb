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


"""Nova network-model VIFs as nova caches them for SR-IOV ports.

Shared by the conversion, CLI, nova integration and kernel-tier tests, so
that every one of them starts from the same realistic binding.
"""

import copy

PORT_ID = "3f8d1e52-7c1a-4b6e-9a57-0d2f4c8b9e11"
NETWORK_ID = "6c5e2a40-2b8e-4f0e-8d3c-1f9a7b6e5d42"
VF_ADDRESS = "0000:81:10.2"
PF_ADDRESS = "0000:81:00.1"

# binding:profile as nova writes it (nova/network/neutron.py
# _get_pci_device_profile, _get_vf_pci_device_profile; nova/accelerator/
# cyborg.py get_arq_pci_device_profile).
VF_PROFILE = {
    "pci_vendor_info": "8086:154c",
    "pci_slot": VF_ADDRESS,
    "physical_network": "physnet2",
    "pf_mac_address": "3c:fd:fe:aa:bb:cc",
    "vf_num": 2,
    "card_serial_number": "MT2113X00000",
}
PF_PROFILE = {
    "pci_vendor_info": "8086:1572",
    "pci_slot": PF_ADDRESS,
    "physical_network": "physnet2",
    "device_mac_address": "3c:fd:fe:aa:bb:cd",
}
ARQ_PROFILE = {
    "physical_network": "physnet2",
    "pci_slot": VF_ADDRESS,
    "arq_uuid": "1b6f3d2e-9c44-4e0a-8a5b-7d2c1e0f9a88",
}
PROFILE_OF_VNIC_TYPE = {
    "direct": VF_PROFILE,
    "macvtap": VF_PROFILE,
    "accelerator-direct": ARQ_PROFILE,
    "direct-physical": PF_PROFILE,
}
VIF_TYPE_OF_VNIC_TYPE = {
    "direct": "hw_veb",
    "macvtap": "hw_veb",
    "accelerator-direct": "hw_veb",
    "direct-physical": "hostdev_physical",
}


def nova_vif(vnic_type="direct", vlan="100", pci_slot=None, **overrides):
    """A VIF of nova's network info cache for a port bound to a VF or PF.

    Neutron's SR-IOV driver binds with details port_filter False,
    connectivity l2 and the VLAN as a string ("0" when flat); a port bound
    without the agent (direct-physical) is ACTIVE at once, the others
    become active when the SR-IOV agent reports them up.
    """
    vif = {
        "id": PORT_ID,
        "address": ("3c:fd:fe:aa:bb:cd" if vnic_type == "direct-physical"
                    else "fa:16:3e:11:22:33"),
        "network": {
            "id": NETWORK_ID,
            "bridge": None,
            "label": "sriov-net",
            "subnets": [{
                "cidr": "10.0.0.0/24",
                "dns": [{"address": "10.0.0.2", "type": "dns",
                         "version": 4, "meta": {}}],
                "gateway": {"address": "10.0.0.1", "type": "gateway",
                            "version": 4, "meta": {}},
                "ips": [{"address": "10.0.0.5", "type": "fixed",
                         "version": 4, "meta": {}, "floating_ips": []}],
                "routes": [],
                "version": 4,
                "meta": {"dhcp_server": "10.0.0.2"},
            }],
            "meta": {
                "injected": False,
                "tenant_id": "9b2f6a5c1d3e4f708192a3b4c5d6e7f8",
                "mtu": 9000,
                "physical_network": "physnet2",
                "tunneled": False,
            },
        },
        "type": VIF_TYPE_OF_VNIC_TYPE[vnic_type],
        "details": {"port_filter": False, "connectivity": "l2",
                    "vlan": vlan},
        "devname": "tap3f8d1e52-7c",
        "ovs_interfaceid": None,
        "qbh_params": None,
        "qbg_params": None,
        "active": vnic_type == "direct-physical",
        "vnic_type": vnic_type,
        "profile": copy.deepcopy(PROFILE_OF_VNIC_TYPE[vnic_type]),
        "preserve_on_delete": False,
        "delegate_create": True,
        "meta": {},
    }
    if pci_slot is not None:
        vif["profile"]["pci_slot"] = pci_slot
    vif.update(overrides)
    return vif
