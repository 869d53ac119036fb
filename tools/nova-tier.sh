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
# Usage: tools/nova-tier.sh PYTHON
#   PYTHON is the interpreter of an environment of the tier's own (tox's
#   envpython); nova, its test requirements and sriov-vif are installed
#   into it with nova-patches/<version>/constraints.txt. nova is always
#   reinstalled unpatched first, so the patch is applied to a pristine
#   nova on every run; any fuzz or reject fails the tier.
#
# Runs, with stestr at concurrency 2 (CPU cores are shared):
#   switch on  ([libvirt] use_os_vif_for_sriov = true, through oslo.config's
#              OS_LIBVIRT__USE_OS_VIF_FOR_SRIOV environment source, which
#              nova's test config fixture keeps and self.flags overrides):
#              test_vif.py, the SR-IOV tests of test_driver.py
#              (DRIVER_TESTS below), the functional classes SRIOVServersTest
#              and SRIOVAttachDetachTest of test_pci_sriov_servers.py, with
#              [os_vif_sriov] state_path and sysfs_root in a temporary
#              directory; then sriov-vif's tests/nova (XML parity table).
#   switch off: test_vif.py and the same functional classes.
# Every run must pass with no test skipped (a skip here is a missing
# dependency) and at least one test run.

set -euo pipefail

NOVA_VERSION=34.0.0
PYTHON=${1:?usage: tools/nova-tier.sh PYTHON}
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PATCHES=$REPO/nova-patches/$NOVA_VERSION
CONSTRAINTS=$PATCHES/constraints.txt

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
"$PYTHON" -m pip install -q -c "$CONSTRAINTS" "$REPO"
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

UNIT=./nova/tests/unit/virt/libvirt
FUNCTIONAL=./nova/tests/functional/libvirt
run_stestr unit-on true "$UNIT" "($VIF_TESTS|$DRIVER_TESTS)"
run_stestr functional-on true "$FUNCTIONAL" "$FUNCTIONAL_TESTS"

banner "sriov-vif tests/nova: XML parity (use_os_vif_for_sriov=true)"
parity_status=0
(cd "$REPO" && "$PYTHON" -m pytest -p no:cacheprovider -q -rs \
    tests/nova) || parity_status=$?
if [[ $parity_status -ne 0 ]]; then
    failed+=("parity")
fi

run_stestr unit-off false "$UNIT" "$VIF_TESTS"
run_stestr functional-off false "$FUNCTIONAL" "$FUNCTIONAL_TESTS"

banner "$((SECONDS - started)) s in all; $total_passed nova tests passed"
if [[ ${#failed[@]} -gt 0 ]]; then
    echo "nova tier FAILED: ${failed[*]}" >&2
    exit 1
fi
