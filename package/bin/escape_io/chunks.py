"""splunkd's CSV chunks read into records with fewer Python steps per field than splunklib takes, same records.

splunklib 2.1.1 (pinned) builds each record of a chunk field by field (`SearchCommand._read_csv_records`: a prefix
test and a dict store per column, for every column of every record). That is most of what escapereduce pays per
audit record on an indexer and a large part of what escapecorrelate pays per compact row (60-odd columns) on the
search head. `read_records` reads the same CSV with splunklib's own dialect and gives the same keys and values: the
single-value columns zipped into a dict in one call, the `__mv_` columns looked at only when one of them holds a value,
decoded by splunklib's own `_decode_list`. A row whose width differs from the header's, or a header that names a field
twice, is read by splunklib's own per-field steps. Every streaming command class of the add-on takes `ChunkRecords` as
its first base. tests/integration/test_chunk_records.py compares the two readers and checks that the pinned splunklib
still reads each chunk through the method overridden here.
"""
import csv
from collections import OrderedDict
from operator import itemgetter
from typing import Any, Callable, Dict, Iterator, List, Sequence, Tuple

from splunklib.searchcommands.internals import CsvDialect
from splunklib.searchcommands.search_command import SearchCommand

MV_PREFIX = "__mv_"
Picker = Callable[[Sequence[str]], Tuple[str, ...]]


def _picker(indexes: Sequence[int]) -> Picker:
    """The values at `indexes` as a tuple (itemgetter gives a bare value for one index, and wants at least one)."""
    if len(indexes) > 1:
        return itemgetter(*indexes)
    if indexes:
        index = indexes[0]
        return lambda values: (values[index],)
    return lambda values: ()


def read_records(ifile: Any) -> Iterator[Dict[str, Any]]:
    """The records of one chunk's CSV body, as splunklib's `_read_csv_records` gives them."""
    reader = csv.reader(ifile, dialect=CsvDialect)
    try:
        fieldnames = next(reader)
    except StopIteration:
        return
    mv_names = {name: name[len(MV_PREFIX):] for name in fieldnames if name.startswith(MV_PREFIX)}
    if len(set(fieldnames)) != len(fieldnames):
        yield from _splunklib_steps(reader, fieldnames, mv_names)
        return
    width = len(fieldnames)
    plain = [i for i, name in enumerate(fieldnames) if name not in mv_names]
    multi = [i for i, name in enumerate(fieldnames) if name in mv_names]
    names = [fieldnames[i] for i in plain]
    pick_plain, pick_multi = _picker(plain), _picker(multi)
    decoded: List[Tuple[int, str]] = [(i, mv_names[fieldnames[i]]) for i in multi]
    decode = SearchCommand._decode_list
    for values in reader:
        if len(values) != width:
            yield from _splunklib_steps(iter([values]), fieldnames, mv_names)
            continue
        record = dict(zip(names, pick_plain(values)))
        if any(pick_multi(values)):
            for index, name in decoded:
                if values[index]:
                    record[name] = decode(values[index])
        yield record


def _splunklib_steps(rows: Iterator[List[str]], fieldnames: List[str],
                     mv_names: Dict[str, str]) -> Iterator[Dict[str, Any]]:
    """splunklib's own steps, for the rows `read_records` does not read in bulk."""
    if not mv_names:
        for values in rows:
            yield OrderedDict(zip(fieldnames, values))
        return
    for values in rows:
        record: Dict[str, Any] = OrderedDict()
        for name, value in zip(fieldnames, values):
            if name.startswith(MV_PREFIX):
                if value:
                    record[mv_names[name]] = SearchCommand._decode_list(value)
            elif name not in record:
                record[name] = value
        yield record


class ChunkRecords:
    """First base of a command class: splunklib reads each chunk's records with `read_records`."""

    def _read_csv_records(self, ifile: Any) -> Iterator[Dict[str, Any]]:
        return read_records(ifile)
