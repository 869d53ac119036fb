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

"""The devstack plugin's phases, run by bash against a fake node.

devstack cannot be installed here: devstack_stubs/functions stands in for
the devstack functions the plugin calls (its ini functions edit files like
devstack's inc/ini-config, checked below; the rest records its calls).
Each test builds a node in tmp_path (a nova.conf as devstack writes it, a
sysfs tree with two SR-IOV PFs) and runs plugin.sh the way devstack does:
settings, then plugin.sh with the phase, under errexit.
"""

from __future__ import annotations

import configparser
import json
import os
from pathlib import Path
import re
import shutil
import stat
import subprocess

import pytest

from sriov_vif import cli

REPO = Path(__file__).resolve().parents[2]
STUBS = Path(__file__).resolve().parent / "devstack_stubs" / "functions"
ALL_IN_ONE = "n-api,n-sch,n-cond,n-cpu,q-svc,q-agt,q-sriov-agt,sriov-vif"
FILTERS = "ComputeFilter,ComputeCapabilitiesFilter,ImagePropertiesFilter"
NOVA_CONF = f"""\

[DEFAULT]
debug = True

[filter_scheduler]
enabled_filters = {FILTERS}

[libvirt]
virt_type = kvm
"""
FAKE_VIF_PY = "class LibvirtGenericVIFDriver:\n    def plug(self):\n" \
    "        legacy()\n"
# A nova change of the shape of nova-patches/<release>/sriov-vif.patch.
FAKE_PATCH = """\
--- a/nova/virt/libvirt/vif.py
+++ b/nova/virt/libvirt/vif.py
@@ -1,3 +1,3 @@
 class LibvirtGenericVIFDriver:
     def plug(self):
-        legacy()
+        sriov_vif()
"""
SPEC2 = '{"devname":"ens1f0","physical_network":"physnet2"}'
SPEC3 = '{"devname":"ens2f0","physical_network":"physnet3"}'
# umask 077: modes the plugin sets must not come from a lenient umask.
# With SRIOV_VIF_DEVSTACK_DIR, devstack's own ini functions replace the
# stand-ins.
RUN_PLUGIN = """\
set -o errexit
umask 077
source "$STUBS"
if [ -n "$SRIOV_VIF_DEVSTACK_DIR" ]; then
    source "$SRIOV_VIF_DEVSTACK_DIR/inc/ini-config"
fi
source "$REPO/devstack/settings"
source "$REPO/devstack/plugin.sh" "$@"
"""


def ini_values(path: Path, section: str, option: str) -> list[str]:
    """Every value of a (possibly multi-valued) option, in file order."""
    values, in_section = [], False
    for line in path.read_text().splitlines():
        if line.startswith("["):
            in_section = line == f"[{section}]"
        elif in_section and line.split("=", 1)[0].strip() == option:
            values.append(line.split("=", 1)[1].strip())
    return values


def tree(root: Path) -> dict[str, bytes | None]:
    """Every file under root with its bytes (None for directories)."""
    return {
        str(p.relative_to(root)): None if p.is_dir() else p.read_bytes()
        for p in sorted(root.rglob("*")) if p.name != "calls.log"
    }


class Node:
    """A fake devstack node in a temporary directory."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.nova_conf = root / "etc/nova/nova.conf"
        self.filters = root / "etc/nova/rootwrap.d/sriov-vif.filters"
        self.sysfs = root / "sys"
        self.bin = root / "bin"
        self.state = root / "var/lib/sriov_vif"
        self.log = root / "calls.log"
        self.cli_argv = root / "cli-argv"
        self.nova = root / "opt/stack/nova"
        self.vif_py = self.nova / "nova/virt/libvirt/vif.py"
        self.patches = root / "nova-patches"
        self.filters.parent.mkdir(parents=True)
        self.bin.mkdir()
        self.add_nova("34.0.0")
        self.nova_conf.write_text(NOVA_CONF)
        self.add_pf("ens1f0", total=16)
        self.add_pf("ens2f0", total=8)
        self.env = {
            "PATH": os.environ["PATH"],
            "STUBS": str(STUBS),
            "REPO": str(REPO),
            "STUB_LOG": str(self.log),
            "STUB_BIN_DIR": str(self.bin),
            "DEST": str(root / "opt/stack"),
            "DATA_DIR": str(root / "data"),
            "STACK_USER": subprocess.run(
                ["id", "-un"], capture_output=True, text=True,
                check=True).stdout.strip(),
            "NOVA_CONF_DIR": str(self.nova_conf.parent),
            "NOVA_CONF": str(self.nova_conf),
            "NOVA_DIR": str(self.nova),
            "SRIOV_VIF_NOVA_PATCHES": str(self.patches),
            "ENABLED_SERVICES": ALL_IN_ONE,
            # neutron's variable; devstack defaults PHYSICAL_NETWORK.
            "PHYSICAL_DEVICE_MAPPINGS": "physnet2:ens1f0,physnet3:ens2f0",
            "PHYSICAL_NETWORK": "public",
            "SRIOV_VIF_STATE_PATH": str(self.state),
            "SRIOV_VIF_SYSFS_ROOT": str(self.sysfs),
            "SRIOV_VIF_DEVSTACK_DIR":
                os.environ.get("SRIOV_VIF_DEVSTACK_DIR", ""),
        }

    def add_pf(self, name: str, total: int, numvfs: int = 0) -> Path:
        device = self.sysfs / "class/net" / name / "device"
        shutil.rmtree(device, ignore_errors=True)
        device.mkdir(parents=True)
        (device / "sriov_totalvfs").write_text(f"{total}\n")
        (device / "sriov_numvfs").write_text(f"{numvfs}\n")
        return device

    def add_nova(self, release: str) -> None:
        """nova's checkout at tag release, and a patch for that release."""
        self.vif_py.parent.mkdir(parents=True, exist_ok=True)
        self.vif_py.write_text(FAKE_VIF_PY)
        git = ["git", "-C", str(self.nova), "-c", "user.name=t",
               "-c", "user.email=t@t.invalid"]
        subprocess.run(["git", "init", "-q", str(self.nova)], check=True)
        subprocess.run([*git, "add", "-A"], check=True)
        subprocess.run([*git, "commit", "-qm", release], check=True)
        subprocess.run([*git, "tag", release], check=True)
        (self.patches / release).mkdir(parents=True, exist_ok=True)
        (self.patches / release / "sriov-vif.patch").write_text(FAKE_PATCH)

    def numvfs(self, name: str) -> str:
        path = self.sysfs / "class/net" / name / "device/sriov_numvfs"
        return path.read_text().strip()

    def run(self, *args: str, **variables: str
            ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["bash", "-c", RUN_PLUGIN, "bash", *args],
            env=dict(self.env, **variables), capture_output=True,
            text=True, timeout=60)

    def ok(self, *args: str, **variables: str
           ) -> subprocess.CompletedProcess[str]:
        result = self.run(*args, **variables)
        assert result.returncode == 0, result.stderr + result.stdout
        return result

    def calls(self) -> list[str]:
        return self.log.read_text().splitlines() if self.log.exists() else []

    def install_cli(self, exit_code: int = 0) -> None:
        """A stand-in for the sriov-vif CLI.

        It keeps its arguments and, when it succeeds, does to the journal
        what a successful restore does: removes the VF records it finds
        through the state_path of the config file it was given.
        """
        cli = self.bin / "sriov-vif"
        cli.write_text(f"""#!/bin/bash
printf '%s\\n' "$@" > "{self.cli_argv}"
state=$(sed -n 's/^state_path = //p' "$2")
[ {exit_code} -ne 0 ] || rm -f "$state"/*.json
exit {exit_code}
""")
        cli.chmod(0o755)

    def journal_vf(self) -> None:
        (self.state / "0000:81:10.2.json").write_text("{}")


@pytest.fixture
def node(tmp_path: Path) -> Node:
    return Node(tmp_path)


STAND_IN_CASES = """\
set -o errexit
f=$1/test.ini
printf '[a]\\nx=1\\n\\n[b]\\nm = v1\\nm = {"k": "v"}\\n' > "$f"
iniset "$f" a x 5
iniset "$f" a y "two  words"
iniset "$f" c z 3
iniset "$1/new.ini" pci device_spec '{"a":"b"}'
iniadd_literal "$f" missing k v
iniadd_literal "$f" b m '{"j":"s"}'
echo "multi=$(iniget_multiline "$f" b m)"
echo "none=$(iniget_multiline "$f" a m)"
echo "get=$(iniget "$f" a y)"
echo "unset=$(iniget "$f" c y)"
"""


@pytest.mark.parametrize("source", ["stand-ins", "devstack"])
def test_stand_ins_edit_ini_files_like_devstack(
        tmp_path: Path, source: str) -> None:
    """The stand-ins do what inc/ini-config does on the cases we use.

    Otherwise the other tests would prove nothing about devstack. With
    SRIOV_VIF_DEVSTACK_DIR naming a devstack checkout, the same script
    runs against devstack's own functions.
    """
    if source == "stand-ins":
        functions = STUBS
    elif os.environ.get("SRIOV_VIF_DEVSTACK_DIR"):
        functions = Path(os.environ["SRIOV_VIF_DEVSTACK_DIR"],
                         "inc/ini-config")
    else:
        pytest.skip("SRIOV_VIF_DEVSTACK_DIR names no devstack checkout")
    result = subprocess.run(
        ["bash", "-c", f'source "{functions}"\n' + STAND_IN_CASES, "bash",
         str(tmp_path)],
        capture_output=True, text=True,
        env={"PATH": os.environ["PATH"], "STUB_LOG": str(tmp_path / "log")})
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        'multi={"j":"s"} v1 {"k": "v"}', "none=", "get=two words",
        "unset="]
    # New option right under the header, existing value rewritten after
    # its own "x=" prefix, missing section appended after a blank line.
    assert (tmp_path / "test.ini").read_text() == (
        '[a]\ny = two words\nx=5\n\n[b]\nm = {"j":"s"}\nm = v1\n'
        'm = {"k": "v"}\n\n[c]\nz = 3\n')
    assert (tmp_path / "new.ini").read_text() == (
        '\n[pci]\ndevice_spec = {"a":"b"}\n')


def test_install_develops_the_library_with_the_default_bindep_profile(
        node: Node) -> None:
    node.ok("stack", "install", SRIOV_VIF_DIR="/opt/stack/sriov-vif")

    # -bindep without a profile: devstack's setup_package installs the
    # default profile of <project dir>/bindep.txt.
    assert node.calls() == [
        "setup_develop -bindep /opt/stack/sriov-vif libvirt"]
    assert (REPO / "bindep.txt").is_file()
    # devstack would install this one too, at every stack.sh.
    assert not (REPO / "devstack/files/bindep.txt").exists()


def test_install_applies_the_nova_patch_of_novas_release_once(
        node: Node) -> None:
    node.ok("stack", "install")
    patched = node.vif_py.read_text()
    assert "sriov_vif()" in patched and "legacy()" not in patched

    result = node.ok("stack", "install")

    assert "already carries" in result.stdout
    assert node.vif_py.read_text() == patched


def test_install_after_an_upgrade_replaces_the_older_patch(
        node: Node) -> None:
    node.ok("stack", "install")
    patch_file = node.patches / "34.0.0/sriov-vif.patch"
    patch_file.write_text(FAKE_PATCH.replace("+        sriov_vif()",
                                             "+        sriov_vif(2)"))

    result = node.ok("stack", "install")

    assert "carries an older sriov-vif patch: reverting it" in result.stdout
    assert "sriov_vif(2)" in node.vif_py.read_text()
    # clean reverts what was applied last, whatever the checkout holds now
    patch_file.write_text(FAKE_PATCH)
    node.ok("clean")
    assert node.vif_py.read_text() == FAKE_VIF_PY


@pytest.mark.parametrize("change, reason", [
    ("release", "nova 35.0.0 .* has no sriov-vif patch in"),
    ("code", "does not apply to nova in .* without fuzz"),
])
def test_install_refuses_a_nova_the_patch_is_not_for(
        node: Node, change: str, reason: str) -> None:
    if change == "release":
        subprocess.run(["git", "-C", str(node.nova), "tag", "-d", "34.0.0"],
                       check=True, capture_output=True)
        subprocess.run(["git", "-C", str(node.nova), "tag", "35.0.0"],
                       check=True)
    else:
        node.vif_py.write_text(FAKE_VIF_PY.replace("legacy()", "other()"))
    before = node.vif_py.read_text()

    result = node.run("stack", "install")

    assert result.returncode == 1
    [line] = result.stderr.splitlines()
    assert re.search(reason, line), line
    assert node.vif_py.read_text() == before


def test_without_the_patch_nova_keeps_its_legacy_code(node: Node) -> None:
    node.ok("stack", "install", SRIOV_VIF_PATCH_NOVA="False")
    node.ok("stack", "post-config", SRIOV_VIF_PATCH_NOVA="False")

    assert node.vif_py.read_text() == FAKE_VIF_PY
    assert ini_values(node.nova_conf, "libvirt",
                      "use_os_vif_for_sriov") == []


def test_the_real_patches_are_where_devstack_looks() -> None:
    # settings: SRIOV_VIF_NOVA_PATCHES defaults to nova-patches/ of the
    # plugin's checkout.
    assert (REPO / "nova-patches/34.0.0/sriov-vif.patch").is_file()


def test_post_config_makes_the_compute_node_ready(node: Node) -> None:
    node.ok("stack", "post-config")

    conf = node.nova_conf
    assert ini_values(conf, "os_vif_sriov", "state_path") == [
        str(node.state)]
    specs = ini_values(conf, "pci", "device_spec")
    assert specs == [SPEC2, SPEC3]
    assert [json.loads(s) for s in specs] == [
        {"devname": "ens1f0", "physical_network": "physnet2"},
        {"devname": "ens2f0", "physical_network": "physnet3"},
    ]
    user = node.env["STACK_USER"]
    group = subprocess.run(["id", "-gn", user], capture_output=True,
                           text=True, check=True).stdout.strip()
    assert ini_values(conf, "sriov_vif_privileged", "user") == [user]
    assert ini_values(conf, "sriov_vif_privileged", "group") == [group]
    assert "helper_command" not in conf.read_text()
    assert ini_values(conf, "libvirt", "use_os_vif_for_sriov") == ["True"]
    # The rest of nova.conf stays as devstack wrote it.
    assert conf.read_text().startswith(
        NOVA_CONF.replace(FILTERS, FILTERS + ",PciPassthroughFilter")
        .replace("virt_type = kvm\n",
                 "use_os_vif_for_sriov = True\nvirt_type = kvm\n"))
    assert stat.S_IMODE(node.state.stat().st_mode) == 0o700
    assert node.state.stat().st_uid == os.getuid()
    assert f"sudo chown -R {user} {node.state}" in node.calls()
    assert node.calls()[0] == "async_wait configure_neutron_nova"
    # oslo.rootwrap reads filter files with configparser.
    parser = configparser.RawConfigParser()
    parser.read(node.filters)
    rule = parser.get("Filters", "privsep-rootwrap-sriov_vif")
    assert [f.strip() for f in rule.split(",")] == [
        "RegExpFilter", "privsep-helper", "root", "privsep-helper",
        "--config-file", r"/etc/(?!\.\.).*",
        "--privsep_context", "sriov_vif.privsep.vif_plug",
        "--privsep_sock_path", "/tmp/.*"]
    assert stat.S_IMODE(node.filters.stat().st_mode) == 0o644
    # Without SRIOV_VIF_NUMVFS, sriov_numvfs is left alone.
    assert (node.numvfs("ens1f0"), node.numvfs("ens2f0")) == ("0", "0")


def test_physical_network_and_interface_stand_for_the_mappings(
        node: Node) -> None:
    """neutron's lib/l2_agent_sriovnicswitch rule: both set win."""
    node.ok("stack", "post-config", PHYSICAL_NETWORK="physnet9",
            PHYSICAL_INTERFACE="ens2f0")

    assert ini_values(node.nova_conf, "pci", "device_spec") == [
        '{"devname":"ens2f0","physical_network":"physnet9"}']


def test_device_specs_of_others_stay_and_a_rerun_changes_nothing(
        node: Node) -> None:
    theirs = '{"vendor_id": "8086", "product_id": "154c"}'
    node.nova_conf.write_text(
        NOVA_CONF + f"\n[pci]\ndevice_spec = {theirs}\n"
        f"device_spec = {SPEC3}\n")

    node.ok("stack", "post-config", SRIOV_VIF_NUMVFS="4")
    first = tree(node.root)
    node.ok("stack", "post-config", SRIOV_VIF_NUMVFS="4")

    assert tree(node.root) == first
    assert ini_values(node.nova_conf, "pci", "device_spec") == [
        SPEC2, theirs, SPEC3]
    assert ini_values(node.nova_conf, "filter_scheduler",
                      "enabled_filters") == [
        FILTERS + ",PciPassthroughFilter"]
    assert len([c for c in node.calls() if "sriov_numvfs" in c]) == 2


def test_numvfs_for_every_pf(node: Node) -> None:
    result = node.ok("stack", "post-config", SRIOV_VIF_NUMVFS="8")

    assert (node.numvfs("ens1f0"), node.numvfs("ens2f0")) == ("8", "8")
    assert "Setting ens1f0 sriov_numvfs from 0 to 8" in result.stdout


def test_numvfs_per_pf_goes_through_zero(node: Node) -> None:
    """The kernel refuses to change a non-zero VF count to another one."""
    path = node.add_pf("ens1f0", total=16, numvfs=2) / "sriov_numvfs"

    node.ok("stack", "post-config", SRIOV_VIF_NUMVFS="ens1f0:6")

    writes = [c for c in node.calls() if c.startswith(f"sudo tee {path}")]
    assert writes == [f"sudo tee {path} <<< 0", f"sudo tee {path} <<< 6"]
    assert (node.numvfs("ens1f0"), node.numvfs("ens2f0")) == ("6", "0")


@pytest.mark.parametrize("variables, message", [
    ({"PHYSICAL_DEVICE_MAPPINGS": "physnet2ens1f0"},
     "PHYSICAL_DEVICE_MAPPINGS: 'physnet2ens1f0' is not"),
    ({"PHYSICAL_DEVICE_MAPPINGS": "physnet2:ens1f0,,physnet3:ens2f0"},
     "PHYSICAL_DEVICE_MAPPINGS: '' is not"),
    ({"PHYSICAL_DEVICE_MAPPINGS": 'physnet"2:ens1f0'},
     """PHYSICAL_DEVICE_MAPPINGS: 'physnet"2:ens1f0' is not"""),
    ({"PHYSICAL_DEVICE_MAPPINGS": "physnet2:averyveryverylongname"},
     "'physnet2:averyveryverylongname' is not"),
    ({"SRIOV_VIF_NUMVFS": "ens3f0:4"}, "SRIOV_VIF_NUMVFS: 'ens3f0:4' is not"),
    ({"SRIOV_VIF_NUMVFS": "ens1f0=4"}, "SRIOV_VIF_NUMVFS: 'ens1f0=4' is not"),
    ({"SRIOV_VIF_NUMVFS": "-1"}, "SRIOV_VIF_NUMVFS: '-1' is not"),
    ({"SRIOV_VIF_NUMVFS": "17"}, "ens1f0 has at most 16 VFs, 17 asked"),
    ({"SRIOV_VIF_NUMVFS": "4", "PHYSICAL_DEVICE_MAPPINGS": "physnet2:ens9f9"},
     "ens9f9/device/sriov_numvfs is missing"),
    ({"SRIOV_VIF_STATE_PATH": "var/lib/sriov_vif"},
     "SRIOV_VIF_STATE_PATH='var/lib/sriov_vif': must be an absolute"),
    ({"SRIOV_VIF_STATE_PATH": "/"}, "SRIOV_VIF_STATE_PATH='/'"),
    ({"SRIOV_VIF_STATE_PATH": "/var/lib/../../etc"},
     "SRIOV_VIF_STATE_PATH='/var/lib/../../etc'"),
])
def test_bad_variable_fails_before_writing(
        node: Node, variables: dict[str, str], message: str) -> None:
    before = tree(node.root)

    result = node.run("stack", "post-config", **variables)

    assert result.returncode != 0
    assert message in result.stderr
    assert tree(node.root) == before


def test_controller_gets_the_scheduler_filter_only(node: Node) -> None:
    """No PF exists on a controller: NUMVFS must not be checked there."""
    shutil.rmtree(node.sysfs)
    node.install_cli()
    controller = "n-api,n-sch,n-cond,q-svc,sriov-vif"

    node.ok("stack", "post-config", SRIOV_VIF_NUMVFS="4",
            ENABLED_SERVICES=controller)

    assert node.nova_conf.read_text() == NOVA_CONF.replace(
        FILTERS, FILTERS + ",PciPassthroughFilter")
    assert not node.filters.exists()
    assert not node.state.exists()

    # Nor is there a journal to restore or remove.
    node.state.mkdir(parents=True)
    node.ok("unstack", ENABLED_SERVICES=controller)
    node.ok("clean", ENABLED_SERVICES=controller)

    assert node.state.is_dir()
    assert not node.cli_argv.exists()


def test_disabled_plugin_does_nothing(node: Node) -> None:
    node.install_cli()
    before = tree(node.root)

    for phase in (("stack", "install"), ("stack", "post-config"),
                  ("unstack",), ("clean",)):
        node.ok(*phase, DISABLED_SERVICES="sriov-vif",
                ENABLED_SERVICES=ALL_IN_ONE.replace(",sriov-vif", ""))

    assert tree(node.root) == before
    assert node.calls() == []


def test_unstack_restores_the_journaled_vfs(node: Node) -> None:
    node.install_cli()
    node.ok("stack", "post-config", SRIOV_VIF_NUMVFS="4")
    node.journal_vf()
    configured = tree(node.root)

    node.ok("unstack")

    assert (f"sudo {node.bin}/sriov-vif --config-file {node.nova_conf} "
            "restore --all") in node.calls()
    # The arguments mean the same to the real CLI.
    args = cli._parser().parse_args(node.cli_argv.read_text().splitlines())
    assert (args.command, args.all, args.config_file) == (
        "restore", True, [str(node.nova_conf)])
    assert not (node.state / "0000:81:10.2.json").exists()
    # Nothing else changes: devstack rewrites nova.conf at each stack.sh,
    # the VFs and the journal directory stay until clean.
    after = tree(node.root)
    del configured["var/lib/sriov_vif/0000:81:10.2.json"]
    del after["cli-argv"]
    assert after == configured


@pytest.mark.parametrize("exit_code, warning", [
    (None, "sriov-vif not found: journaled VFs keep the settings of their "
           "last plug; run 'sudo sriov-vif --config-file {conf} restore "
           "--all'"),
    (1, "'sriov-vif restore --all' failed: the original state of some VFs "
        "stays journaled in {state}"),
])
def test_unstack_without_a_working_cli_warns_and_goes_on(
        node: Node, exit_code: int | None, warning: str) -> None:
    if exit_code is not None:
        node.install_cli(exit_code)
    node.ok("stack", "post-config")
    node.journal_vf()

    result = node.ok("unstack")

    assert warning.format(conf=node.nova_conf, state=node.state) in (
        result.stdout)
    assert (node.state / "0000:81:10.2.json").exists()


def test_clean_puts_numvfs_back_and_removes_the_journal(node: Node) -> None:
    node.install_cli()
    node.add_pf("ens2f0", total=8, numvfs=2)
    node.ok("stack", "install")
    node.ok("stack", "post-config", SRIOV_VIF_NUMVFS="4")
    node.ok("stack", "post-config", SRIOV_VIF_NUMVFS="6")
    node.journal_vf()
    node.ok("unstack")

    node.ok("clean")

    # The counts from before the first change, not the last.
    assert (node.numvfs("ens1f0"), node.numvfs("ens2f0")) == ("0", "2")
    assert node.vif_py.read_text() == FAKE_VIF_PY
    assert ini_values(node.nova_conf, "libvirt",
                      "use_os_vif_for_sriov") == []
    assert not node.state.exists()
    assert not (node.root / "data/sriov-vif").exists()


def test_clean_keeps_a_journal_that_was_not_restored(node: Node) -> None:
    node.ok("stack", "post-config")
    node.journal_vf()

    result = node.ok("clean")

    assert (node.state / "0000:81:10.2.json").exists()
    assert f"Keeping {node.state}" in result.stdout


def test_clean_leaves_vfs_that_a_guest_may_use(node: Node) -> None:
    node.ok("stack", "post-config", SRIOV_VIF_NUMVFS="ens1f0:4")
    device = node.sysfs / "class/net/ens1f0/device"
    (node.root / "drivers/vfio-pci").mkdir(parents=True)
    (device / "virtfn0").mkdir()
    (device / "virtfn0/driver").symlink_to(node.root / "drivers/vfio-pci")

    result = node.ok("clean")

    assert node.numvfs("ens1f0") == "4"
    assert "bound to vfio-pci" in result.stdout
    (device / "virtfn0/driver").unlink()

    node.ok("clean")

    assert node.numvfs("ens1f0") == "0"
    assert not (node.root / "data/sriov-vif").exists()
