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

devstack itself cannot be fetched here, so devstack_stubs/functions stands
in for the devstack functions plugin.sh calls: its ini functions really
edit the files (with inc/ini-config's semantics, checked below), and the
rest records what it was asked in a call log. Each test builds a node in
tmp_path: /etc/nova and /etc/neutron files shaped like the ones devstack
writes, a sysfs tree with SR-IOV PFs, and runs plugin.sh the way devstack
sources it (settings first, under errexit) with the local.conf variables
in the environment.
"""

from __future__ import annotations

import configparser
import json
import os
from pathlib import Path
import shutil
import stat
import subprocess

import pytest

from sriov_vif import cli

REPO = Path(__file__).resolve().parents[2]
PLUGIN_DIR = REPO / "devstack"
STUBS = Path(__file__).resolve().parent / "devstack_stubs" / "functions"

ALL_IN_ONE = "n-api,n-sch,n-cond,n-cpu,q-svc,q-agt,q-sriov-agt,sriov-vif"

NOVA_CONF = """\
[DEFAULT]
debug = True
compute_driver = libvirt.LibvirtDriver

[filter_scheduler]
enabled_filters = ComputeFilter,ComputeCapabilitiesFilter,ImagePropertiesFilter

[libvirt]
virt_type = kvm
"""

ML2_CONF = """\
[DEFAULT]

[ml2]
type_drivers = flat,vlan,vxlan
mechanism_drivers = openvswitch
tenant_network_types = vxlan

[ml2_type_flat]
flat_networks = public

[ml2_type_vlan]
network_vlan_ranges = public
"""

RUN_PLUGIN = """\
set -o errexit
source "$STUBS"
source "$PLUGIN_DIR/settings"
source "$PLUGIN_DIR/plugin.sh" "$@"
"""


def ini_values(path: Path, section: str, option: str) -> list[str]:
    """Every value of a (possibly multi-valued) option, in file order."""
    values = []
    in_section = False
    for line in path.read_text().splitlines():
        if line.startswith("[") and "]" in line:
            in_section = line.startswith(f"[{section}]")
        elif in_section and line.split("=", 1)[0].strip() == option:
            values.append(line.split("=", 1)[1].strip())
    return values


def ini_value(path: Path, section: str, option: str) -> str | None:
    values = ini_values(path, section, option)
    assert len(values) <= 1, values
    return values[0] if values else None


def tree(root: Path) -> dict[str, bytes | None]:
    """Every file under root with its bytes (None for directories)."""
    return {
        str(p.relative_to(root)): None if p.is_dir() else p.read_bytes()
        for p in sorted(root.rglob("*"))
    }


class Node:
    """A fake devstack node in a temporary directory."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.nova_conf = root / "etc/nova/nova.conf"
        self.rootwrap_d = root / "etc/nova/rootwrap.d"
        self.ml2_conf = root / "etc/neutron/plugins/ml2/ml2_conf.ini"
        self.agent_conf = root / "etc/neutron/plugins/ml2/sriov_agent.ini"
        self.sysfs = root / "sys"
        self.bin = root / "bin"
        self.data = root / "data"
        self.state = root / "var/lib/sriov_vif"
        self.log = root / "calls.log"
        self.cli_saw = root / "cli-saw.conf"
        self.cli_argv = root / "cli-argv"
        self.rootwrap_d.mkdir(parents=True)
        self.ml2_conf.parent.mkdir(parents=True)
        self.bin.mkdir()
        self.data.mkdir()
        self.nova_conf.write_text(NOVA_CONF)
        self.ml2_conf.write_text(ML2_CONF)
        self.add_pf("ens1f0", total=16)
        self.add_pf("ens2f0", total=8)
        self.env = {
            "PATH": os.environ["PATH"],
            "HOME": str(root),
            "STUBS": str(STUBS),
            "PLUGIN_DIR": str(PLUGIN_DIR),
            "STUB_LOG": str(self.log),
            "STUB_BIN_DIR": str(self.bin),
            "DEST": str(root / "opt/stack"),
            "DATA_DIR": str(self.data),
            "STACK_USER": subprocess.run(
                ["id", "-un"], capture_output=True, text=True,
                check=True).stdout.strip(),
            "NOVA_CONF_DIR": str(self.nova_conf.parent),
            "NOVA_CONF": str(self.nova_conf),
            # devstack keeps these relative to / and writes "/$VAR".
            "Q_PLUGIN_CONF_PATH": str(self.ml2_conf.parent).lstrip("/"),
            "Q_PLUGIN_CONF_FILE": str(self.ml2_conf).lstrip("/"),
            "ENABLED_SERVICES": ALL_IN_ONE,
            "SRIOV_VIF_PHYSICAL_DEVICE_MAPPINGS":
                "physnet2:ens1f0,physnet3:ens2f0",
            "SRIOV_VIF_STATE_PATH": str(self.state),
            "SRIOV_VIF_SYSFS_ROOT": str(self.sysfs),
        }

    def add_pf(self, name: str, total: int, numvfs: int = 0) -> Path:
        device = self.sysfs / "class/net" / name / "device"
        device.mkdir(parents=True)
        (device / "sriov_totalvfs").write_text(f"{total}\n")
        (device / "sriov_numvfs").write_text(f"{numvfs}\n")
        return device

    def numvfs(self, name: str) -> str:
        path = self.sysfs / "class/net" / name / "device/sriov_numvfs"
        return path.read_text().strip()

    def run(self, *args: str, **variables: str
            ) -> subprocess.CompletedProcess[str]:
        env = dict(self.env, **variables)
        return subprocess.run(
            ["bash", "-c", RUN_PLUGIN, "bash", *args],
            env=env, capture_output=True, text=True, timeout=60)

    def ok(self, *args: str, **variables: str
           ) -> subprocess.CompletedProcess[str]:
        result = self.run(*args, **variables)
        assert result.returncode == 0, result.stderr + result.stdout
        return result

    def calls(self) -> list[str]:
        if not self.log.exists():
            return []
        return self.log.read_text().splitlines()

    def install_cli(self, exit_code: int = 0) -> None:
        """A stand-in for the sriov-vif CLI.

        It keeps a copy of the config file it was given (to show what
        unstack left in it at that moment) and, when it succeeds, does what
        a successful restore does to the journal: removes the VF records.
        """
        cli = self.bin / "sriov-vif"
        cli.write_text(f"""#!/bin/bash
printf 'sriov-vif %s\\n' "$*" >> "$STUB_LOG"
printf '%s\\n' "$@" > "{self.cli_argv}"
conf=""
while [ $# -gt 0 ]; do
    if [ "$1" = --config-file ]; then conf=$2; fi
    shift
done
cp "$conf" "{self.cli_saw}"
if [ {exit_code} -eq 0 ]; then
    state=$(sed -n 's/^state_path = //p' "$conf")
    rm -f "$state"/*.json
fi
exit {exit_code}
""")
        cli.chmod(0o755)

    def journal_vf(self, address: str = "0000:81:10.2") -> None:
        (self.state / f"{address}.json").write_text("{}")


@pytest.fixture
def node(tmp_path: Path) -> Node:
    return Node(tmp_path)


def test_stand_ins_edit_ini_files_like_devstack(tmp_path: Path) -> None:
    """The stand-ins follow inc/ini-config.

    Otherwise the other tests would prove nothing about devstack.
    """
    ini = tmp_path / "test.ini"
    ini.write_text("[a]\nx=1\n\n[b]\nm = v1\nm = v2\n")
    script = f"""
set -o errexit
source "{STUBS}"
f="{ini}"
iniset "$f" a x 5
iniset "$f" a y "two words"
iniset "$f" c z 3
iniadd_literal "$f" missing k v
iniadd_literal "$f" b m '{{"j":"s"}}'
echo "multi=$(iniget_multiline "$f" b m)"
echo "get=$(iniget "$f" a y)"
inidelete "$f" b m
if ini_has_option "$f" b m; then echo has-m; fi
if ini_has_option "$f" a x; then echo has-x; fi
"""
    result = subprocess.run(
        ["bash", "-c", script], capture_output=True, text=True,
        env={"PATH": os.environ["PATH"],
             "STUB_LOG": str(tmp_path / "log")})
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        'multi={"j":"s"} v1 v2', "get=two words", "has-x"]
    # New option right under the header, existing value rewritten after
    # its own "x=" prefix, missing section appended after a blank line.
    assert ini.read_text() == (
        "[a]\ny = two words\nx=5\n\n[b]\n\n[c]\nz = 3\n")


def test_install_develops_the_library_with_its_libvirt_extra(
        node: Node) -> None:
    node.ok("stack", "install", SRIOV_VIF_DIR="/opt/stack/sriov-vif")
    assert node.calls() == ["setup_develop /opt/stack/sriov-vif libvirt"]


def test_post_config_makes_the_compute_node_ready(node: Node) -> None:
    node.ok("stack", "post-config")

    conf = node.nova_conf
    assert ini_value(conf, "os_vif_sriov", "state_path") == str(node.state)
    assert ini_value(
        conf, "os_vif_sriov", "unsupported_attribute_action") == "fail"
    assert ini_value(conf, "os_vif_sriov", "released_vf_mac") == "zero"
    assert ini_value(conf, "os_vif_sriov", "sysfs_root") is None
    specs = ini_values(conf, "pci", "device_spec")
    assert specs == [
        '{"devname":"ens1f0","physical_network":"physnet2"}',
        '{"devname":"ens2f0","physical_network":"physnet3"}',
    ]
    assert [json.loads(s) for s in specs] == [
        {"devname": "ens1f0", "physical_network": "physnet2"},
        {"devname": "ens2f0", "physical_network": "physnet3"},
    ]
    assert ini_value(conf, "filter_scheduler", "enabled_filters") == (
        "ComputeFilter,ComputeCapabilitiesFilter,ImagePropertiesFilter,"
        "PciPassthroughFilter")
    # devstack's own convention for os-vif: no helper_command, the daemon
    # starts with "sudo privsep-helper".
    assert "[sriov_vif_privileged]" not in conf.read_text()
    assert stat.S_IMODE(node.state.stat().st_mode) == 0o700
    user = node.env["STACK_USER"]
    assert f"sudo chown -R {user} {node.state}" in node.calls()
    assert "async_wait configure_neutron_nova" in node.calls()
    # The rest of nova.conf stays as devstack wrote it; the new sections
    # come after it.
    assert conf.read_text().startswith(NOVA_CONF.replace(
        "ImagePropertiesFilter", "ImagePropertiesFilter,PciPassthroughFilter"))


def test_post_config_enables_neutron_sriov(node: Node) -> None:
    node.ok("stack", "post-config")

    ml2 = node.ml2_conf
    assert ini_value(ml2, "ml2", "mechanism_drivers") == (
        "openvswitch,sriovnicswitch")
    assert ini_value(ml2, "ml2_type_vlan", "network_vlan_ranges") == (
        "public,physnet2,physnet3")
    assert ini_value(ml2, "ml2_type_flat", "flat_networks") == (
        "public,physnet2,physnet3")
    assert ini_value(
        node.agent_conf, "sriov_nic", "physical_device_mappings") == (
        "physnet2:ens1f0,physnet3:ens2f0")


def test_physnets_already_allowed_are_left_alone(node: Node) -> None:
    node.ml2_conf.write_text(
        "[ml2]\nmechanism_drivers = ovn,sriovnicswitch\n\n"
        "[ml2_type_flat]\nflat_networks = *\n\n"
        "[ml2_type_vlan]\nnetwork_vlan_ranges = physnet2:100:200\n")
    before = node.ml2_conf.read_text()

    node.ok("stack", "post-config",
            SRIOV_VIF_PHYSICAL_DEVICE_MAPPINGS="physnet2:ens1f0,"
                                               "physnet2:ens2f0")

    assert node.ml2_conf.read_text() == before


def test_absent_flat_networks_is_not_narrowed(node: Node) -> None:
    """No flat_networks means every physnet may be flat.

    Writing one physnet would take that away from the others.
    """
    node.ml2_conf.write_text("[ml2]\nmechanism_drivers = openvswitch\n")

    node.ok("stack", "post-config")

    assert ini_value(node.ml2_conf, "ml2_type_flat", "flat_networks") is None
    assert ini_value(node.ml2_conf, "ml2_type_vlan",
                     "network_vlan_ranges") == "physnet2,physnet3"


def test_post_config_twice_changes_nothing(node: Node) -> None:
    node.ok("stack", "post-config", SRIOV_VIF_NUMVFS="4",
            SRIOV_VIF_PRIVSEP_ROOTWRAP="True")
    first = tree(node.root)
    calls = len(node.calls())

    node.ok("stack", "post-config", SRIOV_VIF_NUMVFS="4",
            SRIOV_VIF_PRIVSEP_ROOTWRAP="True")

    second = tree(node.root)
    first.pop("calls.log")
    second.pop("calls.log")
    assert second == first
    assert not [c for c in node.calls()[calls:] if "sriov_numvfs" in c]


def test_device_specs_of_others_are_kept(node: Node) -> None:
    ours = '{"devname":"ens1f0","physical_network":"physnet2"}'
    theirs = '{"vendor_id":"8086","product_id":"154c"}'
    node.nova_conf.write_text(
        NOVA_CONF + f"\n[pci]\ndevice_spec = {theirs}\n"
        f"device_spec = {ours}\n")
    before = node.nova_conf.read_bytes()

    node.ok("stack", "post-config")

    specs = ini_values(node.nova_conf, "pci", "device_spec")
    assert sorted(specs) == sorted([
        theirs, ours,
        '{"devname":"ens2f0","physical_network":"physnet3"}'])

    node.ok("unstack")

    # The entry that was there before stays, though it equals one of ours.
    assert node.nova_conf.read_bytes() == before


def test_privsep_through_rootwrap(node: Node) -> None:
    node.ok("stack", "post-config", SRIOV_VIF_PRIVSEP_ROOTWRAP="True")

    conf_dir = node.nova_conf.parent
    assert ini_value(node.nova_conf, "sriov_vif_privileged",
                     "helper_command") == (
        f"sudo {node.bin}/nova-rootwrap {conf_dir}/rootwrap.conf "
        f"privsep-helper --config-file {node.nova_conf}")
    filters = node.rootwrap_d / "sriov-vif.filters"
    # oslo.rootwrap reads filter files with configparser ("name: value").
    parser = configparser.RawConfigParser()
    parser.read(filters)
    rule = parser.get("Filters", "privsep-rootwrap-sriov_vif")
    assert [f.strip() for f in rule.split(",")] == [
        "RegExpFilter", "privsep-helper", "root", "privsep-helper",
        "--config-file", r"/etc/(?!\.\.).*",
        "--privsep_context", "sriov_vif.privsep.vif_plug",
        "--privsep_sock_path", "/tmp/.*"]
    assert stat.S_IMODE(filters.stat().st_mode) == 0o644

    node.ok("unstack")

    assert not filters.exists()
    assert "sriov_vif_privileged" not in node.nova_conf.read_text()


def test_numvfs_for_every_pf(node: Node) -> None:
    result = node.ok("stack", "post-config", SRIOV_VIF_NUMVFS="8")

    assert (node.numvfs("ens1f0"), node.numvfs("ens2f0")) == ("8", "8")
    assert "Setting ens1f0 sriov_numvfs from 0 to 8" in result.stdout


def test_numvfs_per_pf_goes_through_zero(node: Node) -> None:
    """The kernel refuses to change a non-zero VF count to another one."""
    shutil.rmtree(node.sysfs / "class/net/ens1f0")
    path = node.add_pf("ens1f0", total=16, numvfs=2) / "sriov_numvfs"

    node.ok("stack", "post-config", SRIOV_VIF_NUMVFS="ens1f0:6")

    writes = [c for c in node.calls() if c.startswith(f"sudo tee {path}")]
    assert writes == [f"sudo tee {path} <<< 0", f"sudo tee {path} <<< 6"]
    assert (node.numvfs("ens1f0"), node.numvfs("ens2f0")) == ("6", "0")


@pytest.mark.parametrize("mappings, bad", [
    ("physnet2ens1f0", "physnet2ens1f0"),
    (":ens1f0", ":ens1f0"),
    ("physnet2:", "physnet2:"),
    ("physnet2:ens1f0,physnet3", "physnet3"),
    ("physnet2:ens1f0,,physnet3:ens2f0", "physnet2:ens1f0,,physnet3:ens2f0"),
    ("physnet2:ens1f0,", "physnet2:ens1f0,"),
    ("phys net:ens1f0", "phys net:ens1f0"),
    ("physnet2:ens1/f0", "physnet2:ens1/f0"),
    ("physnet2:ens1f0:x", "physnet2:ens1f0:x"),
    ('physnet"2:ens1f0', 'physnet"2:ens1f0'),
    ("physnet2:averyveryverylongname", "physnet2:averyveryverylongname"),
    ("physnet2:ens1f0,physnet3:ens1f0", "physnet3:ens1f0"),
])
def test_malformed_mapping_fails_before_writing(
        node: Node, mappings: str, bad: str) -> None:
    before = tree(node.root)

    result = node.run("stack", "post-config",
                      SRIOV_VIF_PHYSICAL_DEVICE_MAPPINGS=mappings,
                      SRIOV_VIF_NUMVFS="4")

    assert result.returncode != 0
    assert "SRIOV_VIF_PHYSICAL_DEVICE_MAPPINGS" in result.stderr
    assert f"'{bad}'" in result.stderr
    assert tree(node.root) == before


@pytest.mark.parametrize("variables, message", [
    ({"SRIOV_VIF_NUMVFS": "ens3f0:4"},
     "SRIOV_VIF_NUMVFS: entry 'ens3f0:4': 'ens3f0' is not a PF"),
    ({"SRIOV_VIF_NUMVFS": "ens1f0=4"},
     "SRIOV_VIF_NUMVFS: entry 'ens1f0=4' is not"),
    ({"SRIOV_VIF_NUMVFS": "-1"}, "SRIOV_VIF_NUMVFS: entry '-1' is not"),
    ({"SRIOV_VIF_NUMVFS": "ens1f0:2,ens1f0:4"},
     "'ens1f0' is given more than once"),
    ({"SRIOV_VIF_NUMVFS": "4", "SRIOV_VIF_PHYSICAL_DEVICE_MAPPINGS": ""},
     "SRIOV_VIF_NUMVFS='4' but SRIOV_VIF_PHYSICAL_DEVICE_MAPPINGS names"),
    ({"SRIOV_VIF_NUMVFS": "17"},
     "SRIOV_VIF_NUMVFS: ens1f0 supports at most 16 VFs, 17 asked"),
    ({"SRIOV_VIF_NUMVFS": "4",
      "SRIOV_VIF_PHYSICAL_DEVICE_MAPPINGS": "physnet2:ens9f9"},
     "SRIOV_VIF_NUMVFS: ens9f9 has no"),
    ({"SRIOV_VIF_STATE_PATH": "var/lib/sriov_vif"},
     "SRIOV_VIF_STATE_PATH='var/lib/sriov_vif': must be an absolute"),
    ({"SRIOV_VIF_STATE_PATH": "/"}, "SRIOV_VIF_STATE_PATH='/'"),
    ({"SRIOV_VIF_STATE_PATH": "/var/lib/../../etc"},
     "SRIOV_VIF_STATE_PATH='/var/lib/../../etc'"),
    ({"SRIOV_VIF_UNSUPPORTED_ATTRIBUTE_ACTION": "ignore"},
     "SRIOV_VIF_UNSUPPORTED_ATTRIBUTE_ACTION='ignore': must be one of: "
     "fail warn"),
    ({"SRIOV_VIF_RELEASED_VF_MAC": "random"},
     "SRIOV_VIF_RELEASED_VF_MAC='random': must be one of: zero restore"),
])
def test_bad_variable_fails_before_writing(
        node: Node, variables: dict[str, str], message: str) -> None:
    before = tree(node.root)

    result = node.run("stack", "post-config", **variables)

    assert result.returncode != 0
    assert message in result.stderr
    assert tree(node.root) == before


def test_controller_gets_scheduler_and_neutron_server_only(
        node: Node) -> None:
    """No PF exists on a controller: NUMVFS must not be checked there."""
    shutil.rmtree(node.sysfs)

    node.ok("stack", "post-config", SRIOV_VIF_NUMVFS="4",
            ENABLED_SERVICES="n-api,n-sch,n-cond,q-svc,sriov-vif")

    text = node.nova_conf.read_text()
    assert "[os_vif_sriov]" not in text and "[pci]" not in text
    assert "PciPassthroughFilter" in text
    assert "sriovnicswitch" in node.ml2_conf.read_text()
    assert not node.agent_conf.exists()
    assert not node.state.exists()


def test_disabled_plugin_does_nothing(node: Node) -> None:
    before = tree(node.root)

    for phase in (("stack", "install"), ("stack", "post-config"),
                  ("unstack",), ("clean",)):
        node.ok(*phase, DISABLED_SERVICES="sriov-vif",
                ENABLED_SERVICES=ALL_IN_ONE.replace(",sriov-vif", ""))

    assert tree(node.root) == before


def test_unstack_restores_vfs_then_removes_what_post_config_wrote(
        node: Node) -> None:
    node.install_cli()
    before = tree(node.root)
    node.ok("stack", "post-config", SRIOV_VIF_NUMVFS="4",
            SRIOV_VIF_PRIVSEP_ROOTWRAP="True")
    node.journal_vf()

    node.ok("unstack")

    assert node.calls().count(
        f"sudo {node.bin}/sriov-vif --config-file {node.nova_conf} "
        "restore --all") == 1
    # The arguments mean the same to the real CLI.
    args = cli._parser().parse_args(node.cli_argv.read_text().splitlines())
    assert (args.command, args.all, args.config_file) == (
        "restore", True, [str(node.nova_conf)])
    # The CLI ran while nova.conf still told it where the journal is.
    assert ini_value(node.cli_saw, "os_vif_sriov", "state_path") == str(
        node.state)
    after = tree(node.root)
    for path in ("etc/nova/nova.conf",
                 "etc/neutron/plugins/ml2/ml2_conf.ini"):
        assert after[path] == before[path], path
    assert not node.agent_conf.exists()
    assert not (node.rootwrap_d / "sriov-vif.filters").exists()
    assert not (node.data / "sriov-vif/config-changes").exists()
    # VFs and the journal directory stay until clean.
    assert node.numvfs("ens1f0") == "4"
    assert node.state.is_dir()


def test_unstack_drops_the_library_sections_whole(node: Node) -> None:
    node.ok("stack", "post-config")
    with node.nova_conf.open("a") as f:
        f.write("\n[os_vif_sriov]\nsysfs_root = /sys\n")

    node.ok("unstack")

    assert "os_vif_sriov" not in node.nova_conf.read_text()


def test_unstack_without_the_cli_warns_and_goes_on(node: Node) -> None:
    node.ok("stack", "post-config")

    result = node.ok("unstack")

    assert f"{node.bin}/sriov-vif not found" in result.stdout
    assert (f"'sudo sriov-vif --config-file {node.nova_conf} restore --all'"
            in result.stdout)
    assert node.nova_conf.read_text() == NOVA_CONF


def test_unstack_with_a_failing_restore_warns_and_goes_on(
        node: Node) -> None:
    node.install_cli(exit_code=1)
    node.ok("stack", "post-config")

    result = node.ok("unstack")

    assert "'sriov-vif restore --all' failed" in result.stdout
    assert node.nova_conf.read_text() == NOVA_CONF


def test_clean_puts_numvfs_back_and_removes_the_journal(node: Node) -> None:
    node.install_cli()
    node.ok("stack", "post-config", SRIOV_VIF_NUMVFS="ens1f0:4")
    node.journal_vf()
    node.ok("unstack")

    node.ok("clean")

    assert (node.numvfs("ens1f0"), node.numvfs("ens2f0")) == ("0", "0")
    assert not node.state.exists()
    assert not (node.data / "sriov-vif").exists()


def test_clean_keeps_a_journal_that_was_not_restored(node: Node) -> None:
    node.ok("stack", "post-config")
    node.journal_vf()
    node.ok("unstack")

    result = node.ok("clean")

    assert (node.state / "0000:81:10.2.json").exists()
    assert f"Keeping {node.state}" in result.stdout


def test_clean_leaves_vfs_that_a_guest_may_use(node: Node) -> None:
    node.ok("stack", "post-config", SRIOV_VIF_NUMVFS="ens1f0:4")
    node.ok("unstack")
    device = node.sysfs / "class/net/ens1f0/device"
    (node.root / "drivers/vfio-pci").mkdir(parents=True)
    (device / "virtfn0").mkdir()
    (device / "virtfn0/driver").symlink_to(node.root / "drivers/vfio-pci")

    result = node.ok("clean")

    assert node.numvfs("ens1f0") == "4"
    assert "still bound to vfio-pci" in result.stdout
    (device / "virtfn0/driver").unlink()

    node.ok("clean")

    assert node.numvfs("ens1f0") == "0"
    assert not (node.data / "sriov-vif").exists()
