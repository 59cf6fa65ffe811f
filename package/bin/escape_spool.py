"""Spool of escapecorrelate's compact event lines in the search's dispatch directory (tempfile.tempdir).

Each chunk's lines are written sorted as one run file; `merged` reads the runs back merged in replay order, so the
command holds one line per run in memory instead of every event of the search. Runs are merged into one file when
there are more than MAX_RUNS of them, so the number of open files stays bounded.
"""
import heapq
import os
import tempfile
from typing import Any, Callable, Iterable, Iterator, List, Tuple

MAX_RUNS = 64


class Spool:
    def __init__(self, key: Callable[[str], Tuple[Any, ...]]) -> None:
        self._key = key
        self._runs: List[str] = []

    def add_chunk(self, pairs: List[Tuple[Tuple[Any, ...], str]]) -> None:
        if not pairs:
            return
        pairs.sort(key=lambda pair: pair[0])
        self._runs.append(self._write(line for _, line in pairs))
        if len(self._runs) > MAX_RUNS:
            self._runs = [self._write(self._merge(self._runs))]

    def merged(self) -> Iterator[str]:
        yield from self._merge(self._runs)
        self._runs = []

    def _write(self, lines: Iterable[str]) -> str:
        handle, path = tempfile.mkstemp(prefix="escapecorrelate_", suffix=".spool")
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            for line in lines:
                out.write(line)
                out.write("\n")
        return path

    def _merge(self, paths: List[str]) -> Iterator[str]:
        files = [open(path, encoding="utf-8") for path in paths]
        try:
            yield from heapq.merge(*[(line.rstrip("\n") for line in f) for f in files], key=self._key)
        finally:
            for f in files:
                f.close()
            for path in paths:
                os.unlink(path)
