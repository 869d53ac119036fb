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

"""The plugin as os-vif and the config generator see it."""

import inspect

import os_vif
from os_vif import exception as osv_exception
from oslo_config import cfg
import pytest

from sriov_vif import config
from sriov_vif import exception
from sriov_vif import plugin


@pytest.fixture
def initialized():
    os_vif.initialize(reset=True)
    yield os_vif
    cfg.CONF.reset()


def _sriov_info(host_info):
    infos = [p for p in host_info.plugin_info if p.plugin_name == "sriov"]
    assert len(infos) == 1
    return infos[0]


def test_os_vif_loads_the_plugin_with_both_vif_types(initialized):
    info = _sriov_info(os_vif.host_info())
    assert sorted(v.vif_object_name for v in info.vif_info) == [
        "VIFDirect", "VIFHostDevice"]
    for vif_info in info.vif_info:
        assert (vif_info.min_version, vif_info.max_version) == ("1.0", "1.0")
        profiles = {p.profile_object_name: (p.min_version, p.max_version)
                    for p in vif_info.supported_port_profiles}
        assert profiles == {
            "VIFPortProfileSRIOV": ("1.0", "1.0"),
            "VIFPortProfile8021Qbh": ("1.0", "1.1"),
            "VIFPortProfile8021Qbg": ("1.0", "1.1"),
        }


def test_host_info_filters_by_vif_type(initialized):
    info = os_vif.host_info(permitted_vif_type_names=["VIFDirect"])
    assert [v.vif_object_name for v in _sriov_info(info).vif_info] == [
        "VIFDirect"]


def test_options_are_registered_in_os_vif_sriov(initialized):
    group = cfg.CONF.os_vif_sriov
    assert group.sysfs_root == "/sys"
    assert group.state_path == "/var/lib/sriov_vif"
    assert group.unsupported_attribute_action == "fail"
    assert group.released_vf_mac == "zero"
    cfg.CONF.set_override("state_path", "/tmp/x", group="os_vif_sriov")
    assert cfg.CONF.os_vif_sriov.state_path == "/tmp/x"
    with pytest.raises(ValueError):
        cfg.CONF.set_override("released_vf_mac", "keep",
                              group="os_vif_sriov")


def test_list_opts_covers_plugin_and_privileged_sections():
    groups = dict(config.list_opts())
    assert [o.name for o in groups["os_vif_sriov"]] == [
        "sysfs_root", "state_path", "unsupported_attribute_action",
        "released_vf_mac"]
    assert "capabilities" in {o.name for o in groups["sriov_vif_privileged"]}
    for opts in groups.values():
        assert all(o.help for o in opts)


def test_construction_touches_nothing(tmp_path):
    state = tmp_path / "state"
    conf = cfg.ConfigOpts()
    conf.register_opts(config.CONFIG_OPTS, group="os_vif_sriov")
    conf([])
    conf.set_override("state_path", str(state), group="os_vif_sriov")
    plugin.SriovPlugin(conf.os_vif_sriov).describe()
    assert not state.exists()


def _error_classes():
    return [cls for _, cls in inspect.getmembers(exception, inspect.isclass)
            if issubclass(cls, exception.SriovVifError)]


@pytest.mark.parametrize("cls", _error_classes(), ids=lambda c: c.__name__)
def test_every_error_formats_its_message(cls):
    assert issubclass(cls, osv_exception.ExceptionBase)
    keys = set()
    # Collect the %(name)s keys of msg_fmt and fill each with its name.
    text = cls.msg_fmt
    while "%(" in text:
        text = text[text.index("%(") + 2:]
        keys.add(text[:text.index(")")])
    err = cls(**{k: f"<{k}>" for k in keys})
    for k in keys:
        assert f"<{k}>" in str(err)
    assert "%(" not in str(err)


def test_errors_survive_privsep_reconstruction():
    # oslo.privsep rebuilds an exception on the client as type(*args).
    err = exception.VFAttributeRefused(
        pf_ifname="eth0", driver="ice", attribute="min_tx_rate",
        vf_index=3, reason="Invalid argument")
    rebuilt = type(err)(*err.args)
    assert str(rebuilt) == str(err)
