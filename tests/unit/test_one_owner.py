"""One owner per fact: the facts escape_engine.ground owns (the escape syscalls, the severity scale, the saved-search
and filter-macro names, the Value/Record/Row types) and "first text of a field" (escape_engine.scalars.first_text)
are defined once. Every Python module of package/bin and tools is read with ast; a second definition fails the test with
its file and line. The copies that cannot import (the audit rules, the eventtype, the setup page's allowlist pattern)
are read from their files and must name exactly ground.ESCAPE_SYSCALLS."""
import ast
import json
import re
import warnings
from pathlib import Path
from typing import Iterator, List, Optional, Set

import pytest

from escape_engine import auditd
from escape_engine.ground import ESCAPE_SYSCALLS, SEVERITIES
from tests.conftest import ROOT

OWNERS = {"ground": ROOT / "package" / "bin" / "escape_engine" / "ground.py",
          "scalars": ROOT / "package" / "bin" / "escape_engine" / "scalars.py"}
NAME_FORMATS = ("Escape to Host - {} - Rule", "escape_{}_filter")
TYPE_NAMES = ("Value", "Record", "Row")
TYPING_CONSTRUCTS = ("Union", "Mapping", "Dict", "MutableMapping")  # the shapes ground gives those three names
MIN_SYSCALLS = 4
SYSCALLS = frozenset(ESCAPE_SYSCALLS)


def python_files() -> List[Path]:
    files = [p for folder in ("package/bin", "tools") for p in sorted((ROOT / folder).rglob("*.py"))]
    return [p for p in files if "__pycache__" not in p.parts]


def _strings(node: ast.AST) -> List[str]:
    """The string constants a tuple, list or set literal holds directly."""
    elements = getattr(node, "elts", [])
    return [e.value for e in elements if isinstance(e, ast.Constant) and isinstance(e.value, str)]


def _is_typing_construct(node: Optional[ast.AST]) -> bool:
    """Union[...], Mapping[...], Dict[...] (or typing.Union[...]) - a type alias, not a value."""
    if not isinstance(node, ast.Subscript):
        return False
    base = node.value
    name = base.id if isinstance(base, ast.Name) else base.attr if isinstance(base, ast.Attribute) else ""
    return name in TYPING_CONSTRUCTS


def _wraps_first_text(node: ast.FunctionDef) -> bool:
    """A function whose whole body returns first_text(...): the fact again under another name."""
    body = [s for s in node.body if not (isinstance(s, ast.Expr) and isinstance(s.value, ast.Constant))]
    if len(body) != 1 or not isinstance(body[0], ast.Return):
        return False
    call = body[0].value
    return isinstance(call, ast.Call) and isinstance(call.func, ast.Name) and call.func.id == "first_text"


def copies(source: str, path: Path) -> Iterator[str]:
    """What `source` (the text of `path`) defines again of a fact it does not own, one message per copy."""
    with warnings.catch_warnings():  # an invalid escape in a string warns at parse time; not this test's business
        warnings.simplefilter("ignore")
        tree = ast.parse(source, str(path))
    where = path.relative_to(ROOT) if path.is_absolute() and ROOT in path.parents else path
    owns_ground, owns_scalars = path == OWNERS["ground"], path == OWNERS["scalars"]
    module_level = {id(node) for node in tree.body}
    for node in ast.walk(tree):
        line = "{}:{}".format(where, getattr(node, "lineno", 0))
        if owns_ground:
            continue
        if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
            texts = _strings(node)
            named = SYSCALLS.intersection(texts)
            # A copy of the list (or of a part of it) is made of syscall names; a list that merely shares a few
            # names (the escape tools: the `mount`, `unshare`, `chroot` binaries among others) is not.
            if len(named) >= MIN_SYSCALLS and len(named) * 2 > len(texts):
                yield "{}: a list of {} escape syscalls (ground.ESCAPE_SYSCALLS)".format(line, len(named))
            if set(SEVERITIES) <= set(texts) and not isinstance(node, ast.Set):
                yield "{}: the severity names (ground.SEVERITIES)".format(line)
        elif isinstance(node, ast.Dict):
            keys = {k.value for k in node.keys if isinstance(k, ast.Constant) and isinstance(k.value, str)}
            if set(SEVERITIES) <= keys:
                yield "{}: a dict keyed by the severity names (ground.SEVERITIES / SEVERITY_RANK)".format(line)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            for name_format in NAME_FORMATS:
                if name_format in node.value:
                    yield "{}: the name format {!r} (ground.saved_search_name / filter_macro_name)".format(
                        line, name_format)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)) and id(node) in module_level:
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                if isinstance(target, ast.Name) and target.id in TYPE_NAMES and _is_typing_construct(node.value):
                    yield "{}: the type {} (ground.{})".format(line, target.id, target.id)
        if owns_scalars:
            continue
        if isinstance(node, ast.FunctionDef) and (node.name == "first_text" or _wraps_first_text(node)):
            yield "{}: first_text defined again as {}() (scalars.first_text)".format(line, node.name)
        elif isinstance(node, ast.Assign) and isinstance(node.value, ast.Name) and node.value.id == "first_text":
            yield "{}: an alias of first_text (scalars.first_text)".format(line)
        elif isinstance(node, ast.ImportFrom):
            for alias in node.names:
                if alias.name == "first_text" and alias.asname not in (None, "first_text"):
                    yield "{}: first_text imported as {} (scalars.first_text)".format(line, alias.asname)


def all_copies() -> List[str]:
    found: List[str] = []
    for path in python_files():
        found.extend(copies(path.read_text(encoding="utf-8"), path))
    return found


def test_no_module_defines_a_fact_it_does_not_own() -> None:
    found = all_copies()
    assert not found, "defined again outside its owner:\n" + "\n".join(found)


# ---- the detector catches what it is for (a planted copy of each fact) -------------------------------------------
PLANTED = '''
from typing import Dict, List, Mapping, Union
from escape_engine.scalars import first_text as _text
Value = Union[str, List[str]]
Record = Mapping[str, Value]
CALLS = ("unshare", "setns", "mount", "pivot_root", "bpf")
LEVELS = ["informational", "low", "medium", "high", "critical"]
RANK = {"informational": 0, "low": 1, "medium": 2, "high": 3, "critical": 4}
STANZA = "Escape to Host - {} - Rule"
HOOK = "`escape_{}_filter`"
TOOLS = frozenset(("nsenter", "unshare", "mount", "chroot", "pivot_root", "debugfs", "capsh", "docker", "ctr"))
_first = first_text


def text(record, name):
    """The field as text."""
    return first_text(record.get(name))
'''


def test_the_detector_finds_each_planted_copy_and_spares_a_list_that_only_shares_names() -> None:
    found = list(copies(PLANTED, Path("planted.py")))
    expected = {3: "first_text imported as _text", 4: "the type Value", 5: "the type Record",
                6: "list of 4 escape syscalls", 7: "the severity names", 8: "dict keyed by the severity names",
                9: "Escape to Host - {} - Rule", 10: "escape_{}_filter", 12: "an alias of first_text",
                15: "first_text defined again as text()"}
    for line, what in expected.items():
        assert any(f.startswith("planted.py:{}:".format(line)) and what in f for f in found), (line, what, found)
    assert len(found) == len(expected), found  # nothing else: not line 11 (the tools share some names)


def test_the_owners_themselves_pass() -> None:
    for path in OWNERS.values():
        assert list(copies(path.read_text(encoding="utf-8"), path)) == []


# ---- copies that cannot import: read from their files ------------------------------------------------------------
def _names(text: str) -> Set[str]:
    return set(re.findall(r"[a-z_0-9]+", text))


def test_the_audit_rules_watch_exactly_the_escape_syscalls() -> None:
    rules = (ROOT / "package" / "README" / "escape_to_host.rules").read_text(encoding="utf-8")
    lists = [m.group(1) for m in re.finditer(r"^-a always,exit .*?-S (\S+) .*-k escape_to_host$", rules, re.MULTILINE)]
    assert lists, "no -S list keyed escape_to_host in escape_to_host.rules"
    for listed in lists:
        assert set(listed.split(",")) == SYSCALLS, listed


def test_the_namespace_syscall_eventtype_selects_exactly_the_escape_syscalls() -> None:
    conf = (ROOT / "package" / "default" / "eventtypes.conf").read_text(encoding="utf-8")
    stanza = re.search(r"^\[escape_auditd_namespace_syscall\]\n((?:[^\[\n].*\n?)*)", conf, re.MULTILINE)
    assert stanza, "eventtypes.conf has no [escape_auditd_namespace_syscall]"
    search = re.search(r"^search\s*=\s*(.*)$", stanza.group(1), re.MULTILINE)
    assert search
    assert set(re.findall(r"escape_audit_syscall_name=([a-z_0-9]+)", search.group(1))) == SYSCALLS
    numbers = {int(n) for n in re.findall(r"escape_audit_syscall=([0-9]+)", search.group(1))}
    by_number = auditd.SYSCALL_NUMBERS["x86_64"]
    assert {by_number.get(n, "?%d" % n) for n in numbers} == SYSCALLS


def _allowlist_patterns(text: str) -> List[str]:
    """Every alternation of syscall-looking names in a pattern: `(unshare|setns|...)`."""
    return re.findall(r"\(((?:[a-z_0-9]+\|){3,}[a-z_0-9]+)\)", text)


def test_the_setup_page_allowlist_names_exactly_the_escape_syscalls() -> None:
    config = json.loads((ROOT / "globalConfig.json").read_text(encoding="utf-8"))
    texts = []

    def walk(value: object) -> None:
        if isinstance(value, dict):
            for item in value.values():
                walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)
        elif isinstance(value, str) and SYSCALLS & _names(value) and ("pattern" in value or "|" in value
                                                                       or "from " in value):
            texts.append(value)

    walk(config)
    patterns = [p for text in texts for p in _allowlist_patterns(text)]
    assert patterns, "globalConfig.json has no allowlist pattern of syscall names"
    for pattern in patterns:
        assert set(pattern.split("|")) == SYSCALLS, pattern
    helps = [m.group(1) for text in texts for m in re.finditer(r"\(from ([a-z_0-9, ]+)\)", text)]
    for listed in helps:
        assert {n.strip() for n in listed.split(",")} == SYSCALLS, listed


def test_the_generated_settings_handler_carries_the_same_allowlist_if_it_carries_one() -> None:
    handler = ROOT / "package" / "bin" / "TA_escape_to_host_rh_settings.py"
    if not handler.is_file():
        pytest.skip("no generated settings handler in package/bin")
    for pattern in _allowlist_patterns(handler.read_text(encoding="utf-8")):
        if SYSCALLS & set(pattern.split("|")):
            assert set(pattern.split("|")) == SYSCALLS, pattern
