#!/bin/bash
#
# plugin.sh - devstack plugin of sriov-vif
#
# stack install      installs the library with its libvirt extra.
# stack post-config  makes the node ready for SR-IOV ports: [os_vif_sriov]
#                    and [pci] device_spec in $NOVA_CONF, the journal
#                    directory, VFs on the PFs, PciPassthroughFilter for the
#                    scheduler, neutron's sriovnicswitch driver and the
#                    SR-IOV agent's device mappings.
# unstack            restores the VFs from the journal, then removes what
#                    post-config wrote.
# clean              puts sriov_numvfs back and removes the journal.
#
# Every change post-config makes to a file is appended to a ledger as it is
# made, and unstack undoes the ledger in reverse: config that devstack or the
# user wrote is never touched, and running post-config twice changes nothing
# the second time. Every variable is checked before anything is written.

# No trace while functions are defined; the phases below are traced.
_XTRACE_SRIOV_VIF=$(set +o | grep xtrace)
set +o xtrace

SRIOV_VIF_BIN_DIR=${SRIOV_VIF_BIN_DIR:-$(get_python_exec_prefix)}

_SRIOV_VIF_CONFIG_LEDGER=$SRIOV_VIF_DEVSTACK_DATA/config-changes
_SRIOV_VIF_NUMVFS_LEDGER=$SRIOV_VIF_DEVSTACK_DATA/numvfs-changes
# Sections that belong to this library alone: unstack drops them whole.
_SRIOV_VIF_SECTIONS="os_vif_sriov sriov_vif_privileged"


# Parsing and checking the variables
# ==================================

function _sriov_vif_trim {
    local s=$1
    s=${s#"${s%%[![:space:]]*}"}
    s=${s%"${s##*[![:space:]]}"}
    printf '%s' "$s"
}

# Fills _SRIOV_VIF_ITEMS with the trimmed comma-separated fields of $1,
# keeping empty ones so that "a,,b" and "a," can be refused.
function _sriov_vif_split_list {
    local rest="$1,"
    _SRIOV_VIF_ITEMS=()
    while [[ -n $rest ]]; do
        _SRIOV_VIF_ITEMS+=("$(_sriov_vif_trim "${rest%%,*}")")
        rest=${rest#*,}
    done
}

# SRIOV_VIF_PHYSICAL_DEVICE_MAPPINGS -> _SRIOV_VIF_PHYSNETS and
# _SRIOV_VIF_DEVNAMES, in the variable's order. Names are restricted to
# characters that need no quoting in JSON, ini files or sysfs paths.
function _sriov_vif_parse_mappings {
    local var=SRIOV_VIF_PHYSICAL_DEVICE_MAPPINGS
    local raw=${!var}
    local physnet_re='^[A-Za-z0-9_.-]{1,64}$'
    local devname_re='^[A-Za-z0-9_.-]{1,15}$'
    local entry physnet devname seen=","
    local -a entries
    _SRIOV_VIF_PHYSNETS=()
    _SRIOV_VIF_DEVNAMES=()
    if [[ -z $(_sriov_vif_trim "$raw") ]]; then
        return 0
    fi
    _sriov_vif_split_list "$raw"
    entries=("${_SRIOV_VIF_ITEMS[@]}")
    for entry in "${entries[@]}"; do
        if [[ -z $entry ]]; then
            die $LINENO "$var='$raw': empty entry (stray comma?); expected <physical_network>:<PF device name>[,...]"
        fi
        if [[ $entry != *:* ]]; then
            die $LINENO "$var: entry '$entry' has no ':'; expected <physical_network>:<PF device name>, e.g. physnet2:ens1f0"
        fi
        physnet=${entry%%:*}
        devname=${entry#*:}
        if [[ $devname == *:* ]]; then
            die $LINENO "$var: entry '$entry' has more than one ':'; expected <physical_network>:<PF device name>"
        fi
        if [[ -z $physnet ]]; then
            die $LINENO "$var: entry '$entry' has an empty physical network"
        fi
        if [[ -z $devname ]]; then
            die $LINENO "$var: entry '$entry' has an empty PF device name"
        fi
        if [[ ! $physnet =~ $physnet_re ]]; then
            die $LINENO "$var: entry '$entry': physical network '$physnet' must be 1 to 64 letters, digits, '.', '_' or '-'"
        fi
        if [[ ! $devname =~ $devname_re || $devname == . || $devname == .. ]]; then
            die $LINENO "$var: entry '$entry': '$devname' is not a network device name (1 to 15 letters, digits, '.', '_' or '-')"
        fi
        if [[ $seen == *,$devname,* ]]; then
            die $LINENO "$var: entry '$entry': device '$devname' is mapped more than once"
        fi
        seen+="$devname,"
        _SRIOV_VIF_PHYSNETS+=("$physnet")
        _SRIOV_VIF_DEVNAMES+=("$devname")
    done
}

# SRIOV_VIF_NUMVFS -> _SRIOV_VIF_NUMVFS_DEVS and _SRIOV_VIF_NUMVFS_COUNTS.
function _sriov_vif_parse_numvfs {
    local var=SRIOV_VIF_NUMVFS
    local raw entry devname count seen=","
    local -a entries
    raw=$(_sriov_vif_trim "${!var}")
    _SRIOV_VIF_NUMVFS_DEVS=()
    _SRIOV_VIF_NUMVFS_COUNTS=()
    if [[ -z $raw ]]; then
        return 0
    fi
    if [[ ${#_SRIOV_VIF_DEVNAMES[@]} -eq 0 ]]; then
        die $LINENO "$var='$raw' but SRIOV_VIF_PHYSICAL_DEVICE_MAPPINGS names no PF to create VFs on"
    fi
    if [[ $raw =~ ^[0-9]{1,4}$ ]]; then
        for devname in "${_SRIOV_VIF_DEVNAMES[@]}"; do
            _SRIOV_VIF_NUMVFS_DEVS+=("$devname")
            _SRIOV_VIF_NUMVFS_COUNTS+=("$((10#$raw))")
        done
        return 0
    fi
    _sriov_vif_split_list "$raw"
    entries=("${_SRIOV_VIF_ITEMS[@]}")
    for entry in "${entries[@]}"; do
        if [[ ! $entry =~ ^([^:]+):([0-9]{1,4})$ ]]; then
            die $LINENO "$var: entry '$entry' is not <PF device name>:<number of VFs>; give one number for every PF, or e.g. ens1f0:8,ens2f0:4"
        fi
        devname=${BASH_REMATCH[1]}
        count=$((10#${BASH_REMATCH[2]}))
        if [[ " ${_SRIOV_VIF_DEVNAMES[*]} " != *" $devname "* ]]; then
            die $LINENO "$var: entry '$entry': '$devname' is not a PF of SRIOV_VIF_PHYSICAL_DEVICE_MAPPINGS"
        fi
        if [[ $seen == *,$devname,* ]]; then
            die $LINENO "$var: entry '$entry': '$devname' is given more than once"
        fi
        seen+="$devname,"
        _SRIOV_VIF_NUMVFS_DEVS+=("$devname")
        _SRIOV_VIF_NUMVFS_COUNTS+=("$count")
    done
}

# clean removes this directory recursively: refuse anything vague.
function _sriov_vif_check_state_path {
    local var=SRIOV_VIF_STATE_PATH
    local value=${!var}
    if [[ $value != /?* || $value =~ [[:space:]] || /$value/ == */../* || /$value/ == */./* ]]; then
        die $LINENO "$var='$value': must be an absolute directory path other than /, without blanks, '.' or '..'"
    fi
}

function _sriov_vif_check_choice {
    local var=$1 choice
    local value=${!1}
    shift
    for choice in "$@"; do
        if [[ $value == "$choice" ]]; then
            return 0
        fi
    done
    die $LINENO "$var='$value': must be one of: $*"
}

function _sriov_vif_validate {
    _sriov_vif_parse_mappings
    _sriov_vif_parse_numvfs
    _sriov_vif_check_state_path
    _sriov_vif_check_choice SRIOV_VIF_UNSUPPORTED_ATTRIBUTE_ACTION fail warn
    _sriov_vif_check_choice SRIOV_VIF_RELEASED_VF_MAC zero restore
}

# The PFs that get VFs must be SR-IOV capable and have enough of them.
function _sriov_vif_check_pfs {
    local i devname count dir total
    for i in "${!_SRIOV_VIF_NUMVFS_DEVS[@]}"; do
        devname=${_SRIOV_VIF_NUMVFS_DEVS[$i]}
        count=${_SRIOV_VIF_NUMVFS_COUNTS[$i]}
        dir=$SRIOV_VIF_SYSFS_ROOT/class/net/$devname/device
        if [[ ! -f $dir/sriov_numvfs ]]; then
            die $LINENO "SRIOV_VIF_NUMVFS: $devname has no $dir/sriov_numvfs: no such device, or not a PF with SR-IOV enabled"
        fi
        if [[ -r $dir/sriov_totalvfs ]]; then
            total=$(<"$dir/sriov_totalvfs")
            if [[ $count -gt $total ]]; then
                die $LINENO "SRIOV_VIF_NUMVFS: $devname supports at most $total VFs, $count asked"
            fi
        fi
    done
}


# The ledger of changes
# =====================

# _sriov_vif_record LEDGER FIELD... appends one tab-separated line, once.
function _sriov_vif_record {
    local ledger=$1 line
    shift
    line=$(printf '%s\t' "$@")
    line=${line%$'\t'}
    mkdir -p "$(dirname "$ledger")"
    if [[ ! -f $ledger ]] || ! grep -qxF -- "$line" "$ledger"; then
        printf '%s\n' "$line" >> "$ledger"
    fi
}


# Ini editing
# ===========
#
# Writes go through devstack's iniset, iniadd_literal and inidelete. What
# devstack has no function for (the values of a multi-valued option, removing
# one of them, removing a section) is done here with the same idea of a
# section: from its "[name]" line to the next line starting with "[".

function _sriov_vif_ini_has_section {
    [[ -f $1 ]] && grep -q "^\[$2\]" "$1"
}

# Every value of OPTION in SECTION of FILE, one per line, as written (no
# blank squeezing, no globbing: "*" stays "*").
function _sriov_vif_ini_values {
    local file=$1 section=$2 option=$3
    if [[ ! -f $file ]]; then
        return 0
    fi
    awk -v sec="[$section]" -v opt="$option" '
        substr($0, 1, 1) == "[" && index($0, "]") > 0 {
            insec = (index($0, sec) == 1)
            next
        }
        insec && substr($0, 1, length(opt)) == opt {
            v = substr($0, length(opt) + 1)
            if (v ~ /^[ \t]*=/) {
                sub(/^[ \t]*=[ \t]*/, "", v)
                sub(/[ \t\r]+$/, "", v)
                print v
            }
        }
    ' "$file"
}

# Runs awk with the given arguments over FILE and writes the result back in
# place, so that the file keeps its owner and mode.
function _sriov_vif_rewrite {
    local file=$1 tmp
    shift
    tmp=$(mktemp)
    awk "$@" "$file" > "$tmp"
    cat "$tmp" > "$file"
    rm -f "$tmp"
}

# Removes the lines of SECTION in FILE whose OPTION has exactly VALUE.
function _sriov_vif_ini_delete_value {
    local file=$1 section=$2 option=$3 value=$4
    if [[ ! -f $file ]]; then
        return 0
    fi
    _sriov_vif_rewrite "$file" -v sec="[$section]" -v opt="$option" \
        -v val="$value" '
        substr($0, 1, 1) == "[" && index($0, "]") > 0 {
            insec = (index($0, sec) == 1)
        }
        insec && substr($0, 1, length(opt)) == opt {
            v = substr($0, length(opt) + 1)
            if (v ~ /^[ \t]*=/) {
                sub(/^[ \t]*=[ \t]*/, "", v)
                sub(/[ \t\r]+$/, "", v)
                if (v == val) {
                    next
                }
            }
        }
        { print }
    '
}

# Removes SECTION from FILE: its header, its lines up to the last non-blank
# one and the blank line before the header, which is what iniset added.
# With "if-empty", only a section left without any line.
function _sriov_vif_ini_drop_section {
    local file=$1 section=$2 only_if_empty=${3:-}
    if ! _sriov_vif_ini_has_section "$file" "$section"; then
        return 0
    fi
    _sriov_vif_rewrite "$file" -v sec="[$section]" \
        -v only_if_empty="$only_if_empty" '
        { line[NR] = $0 }
        END {
            for (i = 1; i <= NR; i = j) {
                j = i + 1
                if (index(line[i], sec) != 1) {
                    continue
                }
                last = i
                for (; j <= NR && substr(line[j], 1, 1) != "["; j++) {
                    if (line[j] !~ /^[ \t]*$/) {
                        last = j
                    }
                }
                if (only_if_empty == "" || last == i) {
                    for (k = i; k <= last; k++) {
                        drop[k] = 1
                    }
                    if (i > 1 && !drop[i - 1] && line[i - 1] ~ /^[ \t]*$/) {
                        drop[i - 1] = 1
                    }
                }
            }
            for (i = 1; i <= NR; i++) {
                if (!drop[i]) {
                    print line[i]
                }
            }
        }
    '
}

# iniset, recording the file, section and option it creates.
function _sriov_vif_ini_set {
    local file=$1 section=$2 option=$3 value=$4
    local ledger=$_SRIOV_VIF_CONFIG_LEDGER
    if [[ ! -e $file ]]; then
        _sriov_vif_record "$ledger" ini-file "$file"
    fi
    if ! _sriov_vif_ini_has_section "$file" "$section"; then
        _sriov_vif_record "$ledger" section "$file" "$section"
    fi
    if [[ ! -f $file ]] || ! ini_has_option "$file" "$section" "$option"; then
        _sriov_vif_record "$ledger" option "$file" "$section" "$option"
    fi
    iniset "$file" "$section" "$option" "$value"
}

# Adds VALUE as one more line of the multi-valued OPTION unless it is there.
# One literal line per value: iniset_multiline would split values on blanks
# and replace the values others wrote.
function _sriov_vif_ini_add_value {
    local file=$1 section=$2 option=$3 value=$4
    local ledger=$_SRIOV_VIF_CONFIG_LEDGER
    if ! _sriov_vif_ini_has_section "$file" "$section"; then
        if [[ ! -e $file ]]; then
            _sriov_vif_record "$ledger" ini-file "$file"
        fi
        _sriov_vif_record "$ledger" section "$file" "$section"
        printf '\n[%s]\n' "$section" >> "$file"
    fi
    if _sriov_vif_ini_values "$file" "$section" "$option" | grep -qxF -- "$value"; then
        return 0
    fi
    iniadd_literal "$file" "$section" "$option" "$value"
    _sriov_vif_record "$ledger" line "$file" "$section" "$option" "$value"
}

# True when the comma list $1 holds $2, $2:<anything> (a VLAN range or a
# device mapping of that physnet) or "*" (everything).
function _sriov_vif_list_has {
    local item
    _sriov_vif_split_list "$1"
    for item in "${_SRIOV_VIF_ITEMS[@]}"; do
        if [[ $item == "$2" || $item == "$2":* || $item == "*" ]]; then
            return 0
        fi
    done
    return 1
}

# Appends ELEMENT to the comma list OPTION unless it is there already.
function _sriov_vif_ini_list_add {
    local file=$1 section=$2 option=$3 element=$4 current
    current=$(_sriov_vif_ini_values "$file" "$section" "$option" | head -n 1)
    if _sriov_vif_list_has "$current" "$element"; then
        return 0
    fi
    _sriov_vif_ini_set "$file" "$section" "$option" "${current:+$current,}$element"
    _sriov_vif_record "$_SRIOV_VIF_CONFIG_LEDGER" element "$file" \
        "$section" "$option" "$element"
}

# Takes ELEMENT out of the comma list OPTION, leaving the rest as written
# when ELEMENT is where _sriov_vif_ini_list_add put it, at the end.
function _sriov_vif_ini_list_remove {
    local file=$1 section=$2 option=$3 element=$4
    local current item new="" found=False
    if [[ ! -f $file ]] || ! ini_has_option "$file" "$section" "$option"; then
        return 0
    fi
    current=$(_sriov_vif_ini_values "$file" "$section" "$option" | head -n 1)
    if [[ $current == "$element" ]]; then
        new=""
    elif [[ $current == *,"$element" ]]; then
        new=${current%,"$element"}
    else
        _sriov_vif_split_list "$current"
        for item in "${_SRIOV_VIF_ITEMS[@]}"; do
            if [[ $item == "$element" ]]; then
                found=True
            else
                new=${new:+$new,}$item
            fi
        done
        if [[ $found == False ]]; then
            return 0
        fi
    fi
    iniset "$file" "$section" "$option" "$new"
}

# Undoes the config ledger, last change first.
function _sriov_vif_undo_config {
    local ledger=$_SRIOV_VIF_CONFIG_LEDGER
    local kind file section option value
    if [[ ! -f $ledger ]]; then
        return 0
    fi
    while IFS=$'\t' read -r kind file section option value; do
        case $kind in
            line)
                _sriov_vif_ini_delete_value "$file" "$section" "$option" "$value"
                ;;
            element)
                _sriov_vif_ini_list_remove "$file" "$section" "$option" "$value"
                ;;
            option)
                if [[ -f $file ]]; then
                    inidelete "$file" "$section" "$option"
                fi
                ;;
            section)
                _sriov_vif_ini_drop_section "$file" "$section" if-empty
                ;;
            ini-file)
                if [[ -f $file && -z $(tr -d '[:space:]' < "$file") ]]; then
                    rm -f "$file"
                fi
                ;;
            root-file)
                sudo rm -f "$file"
                ;;
        esac
    done < <(tac "$ledger")
    rm -f "$ledger"
}


# Host changes
# ============

function _sriov_vif_write_sysfs {
    echo "$2" | sudo tee "$1" > /dev/null
}

# The kernel refuses to change a non-zero VF count to another non-zero one.
function _sriov_vif_write_numvfs {
    local path=$1 current=$2 target=$3
    if [[ $current != 0 && $target != 0 ]]; then
        _sriov_vif_write_sysfs "$path" 0
    fi
    _sriov_vif_write_sysfs "$path" "$target"
}

function _sriov_vif_create_vfs {
    local ledger=$_SRIOV_VIF_NUMVFS_LEDGER
    local i devname count path current
    for i in "${!_SRIOV_VIF_NUMVFS_DEVS[@]}"; do
        devname=${_SRIOV_VIF_NUMVFS_DEVS[$i]}
        count=${_SRIOV_VIF_NUMVFS_COUNTS[$i]}
        path=$SRIOV_VIF_SYSFS_ROOT/class/net/$devname/device/sriov_numvfs
        current=$(<"$path")
        if [[ $current == "$count" ]]; then
            continue
        fi
        # Keep the count the PF had before the first change, not the last.
        if [[ ! -f $ledger ]] || ! grep -qF -- "numvfs"$'\t'"$path"$'\t' "$ledger"; then
            _sriov_vif_record "$ledger" numvfs "$path" "$current"
        fi
        echo "Setting $devname sriov_numvfs from $current to $count"
        _sriov_vif_write_numvfs "$path" "$current" "$count"
    done
}

# True when a VF of the PF device directory is bound to vfio-pci, that is
# probably passed through to a guest that clean has not destroyed yet.
function _sriov_vif_vfs_passed_through {
    local link
    for link in "$1"/virtfn*/driver; do
        if [[ -e $link && $(basename "$(readlink -f "$link")") == vfio-pci ]]; then
            return 0
        fi
    done
    return 1
}

function _sriov_vif_reset_numvfs {
    local ledger=$_SRIOV_VIF_NUMVFS_LEDGER
    local kind path original current kept=False
    if [[ ! -f $ledger ]]; then
        return 0
    fi
    while IFS=$'\t' read -r kind path original; do
        if [[ $kind != numvfs || ! -f $path ]]; then
            continue
        fi
        current=$(<"$path")
        if [[ $current == "$original" ]]; then
            continue
        fi
        if _sriov_vif_vfs_passed_through "$(dirname "$path")"; then
            warn $LINENO "Leaving $current VFs in $path: a VF is still bound to vfio-pci; run clean again once no guest uses it"
            kept=True
            continue
        fi
        echo "Setting $path back from $current to $original"
        _sriov_vif_write_numvfs "$path" "$current" "$original"
    done < <(tac "$ledger")
    if [[ $kept == False ]]; then
        rm -f "$ledger"
    fi
}

# Puts back every VF the plugin journaled. The CLI may be missing (not
# installed, or an older library): unstack must go on, loudly. Its options
# come before the command.
function _sriov_vif_restore_vfs {
    local cli=$SRIOV_VIF_BIN_DIR/sriov-vif
    local -a config=()
    if [[ -f $NOVA_CONF ]]; then
        config=(--config-file "$NOVA_CONF")
    fi
    if [[ ! -x $cli ]]; then
        warn $LINENO "$cli not found: VFs journaled under $SRIOV_VIF_STATE_PATH keep the settings of their last plug; restore them with 'sudo sriov-vif ${config[*]} restore --all'"
        return 0
    fi
    echo "Restoring the VFs journaled by sriov-vif"
    if ! sudo "$cli" "${config[@]}" restore --all; then
        warn $LINENO "'sriov-vif restore --all' failed: some VFs keep the settings of their last plug; their original state stays journaled under $SRIOV_VIF_STATE_PATH"
    fi
}

# A journal that still holds VF records is the only copy of those VFs'
# original state: keep it.
function _sriov_vif_remove_state_dir {
    local dir=$SRIOV_VIF_STATE_PATH records
    _sriov_vif_check_state_path
    if ! sudo test -d "$dir"; then
        return 0
    fi
    records=$(sudo find "$dir" -maxdepth 1 -name '*.json' | wc -l)
    if [[ $records -gt 0 ]]; then
        warn $LINENO "Keeping $dir: it still journals $records VF(s) that were not restored; run 'sudo sriov-vif restore --all', then remove it"
        return 0
    fi
    sudo rm -rf "$dir"
}


# Configuration
# =============

function _sriov_vif_configure_rootwrap_privsep {
    local filters=$NOVA_CONF_DIR/rootwrap.d/sriov-vif.filters
    local rootwrap
    rootwrap=$(get_rootwrap_location nova)
    _sriov_vif_ini_set "$NOVA_CONF" sriov_vif_privileged helper_command \
        "sudo $rootwrap $NOVA_CONF_DIR/rootwrap.conf privsep-helper --config-file $NOVA_CONF"
    if [[ ! -f $filters ]]; then
        _sriov_vif_record "$_SRIOV_VIF_CONFIG_LEDGER" root-file "$filters"
    fi
    sudo tee "$filters" > /dev/null <<'EOF'
# sriov-vif: the privsep daemon nova-compute starts through nova-rootwrap
[Filters]
privsep-rootwrap-sriov_vif: RegExpFilter, privsep-helper, root, privsep-helper, --config-file, /etc/(?!\.\.).*, --privsep_context, sriov_vif.privsep.vif_plug, --privsep_sock_path, /tmp/.*
EOF
    sudo chmod 644 "$filters"
}

# nova-compute: $NOVA_CONF, not $NOVA_CPU_CONF, which devstack rebuilds from
# $NOVA_CONF when it starts nova-compute.
function _sriov_vif_configure_compute {
    local i json
    _sriov_vif_ini_set "$NOVA_CONF" os_vif_sriov state_path \
        "$SRIOV_VIF_STATE_PATH"
    _sriov_vif_ini_set "$NOVA_CONF" os_vif_sriov unsupported_attribute_action \
        "$SRIOV_VIF_UNSUPPORTED_ATTRIBUTE_ACTION"
    _sriov_vif_ini_set "$NOVA_CONF" os_vif_sriov released_vf_mac \
        "$SRIOV_VIF_RELEASED_VF_MAC"
    # iniadd_literal puts each line right under [pci]: add the last mapping
    # first so that the file lists them in the variable's order.
    for ((i = ${#_SRIOV_VIF_DEVNAMES[@]} - 1; i >= 0; i--)); do
        json=$(printf '{"devname":"%s","physical_network":"%s"}' \
            "${_SRIOV_VIF_DEVNAMES[$i]}" "${_SRIOV_VIF_PHYSNETS[$i]}")
        _sriov_vif_ini_add_value "$NOVA_CONF" pci device_spec "$json"
    done
    if [[ $SRIOV_VIF_PRIVSEP_ROOTWRAP == True ]]; then
        _sriov_vif_configure_rootwrap_privsep
    fi
    # nova-compute runs as $STACK_USER and writes the journal itself; files
    # a root-run sriov-vif command left there would be unreadable to it.
    sudo install -d -o "$STACK_USER" -m 700 "$SRIOV_VIF_STATE_PATH"
    sudo chown -R "$STACK_USER" "$SRIOV_VIF_STATE_PATH"
    _sriov_vif_create_vfs
}

function _sriov_vif_configure_scheduler {
    if ini_has_option "$NOVA_CONF" filter_scheduler enabled_filters; then
        _sriov_vif_ini_list_add "$NOVA_CONF" filter_scheduler \
            enabled_filters PciPassthroughFilter
    else
        warn $LINENO "[filter_scheduler] enabled_filters is not set in $NOVA_CONF: nova's default filters lack PciPassthroughFilter, which SR-IOV ports need"
    fi
}

function _sriov_vif_configure_neutron_server {
    local ml2=/${Q_PLUGIN_CONF_FILE:-}
    local physnet seen=","
    if [[ -z ${Q_PLUGIN_CONF_FILE:-} || ! -f $ml2 ]]; then
        warn $LINENO "No ML2 configuration at '$ml2': sriovnicswitch not enabled"
        return 0
    fi
    _sriov_vif_ini_list_add "$ml2" ml2 mechanism_drivers sriovnicswitch
    for physnet in "${_SRIOV_VIF_PHYSNETS[@]}"; do
        if [[ $seen == *,$physnet,* ]]; then
            continue
        fi
        seen+="$physnet,"
        _sriov_vif_ini_list_add "$ml2" ml2_type_vlan network_vlan_ranges \
            "$physnet"
        # No flat_networks at all means every physnet: leave it so.
        if ini_has_option "$ml2" ml2_type_flat flat_networks; then
            _sriov_vif_ini_list_add "$ml2" ml2_type_flat flat_networks \
                "$physnet"
        fi
    done
}

# The agent neutron's devstack plugin starts for q-sriov-agt reads
# sriov_agent.ini next to the ML2 configuration.
function _sriov_vif_configure_sriov_agent {
    local conf=${SRIOV_VIF_SRIOV_AGENT_CONF:-/${Q_PLUGIN_CONF_PATH:-etc/neutron/plugins/ml2}/sriov_agent.ini}
    local i
    if [[ ! -d $(dirname "$conf") ]]; then
        warn $LINENO "No directory for the SR-IOV agent configuration $conf: physical_device_mappings not set"
        return 0
    fi
    for i in "${!_SRIOV_VIF_DEVNAMES[@]}"; do
        _sriov_vif_ini_list_add "$conf" sriov_nic physical_device_mappings \
            "${_SRIOV_VIF_PHYSNETS[$i]}:${_SRIOV_VIF_DEVNAMES[$i]}"
    done
}


# Phases
# ======

function install_sriov_vif {
    setup_develop "$SRIOV_VIF_DIR" libvirt
}

function configure_sriov_vif {
    _sriov_vif_validate
    if is_service_enabled n-cpu; then
        _sriov_vif_check_pfs
    fi
    if [[ ${#_SRIOV_VIF_DEVNAMES[@]} -eq 0 ]]; then
        warn $LINENO "SRIOV_VIF_PHYSICAL_DEVICE_MAPPINGS is empty: no PF is offered to nova or neutron"
    fi
    # stack.sh may still be editing $NOVA_CONF in the background
    # (configure_neutron_nova) during this phase: concurrent iniset calls
    # lose each other's changes.
    if is_service_enabled nova && [[ $(type -t async_wait) == function ]]; then
        async_wait configure_neutron_nova
    fi
    if is_service_enabled n-cpu; then
        _sriov_vif_configure_compute
    fi
    if is_service_enabled n-sch; then
        _sriov_vif_configure_scheduler
    fi
    if is_service_enabled q-svc neutron-api; then
        _sriov_vif_configure_neutron_server
    fi
    if is_service_enabled q-sriov-agt neutron-sriov-agent; then
        _sriov_vif_configure_sriov_agent
    fi
}

# The journal needs [os_vif_sriov] state_path: restore before the undo.
function unstack_sriov_vif {
    local section
    if is_service_enabled n-cpu; then
        _sriov_vif_restore_vfs
    fi
    _sriov_vif_undo_config
    if [[ -f $NOVA_CONF ]]; then
        for section in $_SRIOV_VIF_SECTIONS; do
            _sriov_vif_ini_drop_section "$NOVA_CONF" "$section"
        done
    fi
}

function clean_sriov_vif {
    if is_service_enabled n-cpu; then
        _sriov_vif_reset_numvfs
        _sriov_vif_remove_state_dir
    fi
    if [[ -d $SRIOV_VIF_DEVSTACK_DATA ]]; then
        rmdir --ignore-fail-on-non-empty "$SRIOV_VIF_DEVSTACK_DATA"
    fi
}

$_XTRACE_SRIOV_VIF

if is_service_enabled sriov-vif; then
    if [[ "$1" == "stack" && "$2" == "install" ]]; then
        echo_summary "Installing sriov-vif"
        install_sriov_vif
    elif [[ "$1" == "stack" && "$2" == "post-config" ]]; then
        echo_summary "Configuring sriov-vif"
        configure_sriov_vif
    fi

    if [[ "$1" == "unstack" ]]; then
        echo_summary "Restoring VFs and removing sriov-vif configuration"
        unstack_sriov_vif
    fi

    if [[ "$1" == "clean" ]]; then
        echo_summary "Cleaning sriov-vif"
        clean_sriov_vif
    fi
fi
