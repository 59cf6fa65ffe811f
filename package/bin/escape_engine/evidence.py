"""Where an evidence event is, so that an analyst can find it again: its index, its search peer and its `_cd`.

A `_cd` (`<bucket>:<offset>`) is unique only within one index on one indexer, so an alert row names each event it
rests on by all three. Inside a search the engines carry each event as one opaque reference (`reference`), kept in
the lists they already keep for `_cd`s; the alert row gets two aligned multivalue fields (`row_fields`):
`escape_evidence_cd`, the bare `_cd`s, as before, and `escape_evidence`, one `index=<index> splunk_server=<server>
_cd=<_cd>` per event (a value is quoted only when it holds a character outside letters, digits and `_.:-`). The
search that finds an event again is in docs/commands.md.
"""
import re
from typing import Iterable, List, Mapping

from .ground import Record, Value
from .scalars import first_text

CD_FIELD = "escape_evidence_cd"
ADDRESS_FIELD = "escape_evidence"
_SEPARATOR = "\x1f"     # within a reference: never part of an index name, a server name or a _cd
_PLAIN = re.compile(r"[A-Za-z0-9_.:-]+")


def reference_of(index: str, server: str, cd: str) -> str:
    """The reference of the event `cd` in `index` on `server`; "" when there is no _cd (nothing to find again)."""
    return _SEPARATOR.join((index, server, cd)) if cd else ""


def reference(record: Record) -> str:
    """The reference of the event a record is (its index, splunk_server and _cd as Splunk gave them)."""
    return reference_of(first_text(record.get("index")), first_text(record.get("splunk_server")),
                        first_text(record.get("_cd")))


def cd_of(ref: str) -> str:
    """The bare _cd of a reference."""
    return ref.rpartition(_SEPARATOR)[2]


def _quoted(value: str) -> str:
    if _PLAIN.fullmatch(value):
        return value
    return '"{}"'.format(value.replace("\\", "\\\\").replace('"', '\\"'))


def address(ref: str) -> str:
    """`index=<index> splunk_server=<server> _cd=<_cd>` of a reference (a part Splunk did not give is left out)."""
    parts = ref.split(_SEPARATOR)
    index, server, cd = parts if len(parts) == 3 else ("", "", ref)
    return " ".join("{}={}".format(name, _quoted(value)) for name, value in
                    (("index", index), ("splunk_server", server), ("_cd", cd)) if value)


def row_fields(refs: Iterable[str]) -> Mapping[str, List[str]]:
    """The alert row's evidence fields for these references (each once, in order; empty ones dropped)."""
    kept = [r for r in dict.fromkeys(refs) if r]
    return {CD_FIELD: [cd_of(r) for r in kept], ADDRESS_FIELD: [address(r) for r in kept]}


def addresses(row: Mapping[str, Value]) -> List[str]:
    """The `escape_evidence` values of a row."""
    value = row.get(ADDRESS_FIELD)
    return [value] if isinstance(value, str) and value else [v for v in value or [] if isinstance(v, str)]
