#!/bin/bash
#
# plugin.sh - devstack plugin of sriov-vif: dispatches devstack's phases to
# the functions of lib/sriov-vif (doc/source/devstack.rst says what each
# does). neutron's own plugin runs the SR-IOV agent.

source "$(dirname "${BASH_SOURCE[0]}")/lib/sriov-vif"

if is_service_enabled sriov-vif; then
    case "$1 ${2:-}" in
        "stack install")
            echo_summary "Installing sriov-vif"
            install_sriov_vif
            ;;
        "stack post-config")
            echo_summary "Configuring sriov-vif"
            configure_sriov_vif
            ;;
        "unstack "*)
            echo_summary "Restoring the VFs journaled by sriov-vif"
            unstack_sriov_vif
            ;;
        "clean "*)
            echo_summary "Cleaning sriov-vif"
            clean_sriov_vif
            ;;
    esac
fi
