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

# Installs the Debian packages of bindep.txt's profiles named as arguments
# (none: the default profile), as root, and the tools the test and demo
# commands run from: bindep and tox, in a virtualenv of their own outside
# the repository, so that Debian's Python stays untouched.
#
#   tools/install-packages.sh test guest
#
# Environment:
#   SRIOV_VIF_TOOLS_VENV  where bindep and tox are installed
#                         (default: ~/.cache/sriov-vif/tools-venv)

set -euo pipefail

TOOLS_VENV=${SRIOV_VIF_TOOLS_VENV:-$HOME/.cache/sriov-vif/tools-venv}

cd "$(dirname "${BASH_SOURCE[0]}")/.."

if [[ $(id -u) -ne 0 ]]; then
    echo "tools/install-packages.sh must run as root: it installs" \
        "Debian packages" >&2
    exit 2
fi

export DEBIAN_FRONTEND=noninteractive
apt_options=(-q -o DPkg::Lock::Timeout=600 -o Acquire::Retries=3)

function apt_install {
    if ! apt-get "${apt_options[@]}" install -y --no-install-recommends \
            "$@"; then
        echo "apt-get install failed for: $*" >&2
        exit 2
    fi
}

if ! apt-get "${apt_options[@]}" update; then
    echo "apt-get update failed: check the network and" \
        "/etc/apt/sources.list" >&2
    exit 2
fi

# Debian's python3 makes virtualenvs only with python3-venv.
if [[ ! -x $TOOLS_VENV/bin/tox || ! -x $TOOLS_VENV/bin/bindep ]]; then
    if ! python3 -c 'import ensurepip' 2>/dev/null; then
        apt_install python3-venv
    fi
    python3 -m venv "$TOOLS_VENV"
    "$TOOLS_VENV/bin/pip" install -q --upgrade pip
    "$TOOLS_VENV/bin/pip" install -q "tox>=4.6.0" "bindep>=2.11.0"
fi

# bindep -b lists the missing packages, one a line, and exits 1 when
# any is missing; anything else it prints is an error.
status=0
missing=$("$TOOLS_VENV/bin/bindep" -b -f bindep.txt "$@") || status=$?
if [[ $status -gt 1 ]]; then
    echo "bindep failed ($status): $missing" >&2
    exit 2
fi
if [[ -n $missing ]]; then
    # shellcheck disable=SC2086
    apt_install $missing
fi
echo "bindep.txt profiles '${*:-default}': installed"
