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

"""iproute2, sharing no code with us: the independent reader of links,
and the maker of stand-in VF netdevs."""

from __future__ import annotations

import json
import subprocess
from typing import Any


def link_json(ifname: str, details: bool = False) -> dict[str, Any]:
    """`ip -j [-d] link show IFNAME`, parsed."""
    argv = ["ip", "-j"] + (["-d"] if details else []) + [
        "link", "show", "dev", ifname]
    result = subprocess.run(argv, capture_output=True, text=True, check=True)
    links: list[dict[str, Any]] = json.loads(result.stdout)
    assert len(links) == 1, links
    return links[0]


def add_veth(name: str) -> str:
    """A veth pair NAME / NAMEp: a stand-in for a VF's own netdev.

    netdevsim VFs have no netdev of their own; a direct (macvtap) VIF
    needs one, and the sysfs tree names this veth as the VF's.
    """
    subprocess.run(["ip", "link", "add", "name", name, "type", "veth",
                    "peer", "name", name + "p"], check=True)
    return name


def mac_and_up(ifname: str) -> tuple[str, bool]:
    """A netdev's MAC and whether it is administratively up."""
    link = link_json(ifname)
    return link["address"], "UP" in link["flags"]
