"""Drive a custom search command script over the SCP v2 (chunked) protocol, as splunkd does.

Used by the replay (tools/replay.py) and by the tests (tests/integration/harness/scp.py re-exports it). With
`state_dir` the script runs through tools/offline_command.py, which gives it a file store in that folder instead of
the KV store; without it the script runs as splunkd runs it, and a command that keeps state talks to splunkd_uri.

The script runs as a subprocess with the built add-on's bin/ and lib/ (via import_declare_test), so the real
splunklib dispatcher handles the protocol. Each execute chunk is written only after the previous reply was read,
as splunkd does, which also keeps the pipes from deadlocking.
"""
import csv
import io
import json
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Callable, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple, Union

from escape_engine.ground import Value
from tools import offline_command


class ScpError(RuntimeError):
    """The command broke the SCP v2 protocol (bad frame or multivalue encoding)."""


@dataclass
class CommandRun:
    getinfo: Dict[str, Any]
    records: List[Dict[str, Value]] = field(default_factory=list)
    messages: List[List[str]] = field(default_factory=list)
    chunk_replies: List[Dict[str, Any]] = field(default_factory=list)
    returncode: Optional[int] = None
    stderr: str = ""

    def errors(self) -> List[str]:
        return [text for level, text in self.messages if level == "ERROR"]


def frame(metadata: Mapping[str, Any], body: bytes = b"") -> bytes:
    """One SCP v2 frame: header, JSON metadata, body bytes (the benchmark sends pre-encoded CSV bodies)."""
    meta = json.dumps(metadata).encode("utf-8")
    return b"chunked 1.0,%d,%d\n" % (len(meta), len(body)) + meta + body


def read_frame(stream: IO[bytes]) -> Optional[Tuple[Dict[str, Any], bytes]]:
    """The next frame's metadata and raw body, or None at end of stream."""
    header = stream.readline()
    if not header:
        return None
    if not header.startswith(b"chunked 1.0,"):
        raise ScpError("not an SCP v2 frame header: {!r}".format(header[:200]))
    meta_len, body_len = (int(n) for n in header[len(b"chunked 1.0,"):].strip().split(b","))
    metadata: Dict[str, Any] = json.loads(stream.read(meta_len).decode("utf-8"))
    return metadata, stream.read(body_len)


def _frame(metadata: Mapping[str, Any], body: str = "") -> bytes:
    return frame(metadata, body.encode("utf-8"))


def _read_frame(stream: IO[bytes]) -> Optional[Dict[str, Any]]:
    result = read_frame(stream)
    if result is None:
        return None
    metadata, body = result
    metadata["_body"] = body.decode("utf-8")
    return metadata


def _encode_mv(values: Sequence[str]) -> str:
    return ";".join("$" + v.replace("$", "$$") + "$" for v in values)


def _decode_mv(text: str) -> List[str]:
    values: List[str] = []
    i = 0
    while i < len(text):
        if text[i] != "$":
            raise ScpError("bad __mv_ value {!r}".format(text))
        i += 1
        current = []
        while True:
            if text[i] == "$" and text[i + 1:i + 2] == "$":
                current.append("$")
                i += 2
            elif text[i] == "$":
                i += 1
                break
            else:
                current.append(text[i])
                i += 1
        values.append("".join(current))
        if i < len(text) and text[i] == ";":
            i += 1
    return values


def encode_records(records: Sequence[Mapping[str, Value]]) -> str:
    """CSV body as splunkd writes it: one column per field, plus __mv_<field> for multivalue fields."""
    if not records:
        return ""
    names: List[str] = []
    for record in records:
        for name in record:
            if name not in names:
                names.append(name)
    columns: List[str] = []
    for name in names:
        columns.append(name)
        columns.append("__mv_" + name)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(columns)
    for record in records:
        row = []
        for name in names:
            value = record.get(name, "")
            if isinstance(value, list):
                row.extend(["\n".join(value), _encode_mv(value) if len(value) > 1 else ""])
            else:
                row.extend([value, ""])
        writer.writerow(row)
    return out.getvalue()


def decode_records(body: str) -> List[Dict[str, Value]]:
    if not body.strip():
        return []
    rows = list(csv.reader(io.StringIO(body)))
    header, data = rows[0], rows[1:]
    records: List[Dict[str, Value]] = []
    for row in data:
        values = dict(zip(header, row))
        record: Dict[str, Value] = {}
        for name, value in values.items():
            if name.startswith("__mv_"):
                continue
            multivalue = values.get("__mv_" + name, "")
            if multivalue:
                record[name] = _decode_mv(multivalue)
            elif value != "":
                record[name] = value
        records.append(record)
    return records


def searchinfo(command: str, args: Sequence[str], dispatch_dir: str) -> Dict[str, Any]:
    """Every searchinfo key splunkd sends; SPL quotes are already stripped from args."""
    return {
        "args": list(args),
        "raw_args": list(args),
        "dispatch_dir": dispatch_dir,
        "sid": "1700000000.42",
        "app": "TA_escape_to_host",
        "owner": "admin",
        "username": "admin",
        "session_key": "offline-test-session-key",
        "splunkd_uri": "https://127.0.0.1:1",
        "splunk_version": "9.3.2",
        "search": "%7C%20" + command,
        "command": command,
        "maxresultrows": 50000,
        "earliest_time": "0",
        "latest_time": "0",
    }


Chunks = Iterable[Sequence[Mapping[str, Value]]]


def run_command(script: Path, args: Sequence[str], chunks: Union[Chunks, Callable[[Dict[str, Any]], Chunks]],
                lib_dirs: Sequence[Path] = (), env: Optional[Mapping[str, str]] = None,
                python: str = sys.executable, timeout: float = 120, state_dir: Optional[Path] = None,
                info: Optional[Mapping[str, Any]] = None) -> CommandRun:
    """Run `script` like splunkd: no argv (argv selects protocol v1), getinfo, then one execute frame per chunk.

    `chunks` may be a function of the getinfo reply (e.g. to send only its `required_fields`, as splunkd does).
    `state_dir`: keep the command's persisted state as JSON files there (tools/offline_command.py). `info`: searchinfo
    keys to send instead of the defaults (e.g. `app`, `splunkd_uri`, `session_key` of a stand-in splunkd)."""
    command = script.stem
    with tempfile.TemporaryDirectory() as dispatch_dir, tempfile.TemporaryFile() as errors:
        process_env = dict(os.environ)
        process_env["PYTHONPATH"] = os.pathsep.join([str(script.parent)] + [str(p) for p in lib_dirs])
        process_env["PYTHONDONTWRITEBYTECODE"] = "1"
        process_env.update(env or {})
        # stderr goes to a file: a command that writes much to it can never block on a full pipe.
        command_line = offline_command.argv(script, state_dir, python) if state_dir else [python, str(script)]
        proc = subprocess.Popen(command_line, stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, stderr=errors, cwd=dispatch_dir, env=process_env)
        assert proc.stdin is not None and proc.stdout is not None

        def stderr_text() -> str:
            errors.seek(0)
            return errors.read().decode("utf-8", "replace")

        try:
            proc.stdin.write(_frame({"action": "getinfo", "preview": False,
                                     "searchinfo": dict(searchinfo(command, args, dispatch_dir), **(info or {}))}))
            proc.stdin.flush()
            info = _read_frame(proc.stdout)
            if info is None:
                proc.wait(timeout)
                return CommandRun(getinfo={}, returncode=proc.returncode, stderr=stderr_text())
            run = CommandRun(getinfo=info)
            run.messages.extend(info.get("inspector", {}).get("messages", []))
            if info.get("error") or run.errors():
                proc.stdin.close()
                run.returncode = proc.wait(timeout)
                run.stderr = stderr_text()
                return run
            chunk_list = [list(c) for c in (chunks(info) if callable(chunks) else chunks)] or [[]]
            for position, chunk in enumerate(chunk_list):
                finished = position == len(chunk_list) - 1
                proc.stdin.write(_frame({"action": "execute", "finished": finished}, encode_records(chunk)))
                proc.stdin.flush()
                reply = _read_frame(proc.stdout)
                if reply is None:
                    break
                run.chunk_replies.append(reply)
                run.messages.extend(reply.get("inspector", {}).get("messages", []))
                run.records.extend(decode_records(reply["_body"]))
            proc.stdin.close()
            run.returncode = proc.wait(timeout)
            run.stderr = stderr_text()
            return run
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
