"""escapecorrelate against an attacker who writes the logs (issue 15, Linux): lab-run1's real records changed the way a
process inside a container can change them (its binary's name and path, its comm, its arguments), never invented
record shapes. Each test names the evasion; the detection must keep its finding and severity."""
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import pytest

from escape_engine.correlate import Correlator
from tests.conftest import ROOT
from tests.unit.linux_lab import HOST, event_cds, ground_truth, interpreted_records, lab_lines, to_records

Lines = List[Tuple[int, bytes]]


def _serial_of(line: bytes) -> bytes:
    start = line.find(b"msg=audit(")
    return line[line.find(b":", start + 10) + 1:line.find(b")", start)] if start >= 0 else b""


def _window(first: float, last: float) -> Lines:
    """The lab's lines (with their line index, the _cd) between two times."""
    out = []
    for index, line in enumerate(lab_lines()):
        start = line.find(b"msg=audit(")
        if start < 0:
            continue
        stamp = float(line[start + 10:line.find(b":", start)])
        if first <= stamp <= last:
            out.append((index, line))
    return out


def _edit(lines: Lines, serial: str, edits: Sequence[Tuple[bytes, bytes]],
          rtype: Optional[bytes] = None) -> Lines:
    """The lines with each (old, new) replaced in the records of one event (of one record type, if given)."""
    out = []
    applied = set()
    for index, line in lines:
        if _serial_of(line) == serial.encode() and (rtype is None or line.startswith(b"type=" + rtype + b" ")):
            for old, new in edits:
                if old in line:
                    applied.add(old)
                    line = line.replace(old, new)
        out.append((index, line))
    assert applied == {old for old, _ in edits}, (serial, applied)
    return out


def _rows(lines: Lines, **options: object) -> Tuple[List[Dict], Correlator]:
    engine = Correlator(report="all", **options)  # type: ignore[arg-type]
    engine.feed(to_records(lines))
    return engine.finish(), engine


def _findings_of(rows: List[Dict], step: str) -> Dict[str, str]:
    """finding -> severity of the rows that rest on an indicator record of `step`."""
    wanted = {cd for r in ground_truth() if r["step"] == step and r["indicator"] == "yes" for cd in event_cds(r)}
    return {row["escape_finding"]: row["escape_severity"] for row in rows if wanted & set(row["escape_evidence_cd"])}


E01R3 = (1795923930.0, 1795923950.0)   # the shim, runc and the container of E01r3 (nsenter into containerd's pid)
E08 = (1795923830.0, 1795923845.0)     # shocker: open_by_handle_at on the host's / (inode 2 of fe:00)
E04R2 = (1795923885.0, 1795923905.0)   # docker run --privileged -v /:/host from a container, over the mounted socket
B03 = (1795923805.0, 1795923815.0)     # docker exec ben02-web ps


# ---- 1. identity by what the kernel says -------------------------------------------------------------------------
def test_a_container_first_process_renamed_to_a_runtime_binary_keeps_its_escape() -> None:
    # The image's entrypoint is /usr/local/bin/runc (a shell under a runtime's name); its parent is the shim (runc
    # init's reparented process), its executable on the container's overlay device 00:27.
    lines = _edit(_window(*E01R3), "9720", [(b'comm="sh"', b'comm="runc"'),
                                            (b'exe="/usr/bin/dash"', b'exe="/usr/local/bin/runc"'),
                                            (b'name="/usr/bin/sh"', b'name="/usr/local/bin/runc"'),
                                            (b'a0="sh"', b'a0="/usr/local/bin/runc"')])
    assert _findings_of(_rows(_window(*E01R3))[0], "E01r3") == {"nsenter_host_exec": "critical"}
    assert _findings_of(_rows(lines)[0], "E01r3") == {"nsenter_host_exec": "critical"}


def test_a_comm_changed_by_prctl_does_not_make_a_container_process_the_runtime() -> None:
    # shocker (the container's first process, parent the shim) names itself "runc" before open_by_handle_at.
    lines = _edit(_window(*E08), "7422", [(b'comm="shocker"', b'comm="runc"')])
    assert _findings_of(_rows(_window(*E08))[0], "E08") == {"host_file_handle": "high"}
    assert _findings_of(_rows(lines)[0], "E08") == {"host_file_handle": "high"}


def test_a_docker_exec_process_named_like_the_runtime_stays_a_container_process() -> None:
    # `docker exec ben02-web /usr/local/bin/runc`: the exec'd process's parent is runc exec (a real runtime), its
    # executable the container's (busybox on 00:27) under a runtime's name.
    serial = next(r["serial"] for r in ground_truth() if r["step"] == "B03" and r["comm"] == "ps")
    lines = _edit(_window(*B03), serial, [(b'comm="ps"', b'comm="runc"'), (b'exe="/bin/busybox"',
                                                                            b'exe="/usr/local/bin/runc"')])
    _, engine = _rows(lines)
    pid = next(r["pid"] for r in ground_truth() if r["serial"] == serial)
    proc = engine.hosts[HOST].procs[pid][-1]
    assert not proc.runtime
    assert proc.evidence.startswith("runtime:runc exec") and len(proc.container) == 64 and proc.identity == "exact"


# ---- 2. parsers by sourcetype and record type; times bounded by the search ----------------------------------------
def test_an_audit_record_spelling_a_sysmon_event_stays_an_audit_record() -> None:
    # nsenter run from /tmp/<EventID>/: the kernel logs < and > in exe= and PATH name= as they are (not hex).
    lines = _window(*E01R3)
    lines = _edit(lines, "9722", [(b'exe="/usr/bin/nsenter"', b'exe="/tmp/<EventID>/nsenter"')], b"SYSCALL")
    lines = _edit(lines, "9722", [(b'name="/usr/bin/nsenter"', b'name="/tmp/<EventID>/nsenter"')], b"PATH")
    for serial in ("9723", "9724", "9725", "9726", "9727"):
        lines = _edit(lines, serial, [(b'exe="/usr/bin/nsenter"', b'exe="/tmp/<EventID>/nsenter"')], b"SYSCALL")
    rows, engine = _rows(lines)
    assert (engine.summary["malformed"], engine.summary["sysmon_events"]) == (0, 0)
    assert _findings_of(rows, "E01r3") == {"nsenter_host_exec": "critical"}


SYSMON_SHAPED = ('<Event><System><Provider Name="Linux-Sysmon"/><EventID>1</EventID><Computer>%s</Computer></System>'
                 '<EventData><Data Name="UtcTime">2099-01-01 00:00:00.000</Data><Data Name="ProcessId">1</Data>'
                 '<Data Name="Image">/bin/x</Data></EventData></Event>')


@pytest.mark.parametrize("named", [HOST, "node2"])
def test_an_ausearch_argument_shaped_like_a_sysmon_event_moves_no_host_state(named: str) -> None:
    # In the interpreted form (sourcetype auditd) arguments are printed as they are: one extra argument of the
    # container's `id` names a host and a 2099 time. It must neither age the lineage out nor touch another host.
    records = interpreted_records(ROOT / "tests" / "knowledge" / "samples" / "auditd_interpreted_lab-run1_pass3.log")
    clean = Correlator(report="all")
    clean.feed(records)
    clean_rows = clean.finish()
    forged = []
    for record in records:
        raw = record["_raw"]
        if raw.startswith("type=EXECVE") and " a0=id" in raw and "argc=1 " in raw:
            raw = raw.replace("argc=1 ", "argc=2 ") + " a1=" + SYSMON_SHAPED % named
        forged.append(dict(record, _raw=raw))
    assert forged != records
    engine = Correlator(report="all")
    engine.feed(forged)
    rows = engine.finish()
    assert engine.summary["sysmon_events"] == 0
    assert [r["escape_finding"] for r in rows] == [r["escape_finding"] for r in clean_rows]
    assert set(engine.state()) == {HOST}
    assert engine.state()[HOST]["max_time"] == clean.state()[HOST]["max_time"]
    assert engine.state()[HOST]["procs"] and len(engine.state()[HOST]["procs"]) == len(clean.state()[HOST]["procs"])


def test_an_event_dated_far_outside_the_search_range_cannot_age_out_the_lineage() -> None:
    # A Sysmon event (its own sourcetype) whose UtcTime says 2099, e.g. from a host clock or a line written to the
    # syslog socket: in a search over the lab's hour it is skipped and counted, and the lineage stays.
    sample = (ROOT / "tests" / "knowledge" / "samples" / "sysmon_linux_handwritten.log").read_text(encoding="utf-8")
    line = next(text for text in sample.split("\n") if "<EventID>1</EventID>" in text)
    start = line.index('<Data Name="UtcTime">') + len('<Data Name="UtcTime">')
    line = line[:start] + "2099-01-01 00:00:00.000" + line[line.index("</Data>", start):]
    computer = line[line.index("<Computer>") + 10:line.index("</Computer>")]
    lab = to_records(_window(*E01R3))
    sysmon = {"_raw": line, "_time": "1795923945", "host": computer, "_cd": "5:1", "sourcetype": "sysmon:linux"}
    earliest, latest = 1795923600.0, 1795924200.0
    engine = Correlator(report="all", earliest=earliest, latest=latest)
    engine.feed([sysmon] + lab)
    rows = engine.finish()
    assert engine.summary["out_of_range"] == 1
    assert all(table.max_time <= latest + 3600.0 for table in engine.hosts.values())  # intake.RANGE_SKEW
    assert engine.state()[HOST]["procs"]
    assert "nsenter_host_exec" in {r["escape_finding"] for r in rows}
    assert any(level == "WARN" and "outside the search's time range" in text for level, text in engine.messages())


# ---- 3. whole records --------------------------------------------------------------------------------------------
MAX_EXECVE_AUDIT_LEN = 7500   # include/linux/audit.h (kernel): argument bytes per EXECVE record
ABUF = 96                     # kernel/auditsc.c audit_log_execve_info: sizeof(abuf), the per-argument marker room


def _control(data: bytes) -> bool:
    """kernel/audit.c audit_string_contains_control: a byte that makes the kernel log the value as hex."""
    return any(b == 0x22 or b < 0x21 or b > 0x7E for b in data)


def kernel_execve_bodies(argv: Sequence[bytes]) -> List[str]:
    """The bodies of the EXECVE records the kernel writes for `argv`: kernel/auditsc.c audit_log_execve_info, step for
    step (a new record when fewer than sizeof(abuf) + 8 bytes are left, `aN_len=` and `aN[i]=` parts for an argument
    that does not fit, hex for one longer than the copy buffer)."""
    len_max = MAX_EXECVE_AUDIT_LEN
    records = ["argc=%d" % len(argv)]
    len_rem, arg, iter_, len_full, require_data, encode = len_max, 0, 0, 0, True, False
    buf, fetched = b"", 0
    len_abuf = 0
    while arg < len(argv):
        value = argv[arg]
        if len_full == 0:
            len_full = len(value)
        if require_data:
            chunk = value[fetched:fetched + len_max - len(buf)]
            if len(chunk) == len_max - len(buf):
                require_data, encode, len_full = True, True, len_full * 2
            else:
                require_data = False
                encode = encode or _control(chunk)
                if len_full < len_max:
                    len_full = len(chunk) * 2 if encode else len(chunk)
            fetched += len(chunk)
            buf += chunk
            len_abuf = len(buf) * 2 if encode else len(buf) + 2
        if ABUF + 8 > len_rem:
            len_rem = len_max
            records.append("")
        if require_data or iter_ > 0 or len_abuf + ABUF > len_rem:
            marker = (" a%d_len=%d" % (arg, len_full) if iter_ == 0 else "") + " a%d[%d]=" % (arg, iter_)
            iter_ += 1
        else:
            marker = " a%d=" % arg
        records[-1] += marker
        len_rem -= len(marker)
        take = len(buf)
        if encode:
            if len_abuf > len_rem:
                take = len_rem // 2
            records[-1] += buf[:take].hex().upper()
            len_rem -= take * 2
            len_abuf -= take * 2
        else:
            if len_abuf > len_rem:
                take = len_rem - 2
            records[-1] += '"%s"' % buf[:take].decode()
            len_rem -= take + 2
            len_abuf -= take
        buf = buf[take:]
        if not buf and not require_data:
            arg, iter_, len_full, require_data, encode, buf, fetched = arg + 1, 0, 0, True, False, b"", 0
    return records


def _split_execve(lines: Lines, serial: str, argv: Callable[[List[bytes]], List[bytes]]) -> Lines:
    """The event's one EXECVE record replaced by the records the kernel writes for the changed argv."""
    from escape_engine import auditd
    out: Lines = []
    extra = len(lab_lines())
    for index, line in lines:
        if _serial_of(line) == serial.encode() and line.startswith(b"type=EXECVE "):
            record = auditd.parse_line(line.decode())
            assert record is not None
            new_argv = argv([a.encode() for a in auditd.execve_argv(record)])
            head = line[:line.index(b"): ") + 3]
            for number, body in enumerate(kernel_execve_bodies(new_argv)):
                out.append((index if number == 0 else extra + number, head + body.encode()))
            continue
        out.append((index, line))
    return out


PAD = b"PAD=" + b"A" * 8192


def test_the_kernel_split_of_a_padded_argv_is_read_whole() -> None:
    records = kernel_execve_bodies([b"docker", b"run", b"-e", PAD, b"--privileged", b"-v", b"/:/host", b"sh"])
    assert len(records) == 3 and "a3_len=16392 a3[0]=" in records[0] and records[1].startswith(" a3[1]=")
    from escape_engine import auditd
    parsed = [auditd.parse_line("type=EXECVE msg=audit(1.0:7): " + body) for body in reversed(records)]
    assert auditd.execve_argv([p for p in parsed if p is not None]) == [
        "docker", "run", "-e", PAD.decode(), "--privileged", "-v", "/:/host", "sh"]


def test_a_runtime_socket_escape_with_a_padded_environment_stays_critical() -> None:
    # `docker run -e PAD=<8 KB> --name esc04-child-r2 --privileged -v /:/host ...` from the container.
    lines = _split_execve(_window(*E04R2), "8432", lambda argv: argv[:2] + [b"-e", PAD] + argv[2:])
    assert sum(1 for _, line in lines if line.startswith(b"type=EXECVE") and b":8432)" in line) == 3
    before = _findings_of(_rows(_window(*E04R2))[0], "E04r2")
    assert before["runtime_socket_escape"] == "critical"
    rows, _ = _rows(lines)
    assert _findings_of(rows, "E04r2") == before


def test_split_execve_records_arriving_in_any_order_give_one_argv() -> None:
    lines = _split_execve(_window(*E04R2), "8432", lambda argv: argv[:2] + [b"-e", PAD] + argv[2:])
    records = to_records(lines)
    execve = [i for i, r in enumerate(records) if r["_raw"].startswith("type=EXECVE") and ":8432)" in r["_raw"]]
    first, last = execve[0], execve[-1]
    records[first], records[last] = records[last], records[first]  # Splunk's order within one time stamp is free
    engine = Correlator(report="all")
    engine.feed(records)
    assert _findings_of(engine.finish(), "E04r2")["runtime_socket_escape"] == "critical"



def test_a_lineage_already_aged_by_a_far_future_time_heals_in_a_bounded_search() -> None:
    # A state saved by an engine that took the 2099 time: its newest time is 2099, its processes are real.
    first = Correlator(report="all")
    first.feed(to_records(_window(*E01R3)))
    first.finish()
    control = Correlator(report="all", state=first.state(), earliest=1795923600.0, latest=1795924200.0)
    control.finish()
    state = first.state()
    state[HOST]["max_time"] = 4070908800.0
    later = Correlator(report="all", state=state, earliest=1795923600.0, latest=1795924200.0)
    later.finish()

    def container_side(engine: Correlator) -> List[Dict[str, Any]]:
        return [p for p in engine.state()[HOST]["procs"] if p["container"]]
    # The healed time may retire host processes kept only for the window (lineage.persist), never what attribution
    # needs: every container-side process the true time keeps is still there.
    assert container_side(control) and container_side(later) == container_side(control)
