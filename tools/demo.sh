#!/usr/bin/env bash
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

# The demonstration on a real kernel, from a fresh clone, as root: installs
# the Debian packages of bindep.txt's guest profile and tox
# (tools/install-packages.sh), then runs harness/demo.py through tox
# (tox -e demo), which boots Debian's kernel with netdevsim VFs under QEMU
# and plugs a hostdev and a direct VIF through os_vif.plug.

set -euo pipefail

TOOLS_VENV=${SRIOV_VIF_TOOLS_VENV:-$HOME/.cache/sriov-vif/tools-venv}

cd "$(dirname "${BASH_SOURCE[0]}")/.."
SRIOV_VIF_TOOLS_VENV=$TOOLS_VENV tools/install-packages.sh guest
exec "$TOOLS_VENV/bin/tox" -q -e demo
