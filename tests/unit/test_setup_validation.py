"""What the setup page accepts, what it says when it refuses, and that hostile values never become SPL."""
from typing import List

import pytest

from escape_setup import tunables
from tests.unit.setup_literal import is_field_name, is_scope_expression, is_single_literal
from tools import content
from tools.setup_manifest import data_scope_entries

SPECS = content.tunable_specs()
SCOPES, FIELD_NAMES = tunables.load_scope_specs({"macros": data_scope_entries()})

HOSTILE: List[str] = [
    '"', "\\", "|", "`", "[", "]", "\n", "\r", "| delete", "`escape_auditd`", "`escape_filter(1)`",
    '" OR 1=1 "', '"; | delete "', "$x$", "\u00e4", "\u65e5\u672c", "\u202e", "\x00", "x" * 5000, "/" + "a" * 5000,
    "index=main", "(", ")", "[| makeresults]", "' OR '1'='1", "/var/log\n| delete", "/var/log | delete",
    '/var/log" | delete', "C:\\Windows\" | delete", "C:\\Windows`x`", "\\\\srv\\share\"|delete", "mount,`x`",
    "keyctl|delete", "5 | delete", "5\n", "300 OR 1=1", "ext4\"", "mod`x`", "mod|x", "mod[1]",
]


def test_shipped_scope_definitions_are_rebuilt_exactly() -> None:
    assert set(SCOPES) == {"escape_kube_audit", "escape_docker", "escape_podman", "escape_auditd", "escape_sysmon_linux",
                           "escape_windows_security", "escape_windows_sysmon", "escape_esxi"}
    assert set(FIELD_NAMES) == {"escape_kube_cluster"}
    for spec in SCOPES.values():
        assert tunables.render_scope(spec, [], spec.sourcetypes) == spec.definition
        assert tunables.parse_scope(spec, spec.definition) == ([], spec.sourcetypes)


@pytest.mark.parametrize("macro, indexes, sourcetypes, expected", [
    ("escape_auditd", "os", "linux:audit,auditd", '(index="os" (sourcetype="linux:audit" OR sourcetype="auditd"))'),
    ("escape_sysmon_linux", "linux, os_sysmon", "sysmon:linux",
     '((index="linux" OR index="os_sysmon") sourcetype="sysmon:linux")'),
    ("escape_windows_sysmon", "wineventlog", "XmlWinEventLog",
     '(index="wineventlog" (sourcetype="XmlWinEventLog" source="XmlWinEventLog:Microsoft-Windows-Sysmon/Operational"))'),
    ("escape_kube_audit", "k8s-audit", "kube:apiserver-audit,_json",
     '(index="k8s-audit" (sourcetype="kube:apiserver-audit" OR sourcetype="_json" OR source="kubernetes"))'),
    ("escape_esxi", "", "vmw-syslog", 'sourcetype="vmw-syslog"'),
])
def test_scope_renders_indexes_around_the_sourcetype_constraint(macro: str, indexes: str, sourcetypes: str,
                                                                expected: str) -> None:
    spec = SCOPES[macro]
    rendered = tunables.render_scope_values(spec, indexes, sourcetypes)
    assert rendered == expected
    assert is_scope_expression(rendered)
    parsed = tunables.parse_scope(spec, rendered)
    assert tunables.render_scope(spec, *parsed) == rendered


@pytest.mark.parametrize("value, message", [
    ("Main", "character 'M' is not allowed; use index names of lowercase letters"),
    ("_internal", "'_internal' is not an index name; use lowercase letters, digits, _ and -, starting with a"),
    ("os main", "'os main' is not an index name"),
    ("-x", "'-x' is not an index name"),
    ("kvstore", "'kvstore' is reserved"),
    ("os*", "character '*' is not allowed"),
    ('os" OR index="*', "character '\"' is not allowed"),
])
def test_index_names_follow_splunks_rules(value: str, message: str) -> None:
    with pytest.raises(ValueError, match="Linux auditd indexes") as err:
        tunables.render_scope_values(SCOPES["escape_auditd"], value, "linux:audit")
    assert message in str(err.value)


def test_sourcetypes_need_one_valid_name() -> None:
    spec = SCOPES["escape_docker"]
    with pytest.raises(ValueError, match="at least one sourcetype is required"):
        tunables.render_scope_values(spec, "", " , ")
    with pytest.raises(ValueError, match="'docker events' is not a sourcetype name; use letters"):
        tunables.render_scope_values(spec, "", "docker events")
    assert tunables.render_scope_values(spec, "", "docker:*") == 'sourcetype="docker:*"'


def test_a_scope_edited_outside_the_page_is_reported_not_parsed() -> None:
    spec = SCOPES["escape_auditd"]
    with pytest.raises(ValueError, match="was edited outside this page"):
        tunables.parse_scope(spec, 'index=os sourcetype="linux:audit" | where x=1')
    with pytest.raises(ValueError, match="was edited outside this page"):
        tunables.parse_scope(SCOPES["escape_windows_sysmon"], '(sourcetype="XmlWinEventLog" source="other")')


def test_cluster_field_is_one_field_name() -> None:
    spec = FIELD_NAMES["escape_kube_cluster"]
    assert tunables.render_field_name(spec, " cluster_name ") == "cluster_name"
    assert tunables.render_field_name(spec, "objectRef.namespace") == "objectRef.namespace"
    for bad in ("1host", "host name", "host|x", "", "a" * 129):
        with pytest.raises(ValueError, match="Kubernetes cluster field"):
            tunables.render_field_name(spec, bad)


@pytest.mark.parametrize("spec", list(SPECS.values()), ids=lambda s: s.macro)
@pytest.mark.parametrize("hostile", HOSTILE, ids=lambda h: repr(h[:20]))
def test_hostile_tunable_values_are_rejected_or_one_literal(spec: tunables.TunableSpec, hostile: str) -> None:
    for value in (hostile, spec.default + hostile, spec.default + "," + hostile):
        try:
            rendered = tunables.render(spec, value)
        except ValueError as err:
            message = str(err)
            assert message.startswith(spec.label + ":"), message
            assert any(word in message for word in ("allowed", "use ", "required", "is not")), message
            continue
        assert is_single_literal(rendered), (value, rendered)


@pytest.mark.parametrize("hostile", HOSTILE, ids=lambda h: repr(h[:20]))
def test_hostile_scope_values_are_rejected_or_structured(hostile: str) -> None:
    for spec in SCOPES.values():
        for indexes, sourcetypes in ((hostile, ",".join(spec.sourcetypes)), ("main", hostile),
                                     ("main," + hostile, ",".join(spec.sourcetypes))):
            try:
                rendered = tunables.render_scope_values(spec, indexes, sourcetypes)
            except ValueError as err:
                assert str(err).startswith(spec.label), str(err)
                continue
            assert is_scope_expression(rendered), (indexes, sourcetypes, rendered)
    try:
        rendered = tunables.render_field_name(FIELD_NAMES["escape_kube_cluster"], hostile)
    except ValueError:
        return
    assert is_field_name(rendered)


@pytest.mark.parametrize("definition, ok", [
    ("300", True), ('"/var/log"', True), ('""', True), ('"a" "b"', False), ('"a`x`"', False), ("300 | delete", False),
    ('"a\\"', False), ('"a|b"', False), ("`escape_x`", False), ('"a\nb"', False),
])
def test_the_single_literal_check_can_fail(definition: str, ok: bool) -> None:
    assert is_single_literal(definition) is ok


@pytest.mark.parametrize("definition, ok", [
    ('(index="a" (sourcetype="b" OR source="c"))', True), ('sourcetype="b"', True),
    ('(index="a" sourcetype="b"', False), ('index="a" | delete', False), ('host="a"', False),
    ('index="a" NOT', False), ("`escape_auditd`", False), ('index=a', False), ("", False),
    ('(index="a" OR sourcetype="b" | delete)', False), ('NOT index="a"', False),
])
def test_the_scope_expression_check_can_fail(definition: str, ok: bool) -> None:
    assert is_scope_expression(definition) is ok


@pytest.mark.parametrize("macro, value", [
    ("escape_allowed_host_paths", "/var/log/, /etc//localtime"), ("escape_privileged_threshold", "007"),
    ("escape_syscall_allowlist", "keyctl, mount"), ("escape_time_window", "86400"),
    ("escape_restricted_host_dirs", "C:\\Windows,\\\\fs01\\share\\dir,//fs02/x"), ("escape_allowed_kernel_modules", "a.b,c-d"),
])
def test_what_the_page_writes_it_reads_back(macro: str, value: str) -> None:
    spec = SPECS[macro]
    rendered = tunables.render(spec, value)
    assert tunables.parse_definition(spec, rendered) == tunables.normalise(spec, value)
    assert tunables.render(spec, tunables.parse_definition(spec, rendered)) == rendered
