"""Every value the setup page accepts survives a round trip: accept -> store -> load -> accept, with the same value.

"Accepts" is what the page's own validators in globalConfig.json let through (the UCC front end runs them in the
browser; splunktaucclib runs them again on the server) and what escape_setup then renders. The stored macro definition
is read back into the field as a page load shows it; that value must pass the same validators, render to the same
definition and read back to itself, so a page saved as loaded changes nothing.
"""
import json
import re
from typing import Dict, List, Optional

from hypothesis import given, settings
from hypothesis import strategies as st

from escape_setup import tunables
from tests.conftest import ROOT
from tools import content
from tools.setup_manifest import data_scope_entries

SPECS = content.tunable_specs()
SCOPES, FIELD_NAMES = tunables.load_scope_specs({"macros": data_scope_entries()})
TABS = {t.get("name", t.get("type")): t for t in json.loads((ROOT / "globalConfig.json").read_text())["pages"]["configuration"]["tabs"]}
FIELDS = {e["field"]: e for tab in TABS.values() for e in tab.get("entity", [])}


def page_refusal(field: str, value: str) -> Optional[str]:
    """The errorMsg of the first validator of `field` that refuses `value` (the page's check), else None."""
    for validator in FIELDS[field].get("validators", []):
        kind = validator["type"]
        if kind == "string" and not validator["minLength"] <= len(value) <= validator["maxLength"]:
            return str(validator["errorMsg"])
        if kind == "regex" and not re.search(validator["pattern"], value):
            return str(validator["errorMsg"])
        if kind == "number":
            try:
                number = float(value)
            except ValueError:
                return str(validator["errorMsg"])
            low, high = validator["range"]
            if not low <= number <= high or (validator.get("isInteger") and number != int(number)):
                return str(validator["errorMsg"])
    return None


def pieces(*parts: str) -> st.SearchStrategy[str]:
    return st.sampled_from(parts)


NAME = st.text(alphabet="abcXYZ09._-", min_size=1, max_size=6)
SEP = pieces("\\", "/", "\\\\", "//", "/\\")
WINDOWS_ITEM = st.one_of(
    st.tuples(pieces("C:", "c:", "D:", "z:", "C"), SEP, st.lists(st.tuples(NAME, SEP), max_size=3),
              pieces("", " ", "Program Files", "(x86)", "%SystemRoot%", "~1", "$x", "+y")).map(
        lambda t: t[0] + t[1] + "".join(n + s for n, s in t[2]) + t[3]),
    st.tuples(pieces("\\\\", "//", "\\/", "\\"), NAME, SEP, st.one_of(NAME, st.just("")), pieces("", "\\", "/"),
              st.lists(NAME, max_size=2)).map(lambda t: t[0] + t[1] + t[2] + t[3] + t[4] + "\\".join(t[5])),
    st.text(alphabet="Cc:\\/ aW.()%$~+-", max_size=8),
)
UNIX_ITEM = st.one_of(
    st.lists(st.tuples(pieces("/", "//", "/./", "/../"), st.text(alphabet="abz09._@+:=-", max_size=5)),
             min_size=1, max_size=4).map(lambda parts: "".join(a + b for a, b in parts)),
    st.text(alphabet="/a b.:", max_size=6),
)
MODULE_ITEM = st.text(alphabet="aZ09_.- ", max_size=8)
SYSCALL_ITEM = st.one_of(st.sampled_from(list(tunables.ESCAPE_SYSCALLS)), st.text(alphabet="acekmnotu_2", max_size=8))
INDEX_ITEM = st.text(alphabet="az09_- ", max_size=6)
SOURCETYPE_ITEM = st.text(alphabet="aZ09_.:*/- ", max_size=8)
GAP = pieces(",", ", ", " ,", ",,", " , ")


def listed(item: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return st.tuples(st.lists(st.tuples(item, GAP), max_size=4), pieces("", " ")).map(
        lambda t: "".join(i + g for i, g in t[0]).rstrip(",") + t[1])


LIST_VALUES: Dict[str, st.SearchStrategy[str]] = {
    "windows_dir_list": listed(WINDOWS_ITEM),
    "unix_path_list": listed(UNIX_ITEM),
    "module_list": listed(MODULE_ITEM),
    "syscall_list": listed(SYSCALL_ITEM),
}


def accepted(field: str, value: str) -> bool:
    return page_refusal(field, value) is None


def assert_tunable_round_trip(spec: tunables.TunableSpec, value: str) -> None:
    if not accepted(spec.field, value):
        return
    try:
        stored = tunables.render(spec, value)                  # what the save writes into the macro
    except ValueError:
        return                                                 # refused by the server, with its message: not stored
    loaded = tunables.parse_definition(spec, stored)           # what the next page load shows
    assert page_refusal(spec.field, loaded) is None, (value, stored, loaded, page_refusal(spec.field, loaded))
    assert tunables.render(spec, loaded) == stored             # saving the page as loaded writes nothing new
    assert tunables.parse_definition(spec, tunables.render(spec, loaded)) == loaded


@settings(max_examples=400, deadline=None)
@given(data=st.data())
def test_every_accepted_tunable_value_loads_back_and_saves_again(data: st.DataObject) -> None:
    for spec in SPECS.values():
        if spec.kind in LIST_VALUES:
            value = data.draw(LIST_VALUES[spec.kind], label=spec.field)
        else:
            value = data.draw(st.one_of(st.integers(-5, 200000).map(str), st.text(alphabet="0123456789 .e-", max_size=7)),
                              label=spec.field)
        assert_tunable_round_trip(spec, value)


@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_every_accepted_data_scope_loads_back_and_saves_again(data: st.DataObject) -> None:
    for spec in SCOPES.values():
        indexes = data.draw(listed(INDEX_ITEM), label=spec.indexes_field)
        sourcetypes = data.draw(listed(SOURCETYPE_ITEM), label=spec.sourcetypes_field)
        if not (accepted(spec.indexes_field, indexes) and accepted(spec.sourcetypes_field, sourcetypes)):
            continue
        try:
            stored = tunables.render_scope_values(spec, indexes, sourcetypes)
        except ValueError:
            continue
        loaded: List[str] = [",".join(part) for part in tunables.parse_scope(spec, stored)]
        assert accepted(spec.indexes_field, loaded[0]) and accepted(spec.sourcetypes_field, loaded[1]), loaded
        assert tunables.render_scope_values(spec, loaded[0], loaded[1]) == stored


# The values the issue found broken in a browser, and the shipped defaults, as fixed examples.
EXAMPLES = [("escape_restricted_host_dirs", "C:/"), ("escape_restricted_host_dirs", "C:\\"),
            ("escape_restricted_host_dirs", "\\\\fs01\\share"), ("escape_restricted_host_dirs", "//fs01/share/"),
            ("escape_allowed_host_paths", "/"), ("escape_allowed_host_paths", "//srv/./x/../y")] + \
    [(s.macro, s.default) for s in SPECS.values()]


def test_the_examples_round_trip() -> None:
    for macro, value in EXAMPLES:
        spec = SPECS[macro]
        assert accepted(spec.field, value) and tunables.render(spec, value), (macro, value)
        assert_tunable_round_trip(spec, value)
    assert tunables.render(SPECS["escape_restricted_host_dirs"], "C:/") == '"C:/"'


def test_a_unc_prefix_without_a_share_is_refused_by_the_page_and_the_server() -> None:
    spec = SPECS["escape_restricted_host_dirs"]
    for value in ("\\\\fs01\\", "//fs01/", "\\\\fs01"):
        assert not accepted(spec.field, value)


def test_the_page_names_the_fault_of_a_refused_value() -> None:
    restricted = "Restricted host directories: "
    assert page_refusal("restricted_host_dirs", "Windows/System32") == restricted + (
        "each directory needs a drive letter and a slash (C:\\Windows) or a UNC server and share (\\\\server\\share); "
        "separate directories with commas.")
    assert page_refusal("restricted_host_dirs", 'C:\\Windows"') == restricted + (
        "only letters, digits, spaces and . _ \\ / : ( ) % $ ~ + - are allowed, with commas between directories.")
    assert "absolute (start with /)" in str(page_refusal("allowed_host_paths", "var/log"))
    assert "only letters, digits" in str(page_refusal("allowed_host_paths", "/var/log`x`"))
    assert "one of the inspected syscalls" in str(page_refusal("syscall_allowlist", "execve"))
