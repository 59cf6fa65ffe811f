"""A compact row's facts as escapecorrelate input=reduced reads them (auditfacts.from_fields, and the spool line's way
there: fact_texts, facts_line, from_texts): escapereduce's own rows round-trip, anything else reads as empty."""
from typing import Dict, List

from escape_engine import auditfacts, spoolline
from escape_engine.auditfacts import AuditFacts, PathItem
from escape_engine.ground import Value

PATH = PathItem("0", "/usr/bin/su do", "fd:00", "12", "0100755", "00:00", "NORMAL")
FACTS = AuditFacts("execve", True, "0", "42", "1", "0", "bash\tx", "/bin/ba\nsh", "unconfined", "a", "b", "c", "d",
                   ["su", "-c", "id; echo \"\\\u00e9\udcff"], ["su"], "/ro ot", "", [PATH], "", "", "")


def through_spool(row: Dict[str, Value]) -> AuditFacts:
    line = spoolline.facts_line(spoolline.audit_prefix("h", 1.5, "7", "1.500"), 1, ["0:1"], spoolline.labels("s", "t"),
                                auditfacts.fact_texts(row))
    assert "\n" not in line and "\r" not in line and line.count("\t") == 9
    events = list(spoolline.events([line]))
    assert len(events) == 1 and events[0].cds == ["0:1"] and events[0].facts is not None
    return events[0].facts


def test_escapereduce_rows_round_trip() -> None:
    row = auditfacts.to_fields(FACTS)
    assert auditfacts.from_fields(row) == FACTS
    assert through_spool(row) == FACTS


def test_unusable_values_read_as_empty() -> None:
    row: Dict[str, Value] = {"escape_syscall": ["mount", "umount2"], "escape_pid": 7,  # type: ignore[dict-item]
                             "escape_success": "YES", "escape_argv": '{"a": 1}', "escape_title": "not json",
                             "escape_paths": '[["0", "/x"], ["1", "/y", "", "", "", "", 5], "z"]',
                             "escape_cwd": ["", "/second"]}
    facts = auditfacts.from_fields(row)
    assert facts.syscall == "mount" and facts.pid == "" and facts.cwd == "" and not facts.success
    assert facts.argv == [] and facts.title == [] and facts.paths == []
    assert through_spool(row) == facts


def test_json_with_whitespace_or_other_items_reads_as_json_does() -> None:
    row: Dict[str, Value] = {"escape_argv": ' ["a", 1, "b"] ', "escape_title": '["x"]\n',
                             "escape_paths": '\t[["0","/x","","","","",""]]', "escape_success": "yes"}
    facts = auditfacts.from_fields(row)
    assert facts.argv == ["a", "b"] and facts.title == ["x"] and facts.success
    assert facts.paths == [PathItem("0", "/x", "", "", "", "", "")]
    assert auditfacts.from_fields({"escape_argv": '["a"] x'}).argv == []     # trailing text: not JSON
    assert auditfacts.from_fields({"escape_argv": "[" * 100000}).argv == []  # nested past the parser's depth


def test_missing_fields_read_as_empty() -> None:
    empty: List[str] = []
    assert auditfacts.from_fields({}) == AuditFacts("", False, "", "", "", "", "", "", "", "", "", "", "", empty, empty,
                                                    "", "", [], "", "", "")
