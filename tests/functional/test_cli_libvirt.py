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

"""sriov-vif attach and detach against libvirt's own QEMU driver.

libvirt's test driver cannot attach devices, so the commands run against
the QEMU driver embedded in a child process (qemu:///embed), which needs
no libvirtd; the child drops root for nobody first because the embedded
driver run as root insists on the libvirt-qemu user. The domain is
inactive, so the device goes into its persistent definition, which the
QEMU driver parses and validates for real.
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile

import os_vif.objects
from os_vif.objects import network as osv_network
from os_vif.objects import vif as osv_vif
import pytest

os_vif.objects.register_all()

NOBODY = 65534
_CHILD = r"""
import io, json, os, sys
import libvirt
from sriov_vif import cli
root, vif_file = sys.argv[1], sys.argv[2]
if os.geteuid() == 0:
    os.setgroups([])
    os.setgid(int(sys.argv[3]))
    os.setuid(int(sys.argv[3]))
for name in ("HOME", "XDG_CONFIG_HOME", "XDG_CACHE_HOME", "XDG_RUNTIME_DIR"):
    os.environ[name] = os.path.join(root, name.lower())
libvirt.registerErrorHandler(lambda _ctx, _err: None, None)
libvirt.virEventRegisterDefaultImpl()
uri = "qemu:///embed?root=" + root
conn = libvirt.open(uri)
conn.defineXML(
    "<domain type='qemu'><name>guest1</name><memory>65536</memory>"
    "<os><type arch='x86_64' machine='pc'>hvm</type></os>"
    "<devices/></domain>")
conn.close()

def run(*argv):
    out, err = io.StringIO(), io.StringIO()
    sys.stdout, sys.stderr = out, err
    try:
        status = cli.main(list(argv))
    finally:
        sys.stdout, sys.stderr = sys.__stdout__, sys.__stderr__
    return {"status": status, "out": out.getvalue(), "err": err.getvalue()}

def devices():
    conn = libvirt.open(uri)
    try:
        return conn.lookupByName("guest1").XMLDesc(0)
    finally:
        conn.close()

results = {}
results["attach"] = run("attach", "--connect", uri, "--domain", "guest1",
                        vif_file)
results["after_attach"] = devices()
results["detach"] = run("detach", "--connect", uri, "--domain", "guest1",
                        vif_file)
results["after_detach"] = devices()
results["missing"] = run("attach", "--connect", uri, "--domain", "nosuch",
                         vif_file)
json.dump(results, sys.__stdout__)
"""


@pytest.fixture(scope="module")
def results():
    try:
        import libvirt  # noqa: F401
    except ImportError:
        pytest.fail("libvirt-python is missing: install sriov-vif with its "
                    "'libvirt' extra")
    root = tempfile.mkdtemp(prefix="cli-embed-")
    vif = osv_vif.VIFHostDevice(
        id="a77ac400-1111-4222-8333-444455556666",
        address="fa:16:3e:77:88:99", plugin="sriov", dev_type="ethernet",
        dev_address="0000:81:10.4", network=osv_network.Network(vlan=123))
    vif_file = os.path.join(root, "vif.json")
    with open(vif_file, "w") as f:
        json.dump(vif.obj_to_primitive(), f)
    try:
        if os.geteuid() == 0:
            os.chown(root, NOBODY, NOBODY)
            os.chmod(vif_file, 0o644)
        child = subprocess.run(
            [sys.executable, "-W", "ignore", "-c", _CHILD, root, vif_file,
             str(NOBODY)], capture_output=True, text=True, timeout=300,
            check=False)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    if child.returncode != 0:
        pytest.fail("the embedded QEMU driver did not run: "
                    + child.stderr[-2000:])
    return json.loads(child.stdout)


def test_attach_puts_the_interface_into_the_domain(results):
    assert results["attach"]["status"] == 0, results["attach"]["err"]
    assert results["attach"]["out"] == (
        "attached VIF a77ac400-1111-4222-8333-444455556666 to domain "
        "guest1\n")
    xml = results["after_attach"]
    assert "<interface type='hostdev' managed='yes'>" in xml
    assert "<mac address='fa:16:3e:77:88:99'/>" in xml
    assert "<tag id='123'/>" in xml
    assert "ua-a77ac400-1111-4222-8333-444455556666" in xml


def test_detach_removes_it_again(results):
    assert results["detach"]["status"] == 0, results["detach"]["err"]
    assert "fa:16:3e:77:88:99" not in results["after_detach"]


def test_unknown_domain_is_one_line(results):
    missing = results["missing"]
    assert missing["status"] == 1
    lines = missing["err"].strip().splitlines()
    assert len(lines) == 1 and "nosuch" in lines[0]
