"""Stand-in for devstack's inc/ini-config, for the tests only.

    python3 ini.py set|add_literal|get|get_multiline FILE SECTION OPTION [V]

implements the four functions devstack/lib/sriov-vif calls (iniset,
iniadd_literal, iniget, iniget_multiline) the way inc/ini-config does them
with sed (read at openstack/devstack 493835a6):

* a section runs from a line starting with "[SECTION]" to the next line
  starting with "[" and holding a "]";
* an option line starts with OPTION, then blanks, then "=";
* iniset appends a blank line and "[SECTION]" when no line starts with
  "[SECTION]"; then it inserts "OPTION = VALUE" after every such header if
  the section has no OPTION line, and otherwise puts VALUE after the
  "OPTION = " of every OPTION line of the section; it squeezes blanks in
  VALUE, which devstack echoes unquoted;
* inidelete removes the section's OPTION lines;
* iniadd_literal inserts "OPTION = VALUE" after every "[SECTION]" header,
  and does nothing when there is none;
* iniget prints what follows the first "=" of the section's OPTION lines,
  iniget_multiline the values of all of them, joined by one blank; both
  squeeze blanks (devstack's unquoted echo, which also globs: not here).

test_devstack_plugin.py checks this against devstack's own inc/ini-config
when SRIOV_VIF_DEVSTACK_DIR names a devstack checkout.
"""

import re
import sys


def option_lines(lines: list[str], section: str, option: str) -> list[int]:
    """Indices of the OPTION lines inside SECTION."""
    header = re.compile(r"\[" + section + r"\]")
    option_line = re.compile(option + r"[ \t]*=")
    found, inside = [], False
    for i, line in enumerate(lines):
        if inside or header.match(line):
            if inside and option_line.match(line):
                found.append(i)
            inside = not inside or not re.match(r"\[.*\]", line)
    return found


def insert_after_headers(lines: list[str], section: str,
                         new_line: str) -> list[str]:
    new = []
    for line in lines:
        new.append(line)
        if re.match(r"\[" + section + r"\]", line):
            new.append(new_line)
    return new


def main(mode: str, path: str, section: str, option: str,
         value: str = "") -> None:
    try:
        with open(path) as f:
            lines = f.read().splitlines()
    except FileNotFoundError:
        if mode == "add_literal":
            print(f"sed: can't read {path}", file=sys.stderr)
            return
        lines = []
    found = option_lines(lines, section, option)
    values = [re.sub(option + r"[ \t]*=[ \t]*", "", lines[i], count=1)
              for i in found]
    if mode == "get":
        joined = "\n".join(lines[i] for i in found)
        print(" ".join(joined.partition("=")[2].split()))
        return
    if mode == "get_multiline":
        print(" ".join(" ".join(values).split()))
        return
    if mode == "delete":
        lines = [line for i, line in enumerate(lines) if i not in found]
    if mode == "set":
        value = " ".join(value.split())
        if not any(re.match(r"\[" + section + r"\]", ln) for ln in lines):
            lines += ["", f"[{section}]"]
        for i, old in zip(found, values, strict=True):
            lines[i] = lines[i][:len(lines[i]) - len(old)] + value
    if mode == "add_literal" or (mode == "set" and not found):
        lines = insert_after_headers(lines, section, f"{option} = {value}")
    with open(path, "w") as f:
        f.write("".join(line + "\n" for line in lines))


if __name__ == "__main__":
    main(*sys.argv[1:])
