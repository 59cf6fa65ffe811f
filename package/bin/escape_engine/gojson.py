"""JSON read the way dockerd's Go encoding/json reads it into its structs, so that what we rate is what it ran.

Python's json and Go's encoding/json disagree on three points an attacker who writes a create body can use:
- Go matches an object key to a struct field case-insensitively (exact spelling first, then Unicode simple folding:
  `hostconfig`, `HOSTCONFIG`, `HostConfıg` with a dotless i, `Bındſ` all reach the field);
- for a key given twice, Go decodes the second value into the same field: a struct (or pointer to one, such as
  HostConfig) is merged field by field, a map keeps the earlier keys, a slice is re-decoded element by element into
  the elements it already has (a struct element is merged, a string replaced) and cut to the new length, a scalar is
  replaced; Python keeps only the last value;
- keys that name no field are ignored.
`loads` keeps every key of every object in order (`Pairs`); `decode` applies a schema (the fields of the Go struct
that matter here) with Go's rules and records each field set more than once (`Decoded.duplicates`): no client sends
one, so a duplicate is a finding of its own. A value of the wrong type is skipped, as Go skips it (dockerd then fails
the request), and counted in `Decoded.type_errors`.
"""
import json
from typing import Any, Dict, Iterable, Iterator, List, Optional, Tuple, Union

# Non-ASCII runes whose Go fold (unicode.ToUpper(unicode.ToLower(r))) is an ASCII letter: the only ones that can
# spell an ASCII field name. Kelvin sign, long s, dotted capital I, dotless i.
_FOLD_TO_ASCII = {"\u212a": "K", "\u017f": "S", "\u0130": "I", "\u0131": "I"}


class Pairs:
    """A JSON object as the list of its (key, value) pairs, duplicates kept, in order (no list, no dict: a JSON
    array is never mistaken for it)."""

    def __init__(self, pairs: Iterable[Tuple[str, Any]]) -> None:
        self.pairs: List[Tuple[str, Any]] = list(pairs)

    def __iter__(self) -> Iterator[Tuple[str, Any]]:
        return iter(self.pairs)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Pairs) and other.pairs == self.pairs

    def __repr__(self) -> str:
        return "Pairs({!r})".format(self.pairs)


def _reject_constant(name: str) -> Any:
    raise ValueError("{} is not JSON (Go's decoder refuses it)".format(name))


def loads(text: str) -> Any:
    """Parse JSON keeping every key of every object (objects become `Pairs`). Raises ValueError when Go would too
    for the syntax (NaN, Infinity), or when it is not JSON."""
    try:
        return json.loads(text, object_pairs_hook=Pairs, parse_constant=_reject_constant)
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None


def fold(key: str) -> str:
    """Go's folded form of a key (ASCII upper case; the four non-ASCII runes that fold onto ASCII letters)."""
    out = []
    for char in key:
        if char < "\x80":
            out.append(char.upper())
        else:
            out.append(_FOLD_TO_ASCII.get(char, char))
    return "".join(out)


# A schema is a dict of Go field name -> kind. Kinds: "bool", "string", "strings" ([]string), "strslice" ([]string
# or one string), "map" (map[string]string), a nested schema dict (a struct or a pointer to one) or a one-element list [schema]
# (a slice of structs).
Schema = Dict[str, Any]
Kind = Union[str, Schema, List[Schema]]


class Decoded:
    """The result of `decode`: the struct as a dict of canonical field names, and what was odd about the input."""

    def __init__(self, value: Optional[Dict[str, Any]]) -> None:
        self.value = value
        self.duplicates: List[str] = []      # dotted paths of fields set more than once (any spelling)
        self.folded: List[str] = []          # dotted paths of fields reached by a non-canonical spelling
        self.type_errors = 0


def _field(schema: Schema, key: str, folded: Dict[str, str]) -> Optional[str]:
    if key in schema:
        return key
    return folded.get(fold(key))


def _struct(pairs: Pairs, schema: Schema, into: Optional[Dict[str, Any]], path: str, out: Decoded) -> Dict[str, Any]:
    result: Dict[str, Any] = into if into is not None else {}
    folded = {fold(name): name for name in schema}
    seen: Dict[str, None] = {}
    for key, value in pairs:
        name = _field(schema, key, folded)
        if name is None:
            continue
        where = path + name
        if name in seen:
            out.duplicates.append(where)
        seen[name] = None
        if key != name:
            out.folded.append(where)
        result[name] = _value(value, schema[name], result.get(name), where, out)
    return result


def _as_pairs(value: Any) -> Any:
    """A dict (already parsed by Python, duplicates gone) read as pairs; anything else unchanged."""
    return Pairs(value.items()) if isinstance(value, dict) else value


def _strings(value: List[Any], old: Any) -> List[str]:
    # a null element leaves the string already there (Go decodes into the existing element)
    previous = old if isinstance(old, list) else []
    return [v if isinstance(v, str) else (previous[i] if i < len(previous) else "") for i, v in enumerate(value)]


def _map(value: Pairs, old: Any, out: Decoded) -> Dict[str, Any]:
    merged: Dict[str, Any] = dict(old) if isinstance(old, dict) else {}
    for key, item in value:
        if isinstance(item, str):
            merged[key] = item
        else:
            out.type_errors += 1
    return merged


def _structs(value: List[Any], schema: Schema, old: Any, path: str, out: Decoded) -> List[Dict[str, Any]]:
    previous = old if isinstance(old, list) else []
    items = []
    for i, raw in enumerate(value):
        base = previous[i] if i < len(previous) and isinstance(previous[i], dict) else None
        item = _as_pairs(raw)
        if isinstance(item, Pairs):
            items.append(_struct(item, schema, dict(base) if base else None, "{}[{}].".format(path, i), out))
        else:
            if item is not None:
                out.type_errors += 1
            items.append(dict(base) if base else {})
    return items


def _value(value: Any, kind: Kind, old: Any, path: str, out: Decoded) -> Any:
    value = _as_pairs(value)
    if value is None:
        # null: a pointer, slice or map becomes nil; a bool or string keeps its value (Go leaves it unchanged)
        return old if kind in ("bool", "string") else None
    if kind == "bool" and isinstance(value, bool):
        return value
    if kind == "string" and isinstance(value, str):
        return value
    if kind == "strslice" and isinstance(value, str):
        return [value]      # moby's strslice.StrSlice (Cmd, Entrypoint) takes one string as a one-element list
    if kind in ("strings", "strslice") and isinstance(value, list) and all(isinstance(v, str) or v is None
                                                                            for v in value):
        return _strings(value, old)
    if kind == "map" and isinstance(value, Pairs):
        return _map(value, old, out)
    if isinstance(kind, dict) and isinstance(value, Pairs):
        return _struct(value, kind, old if isinstance(old, dict) else None, path + ".", out)
    if isinstance(kind, list) and isinstance(value, list):
        return _structs(value, kind[0], old, path, out)
    out.type_errors += 1
    return old


def decode(value: Any, schema: Schema) -> Decoded:
    """Decode a parsed value (from `loads`) into `schema` the way Go's json.Unmarshal fills a struct."""
    value = _as_pairs(value)
    if not isinstance(value, Pairs):
        return Decoded(None)
    out = Decoded(None)
    out.value = _struct(value, schema, None, "", out)
    return out


def has_field(value: Any, name: str) -> bool:
    """Whether a parsed object has a key that Go would match to the field `name` (in a struct that has no other
    field folding the same way)."""
    return isinstance(value, Pairs) and any(key == name or fold(key) == fold(name) for key, _ in value)


def merged_object(pairs: List[Tuple[str, Any]]) -> Dict[str, Any]:
    """A json.loads object_pairs_hook for JSON read without a schema (the Kubernetes API server's decoder is
    case-sensitive but follows the same rules for a key given twice): the second value is decoded into the first
    (`redecoded`), so an empty duplicate cannot hide a setting the first one made."""
    result = dict(pairs)
    if len(result) == len(pairs):  # no duplicate: the common case costs one dict
        return result
    result = {}
    for key, value in pairs:
        result[key] = redecoded(result[key], value) if key in result else value
    return result


def redecoded(old: Any, new: Any) -> Any:
    """`new` decoded by Go into a field that already holds `old`: objects merge key by key, arrays are re-decoded
    element by element into the elements already there and cut to the new length, anything else is replaced."""
    if isinstance(old, dict) and isinstance(new, dict):
        merged = dict(old)
        for key, value in new.items():
            merged[key] = redecoded(merged[key], value) if key in merged else value
        return merged
    if isinstance(old, list) and isinstance(new, list):
        return [redecoded(old[i], value) if i < len(old) else value for i, value in enumerate(new)]
    return new
