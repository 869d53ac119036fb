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

"""`sriov-vif`: the operator's view of and hands on this host's VFs.

Every command ends with status 0, or non-zero and one line on stderr that
says what failed: operators paste these into tickets, and a traceback
hides the reason.
"""

from __future__ import annotations

import warnings

# eventlet, which oslo.versionedobjects pulls in through oslo.messaging,
# warns on import that it is deprecated: noise on an operator's terminal
# that says nothing about the command. Filtered here, before the imports,
# and only for this command, never for nova-compute.
warnings.filterwarnings("ignore", message=r"\s*Eventlet is deprecated")

import argparse
import collections.abc
import json
import logging as std_logging
import os
import sys
from typing import Any
from typing import TextIO

import os_vif
from os_vif.objects import base as osv_base
from os_vif.objects import instance_info as osv_instance_info
from os_vif.objects import vif as osv_vif
from oslo_config import cfg
from oslo_log import log as logging
from oslo_privsep import priv_context

from sriov_vif import config
from sriov_vif import conversion
from sriov_vif import discovery
from sriov_vif import exception
from sriov_vif import inventory
from sriov_vif import journal
from sriov_vif import nova_integration
from sriov_vif import objects  # noqa: F401  (registers the port profile)
from sriov_vif import plugin
from sriov_vif import policy
from sriov_vif import privsep

PROG = "sriov-vif"


def _read_json(source: str) -> Any:
    name = "stdin" if source == "-" else source
    try:
        if source == "-":
            return json.load(sys.stdin)
        with open(source, encoding="utf-8") as f:
            return json.load(f)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError, UTF-8
        raise exception.SriovVifError(
            reason=f"{name} is not valid JSON: {exc}") from exc


def _read_vif(source: str) -> osv_vif.VIFBase:
    data = _read_json(source)
    try:
        vif = osv_base.VersionedObject.obj_from_primitive(data)
    except (KeyError, TypeError, ValueError) as exc:
        raise exception.SriovVifError(
            reason=f"{source} is not an os-vif VIF primitive "
                   f"(obj_to_primitive() JSON): missing or bad {exc}"
        ) from exc
    policy.check_supported(vif)
    return vif


def _sriov_plugin() -> plugin.SriovPlugin:
    os_vif.initialize()
    return plugin.SriovPlugin(cfg.CONF[config.GROUP])


def _start_privsep() -> None:
    """Start the privileged daemon now, or fail in one line saying how.

    As root the daemon is forked: an operator needs no sudo or rootwrap.
    As anyone else oslo.privsep's helper command applies; started here
    rather than on the first netlink request, so that a missing sudo is
    one line naming the option instead of "[Errno 13] ... 'sudo'".
    """
    helper = cfg.CONF[config.PRIVSEP_GROUP].helper_command
    if os.geteuid() == 0 and not helper:
        privsep.vif_plug.start(priv_context.Method.FORK)
        return
    try:
        privsep.vif_plug.start(priv_context.Method.ROOTWRAP)
    except Exception as exc:
        how = (f"helper_command {helper!r} failed" if helper
               else "run as root or configure [sriov_vif_privileged] "
                    "helper_command")
        raise exception.SriovVifError(
            reason=f"cannot start the privileged daemon ({exc}): {how}"
        ) from exc


def _check_state_path(create: bool) -> None:
    """Refuse to let a root run create state_path owned by root.

    nova-compute runs as its own user and could then never write the
    journal; the deployment (devstack, a package) creates the directory
    for that user.
    """
    state_path = cfg.CONF[config.GROUP].state_path
    if create and os.geteuid() == 0 and not os.path.isdir(state_path):
        raise exception.SriovVifError(
            reason=f"state_path {state_path} does not exist; as root "
                   "sriov-vif will not create it owned by root: create it "
                   "owned by the user nova-compute runs as, mode 0700")


def _instance(args: argparse.Namespace) -> osv_instance_info.InstanceInfo:
    info = osv_instance_info.InstanceInfo()
    if args.instance_uuid:
        info.uuid = args.instance_uuid
    if args.instance_name:
        info.name = args.instance_name
    return info


def cmd_inventory(args: argparse.Namespace, out: TextIO) -> None:
    # reading VF tables needs no privilege: no daemon
    group = cfg.CONF[config.GROUP]
    data = inventory.collect(group.sysfs_root,
                             journal.Journal(group.state_path))
    if args.json:
        json.dump(data, out, indent=2)
        out.write("\n")
    else:
        out.write(inventory.render(data))
    # everything is printed first; then the status says something is wrong
    unreadable = inventory.errors(data)
    if unreadable:
        raise exception.SriovVifError(
            reason="could not read " + "; ".join(unreadable))


def cmd_convert(args: argparse.Namespace, out: TextIO) -> None:
    vif = conversion.from_nova_vif(_read_json(args.file))
    json.dump(vif.obj_to_primitive(), out, indent=2, sort_keys=True)
    out.write("\n")


def cmd_xml(args: argparse.Namespace, out: TextIO) -> None:
    vif = _read_vif(args.file)
    out.write(nova_integration.device_xml(vif))
    out.write("\n")


def cmd_plug(args: argparse.Namespace, out: TextIO) -> None:
    vif = _read_vif(args.file)
    _check_state_path(create=True)
    _start_privsep()
    _sriov_plugin().plug(vif, _instance(args))
    out.write(f"plugged VIF {vif.id} on VF {vif.dev_address}\n")


def cmd_unplug(args: argparse.Namespace, out: TextIO) -> None:
    vif = _read_vif(args.file)
    _check_state_path(create=True)
    _start_privsep()
    _sriov_plugin().unplug(vif, _instance(args))
    out.write(f"unplugged VIF {vif.id} from VF {vif.dev_address}\n")


def cmd_restore(args: argparse.Namespace, out: TextIO) -> None:
    if args.all == bool(args.pci_addresses or args.vif):
        raise exception.SriovVifError(
            reason="restore needs --all, --vif or one or more VF PCI "
                   "addresses")
    for address in args.pci_addresses:
        discovery.validate_pci_address(address)
    # --all on a missing state_path has nothing to restore: no refusal
    _check_state_path(create=not args.all)
    _start_privsep()
    result = _sriov_plugin().restore(
        None if args.all else list(args.pci_addresses),
        vif_ids=list(args.vif))
    for vif_id in result.not_found:
        out.write(f"no VF is journaled for VIF {vif_id}\n")
    if not result.restored and not result.failed:
        out.write("no VF needed restoring\n")
    for address in result.restored:
        out.write(f"restored VF {address}\n")
    if result.failed:
        raise exception.SriovVifError(reason="could not restore " + "; ".join(
            f"{address}: {reason}"
            for address, reason in sorted(result.failed.items())))


def cmd_attach(args: argparse.Namespace, out: TextIO) -> None:
    _change_domain(args, out, attach=True)


def cmd_detach(args: argparse.Namespace, out: TextIO) -> None:
    _change_domain(args, out, attach=False)


def _change_domain(args: argparse.Namespace, out: TextIO,
                   attach: bool) -> None:
    """Attach or detach, live and in the persistent definition alike."""
    vif = _read_vif(args.file)
    device = nova_integration.device_xml(vif)
    try:
        import libvirt
    except ImportError:
        raise exception.LibvirtUnavailable() from None
    domain = libvirt.open(args.connect).lookupByName(args.domain)
    flags = libvirt.VIR_DOMAIN_AFFECT_CONFIG
    if domain.isActive():
        flags |= libvirt.VIR_DOMAIN_AFFECT_LIVE
    if attach:
        domain.attachDeviceFlags(device, flags)
        out.write(f"attached VIF {vif.id} to domain {args.domain}\n")
    else:
        domain.detachDeviceFlags(device, flags)
        out.write(f"detached VIF {vif.id} from domain {args.domain}\n")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG, description="Inspect and manage SR-IOV VFs for os-vif.")
    parser.add_argument("--config-file", action="append", default=[],
                        metavar="PATH",
                        help="oslo.config file (repeatable), e.g. nova.conf")
    parser.add_argument("--config-dir", action="append", default=[],
                        metavar="DIR", help="oslo.config directory")
    parser.add_argument("--verbose", action="store_true",
                        help="log what is done (to stderr)")
    parser.add_argument("--debug", action="store_true",
                        help="log debug messages (to stderr)")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("inventory", help="every SR-IOV PF and VF")
    p.add_argument("--json", action="store_true", help="JSON output")
    p.set_defaults(func=cmd_inventory)

    p = sub.add_parser("convert",
                       help="nova network-model VIF (JSON) -> os-vif object")
    p.add_argument("file", help="JSON file, or - for stdin")
    p.set_defaults(func=cmd_convert)

    p = sub.add_parser("xml",
                       help="os-vif VIF (JSON primitive) -> libvirt XML")
    p.add_argument("file", help="JSON file, or - for stdin")
    p.set_defaults(func=cmd_xml)

    for name, func in (("plug", cmd_plug), ("unplug", cmd_unplug)):
        p = sub.add_parser(name, help=f"{name} an os-vif VIF on this host")
        p.add_argument("file", help="JSON file, or - for stdin")
        p.add_argument("--instance-uuid")
        p.add_argument("--instance-name")
        p.set_defaults(func=func)

    p = sub.add_parser("restore", help="put VFs back from the journal")
    p.add_argument("--all", action="store_true",
                   help="every VF with a journal record")
    p.add_argument("--vif", action="append", default=[],
                   metavar="VIF_ID",
                   help="the VF journaled for this VIF (port) id, "
                        "whatever its binding says; repeatable")
    p.add_argument("pci_addresses", nargs="*", metavar="PCI")
    p.set_defaults(func=cmd_restore)

    for name, func in (("attach", cmd_attach), ("detach", cmd_detach)):
        p = sub.add_parser(name, help=f"{name} a VIF's device to a domain")
        p.add_argument("--domain", required=True)
        p.add_argument("--connect", default="qemu:///system",
                       help="libvirt connection URI")
        p.add_argument("file", help="JSON file, or - for stdin")
        p.set_defaults(func=func)

    return parser


def _load_config(args: argparse.Namespace) -> None:
    conf_args: list[str] = []
    for path in args.config_file:
        conf_args += ["--config-file", path]
    for path in args.config_dir:
        conf_args += ["--config-dir", path]
    if args.debug:
        conf_args.append("--debug")
    # main() may run more than once in a process (tests, embedding).
    cfg.CONF.clear()
    logging.register_options(cfg.CONF)
    # stdout carries the command's output (JSON, XML); logs go beside it.
    cfg.CONF.set_default("use_stderr", True)
    cfg.CONF.register_opts(config.CONFIG_OPTS, group=config.GROUP)
    cfg.CONF(conf_args, project="sriov_vif", prog=PROG,
             default_config_files=[])
    logging.setup(cfg.CONF, PROG)
    if not (args.debug or args.verbose):
        # An operator's command prints its result and, on failure, one
        # line; what it did along the way is for --verbose.
        std_logging.getLogger().setLevel(std_logging.WARNING)


def main(argv: collections.abc.Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        _load_config(args)
        args.func(args, sys.stdout)
    except KeyboardInterrupt:
        # e.g. Ctrl-C while waiting for a VF's lock: what was journaled
        # stays, and 'sriov-vif restore' can finish the job.
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # one line, never a traceback
        reason = " ".join(str(exc).split()) or type(exc).__name__
        print(f"{PROG}: error: {reason}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
