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

# The nova tier (tox -e nova): nova's own tests, with the nova change of
# nova-patches/<version>/ applied to nova as installed from the package
# index, and sriov-vif installed from this repository.
#
# Usage: tools/nova-tier.sh PYTHON [STAGE...]
#   PYTHON is the interpreter of an environment of the tier's own (tox's
#   envpython); nova, its test requirements, sriov-vif (not editable) and
#   virtme-ng are installed into it with nova-patches/<version>/
#   constraints.txt. nova is always reinstalled unpatched first, so the
#   patch is applied to a pristine nova on every run; any fuzz or reject
#   fails the tier.
#   STAGEs (default: all four, in this order): unit, functional, parity,
#   kernel; e.g. tox -e nova -- kernel.
#
# Runs, with stestr at concurrency 2 (CPU cores are shared):
#   switch on  ([libvirt] use_os_vif_for_sriov = true, through oslo.config's
#              OS_LIBVIRT__USE_OS_VIF_FOR_SRIOV environment source, which
#              nova's test config fixture keeps and self.flags overrides):
#              test_vif.py and the SR-IOV tests of test_driver.py
#              (DRIVER_TESTS below; stage unit), the functional classes
#              SRIOVServersTest and SRIOVAttachDetachTest of
#              test_pci_sriov_servers.py (stage functional), with
#              [os_vif_sriov] state_path and sysfs_root in a temporary
#              directory; then sriov-vif's tests/nova (XML parity table;
#              stage parity).
#   switch off: test_vif.py and the same functional classes.
#   kernel:    sriov-vif's tests/nova_kernel, in the netdevsim kernel
#              guest (harness/kernel_guest.py, one boot of its own): nova's
#              VIF driver plugs real ports on netdevsim VFs, with the switch
#              on in the nova.conf the tests write.
# Every run must pass with no test skipped (a skip here is a missing
# dependency) and at least one test run.

set -euo pipefail

NOVA_VERSION=34.0.0
PYTHON=${1:?usage: tools/nova-tier.sh PYTHON [STAGE...]}
ALL_STAGES=(unit functional parity kernel)
STAGES=("${@:2}")
if [[ ${#STAGES[@]} -eq 0 ]]; then
    STAGES=("${ALL_STAGES[@]}")
fi
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PATCHES=$REPO/nova-patches/$NOVA_VERSION
CONSTRAINTS=$PATCHES/constraints.txt
# The kernel stage's guest run took 155 s idle and 147 s and 257 s beside
# a CPU hog (yes > /dev/null) on 2 shared cores, about half of it booting
# and importing nova under software emulation: the timeout is over twice
# the slowest.
KERNEL_TIMEOUT=600

for stage in "${STAGES[@]}"; do
    if [[ " ${ALL_STAGES[*]} " != *" $stage "* ]]; then
        echo "nova tier: unknown stage $stage (stages: ${ALL_STAGES[*]})" >&2
        exit 2
    fi
done

# wanted STAGE: whether this run includes STAGE
function wanted {
    [[ " ${STAGES[*]} " == *" $1 "* ]]
}

VIF_TESTS='nova\.tests\.unit\.virt\.libvirt\.test_vif\.'
# test_driver.py: every test whose name says it handles SR-IOV ports,
# direct passthrough, PCI devices or VIF plugging (47 of its tests).
DRIVER_TESTS='nova\.tests\.unit\.virt\.libvirt\.test_driver\.[A-Za-z]+\.test_[a-z0-9_]*(sriov|hw_veb|hostdev|direct_passthrough|direct_physical|macvtap|vnic|plug_vifs|unplug_vifs|vifs_xml|dummy_vif|vif_errors|vif_model|attach_interface|detach_interface|detach_pci_devices|interfaces|suspend|resume_guest_after_snapshot|pci_devices)'
FUNCTIONAL_TESTS='nova\.tests\.functional\.libvirt\.test_pci_sriov_servers\.(SRIOVServersTest|SRIOVAttachDetachTest)\.'

function banner {
    echo "== nova tier: $*"
}

started=$SECONDS
banner "installing nova $NOVA_VERSION and its test requirements"
"$PYTHON" -m pip install -q -c "$CONSTRAINTS" -r "$PATCHES/test-requirements.txt"
# A pristine nova every run: the previous run left it patched.
"$PYTHON" -m pip install -q --force-reinstall --no-deps -c "$CONSTRAINTS" \
    "nova==$NOVA_VERSION"
# virtme-ng boots the kernel guest of the kernel stage, as in tox -e kernel.
"$PYTHON" -m pip install -q -c "$CONSTRAINTS" "$REPO" 'virtme-ng>=1.42,<2'
SITE=$("$PYTHON" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
PREFIX=$("$PYTHON" -c 'import sys; print(sys.prefix)')
installed=$("$PYTHON" -c 'import nova.version; print(nova.version.version_string())')
if [[ $installed != "$NOVA_VERSION" ]]; then
    echo "nova tier: nova $installed installed, $NOVA_VERSION wanted" >&2
    exit 1
fi

banner "applying $PATCHES/sriov-vif.patch"
for patch_file in "$PATCHES"/*.patch; do
    # --fuzz=0: a hunk that needs fuzz fails; -N: never applied twice.
    if ! (cd "$SITE" && patch -p1 -N --fuzz=0 --no-backup-if-mismatch \
            -r - < "$patch_file"); then
        echo "nova tier: $patch_file does not apply to nova" \
            "$NOVA_VERSION" >&2
        exit 1
    fi
done
# tox sets PYTHONDONTWRITEBYTECODE: compile the patched modules once here
# rather than in every test process.
"$PYTHON" -m compileall -q "$SITE/nova" > /dev/null

# nova's test config looks for api-paste.ini under its state_path, the
# parent of the nova package; the wheel installs it under the prefix.
mkdir -p "$SITE/etc/nova"
cp "$PREFIX/etc/nova/api-paste.ini" "$SITE/etc/nova/api-paste.ini"

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
mkdir -p "$WORK/state" "$WORK/sys"
export OS_OS_VIF_SRIOV__STATE_PATH=$WORK/state
export OS_OS_VIF_SRIOV__SYSFS_ROOT=$WORK/sys

failed=()
total_passed=0

# run_stestr NAME SWITCH TEST_PATH REGEX
function run_stestr {
    local name=$1 switch=$2 test_path=$3 regex=$4
    local log=$WORK/$name.log run_started=$SECONDS status=0
    banner "$name (use_os_vif_for_sriov=$switch)"
    (cd "$SITE" && rm -rf .stestr &&
        OS_LIBVIRT__USE_OS_VIF_FOR_SRIOV=$switch "$PYTHON" -m stestr \
            --test-path "$test_path" --top-dir ./ run --concurrency 2 \
            "$regex") > "$log" 2>&1 || status=$?
    local passed skipped failures
    passed=$(sed -n 's/^ - Passed: \([0-9]*\)$/\1/p' "$log" | tail -1)
    skipped=$(sed -n 's/^ - Skipped: \([0-9]*\)$/\1/p' "$log" | tail -1)
    failures=$(sed -n 's/^ - Failed: \([0-9]*\)$/\1/p' "$log" | tail -1)
    echo "$name: ${passed:-0} passed, ${failures:-?} failed," \
        "${skipped:-?} skipped in $((SECONDS - run_started)) s"
    total_passed=$((total_passed + ${passed:-0}))
    if [[ $status -ne 0 || ${passed:-0} -eq 0 || ${skipped:-1} -ne 0 ]]; then
        grep -E '\.\.\. (FAILED|SKIPPED)' "$log" || true
        (cd "$SITE" && "$PYTHON" -m stestr failing 2>&1 | tail -200) || true
        [[ ${passed:-0} -eq 0 ]] && tail -50 "$log"
        failed+=("$name")
    fi
}

# run_kernel_guest: tests/nova_kernel in the netdevsim guest
function run_kernel_guest {
    local log=$WORK/kernel.log run_started=$SECONDS status=0 summary passed
    banner "sriov-vif tests/nova_kernel in the netdevsim guest" \
        "(use_os_vif_for_sriov=true)"
    # The guest sees the repository read-only and tox sets
    # PYTHONDONTWRITEBYTECODE: compile once here, not on every import.
    (cd "$REPO" && "$PYTHON" -m compileall -q sriov_vif harness tests \
        > /dev/null)
    (cd "$REPO" && "$PYTHON" -m harness.kernel_guest run \
        --timeout "$KERNEL_TIMEOUT" -- "$PYTHON" -m pytest \
        -p no:cacheprovider -q -rs tests/nova_kernel) 2>&1 | tee "$log" \
        || status=$?
    summary=$(grep -E ' in [0-9.]+s( \(.*\))?$' "$log" | tail -1 || true)
    passed=$(sed -n 's/^\([0-9]*\) passed.*/\1/p' <<< "$summary")
    echo "nova-kernel: ${passed:-0} passed in $((SECONDS - run_started)) s" \
        "(pytest: ${summary:-no summary})"
    if [[ $status -ne 0 || ${passed:-0} -eq 0 || $summary == *skip* ]]; then
        failed+=("kernel")
    fi
}

UNIT=./nova/tests/unit/virt/libvirt
FUNCTIONAL=./nova/tests/functional/libvirt
if wanted unit; then
    run_stestr unit-on true "$UNIT" "($VIF_TESTS|$DRIVER_TESTS)"
fi
if wanted functional; then
    run_stestr functional-on true "$FUNCTIONAL" "$FUNCTIONAL_TESTS"
fi

if wanted parity; then
    banner "sriov-vif tests/nova: XML parity (use_os_vif_for_sriov=true)"
    parity_status=0
    (cd "$REPO" && "$PYTHON" -m pytest -p no:cacheprovider -q -rs \
        tests/nova) || parity_status=$?
    if [[ $parity_status -ne 0 ]]; then
        failed+=("parity")
    fi
fi

if wanted unit; then
    run_stestr unit-off false "$UNIT" "$VIF_TESTS"
fi
if wanted functional; then
    run_stestr functional-off false "$FUNCTIONAL" "$FUNCTIONAL_TESTS"
fi
if wanted kernel; then
    run_kernel_guest
fi

banner "$((SECONDS - started)) s in all; $total_passed nova tests passed"
if [[ ${#failed[@]} -gt 0 ]]; then
    echo "nova tier FAILED: ${failed[*]}" >&2
    exit 1
fi
