"""escape_io.chunks reads splunkd's CSV chunks into the same records as the pinned splunklib's own reader, and the
pinned splunklib still reads every chunk through the method the command classes override with it."""
import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict, List

import pytest

# Runs with the built bin/ first on the path (import_declare_test adds lib/, as in Splunk): for each body, the records
# of splunklib's reader and of read_records, as JSON, and which streaming command classes read chunks through the override.
PROBE = r'''
import inspect, io, json, sys
import import_declare_test  # noqa: F401
from splunklib.searchcommands.search_command import SearchCommand
from escape_io.chunks import ChunkRecords, read_records

class Probe(SearchCommand):
    pass

bodies = json.load(sys.stdin)
out = {"cases": [], "override_used": "self._read_csv_records(" in inspect.getsource(SearchCommand._execute_chunk_v2)}
for body in bodies:
    theirs = [dict(r) for r in SearchCommand._read_csv_records(Probe.__new__(Probe), io.StringIO(body))]
    ours = [dict(r) for r in read_records(io.StringIO(body))]
    out["cases"].append({"theirs": theirs, "ours": ours})
import glob
out["streaming"] = {}
for script in sorted(glob.glob("escape*.py")):
    source = open(script, encoding="utf-8").read()
    if "StreamingCommand):" in source:
        out["streaming"][script] = "(ChunkRecords, StreamingCommand):" in source
print(json.dumps(out))
'''

HEADER = "_time,__mv__time,host,__mv_host,_cd,__mv__cd,escape_evidence_cd,__mv_escape_evidence_cd"
BODIES: List[str] = [
    "",                                                               # no body at all
    HEADER + "\r\n",                                                  # a header, no rows
    # single values, an empty multivalue column, a multivalue with $$ (a literal $), quoted newlines and commas
    HEADER + "\r\n1.5,,h1,,0:1,,0:1,\r\n"
             '2.5,,"h,2",,0:2,,"0:2\n0:3","$0:2$;$0:$$3$"\r\n'
             '3.5,,"line\nbreak",,0:4,,,\r\n',
    "_raw,_time,host\r\na,1,h\r\nb,2\r\nc,3,h,extra\r\n",             # no __mv_ columns; rows short and long
    HEADER + "\r\n1,,h\r\n1,,h,,0:1,,0:1,$x$;$y$,surplus\r\n",        # __mv_ columns; rows short and long
    "a,__mv_a,a,b\r\n1,,2,3\r\n4,$p$;$q$,5,6\r\n",                     # a field named twice
    "__mv_a,a,b\r\n$p$;$q$,1,2\r\n,3,4\r\n",                           # the __mv_ column before its field
    "__mv_only\r\n$p$;$q$\r\n\r\n",                                    # a multivalue column without its field
    "solo\r\nv\r\n",                                                   # one column
]


def probe(built_app: Path, bodies: List[str]) -> Dict[str, Any]:
    env = dict(os.environ, PYTHONPATH=str(built_app / "bin"), PYTHONDONTWRITEBYTECODE="1")
    result = subprocess.run([sys.executable, "-c", PROBE], input=json.dumps(bodies), capture_output=True, text=True,
                            cwd=built_app / "bin", env=env, timeout=120)
    assert result.returncode == 0, result.stderr
    found: Dict[str, Any] = json.loads(result.stdout)
    return found


@pytest.fixture(scope="module")
def probed(built_app: Path) -> Dict[str, Any]:
    return probe(built_app, BODIES)


@pytest.mark.parametrize("number", range(len(BODIES)))
def test_the_same_records_as_splunklib(probed: Dict[str, Any], number: int) -> None:
    case = probed["cases"][number]
    assert case["ours"] == case["theirs"]


def test_multivalues_are_read(probed: Dict[str, Any]) -> None:
    # the comparison above could not tell when both readers dropped them
    assert probed["cases"][2]["ours"][1]["escape_evidence_cd"] == ["0:2", "0:$3"]


def test_the_pinned_splunklib_reads_chunks_through_the_override(probed: Dict[str, Any]) -> None:
    assert probed["override_used"]
    assert {"escapereduce.py", "escapecorrelate.py", "escapeinspect.py"} <= set(probed["streaming"])
    assert [script for script, chunked in probed["streaming"].items() if not chunked] == []


def test_a_large_chunk_of_compact_rows(built_app: Path) -> None:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(HEADER.split(","))
    for i in range(2000):
        evidence = ["0:%d" % i, "0:%d" % (i + 1)] if i % 3 else ["0:%d" % i]
        writer.writerow(["%d.5" % i, "", "node-%d" % (i % 7), "", "0:%d" % i, "", "\n".join(evidence),
                         ";".join("$%s$" % cd for cd in evidence) if len(evidence) > 1 else ""])
    case = probe(built_app, [out.getvalue()])["cases"][0]
    assert len(case["ours"]) == 2000 and case["ours"] == case["theirs"]
