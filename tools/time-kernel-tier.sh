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

# Times the kernel tier the way README.rst reports it: once on an idle
# machine, once with a CPU hog (one busy loop, "yes > /dev/null") keeping
# one of the two cores busy beside it. Run tools/run-all-tests.sh (or at
# least tools/install-packages.sh test guest) first; nothing else should
# be running.

set -euo pipefail

TOOLS_VENV=${SRIOV_VIF_TOOLS_VENV:-$HOME/.cache/sriov-vif/tools-venv}

cd "$(dirname "${BASH_SOURCE[0]}")/.."

# Builds the env and the guest kernel, so neither is timed.
"$TOOLS_VENV/bin/tox" -q -e kernel --notest
.tox/kernel/bin/python -m harness.kernel_guest prepare

results=()
for mode in idle hog; do
    hog=
    if [[ $mode == hog ]]; then
        yes > /dev/null &
        hog=$!
    fi
    started=$SECONDS
    status=0
    "$TOOLS_VENV/bin/tox" -q -e kernel > "/tmp/kernel-tier-$mode.log" 2>&1 \
        || status=$?
    elapsed=$((SECONDS - started))
    if [[ -n $hog ]]; then
        kill "$hog"
    fi
    results+=("kernel tier, $mode: $elapsed s, exit status $status" \
        "($(grep -E '^[0-9]+ passed|failed' "/tmp/kernel-tier-$mode.log" \
        | tail -1))")
done
printf '%s %s\n' "${results[@]}"
