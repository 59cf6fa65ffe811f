"""Spool of escapecorrelate's compact event lines in the search's dispatch directory (tempfile.tempdir).

Each chunk's lines are written sorted as one run file; `merged` reads the runs back merged in string order (the
lines are encoded so that it is the replay order), so the command holds one line per run in memory instead of every
event of the search. Runs are merged into one file when there are more than MAX_RUNS of them, so the number of open
files stays bounded. Files split lines on LF only and keep lone surrogates (bytes splunklib could not decode).
"""
import contextlib
import heapq
import os
import tempfile
from typing import Iterable, Iterator, List

MAX_RUNS = 64
_BUFFER = 1 << 20  # for the one file written at a time; reads keep the default, up to MAX_RUNS are open


class Spool:
    def __init__(self) -> None:
        self._runs: List[str] = []

    def add_chunk(self, lines: List[str]) -> None:
        if not lines:
            return
        lines.sort()
        self._runs.append(self._write(lines))
        if len(self._runs) > MAX_RUNS:
            self._runs = [self._write(self._merge(self._runs))]

    def merged(self) -> Iterator[str]:
        yield from self._merge(self._runs)
        self._runs = []

    def _write(self, lines: Iterable[str]) -> str:
        handle, path = tempfile.mkstemp(prefix="escapecorrelate_", suffix=".spool")
        with os.fdopen(handle, "w", buffering=_BUFFER, encoding="utf-8", errors="surrogatepass", newline="\n") as out:
            for line in lines:
                out.write(line)
                out.write("\n")
        return path

    def _merge(self, paths: List[str]) -> Iterator[str]:
        try:
            with contextlib.ExitStack() as stack:
                files = [stack.enter_context(open(path, encoding="utf-8", errors="surrogatepass", newline="\n"))
                         for path in paths]
                for line in heapq.merge(*files):
                    yield line[:-1]  # every line was written with its LF
        finally:
            for path in paths:
                os.unlink(path)
