"""SCP v2 at the byte level, timed: runs a command script as splunkd does (getinfo, then one execute frame per CSV
body, each reply read before the next write), with its own peak memory, next to a pass-through command on the same
input. The frames and the CSV encoding are tools/scp.py's; this module adds the timing, the raw bodies and the staging.
"""
import csv
import io
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

from escape_engine.ground import Row, Value
from tools import offline_command
from tools.scp import decode_records, encode_records, frame, read_frame, searchinfo

ROOT = Path(__file__).resolve().parent.parent
APP = "TA_escape_to_host"
PASSTHROUGH = ROOT / "tests" / "integration" / "harness" / "commands" / "escapepassthrough.py"

csv.field_size_limit(2 ** 31 - 1)  # replies may carry the 5 MB fields the fuzz test sends (splunklib does the same)


def encode_chunk(records: Sequence[Mapping[str, Value]]) -> bytes:
    """A CSV body as splunkd writes it (same encoding as tests/integration/harness/scp.py: __mv_ columns)."""
    return encode_records(records).encode("utf-8")


@dataclass
class RawRun:
    seconds: float = 0.0
    cpu_seconds: float = 0.0    # the command process's user + system time: what it cost a core, whatever the load
    rows_out: int = 0
    messages: List[List[str]] = field(default_factory=list)
    bodies: List[bytes] = field(default_factory=list)
    returncode: Optional[int] = None
    max_rss_kb: int = 0
    stderr: str = ""
    replies: int = 0


def run_raw(script: Path, args: Sequence[str], bodies: Sequence[bytes], state_dir: Optional[Path] = None,
            keep_bodies: bool = False, timeout: float = 600) -> RawRun:
    """Run `script` as splunkd does (getinfo, then one execute frame per body, each reply read before the next write)
    and time it from process start to the last reply. Bodies are bytes, so tests can send what splunkd might."""
    result = RawRun()
    body_list = list(bodies) or [b""]
    with tempfile.TemporaryDirectory() as dispatch_dir:
        process_env = dict(os.environ)
        process_env["PYTHONPATH"] = str(script.parent)
        process_env["PYTHONDONTWRITEBYTECODE"] = "1"
        started = time.perf_counter()
        # With a state folder the script runs through the offline launcher: state in files, not the KV store.
        command_line = offline_command.argv(script, state_dir) if state_dir else [sys.executable, str(script)]
        proc = subprocess.Popen(command_line, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, cwd=dispatch_dir, env=process_env)
        assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
        try:
            proc.stdin.write(frame({"action": "getinfo", "preview": False,
                                     "searchinfo": searchinfo(script.stem, args, dispatch_dir)}))
            proc.stdin.flush()
            info = read_frame(proc.stdout)
            if info is not None:
                result.messages.extend(info[0].get("inspector", {}).get("messages", []))
            if info is not None and not info[0].get("error") and not any(m[0] == "ERROR" for m in result.messages):
                for position, body in enumerate(body_list):
                    try:
                        proc.stdin.write(frame({"action": "execute", "finished": position == len(body_list) - 1},
                                                body))
                        proc.stdin.flush()
                    except BrokenPipeError:  # the command died: its exit code and stderr tell why
                        break
                    reply = read_frame(proc.stdout)
                    if reply is None:
                        break
                    result.replies += 1
                    result.messages.extend(reply[0].get("inspector", {}).get("messages", []))
                    if reply[1].strip():
                        result.rows_out += max(0, _count_rows(reply[1]))
                    if keep_bodies:
                        result.bodies.append(reply[1])
            result.seconds = time.perf_counter() - started
            # The command's own peak (VmHWM of the exec'd image), read while it waits for the end of input:
            # ru_maxrss from wait4 would count the pages the child shared with this (large) process before exec.
            hwm = _peak_rss_kb(proc.pid)
            try:
                proc.stdin.close()
            except BrokenPipeError:
                pass
            result.stderr = proc.stderr.read().decode("utf-8", "replace")
            _pid, status, usage = os.wait4(proc.pid, 0)
            proc.returncode = os.waitstatus_to_exitcode(status)
            result.returncode = proc.returncode
            result.max_rss_kb = hwm if hwm else int(usage.ru_maxrss)
            result.cpu_seconds = usage.ru_utime + usage.ru_stime
        finally:
            if proc.poll() is None and result.returncode is None:
                proc.kill()
                proc.wait()
    return result


def _peak_rss_kb(pid: int) -> int:
    try:
        for line in Path("/proc/{}/status".format(pid)).read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return 0


def _count_rows(body: bytes) -> int:
    return sum(1 for _ in csv.reader(io.StringIO(body.decode("utf-8", "replace")))) - 1


def decode_bodies(bodies: Iterable[bytes]) -> List[Dict[str, Value]]:
    rows: List[Dict[str, Value]] = []
    for body in bodies:
        rows.extend(decode_records(body.decode("utf-8")))
    return rows


def stage_app(built: Path, into: Path) -> Path:
    """A copy of the built bin/ (plus the pass-through command) with lib/ linked, laid out like etc/apps/<app>."""
    app = into / APP
    shutil.copytree(built / "bin", app / "bin")
    (app / "lib").symlink_to(built / "lib")
    (app / "lookups").symlink_to(built / "lookups")
    shutil.copy(PASSTHROUGH, app / "bin" / PASSTHROUGH.name)
    return app / "bin"


def chunked(records: Sequence[Row], size: int) -> List[bytes]:
    return [encode_chunk(records[i:i + size]) for i in range(0, len(records), size)] or [b""]



SHORT_RUN_SECONDS = 2.0   # below this, process start and load swings weigh on one run: measure more rounds
MAX_ROUNDS = 5


def _checked(run: RawRun, script: str, args: Sequence[str]) -> RawRun:
    if run.returncode != 0 or any(m[0] == "ERROR" for m in run.messages):
        raise RuntimeError("{} {} failed (exit {}): {} {}".format(script, " ".join(args), run.returncode,
                                                                 run.messages, run.stderr[-2000:]))
    return run


def measure_one(script: Path, args: Sequence[str], bodies: Sequence[bytes], state_dir: Path, repeat: int) -> RawRun:
    """One command on `bodies`, the fastest of `repeat` rounds and more (up to MAX_ROUNDS) while its best run is
    shorter than SHORT_RUN_SECONDS, as measure_pair times a pair."""
    best: Optional[RawRun] = None
    rounds = 0
    while rounds < max(1, repeat) or (rounds < MAX_ROUNDS and best is not None and best.seconds < SHORT_RUN_SECONDS):
        rounds += 1
        run = _checked(run_raw(script, args, bodies, state_dir=state_dir), script.name, args)
        if best is None or run.seconds < best.seconds:
            best = run
    assert best is not None
    return best


def measure_pair(bin_dir: Path, script: str, args: Sequence[str], bodies: Sequence[bytes], state_dir: Path,
                 repeat: int) -> Tuple[RawRun, RawRun]:
    """(pass-through, command) on the same bodies, run alternately so both see the same load; the fastest run of each
    counts. `repeat` rounds, and more (up to MAX_ROUNDS) while a best run is shorter than SHORT_RUN_SECONDS."""
    best: List[Optional[RawRun]] = [None, None]
    rounds = 0
    while rounds < max(1, repeat) or (rounds < MAX_ROUNDS and max(r.seconds for r in best if r) < SHORT_RUN_SECONDS):
        rounds += 1
        for index, (name, arguments) in enumerate(((PASSTHROUGH.name, []), (script, list(args)))):
            run = _checked(run_raw(bin_dir / name, arguments, bodies, state_dir=state_dir), name, arguments)
            current = best[index]
            if current is None or run.seconds < current.seconds:
                best[index] = run
    assert best[0] is not None and best[1] is not None
    return best[0], best[1]

