"""The shipped audit rules (package/README/escape_to_host.rules) load on every host kind: parsed offline with a strict
parser of the auditctl rule syntax they use (auditctl(8), audit.rules(7)), which refuses anything else; the per-host
release_agent command of docs/audit-rules.md run against a cgroup-v2-only and a hybrid layout; and, where auditd's
ausyscall is installed, the syscall table checked against it."""
import re
import shlex
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import pytest

from tests.conftest import ROOT

RULES = ROOT / "package" / "README" / "escape_to_host.rules"
DOC = ROOT / "docs" / "audit-rules.md"

# Syscall numbers of the names the file may use, per audit arch (x86_64 for b64, i386 for b32 on x86_64 hosts), from
# the kernel's syscall tables (arch/x86/entry/syscalls/syscall_64.tbl and syscall_32.tbl).
SYSCALLS: Dict[str, Dict[str, int]] = {
    "b64": {"unshare": 272, "setns": 308, "mount": 165, "umount2": 166, "pivot_root": 155, "chroot": 161,
            "open_by_handle_at": 304, "keyctl": 250, "add_key": 248, "request_key": 249, "init_module": 175,
            "finit_module": 313, "execve": 59, "execveat": 322, "ptrace": 101, "mknod": 133, "mknodat": 259,
            "process_vm_writev": 311, "bpf": 321, "open": 2, "openat": 257, "openat2": 437, "connect": 42},
    "b32": {"unshare": 310, "setns": 346, "mount": 21, "umount2": 52, "pivot_root": 217, "chroot": 61,
            "open_by_handle_at": 342, "keyctl": 288, "add_key": 286, "request_key": 287, "init_module": 128,
            "finit_module": 350, "execve": 11, "execveat": 358, "ptrace": 26, "mknod": 14, "mknodat": 297,
            "process_vm_writev": 348, "bpf": 357, "open": 5, "openat": 295, "openat2": 437, "connect": 362},
}
AUSYSCALL_ARCH = {"b64": "x86_64", "b32": "i386"}
# Paths every Linux host has, whatever its cgroup mode: the only watches the shipped file may carry.
EVERYWHERE = ("/proc/sys/kernel/",)
FILETYPES = ("file", "dir", "socket", "link", "character", "block", "fifo")  # auditctl(8), -F filetype
KEY = re.compile(r"[A-Za-z0-9_-]{1,31}")
FIELD = re.compile(r"([a-z0-9_]+)(=|!=|<|>|<=|>=|&|&=)(.*)")


class RuleError(ValueError):
    pass


@dataclass
class Rule:
    kind: str                      # "control", "syscall" or "watch"
    option: str = ""               # -b / --backlog_wait_time for control rules
    value: int = 0
    arch: str = ""
    syscalls: List[str] = field(default_factory=list)
    fields: List[Tuple[str, str]] = field(default_factory=list)
    path: str = ""
    perms: str = ""
    key: Optional[str] = None


def parse_line(line: str) -> Rule:
    """One rule in auditctl's syntax, restricted to the subset the shipped file uses; anything else raises."""
    try:
        words = shlex.split(line, comments=False, posix=True)
    except ValueError as err:
        raise RuleError("{!r}: {}".format(line, err)) from None
    if not words:
        raise RuleError("empty rule")
    head = words[0]
    if head in ("-b", "--backlog_wait_time"):
        if len(words) != 2 or not words[1].isdigit():
            raise RuleError("{!r}: {} takes one whole number".format(line, head))
        value = int(words[1])
        if head == "--backlog_wait_time" and not 0 < value <= 600000:   # auditctl: 1 .. 10*60*HZ (HZ = 1000)
            raise RuleError("{!r}: backlog_wait_time out of range".format(line))
        return Rule("control", option=head, value=value)
    if head == "-a":
        return _syscall_rule(line, words)
    if head == "-w":
        return _watch_rule(line, words)
    raise RuleError("{!r}: option {} is not in the subset this parser implements".format(line, head))


def _take(words: List[str], i: int, line: str) -> str:
    if i + 1 >= len(words) or words[i + 1].startswith("-"):
        raise RuleError("{!r}: {} needs a value".format(line, words[i]))
    return words[i + 1]


def _syscall_rule(line: str, words: List[str]) -> Rule:
    lists = _take(words, 0, line)
    if set(lists.split(",")) != {"always", "exit"} or len(lists.split(",")) != 2:
        raise RuleError("{!r}: only the exit list with the always action is implemented".format(line))
    rule = Rule("syscall")
    i = 2
    while i < len(words):
        option = words[i]
        value = _take(words, i, line)
        if option == "-F":
            parts = FIELD.fullmatch(value)
            name, op, operand = parts.groups() if parts else ("", "", "")
            if name == "arch" and op == "=" and operand in SYSCALLS:
                if rule.syscalls:
                    raise RuleError("{!r}: -F arch must come before -S (auditctl reads -S in the arch set so far)".format(line))
                if rule.arch:
                    raise RuleError("{!r}: arch given twice".format(line))
                rule.arch = operand
            elif name in ("a0", "a1", "a2", "a3") and op == "=" and re.fullmatch(r"0x[0-9a-f]+|[0-9]+", operand):
                rule.fields.append((name, operand))
            elif name == "key" and op == "=" and KEY.fullmatch(operand):
                rule.key = operand
            elif op == "=" and ((name == "filetype" and operand in FILETYPES) or (name == "ppid" and operand.isdigit())
                                or (name == "saddr_fam" and operand.isdigit())):
                rule.fields.append((name, operand))
            else:
                raise RuleError("{!r}: field {!r} is not implemented (arch=b64|b32, a0..a3=, filetype=, ppid=, "
                                "saddr_fam=, key=)".format(line, value))
        elif option == "-S":
            if not rule.arch:
                raise RuleError("{!r}: -S without an earlier -F arch (its meaning would depend on the host)".format(line))
            for name in value.split(","):
                if name not in SYSCALLS[rule.arch]:
                    raise RuleError("{!r}: {} is no {} syscall this parser knows".format(line, name, rule.arch))
                rule.syscalls.append(name)
        elif option == "-k":
            if rule.key is not None or not KEY.fullmatch(value):
                raise RuleError("{!r}: bad or repeated key {!r}".format(line, value))
            rule.key = value
        else:
            raise RuleError("{!r}: option {} is not implemented in a syscall rule".format(line, option))
        i += 2
    if not rule.syscalls:
        raise RuleError("{!r}: a syscall rule without -S".format(line))
    if len(set(rule.syscalls)) != len(rule.syscalls):
        raise RuleError("{!r}: a syscall is listed twice".format(line))
    return rule


def _watch_rule(line: str, words: List[str]) -> Rule:
    rule = Rule("watch", path=_take(words, 0, line))
    if not rule.path.startswith("/") or "//" in rule.path or rule.path.endswith("/") or "*" in rule.path:
        raise RuleError("{!r}: a watch needs one absolute path without globs".format(line))
    i = 2
    while i < len(words):
        option, value = words[i], _take(words, i, line)
        if option == "-p" and not rule.perms and re.fullmatch(r"[rwxa]{1,4}", value) and len(set(value)) == len(value):
            rule.perms = value
        elif option == "-k" and rule.key is None and KEY.fullmatch(value):
            rule.key = value
        else:
            raise RuleError("{!r}: {} {} is not implemented in a watch".format(line, option, value))
        i += 2
    if not rule.perms:
        raise RuleError("{!r}: a watch without -p".format(line))
    return rule


def parse(text: str, commented: bool = True) -> List[Rule]:
    """Every rule of a rules file. Comments are skipped; with `commented`, rules commented out with a single '#'
    (the optional ones) are parsed too, so uncommenting them cannot break the file."""
    rules = []
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("##"):
            continue
        if line.startswith("#"):
            if not commented or not line[1:].startswith("-"):
                continue
            line = line[1:]
        try:
            rules.append(parse_line(line))
        except RuleError as err:
            raise RuleError("line {}: {}".format(number, err)) from None
    return rules


# ---------------------------------------------------------------- the parser refuses what it does not implement
@pytest.mark.parametrize("line, message", [
    ("-a always,exit -F arch=b64 -S setns -F auid!=-1 -k x", "field 'auid!=-1' is not implemented"),
    ("-a always,exit -S setns -k x", "without an earlier -F arch"),
    ("-a always,exit -F arch=b64 -S setns -F arch=b32", "must come before -S"),
    ("-a never,exit -F arch=b64 -S setns", "only the exit list"),
    ("-a always,exit -F arch=b64 -S no_such_call", "no b64 syscall"),
    ("-a always,exit -F arch=b64 -S setns -k " + "k" * 32, "bad or repeated key"),
    ("-w /sys/fs/cgroup/*/release_agent -p wa", "without globs"),
    ("-w relative/path -p wa", "absolute path"),
    ("-w /etc/passwd -p wz", "not implemented in a watch"),
    ("-w /etc/passwd", "without -p"),
    ("-e 2", "not in the subset"),
    ("-D", "not in the subset"),
    ("--backlog_wait_time 0", "out of range"),
])
def test_the_parser_refuses_what_it_does_not_implement(line: str, message: str) -> None:
    with pytest.raises(RuleError, match=re.escape(message)):
        parse_line(line)


# ---------------------------------------------------------------- the shipped file
def test_the_shipped_rules_parse_and_watch_only_paths_every_host_has() -> None:
    rules = parse(RULES.read_text())
    watches = [r.path for r in rules if r.kind == "watch"]
    assert watches == ["/proc/sys/kernel/core_pattern"]
    for path in watches:      # auditctl refuses a watch on a missing path: cgroup-v1 files are not everywhere
        assert path.startswith(EVERYWHERE), "{} does not exist on every host (cgroup-v2-only, hybrid)".format(path)
    syscall_rules = [r for r in rules if r.kind == "syscall"]
    for arch in ("b64", "b32"):   # both ABIs cover the same calls
        assert {s for r in syscall_rules if r.arch == arch and not r.fields for s in r.syscalls} >= {
            "unshare", "setns", "mount", "pivot_root", "open_by_handle_at", "init_module", "finit_module", "execve"}
    assert {(r.option, r.value) for r in rules if r.kind == "control"} == {("-b", 8192), ("--backlog_wait_time", 60000)}


def test_the_opt_in_rules_are_the_connect_rules_of_both_abis() -> None:
    """Rules commented out with a single '#' are the opt-in ones (the lab loads them by removing it): only the
    AF_UNIX connect rules, whose cost docs/audit-rules.md states; the rules loaded by default keep no connect."""
    optional = [r for r in parse(RULES.read_text()) if r not in parse(RULES.read_text(), commented=False)]
    assert [(r.arch, r.syscalls, r.fields) for r in optional] == [
        ("b64", ["connect"], [("saddr_fam", "1")]), ("b32", ["connect"], [("saddr_fam", "1")])]
    assert not [r for r in parse(RULES.read_text(), commented=False) if "connect" in r.syscalls]


def test_the_docs_show_the_shipped_file_and_the_same_command() -> None:
    doc = DOC.read_text()
    shipped = [line for line in RULES.read_text().splitlines() if line and not line.startswith("##")]
    assert "```\n" + "\n".join(shipped) + "\n```" in doc
    assert release_agent_command() in doc


def release_agent_command() -> str:
    lines = [line[2:].strip() for line in RULES.read_text().splitlines() if "for f in /sys/fs/cgroup/*/release_agent" in line]
    assert len(lines) == 1, "the rules file carries the per-host release_agent command once"
    return lines[0]


@pytest.mark.parametrize("layout, modules, expected", [
    ({"cgroup.controllers": None, "system.slice/cgroup.procs": None}, False, []),     # cgroup-v2-only, no modules
    ({"cgroup.controllers": None}, True, ["modprobe"]),                                # cgroup-v2-only, modules
    ({"memory/release_agent": None, "pids/release_agent": None, "unified/cgroup.controllers": None,
      "cpu,cpuacct/release_agent": None, "memory/tasks": None}, True, ["cpu,cpuacct", "memory", "pids", "modprobe"]),
])
def test_the_per_host_command_writes_a_companion_file_that_parses(tmp_path: Path, layout: Dict[str, None],
                                                                  modules: bool, expected: List[str]) -> None:
    cgroup, kernel = tmp_path / "cgroup", tmp_path / "kernel"
    for name in layout:
        (cgroup / name).parent.mkdir(parents=True, exist_ok=True)
        (cgroup / name).write_text("")
    kernel.mkdir()
    if modules:   # /proc/sys/kernel/modprobe exists only on kernels built with module support
        (kernel / "modprobe").write_text("/sbin/modprobe\n")
    companion = tmp_path / "escape_to_host-release_agent.rules"
    command = release_agent_command()
    assert command.count("/sys/fs/cgroup/") == 1 and command.count("/proc/sys/kernel/modprobe") == 1
    assert command.endswith("> /etc/audit/rules.d/escape_to_host-release_agent.rules")
    command = command.replace("/sys/fs/cgroup/", str(cgroup) + "/").replace(
        "/proc/sys/kernel/modprobe", str(kernel / "modprobe")).replace(
        "/etc/audit/rules.d/escape_to_host-release_agent.rules", str(companion))
    subprocess.run(["sh", "-c", command], check=False, timeout=30)
    rules = parse(companion.read_text())
    assert [r.path for r in rules] == [str(kernel / "modprobe") if h == "modprobe" else str(cgroup / h / "release_agent")
                                       for h in expected]
    assert all(r.perms == "wa" and r.key == "escape_to_host_agent" for r in rules)


@pytest.mark.skipif(shutil.which("ausyscall") is None, reason="auditd's ausyscall is not installed: the syscall "
                    "numbers are checked against the kernel tables written into this test only")
def test_the_syscall_table_agrees_with_ausyscall() -> None:
    for arch, table in SYSCALLS.items():
        for name, number in table.items():
            out = subprocess.run(["ausyscall", AUSYSCALL_ARCH[arch], name, "--exact"], capture_output=True,
                                 text=True, check=True).stdout.split()
            assert out == [str(number)], (arch, name, out)
