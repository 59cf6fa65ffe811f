"""The audit record parser on real lab-run1 records, ausearch -i text and the documented encodings."""
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from escape_engine import auditd
from tests.unit.linux_lab import lab_lines


def _line(serial: str, rtype: str) -> str:
    for line in lab_lines():
        if (b":" + serial.encode() + b"): ") in line and line.startswith(b"type=" + rtype.encode() + b" "):
            return line.decode("utf-8")
    raise AssertionError("no %s record %s in lab-run1" % (rtype, serial))


def test_every_lab_line_is_one_whole_record_when_split_on_newline_only() -> None:
    lines = [line for line in lab_lines() if line]
    parsed = [auditd.parse_line(line.decode("utf-8", "replace")) for line in lines]
    assert all(p is not None for p in parsed)
    enriched = [line for line in lines if b"\x1d" in line]
    assert len(enriched) > 1000
    # str.splitlines() would tear every ENRICHED record in two at the 0x1D byte.
    assert len(enriched[0].decode().splitlines()) == 2


def test_enriched_record_keeps_raw_fields_and_reads_the_interpreted_tail() -> None:
    record = auditd.parse_line(_line("9723", "SYSCALL"))
    assert record is not None
    assert (record.rtype, record.serial, record.epoch) == ("SYSCALL", "9723", 1795923940.422)
    assert record.fields["key"] == '"t1611"'  # the raw part ends before 0x1D
    assert record.interpreted["SYSCALL"] == "setns"
    assert auditd.syscall_name(record) == "setns"
    assert record.fields["a1"] == "8000000"


def test_hex_execve_arguments_and_stale_runc_init_proctitle() -> None:
    execve = auditd.parse_line(_line("9722", "EXECVE"))
    assert execve is not None
    argv = auditd.execve_argv(execve)
    assert argv[:3] == ["nsenter", "-t", "19820"] and argv[-1].startswith("id; hostname;")
    title = auditd.parse_line(_line("6523", "PROCTITLE"))
    assert title is not None and auditd.proctitle(title) == ["runc", "init"]


def test_hex_exe_is_decoded() -> None:
    assert auditd.decode_string("2F7573722F62696E2F64706B67202864656C6574656429") == "/usr/bin/dpkg (deleted)"
    assert auditd.decode_string('"/usr/bin/id"') == "/usr/bin/id"
    assert auditd.decode_string("(null)") == "(null)"


def test_long_arguments_split_in_pieces_are_joined() -> None:
    record = auditd.parse_line('type=EXECVE msg=audit(1.0:7): argc=2 a0="sh" a1_len=10 a1[0]=6162636465 a1[1]=6667686970')
    assert record is not None and auditd.execve_argv(record) == ["sh", "abcdefghip"]


@pytest.mark.parametrize("arch, number, name", [
    ("c000003e", "272", "unshare"), ("c000003e", "308", "setns"), ("c000003e", "313", "finit_module"),
    ("c00000b7", "97", "unshare"), ("c00000b7", "268", "setns"), ("c00000b7", "40", "mount"),
    ("c00000b7", "265", "open_by_handle_at"), ("40000003", "310", "unshare"), ("40000003", "21", "mount"),
    ("40000003", "342", "open_by_handle_at"), ("c000003e", "44", "syscall_44"),
])
def test_syscall_numbers_per_architecture(arch: str, number: str, name: str) -> None:
    record = auditd.parse_line("type=SYSCALL msg=audit(1.0:1): arch=%s syscall=%s success=yes" % (arch, number))
    assert record is not None and auditd.syscall_name(record) == name


def test_interpreted_ausearch_form_with_node_prefix() -> None:
    line = ("node=worker-1 type=SYSCALL msg=audit(11/29/2026 03:45:40.422:9723) : arch=x86_64 syscall=setns "
            "success=yes exit=0 a0=0x3 a1=CLONE_NEWIPC items=0 ppid=29974 pid=30003 auid=unset uid=root "
            "comm=nsenter exe=/usr/bin/nsenter key=t1611")
    record = auditd.parse_line(line)
    assert record is not None
    assert record.node == "worker-1" and record.serial == "9723" and record.epoch is None
    assert auditd.syscall_name(record) == "setns"
    assert auditd.decode_string(record.fields["exe"]) == "/usr/bin/nsenter"


@pytest.mark.parametrize("text", ["", "----", "time->Sun Nov 29 03:45:40 2026", "type=SYSCALL no message",
                                  "type=X msg=audit(1.0:abc): a=1"])
def test_non_records_are_refused(text: str) -> None:
    assert auditd.parse_line(text) is None


# The token splitter must give exactly what the character scanner gives, on any text: random texts over the
# characters that matter to the syntax (space, =, both quotes) plus letters.
@settings(max_examples=400, deadline=None)
@given(st.text(alphabet=" =\"'ab\t\x1d", max_size=40))
def test_the_fast_field_splitter_agrees_with_the_scanner_on_any_text(text: str) -> None:
    assert auditd.split_fields(text) == auditd._scan_fields(text)


def test_quoted_values_holding_spaces_are_read_whole() -> None:
    fields = auditd.split_fields("pid=1 msg='op=login acct=\"x y\" res=success' uid=0 comm=\"a\"")
    assert fields == {"pid": "1", "msg": "'op=login acct=\"x y\" res=success'", "uid": "0", "comm": '"a"'}


@pytest.mark.parametrize("serial", ["²", "٣", "１２", "12a", ""])
def test_a_serial_that_is_not_ascii_digits_is_no_record(serial: str) -> None:
    # "²".isdigit() is True, int("²") raises: such a line must be refused here, not crash the correlation later.
    assert auditd.parse_line("type=SYSCALL msg=audit(1795923940.422:%s): arch=c000003e syscall=59" % serial) is None


def test_record_body_gives_back_raw_and_interpreted_parts() -> None:
    record = auditd.parse_line(_line("9723", "SYSCALL"))
    assert record is not None
    assert auditd.GS in record.body and record.body.startswith(record.text)
    again = auditd.parse_line("type=SYSCALL msg=audit(1795923940.422:9723): " + record.body)
    assert again is not None and (again.fields, again.interpreted) == (record.fields, record.interpreted)
