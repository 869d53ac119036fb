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
# Installs the Debian packages the tiers need (the kernel tier installs its
# own QEMU and kernel packages: sriov_vif/kernel_guest.py), puts tox in a
# virtualenv of its own (outside the repository, so Debian's Python stays
# untouched), then runs each tier, even after one fails, and exits non-zero
# if any failed.
#
# Environment:
#   SRIOV_VIF_TOOLS_VENV  where tox is installed
#                         (default: ~/.cache/sriov-vif/tools-venv)
#   SRIOV_VIF_GUEST_DIR   kernel guest cache
#                         (default: ~/.cache/sriov-vif/kernel-guest)

set -euo pipefail

TIERS=(pep8 py3 functional kernel nova docs genconfig)
# git: pbr takes the version from the repository's history.
# libvirt-dev, pkg-config, gcc, python3-dev: libvirt-python builds from
# source. libvirt-clients: virt-xml-validate and virsh; the test:///default
# driver is built into libvirt0, so no daemon is needed. libxml2-utils:
# xmllint, which virt-xml-validate runs. libvirt-daemon-driver-qemu and
# qemu-system-x86: libvirt's embedded QEMU driver, the strictest judge of
# our XML and the only driver that can attach devices.
# iproute2: ip, the functional tier's independent reader.
# patch: the nova tier applies nova-patches/ to nova.
# python3-venv: the virtualenv tox runs from.
DEBIAN_PACKAGES=(git gcc pkg-config python3-dev python3-venv libvirt-dev
    libvirt-clients libxml2-utils libvirt-daemon-driver-qemu
    qemu-system-x86 iproute2 patch)
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

banner "Debian packages: ${DEBIAN_PACKAGES[*]}"
export DEBIAN_FRONTEND=noninteractive
apt_options=(-q -o DPkg::Lock::Timeout=600 -o Acquire::Retries=3)
if ! apt-get "${apt_options[@]}" update; then
    echo "apt-get update failed: check the network and" \
        "/etc/apt/sources.list" >&2
    exit 2
fi
if ! apt-get "${apt_options[@]}" install -y --no-install-recommends \
        "${DEBIAN_PACKAGES[@]}"; then
    echo "apt-get install failed for: ${DEBIAN_PACKAGES[*]}" >&2
    exit 2
fi

banner "tox in $TOOLS_VENV"
if [[ ! -x $TOOLS_VENV/bin/tox ]]; then
    python3 -m venv "$TOOLS_VENV"
    "$TOOLS_VENV/bin/pip" install -q --upgrade pip
    "$TOOLS_VENV/bin/pip" install -q "tox>=4.6.0"
fi
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
