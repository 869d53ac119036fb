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

# Every test tier of sriov-vif, on a fresh Debian 12 machine, as root.
#
# Installs the Debian packages of bindep.txt's test and guest profiles and
# tox (tools/install-packages.sh), then runs each tier, even after one
# fails, and exits non-zero if any failed.
#
# Environment:
#   SRIOV_VIF_TOOLS_VENV  where tox and bindep are installed
#                         (default: ~/.cache/sriov-vif/tools-venv)
#   SRIOV_VIF_GUEST_DIR   kernel guest cache
#                         (default: ~/.cache/sriov-vif/kernel-guest)

set -euo pipefail

TIERS=(pep8 py3 functional kernel nova docs genconfig)
TOOLS_VENV=${SRIOV_VIF_TOOLS_VENV:-$HOME/.cache/sriov-vif/tools-venv}

cd "$(dirname "${BASH_SOURCE[0]}")/.."

function banner {
    echo
    echo "=================================================================="
    echo "== $*"
    echo "=================================================================="
}

if [[ $(id -u) -ne 0 ]]; then
    echo "tools/run-all-tests.sh must run as root: it installs Debian" \
        "packages, and the functional tier changes network namespaces." >&2
    exit 2
fi

banner "Debian packages (bindep.txt: test guest) and tox"
SRIOV_VIF_TOOLS_VENV=$TOOLS_VENV tools/install-packages.sh test guest
"$TOOLS_VENV/bin/tox" --version

failed=()
for tier in "${TIERS[@]}"; do
    banner "tier $tier: tox -e $tier"
    started=$SECONDS
    if "$TOOLS_VENV/bin/tox" -e "$tier"; then
        echo "== tier $tier passed in $((SECONDS - started)) s"
    else
        echo "== tier $tier FAILED after $((SECONDS - started)) s"
        failed+=("$tier")
    fi
done

banner "summary after $SECONDS s"
if [[ ${#failed[@]} -gt 0 ]]; then
    echo "FAILED tiers: ${failed[*]} (passed: the others of ${TIERS[*]})"
    exit 1
fi
echo "all tiers passed: ${TIERS[*]}"
