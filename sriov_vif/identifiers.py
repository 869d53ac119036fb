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

"""The identifier patterns every module validates input with, once each.

Use them with ``fullmatch`` only: ``re.match`` with ``$`` accepts a
trailing newline (``"0000:81:10.2\\n"``), which would then reach a path,
a lock name or a netlink request.
"""

from __future__ import annotations

import re
from typing import Final

# os-vif's (oslo.versionedobjects') PCIAddress pattern, with the dot
# escaped and lower case only: sysfs and os-vif write it so, and the
# address names lock and journal files, so one VF has one spelling.
# Groups: domain, bus, slot, function.
PCI_ADDRESS_RE: Final = re.compile(
    r"([0-9a-f]{4}):([0-9a-f]{2}):([01][0-9a-f])\.([0-7])")
# A UUID in its usual hyphenated groups, either case.
UUID_RE: Final = re.compile(
    r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}",
    re.IGNORECASE)


def is_pci_address(text: object) -> bool:
    """True for a canonical (lower-case) PCI address, nothing else."""
    return isinstance(text, str) and bool(PCI_ADDRESS_RE.fullmatch(text))


def is_uuid(text: object, bare: bool = False) -> bool:
    """True for a hyphenated UUID; with bare, 32 hex digits too (libvirt)."""
    if not isinstance(text, str):
        return False
    if bare and len(text) == 32 and "-" not in text:
        text = "-".join((text[:8], text[8:12], text[12:16], text[16:20],
                         text[20:]))
    return bool(UUID_RE.fullmatch(text))
