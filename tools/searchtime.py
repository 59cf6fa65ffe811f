"""A strict, small offline evaluator of Splunk's search-time knowledge for one app.

It follows the order of Splunk's search-time operations sequence (Knowledge Manager Manual): EXTRACT (ASCII order of class) -> REPORT ->
KV_MODE -> FIELDALIAS -> EVAL (in parallel) -> LOOKUP -> eventtypes -> tags. Regexes are PCRE (the pcre2 package).
It implements exactly what is written here and raises `Unsupported`, naming the setting, for anything else: an
unknown props or transforms key, an EVAL function outside the whitelist, a stanza-precedence case it does not
model, an eventtype search beyond sourcetype / source / field=value / terms with AND, OR, NOT.

It reads one app's default/ only: no system/default props (Splunk's own [default] stanza), no other app, no local/.

What it models, and the choices made where Splunk's documentation is silent (each is a residual risk that only a
real Splunk settles, see README "Sourcetypes and prerequisite add-ons"):
- Stanzas: [<sourcetype>], [source::<pattern>], [host::<pattern>] (`...` matches anything, `*` anything but `/`,
  an optional leading `(?i)`). Settings merge with precedence source > host > sourcetype; two matching stanzas of
  the same kind (which Splunk orders by ASCII order / `priority`) are refused. [rule::], [delayedrule::] and
  [default] are refused.
- EXTRACT-<class> = <regex> [in <field>]: first match only; named groups become fields; a group that did not take
  part or matched the empty string gives no field. Two classes extracting the same field for one event is refused.
- REPORT-<class> = <transform>[, <transform>...]: the regex is applied repeatedly over SOURCE_KEY (default _raw);
  FORMAT `name::$n` / `$1::$2` (CLEAN_KEYS for names built from groups) or named groups without FORMAT; a value for
  a field that already exists is appended with MV_ADD = true and discarded otherwise; empty values are dropped
  (KEEP_EMPTY_VALS = false).
- KV_MODE = none | auto (the default) | json. json flattens objects to a.b and arrays to multivalue a{}; true,
  false and null become those words, numbers keep their text. Automatic JSON extraction reads only the first 5000
  bytes of _raw (limits.conf [spath] extraction_cutoff): values completed inside the cutoff are extracted, the rest
  is not. auto extracts key=value pairs (key `[A-Za-z_][A-Za-z0-9_]*` not preceded by a word character, value a
  double-quoted string or a run of characters up to whitespace, `,` or `;`), first value wins, and, when _raw is a
  JSON object, JSON as above (AUTO_KV_JSON's default). No KV mode overwrites an existing field.
- FIELDALIAS-<class> = a AS b [c ASNEW d ...]: all aliases read the fields as they were before aliasing; AS
  overwrites b and removes b when a is missing; ASNEW keeps an existing b. Chained or colliding aliases are refused.
- EVAL-<field> = <expr>: every EVAL reads the fields as they were before EVAL (parallel). Whitelisted functions
  only (EVAL_FUNCTIONS); a null result leaves the field unset (an existing field is removed).
- LOOKUP-<class> = <transform> <in> [AS <ev>]... [OUTPUT|OUTPUTNEW <out> [AS <ev>]...] over a CSV file in
  <app>/lookups; transforms keys filename, case_sensitive_match, max_matches (default 100), min_matches,
  default_match. OUTPUT overwrites, OUTPUTNEW fills only missing fields; no OUTPUT clause means every other column.
"""
import csv
import json
import pathlib
import re
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple, Union

import pcre2

try:
    from tools import conffile
except ImportError:  # imported as a top-level module with tools/ on sys.path
    import conffile  # type: ignore[no-redef]

FieldValue = Union[str, List[str]]
Fields = Dict[str, List[str]]

JSON_EXTRACTION_CUTOFF = 5000  # limits.conf [spath] extraction_cutoff, in bytes of _raw

# Index-time keys the search-time evaluator leaves to tools/indextime.py (docs/development.md section 4), and
# descriptive keys with no effect on fields.
INDEX_TIME_KEYS = frozenset({"LINE_BREAKER", "SHOULD_LINEMERGE", "TRUNCATE", "TIME_PREFIX", "TIME_FORMAT",
                             "MAX_TIMESTAMP_LOOKAHEAD", "TZ", "CHARSET", "NO_BINARY_CHECK"})
DESCRIPTIVE_KEYS = frozenset({"category", "description", "pulldown_type"})
CLASS_PREFIXES = ("EXTRACT-", "REPORT-", "FIELDALIAS-", "EVAL-", "LOOKUP-")
KV_MODES = ("none", "auto", "json")

REPORT_TRANSFORM_KEYS = frozenset({"REGEX", "FORMAT", "SOURCE_KEY", "MV_ADD", "CLEAN_KEYS", "KEEP_EMPTY_VALS",
                                   "CAN_OPTIMIZE"})
LOOKUP_TRANSFORM_KEYS = frozenset({"filename", "case_sensitive_match", "max_matches", "min_matches", "default_match"})
EVENTTYPE_KEYS = frozenset({"search", "description", "priority", "color", "disabled"})


class Unsupported(ValueError):
    """A setting, function or case this evaluator does not implement (never guessed)."""


def _bool(value: str, what: str) -> bool:
    lowered = value.strip().lower()
    if lowered in ("1", "true", "t", "yes", "y"):
        return True
    if lowered in ("0", "false", "f", "no", "n"):
        return False
    raise Unsupported("{}: not a boolean: {!r}".format(what, value))


def _compile(regex: str, what: str) -> "pcre2.Pattern":
    try:
        return pcre2.compile(regex)
    except Exception as err:  # pcre2 raises its own error types
        raise Unsupported("{}: PCRE does not compile {!r}: {}".format(what, regex, err)) from None


def _wildcard(pattern: str, star_crosses_slash: bool) -> "re.Pattern[str]":
    """Splunk stanza pattern (`...` any, `*` any but /) or a search wildcard (`*` anything) as an anchored regex.
    Built here from literal text, so Python's re is exact for it (PCRE is kept for the regexes of the conf files)."""
    flags = 0
    if pattern.startswith("(?i)"):
        flags, pattern = re.IGNORECASE, pattern[4:]
    out = []
    index = 0
    while index < len(pattern):
        if not star_crosses_slash and pattern.startswith("...", index):
            out.append(".*")
            index += 3
            continue
        char = pattern[index]
        out.append((".*" if star_crosses_slash else "[^/]*") if char == "*" else re.escape(char))
        index += 1
    return re.compile("(?:" + "".join(out) + r")\Z", flags | re.DOTALL)


def _escape(text: str) -> str:
    return "".join("\\" + c if not (c.isalnum() or c == "_") and ord(c) < 128 else c for c in text)


# --------------------------------------------------------------------------------------------------------------
# Stanzas


class _Extract:
    def __init__(self, name: str, value: str) -> None:
        self.name = name
        regex, self.source = value, "_raw"
        head, sep, tail = value.rpartition(" in ")
        if sep and tail and all(c.isalnum() or c in "_.:{}" for c in tail):
            regex, self.source = head, tail
        self.regex = _compile(regex, "EXTRACT-" + name)
        self.groups = [g for g in self.regex.groupindex]
        for group in self.groups:
            if group.startswith("_KEY_") or group.startswith("_VAL_"):
                raise Unsupported("EXTRACT-{}: dynamic field names (_KEY_/_VAL_ groups) are not implemented".format(name))
        if not self.groups:
            raise Unsupported("EXTRACT-{}: the regex has no named group, so it extracts nothing".format(name))


class _Report:
    def __init__(self, name: str, keys: Mapping[str, str]) -> None:
        self.name = name
        for key in keys:
            if key not in REPORT_TRANSFORM_KEYS:
                raise Unsupported("transforms.conf [{}]: setting {} is not implemented for REPORT".format(name, key))
        if "REGEX" not in keys:
            raise Unsupported("transforms.conf [{}]: REPORT transform without REGEX (DELIMS/FIELDS are not "
                              "implemented)".format(name))
        self.regex = _compile(keys["REGEX"], "transforms.conf [{}] REGEX".format(name))
        self.source = keys.get("SOURCE_KEY", "_raw").strip()
        if self.source.startswith("MetaData:") or self.source.startswith("_meta"):
            raise Unsupported("transforms.conf [{}]: SOURCE_KEY {} is not implemented".format(name, self.source))
        self.mv_add = _bool(keys.get("MV_ADD", "false"), "[{}] MV_ADD".format(name))
        self.clean_keys = _bool(keys.get("CLEAN_KEYS", "true"), "[{}] CLEAN_KEYS".format(name))
        self.keep_empty = _bool(keys.get("KEEP_EMPTY_VALS", "false"), "[{}] KEEP_EMPTY_VALS".format(name))
        if "CAN_OPTIMIZE" in keys:
            _bool(keys["CAN_OPTIMIZE"], "[{}] CAN_OPTIMIZE".format(name))  # affects speed only
        self.format: Optional[List[Tuple[str, str]]] = None
        if "FORMAT" in keys:
            pairs = []
            for token in keys["FORMAT"].split():
                field, sep, value = token.partition("::")
                if not sep or not field or not value:
                    raise Unsupported("transforms.conf [{}]: FORMAT token {!r} is not <name>::<value>".format(name, token))
                pairs.append((field, value))
            self.format = pairs
        elif not self.regex.groupindex:
            raise Unsupported("transforms.conf [{}]: no FORMAT and no named group (the default FORMAT "
                              "<stanza>::$1 is not implemented)".format(name))

    def pairs(self, match: Any) -> List[Tuple[str, str]]:
        if self.format is None:
            return [(g, match.group(g)) for g in self.regex.groupindex if match.group(g) is not None]
        result = []
        for field, value in self.format:
            name = _substitute(field, match)
            if field != name and self.clean_keys:
                name = _clean_key(name)
            result.append((name, _substitute(value, match)))
        return result


def _substitute(template: str, match: Any) -> str:
    out = []
    index = 0
    while index < len(template):
        char = template[index]
        if char == "$" and index + 1 < len(template) and template[index + 1].isdigit():
            end = index + 1
            while end < len(template) and template[end].isdigit():
                end += 1
            group = match.group(int(template[index + 1:end]))
            out.append(group or "")
            index = end
            continue
        out.append(char)
        index += 1
    return "".join(out)


def _clean_key(name: str) -> str:
    cleaned = "".join(c if c.isalnum() and ord(c) < 128 else "_" for c in name)
    return cleaned.lstrip("_0123456789")


class _Alias:
    def __init__(self, name: str, value: str) -> None:
        self.name = name
        tokens = value.split()
        if len(tokens) % 3 or not tokens:
            raise Unsupported("FIELDALIAS-{}: expected '<field> AS|ASNEW <alias>' pairs, got {!r}".format(name, value))
        self.pairs: List[Tuple[str, str, bool]] = []
        for index in range(0, len(tokens), 3):
            source, verb, target = tokens[index:index + 3]
            if verb.upper() not in ("AS", "ASNEW") or '"' in source + target or "'" in source + target:
                raise Unsupported("FIELDALIAS-{}: cannot read {!r}".format(name, " ".join(tokens[index:index + 3])))
            self.pairs.append((source, target, verb.upper() == "ASNEW"))


class _Lookup:
    def __init__(self, name: str, value: str, transforms: Mapping[str, Mapping[str, str]],
                 lookups_dir: pathlib.Path) -> None:
        self.name = name
        tokens = value.split()
        if not tokens:
            raise Unsupported("LOOKUP-{}: empty".format(name))
        self.table = tokens[0]
        if self.table not in transforms:
            raise Unsupported("LOOKUP-{}: transforms.conf has no stanza [{}]".format(name, self.table))
        keys = transforms[self.table]
        for key in keys:
            if key not in LOOKUP_TRANSFORM_KEYS:
                raise Unsupported("transforms.conf [{}]: setting {} is not implemented for LOOKUP".format(self.table, key))
        if "filename" not in keys:
            raise Unsupported("transforms.conf [{}]: only file-based lookups (filename) are implemented".format(self.table))
        self.case_sensitive = _bool(keys.get("case_sensitive_match", "true"), "[{}] case_sensitive_match".format(self.table))
        self.max_matches = int(keys.get("max_matches", "100"))
        self.min_matches = int(keys.get("min_matches", "0"))
        self.default_match = keys.get("default_match")
        path = lookups_dir / keys["filename"]
        if not path.is_file():
            raise Unsupported("transforms.conf [{}]: lookup file {} is missing".format(self.table, path))
        with path.open(newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            self.columns = list(reader.fieldnames or [])
            self.rows = [dict(row) for row in reader]
        self.inputs: List[Tuple[str, str]] = []
        self.outputs: List[Tuple[str, str]] = []
        self.mode = "OUTPUT"
        rest = tokens[1:]
        target = self.inputs
        index = 0
        explicit_output = False
        while index < len(rest):
            token = rest[index]
            if token.upper() in ("OUTPUT", "OUTPUTNEW"):
                if explicit_output:
                    raise Unsupported("LOOKUP-{}: two OUTPUT clauses".format(name))
                self.mode, target, explicit_output = token.upper(), self.outputs, True
                index += 1
                continue
            column, event_field = token, token
            if index + 2 < len(rest) + 1 and index + 1 < len(rest) and rest[index + 1].upper() == "AS":
                if index + 2 >= len(rest):
                    raise Unsupported("LOOKUP-{}: AS without a field".format(name))
                event_field = rest[index + 2]
                index += 3
            else:
                index += 1
            if column not in self.columns:
                raise Unsupported("LOOKUP-{}: {} has no column {!r}".format(name, keys["filename"], column))
            target.append((column, event_field))
        if not self.inputs:
            raise Unsupported("LOOKUP-{}: no input field".format(name))
        if not explicit_output or not self.outputs:
            used = {c for c, _ in self.inputs}
            self.outputs = [(c, c) for c in self.columns if c not in used]

    def apply(self, fields: Fields) -> None:
        wanted = []
        for column, event_field in self.inputs:
            values = fields.get(event_field)
            if not values:
                return  # Splunk does not run a lookup whose input field is missing
            if len(values) > 1:
                raise Unsupported("LOOKUP-{}: multivalue input field {} is not implemented".format(self.name, event_field))
            wanted.append((column, values[0]))
        if self.mode == "OUTPUTNEW" and all(f in fields for _, f in self.outputs):
            return
        fold: Callable[[str], str] = (lambda s: s) if self.case_sensitive else (lambda s: s.casefold())
        matches = [row for row in self.rows if all(fold(row.get(c) or "") == fold(v) for c, v in wanted)]
        matches = matches[:self.max_matches]
        if len(matches) < max(self.min_matches, 1):
            if self.default_match is None:
                return
            results = {c: [self.default_match] for c, _ in self.outputs}
        else:
            results = {c: [row[c] for row in matches if row.get(c)] for c, _ in self.outputs}
        for column, event_field in self.outputs:
            values = results[column]
            if not values:
                continue
            if self.mode == "OUTPUTNEW" and event_field in fields:
                continue
            fields[event_field] = values


# --------------------------------------------------------------------------------------------------------------
# JSON flattening with the extraction cutoff


class _Incomplete(Exception):
    pass


class _JsonFlattener:
    """Walks JSON text and records every completed leaf as path -> values; stops quietly at the end of the text."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0
        self.out: Dict[str, List[str]] = {}

    def run(self) -> Dict[str, List[str]]:
        self._ws()
        if self.pos >= len(self.text) or self.text[self.pos] != "{":
            return {}
        try:
            self._value("")
        except _Incomplete:
            pass
        except ValueError:
            pass  # malformed JSON: keep what was read before the fault
        return self.out

    def _ws(self) -> None:
        while self.pos < len(self.text) and self.text[self.pos] in " \t\r\n":
            self.pos += 1

    def _peek(self) -> str:
        if self.pos >= len(self.text):
            raise _Incomplete()
        return self.text[self.pos]

    def _emit(self, path: str, value: str) -> None:
        self.out.setdefault(path, []).append(value)

    def _value(self, path: str) -> None:
        self._ws()
        char = self._peek()
        if char == "{":
            self.pos += 1
            self._ws()
            if self._peek() == "}":
                self.pos += 1
                return
            while True:
                self._ws()
                if self._peek() != '"':
                    raise ValueError("object key expected")
                key = self._string()
                self._ws()
                if self._peek() != ":":
                    raise ValueError("':' expected")
                self.pos += 1
                self._value(key if not path else path + "." + key)
                self._ws()
                char = self._peek()
                self.pos += 1
                if char == "}":
                    return
                if char != ",":
                    raise ValueError("',' or '}' expected")
        elif char == "[":
            self.pos += 1
            self._ws()
            if self._peek() == "]":
                self.pos += 1
                return
            while True:
                self._value(path + "{}")
                self._ws()
                char = self._peek()
                self.pos += 1
                if char == "]":
                    return
                if char != ",":
                    raise ValueError("',' or ']' expected")
        elif char == '"':
            self._emit(path, self._string())
        else:
            start = self.pos
            while self.pos < len(self.text) and self.text[self.pos] not in ",]} \t\r\n":
                self.pos += 1
            if self.pos >= len(self.text):
                raise _Incomplete()  # a number or word cut by the end of the text is not complete
            token = self.text[start:self.pos]
            try:
                json.loads(token)
            except ValueError:
                raise ValueError("bad literal") from None
            self._emit(path, token)

    def _string(self) -> str:
        start = self.pos
        self.pos += 1
        while True:
            if self.pos >= len(self.text):
                raise _Incomplete()
            char = self.text[self.pos]
            if char == "\\":
                self.pos += 2
                continue
            self.pos += 1
            if char == '"':
                break
        if self.pos > len(self.text):
            raise _Incomplete()
        value: str = json.loads(self.text[start:self.pos])
        return value


def json_fields(raw: str, cutoff: Optional[int] = JSON_EXTRACTION_CUTOFF) -> Dict[str, List[str]]:
    """Automatic JSON extraction of raw: flattened fields, reading only the first `cutoff` bytes (None: all)."""
    text = raw
    if cutoff is not None:
        data = raw.encode("utf-8")
        if len(data) > cutoff:
            text = data[:cutoff].decode("utf-8", errors="ignore")
    return _JsonFlattener(text).run()


_AUTO_KV = re.compile(r'(?<![A-Za-z0-9_])([A-Za-z_][A-Za-z0-9_]*)=(?:"([^"]*)"|([^\s,;"]+))')


def auto_kv_fields(raw: str) -> Dict[str, List[str]]:
    result: Dict[str, List[str]] = {}
    for match in _AUTO_KV.finditer(raw):
        key = match.group(1)
        value = match.group(2) if match.group(2) is not None else match.group(3)
        if value and key not in result:
            result[key] = [value]
    return result


# --------------------------------------------------------------------------------------------------------------
# EVAL: a whitelisted subset of the eval language

EVAL_FUNCTIONS = ("if", "case", "coalesce", "lower", "upper", "len", "substr", "replace", "match", "like", "isnull",
                  "isnotnull", "null", "true", "false", "tostring", "tonumber", "mvcount", "mvindex", "split")

EvalValue = Union[None, str, float, bool, List[str]]


class _Tok:
    def __init__(self, kind: str, text: str) -> None:
        self.kind, self.text = kind, text

    def __repr__(self) -> str:
        return "{}:{}".format(self.kind, self.text)


def _eval_tokens(expr: str, where: str) -> List[_Tok]:
    tokens: List[_Tok] = []
    index = 0
    while index < len(expr):
        char = expr[index]
        if char.isspace():
            index += 1
        elif char == '"':
            end = index + 1
            buf = []
            while end < len(expr) and expr[end] != '"':
                if expr[end] == "\\" and end + 1 < len(expr) and expr[end + 1] in '"\\':
                    end += 1  # only \" and \\ are escapes; any other backslash stays (regex classes like \d)
                buf.append(expr[end])
                end += 1
            if end >= len(expr):
                raise Unsupported("{}: unterminated string".format(where))
            tokens.append(_Tok("str", "".join(buf)))
            index = end + 1
        elif char == "'":
            end = expr.find("'", index + 1)
            if end < 0:
                raise Unsupported("{}: unterminated field name".format(where))
            tokens.append(_Tok("field", expr[index + 1:end]))
            index = end + 1
        elif char.isdigit():
            end = index
            while end < len(expr) and (expr[end].isdigit() or expr[end] == "."):
                end += 1
            tokens.append(_Tok("num", expr[index:end]))
            index = end
        elif char.isalpha() or char == "_":
            end = index
            while end < len(expr) and (expr[end].isalnum() or expr[end] == "_"):
                end += 1
            word = expr[index:end]
            if word.upper() in ("AND", "OR", "NOT", "XOR", "LIKE"):
                tokens.append(_Tok("op", word.upper()))
            else:
                tokens.append(_Tok("name", word))
            index = end
        else:
            for op in ("==", "!=", "<=", ">=", "=", "<", ">", "+", "-", "*", "/", "%", ".", "(", ")", ","):
                if expr.startswith(op, index):
                    tokens.append(_Tok("op", op))
                    index += len(op)
                    break
            else:
                raise Unsupported("{}: cannot read {!r}".format(where, expr[index:]))
    return tokens


Node = Tuple[Any, ...]


class _EvalParser:
    # precedence, lowest first
    LEVELS = (("OR", "XOR"), ("AND",), ("==", "=", "!=", "<", ">", "<=", ">=", "LIKE"), ("+", "-", "."), ("*", "/", "%"))

    def __init__(self, expr: str, where: str) -> None:
        self.where = where
        self.tokens = _eval_tokens(expr, where)
        self.pos = 0

    def parse(self) -> Node:
        node = self._level(0)
        if self.pos != len(self.tokens):
            raise Unsupported("{}: unexpected {!r}".format(self.where, self.tokens[self.pos].text))
        return node

    def _peek(self) -> Optional[_Tok]:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def _take(self, text: str) -> None:
        tok = self._peek()
        if tok is None or tok.kind != "op" or tok.text != text:
            raise Unsupported("{}: expected {!r}".format(self.where, text))
        self.pos += 1

    def _level(self, level: int) -> Node:
        if level == 2:
            # NOT binds looser than comparisons, tighter than AND
            tok = self._peek()
            if tok is not None and tok.kind == "op" and tok.text == "NOT":
                self.pos += 1
                return ("not", self._level(2))
        if level >= len(self.LEVELS):
            return self._unary()
        node = self._level(level + 1)
        while True:
            tok = self._peek()
            if tok is None or tok.kind != "op" or tok.text not in self.LEVELS[level]:
                return node
            self.pos += 1
            node = ("bin", tok.text, node, self._level(level + 1))

    def _unary(self) -> Node:
        tok = self._peek()
        if tok is None:
            raise Unsupported("{}: expression ends too early".format(self.where))
        if tok.kind == "op" and tok.text == "-":
            self.pos += 1
            return ("neg", self._unary())
        if tok.kind == "op" and tok.text == "(":
            self.pos += 1
            node = self._level(0)
            self._take(")")
            return node
        self.pos += 1
        if tok.kind == "str":
            return ("lit", tok.text)
        if tok.kind == "num":
            return ("lit", float(tok.text))
        if tok.kind == "field":
            return ("field", tok.text)
        if tok.kind == "name":
            nxt = self._peek()
            if nxt is not None and nxt.kind == "op" and nxt.text == "(":
                if tok.text not in EVAL_FUNCTIONS:
                    raise Unsupported("{}: eval function {}() is not implemented".format(self.where, tok.text))
                self.pos += 1
                args: List[Node] = []
                nxt = self._peek()
                if nxt is not None and nxt.kind == "op" and nxt.text == ")":
                    self.pos += 1
                else:
                    while True:
                        args.append(self._level(0))
                        nxt = self._peek()
                        if nxt is not None and nxt.kind == "op" and nxt.text == ",":
                            self.pos += 1
                            continue
                        self._take(")")
                        break
                return ("call", tok.text, args)
            return ("field", tok.text)
        raise Unsupported("{}: unexpected {!r}".format(self.where, tok.text))


def _num(value: EvalValue) -> Optional[float]:
    if isinstance(value, bool) or value is None or isinstance(value, list):
        return None
    if isinstance(value, float):
        return value
    try:
        return float(value)
    except ValueError:
        return None


def _text(value: EvalValue, where: str) -> Optional[str]:
    if value is None:
        return None
    if isinstance(value, list):
        raise Unsupported("{}: a multivalue field where one value is expected is not implemented".format(where))
    if isinstance(value, bool):
        raise Unsupported("{}: a boolean where a string is expected".format(where))
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    return value


class _Eval:
    def __init__(self, field: str, expr: str) -> None:
        self.field = field
        self.where = "EVAL-" + field
        self.tree = _EvalParser(expr, self.where).parse()

    def run(self, fields: Mapping[str, List[str]]) -> Optional[List[str]]:
        value = self._ev(self.tree, fields)
        if value is None:
            return None
        if isinstance(value, list):
            return list(value) or None
        if isinstance(value, bool):
            raise Unsupported("{}: the result is a boolean, which a field cannot hold".format(self.where))
        text = _text(value, self.where)
        return None if text is None else [text]

    def _ev(self, node: Node, fields: Mapping[str, List[str]]) -> EvalValue:
        kind = node[0]
        if kind == "lit":
            return node[1]  # type: ignore[no-any-return]
        if kind == "field":
            values = fields.get(node[1])
            if not values:
                return None
            return values[0] if len(values) == 1 else list(values)
        if kind == "neg":
            number = _num(self._ev(node[1], fields))
            return None if number is None else -number
        if kind == "not":
            return not self._cond(node[1], fields)
        if kind == "bin":
            return self._binary(node[1], node[2], node[3], fields)
        return self._call(node[1], node[2], fields)

    def _cond(self, node: Node, fields: Mapping[str, List[str]]) -> bool:
        value = self._ev(node, fields)
        if not isinstance(value, bool):
            raise Unsupported("{}: a condition must be a comparison or a boolean function".format(self.where))
        return value

    def _binary(self, op: str, left_node: Node, right_node: Node, fields: Mapping[str, List[str]]) -> EvalValue:
        if op in ("AND", "OR", "XOR"):
            left, right = self._cond(left_node, fields), self._cond(right_node, fields)
            return {"AND": left and right, "OR": left or right, "XOR": left != right}[op]
        left, right = self._ev(left_node, fields), self._ev(right_node, fields)
        if isinstance(left, list) or isinstance(right, list):
            raise Unsupported("{}: operator {} on a multivalue field is not implemented".format(self.where, op))
        if op == ".":
            a, b = _text(left, self.where), _text(right, self.where)
            return None if a is None or b is None else a + b
        if op in ("+", "-", "*", "/", "%"):
            if op == "+" and isinstance(left, str) and isinstance(right, str) and (_num(left) is None or _num(right) is None):
                return left + right
            x, y = _num(left), _num(right)
            if x is None or y is None:
                return None
            if op in ("/", "%") and y == 0:
                return None
            return {"+": x + y, "-": x - y, "*": x * y, "/": x / y if y else 0.0, "%": x % y if y else 0.0}[op]
        if left is None or right is None:
            return False
        if op == "LIKE":
            text, pattern = _text(left, self.where), _text(right, self.where)
            return _like(text or "", pattern or "")
        x, y = _num(left), _num(right)
        a: Any
        b: Any
        if x is not None and y is not None:
            a, b = x, y
        else:
            a, b = _text(left, self.where), _text(right, self.where)
        return {"=": a == b, "==": a == b, "!=": a != b, "<": a < b, ">": a > b, "<=": a <= b, ">=": a >= b}[op]

    def _call(self, name: str, args: Sequence[Node], fields: Mapping[str, List[str]]) -> EvalValue:
        where = "{}: {}()".format(self.where, name)

        def arity(low: int, high: int) -> None:
            if not low <= len(args) <= high:
                raise Unsupported("{} takes {}-{} arguments, got {}".format(where, low, high, len(args)))

        if name == "if":
            arity(3, 3)
            return self._ev(args[1] if self._cond(args[0], fields) else args[2], fields)
        if name == "case":
            if len(args) % 2:
                raise Unsupported("{} needs condition/value pairs".format(where))
            for index in range(0, len(args), 2):
                if self._cond(args[index], fields):
                    return self._ev(args[index + 1], fields)
            return None
        if name == "coalesce":
            for arg in args:
                value = self._ev(arg, fields)
                if value is not None:
                    return value
            return None
        if name in ("null", "true", "false"):
            arity(0, 0)
            return {"null": None, "true": True, "false": False}[name]
        values = [self._ev(a, fields) for a in args]
        if name in ("isnull", "isnotnull"):
            arity(1, 1)
            return (values[0] is None) == (name == "isnull")
        if name == "mvcount":
            arity(1, 1)
            value = values[0]
            return None if value is None else float(len(value) if isinstance(value, list) else 1)
        if name == "mvindex":
            arity(2, 3)
            mv = values[0]
            if mv is None:
                return None
            items = mv if isinstance(mv, list) else [_text(mv, where) or ""]
            start = _num(values[1])
            stop = _num(values[2]) if len(values) == 3 else start
            if start is None or stop is None:
                return None
            i, j = int(start), int(stop)
            i, j = (i + len(items) if i < 0 else i), (j + len(items) if j < 0 else j)
            picked = items[i:j + 1]
            return None if not picked else (picked[0] if len(picked) == 1 else picked)
        if name == "split":
            arity(2, 2)
            text, sep = _text(values[0], where), _text(values[1], where)
            if text is None or sep is None:
                return None
            return text.split(sep) if sep else list(text)
        if name == "tonumber":
            arity(1, 1)
            return _num(values[0])
        texts = [_text(v, where) for v in values]
        if name == "tostring":
            arity(1, 1)
            return texts[0]
        if name in ("lower", "upper", "len"):
            arity(1, 1)
            if texts[0] is None:
                return None
            return texts[0].lower() if name == "lower" else texts[0].upper() if name == "upper" else float(len(texts[0]))
        if name == "substr":
            arity(2, 3)
            start = _num(values[1])
            if texts[0] is None or start is None:
                return None
            begin = int(start) - 1 if start > 0 else len(texts[0]) + int(start)
            length = _num(values[2]) if len(values) == 3 else None
            return texts[0][max(begin, 0):] if length is None else texts[0][max(begin, 0):max(begin, 0) + int(length)]
        if name == "replace":
            arity(3, 3)
            if None in texts:
                return None
            pattern = _compile(texts[1] or "", where)
            replacement = (texts[2] or "").replace("\\", "$")
            return _regex_replace(pattern, texts[0] or "", replacement)
        if name == "match":
            arity(2, 2)
            if texts[0] is None or texts[1] is None:
                return False
            return _compile(texts[1], where).search(texts[0]) is not None
        if name == "like":
            arity(2, 2)
            if texts[0] is None or texts[1] is None:
                return False
            return _like(texts[0], texts[1])
        raise Unsupported("{} is not implemented".format(where))  # pragma: no cover (whitelist and code agree)


def _regex_replace(pattern: "pcre2.Pattern", text: str, replacement: str) -> str:
    out = []
    last = 0
    for match in pattern.finditer(text):
        out.append(text[last:match.start()])
        out.append(_substitute(replacement, match))
        last = match.end()
    out.append(text[last:])
    return "".join(out)


def _like(text: str, pattern: str) -> bool:
    regex = "".join(".*" if c == "%" else "." if c == "_" else _escape(c) for c in pattern)
    return pcre2.compile("^(?:" + regex + ")$", pcre2.DOTALL).search(text) is not None


# --------------------------------------------------------------------------------------------------------------
# Eventtype searches: sourcetype / source / field=value / terms with AND, OR, NOT


def _search_tokens(search: str, where: str) -> List[Tuple[str, str, str]]:
    tokens: List[Tuple[str, str, str]] = []
    index = 0
    while index < len(search):
        char = search[index]
        if char.isspace():
            index += 1
            continue
        if char in "()":
            tokens.append(("paren", char, ""))
            index += 1
            continue
        if char in "|`[]":
            raise Unsupported("{}: {!r} (pipes, macros, subsearches) is not implemented".format(where, char))
        if char == '"':
            end = search.find('"', index + 1)
            if end < 0:
                raise Unsupported("{}: unterminated quote".format(where))
            tokens.append(("phrase", search[index + 1:end], ""))
            index = end + 1
            continue
        end = index
        while end < len(search) and not search[end].isspace() and search[end] not in '()"':
            end += 1
        word = search[index:end]
        if "<" in word or ">" in word or "!=" in word:
            raise Unsupported("{}: comparison {!r} is not implemented".format(where, word))
        if "=" in word:
            field, _, value = word.partition("=")
            if field.endswith("!") or field.endswith("<") or field.endswith(">") or value.startswith("="):
                raise Unsupported("{}: comparison {!r} is not implemented".format(where, word))
            if not value and end < len(search) and search[end] == '"':
                close = search.find('"', end + 1)
                if close < 0:
                    raise Unsupported("{}: unterminated quote".format(where))
                value = search[end + 1:close]
                end = close + 1
            if not field or not value:
                raise Unsupported("{}: cannot read {!r}".format(where, word))
            if field in ("eventtype", "tag", "index", "earliest", "latest") or field.startswith("tag::"):
                raise Unsupported("{}: {}= is not implemented".format(where, field))
            tokens.append(("cmp", field, value))
        elif word in ("AND", "OR", "NOT"):
            tokens.append(("op", word, ""))
        elif word.upper() in ("IN", "WHERE") or word in ("<", ">", "!="):
            raise Unsupported("{}: {!r} is not implemented".format(where, word))
        else:
            tokens.append(("term", word, ""))
        index = end
    return tokens


class _Search:
    """AND is implied between terms; OR binds tighter than AND in Splunk's search language; NOT tightest."""

    def __init__(self, search: str, where: str) -> None:
        self.where = where
        self.tokens = _search_tokens(search, where)
        self.pos = 0
        if not self.tokens:
            raise Unsupported("{}: empty search".format(where))
        self.tree = self._and()
        if self.pos != len(self.tokens):
            raise Unsupported("{}: unexpected {!r}".format(where, self.tokens[self.pos][1]))

    def _peek(self) -> Optional[Tuple[str, str, str]]:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def _and(self) -> Node:
        parts = [self._or()]
        while True:
            tok = self._peek()
            if tok is None or tok == ("paren", ")", ""):
                break
            if tok == ("op", "AND", ""):
                self.pos += 1
            parts.append(self._or())
        return ("and", parts) if len(parts) > 1 else parts[0]

    def _or(self) -> Node:
        parts = [self._not()]
        while self._peek() == ("op", "OR", ""):
            self.pos += 1
            parts.append(self._not())
        return ("or", parts) if len(parts) > 1 else parts[0]

    def _not(self) -> Node:
        tok = self._peek()
        if tok is None:
            raise Unsupported("{}: search ends too early".format(self.where))
        self.pos += 1
        if tok == ("op", "NOT", ""):
            return ("not", self._not())
        if tok == ("paren", "(", ""):
            node = self._and()
            if self._peek() != ("paren", ")", ""):
                raise Unsupported("{}: unbalanced parentheses".format(self.where))
            self.pos += 1
            return node
        if tok[0] == "cmp":
            return ("cmp", tok[1], _wildcard("(?i)" + tok[2], True))
        if tok[0] in ("term", "phrase"):
            inner = "".join(".*?" if c == "*" else re.escape(c) for c in tok[1])
            return ("term", re.compile("(?<![A-Za-z0-9_])" + inner + "(?![A-Za-z0-9_])", re.IGNORECASE | re.DOTALL))
        raise Unsupported("{}: unexpected {!r}".format(self.where, tok[1]))

    def matches(self, fields: Mapping[str, FieldValue]) -> bool:
        return self._match(self.tree, fields)

    def _match(self, node: Node, fields: Mapping[str, FieldValue]) -> bool:
        kind = node[0]
        if kind == "and":
            return all(self._match(n, fields) for n in node[1])
        if kind == "or":
            return any(self._match(n, fields) for n in node[1])
        if kind == "not":
            return not self._match(node[1], fields)
        if kind == "cmp":
            value = fields.get(node[1])
            values = [value] if isinstance(value, str) else list(value or [])
            return any(node[2].match(v) is not None for v in values)
        raw = fields.get("_raw")
        return isinstance(raw, str) and node[1].search(raw) is not None


# --------------------------------------------------------------------------------------------------------------
# The app


class _Stanza:
    def __init__(self, name: str, keys: Mapping[str, str], owner: "SearchTimeKnowledge") -> None:
        self.name = name
        self.kind, self.pattern = "sourcetype", None
        if name.startswith("source::") or name.startswith("host::"):
            self.kind, _, text = name.partition("::")
            self.pattern = _wildcard(text, False)
        elif "::" in name or name == "default":
            raise Unsupported("props.conf [{}]: this kind of stanza is not implemented".format(name))
        self.keys = dict(keys)
        for key, value in keys.items():
            if key in INDEX_TIME_KEYS or key in DESCRIPTIVE_KEYS:
                continue
            if key == "KV_MODE":
                if value not in KV_MODES:
                    raise Unsupported("props.conf [{}]: KV_MODE = {} is not implemented".format(name, value))
                continue
            if key.startswith("EXTRACT-"):
                owner._extract(key[8:], value)
            elif key.startswith("REPORT-"):
                for transform in _split_list(value):
                    owner._report(transform)
            elif key.startswith("FIELDALIAS-"):
                owner._alias(key[11:], value)
            elif key.startswith("EVAL-"):
                owner._eval(key[5:], value)
            elif key.startswith("LOOKUP-"):
                owner._lookup(key[7:], value)
            else:
                raise Unsupported("props.conf [{}]: setting {} is not implemented".format(name, key))

    def matches(self, event: Mapping[str, Any]) -> bool:
        if self.kind == "sourcetype":
            return event.get("sourcetype") == self.name
        value = event.get(self.kind)
        return isinstance(value, str) and self.pattern is not None and self.pattern.match(value) is not None


def _split_list(value: str) -> List[str]:
    return [part.strip() for part in value.split(",") if part.strip()]


class SearchTimeKnowledge:
    """The search-time knowledge of one app directory (default/ only)."""

    def __init__(self, props: Mapping[str, Mapping[str, str]], transforms: Mapping[str, Mapping[str, str]],
                 eventtypes: Mapping[str, Mapping[str, str]], tags: Mapping[str, Mapping[str, str]],
                 lookups_dir: pathlib.Path) -> None:
        self.transforms = transforms
        self.lookups_dir = lookups_dir
        self._extracts: Dict[Tuple[str, str], _Extract] = {}
        self._reports: Dict[str, _Report] = {}
        self._lookups: Dict[Tuple[str, str], _Lookup] = {}
        self._aliases: Dict[Tuple[str, str], _Alias] = {}
        self._evals: Dict[Tuple[str, str], _Eval] = {}
        self.stanzas = [_Stanza(name, keys, self) for name, keys in props.items()]
        self._cache: Dict[Tuple[Any, Any, Any], Dict[str, str]] = {}
        self.eventtype_searches: Dict[str, _Search] = {}
        for name, keys in eventtypes.items():
            for key in keys:
                if key not in EVENTTYPE_KEYS:
                    raise Unsupported("eventtypes.conf [{}]: setting {} is not implemented".format(name, key))
            if "search" not in keys:
                raise Unsupported("eventtypes.conf [{}]: no search".format(name))
            if _bool(keys.get("disabled", "0"), "[{}] disabled".format(name)):
                continue
            self.eventtype_searches[name] = _Search(keys["search"], "eventtypes.conf [{}] search".format(name))
        self.tag_map: Dict[str, List[str]] = {}
        for stanza, keys in tags.items():
            kind, _, name = stanza.partition("=")
            if kind != "eventtype" or not name:
                raise Unsupported("tags.conf [{}]: only [eventtype=<name>] stanzas are implemented".format(stanza))
            if name not in eventtypes:
                raise Unsupported("tags.conf [{}]: no such eventtype".format(stanza))
            tag_list = []
            for tag, state in keys.items():
                if state not in ("enabled", "disabled"):
                    raise Unsupported("tags.conf [{}]: {} = {} (enabled or disabled)".format(stanza, tag, state))
                if state == "enabled":
                    tag_list.append(tag)
            self.tag_map[name] = tag_list

    @classmethod
    def from_app(cls, app_dir: pathlib.Path) -> "SearchTimeKnowledge":
        default = pathlib.Path(app_dir) / "default"

        def read(name: str) -> Dict[str, Dict[str, str]]:
            path = default / name
            stanzas = conffile.parse(path) if path.is_file() else {}
            if "default" in stanzas and name != "props.conf" and not stanzas["default"]:
                del stanzas["default"]
            return stanzas

        return cls(read("props.conf"), read("transforms.conf"), read("eventtypes.conf"), read("tags.conf"),
                   pathlib.Path(app_dir) / "lookups")

    # --- object caches (also validate at load time) ---
    def _extract(self, name: str, value: str) -> _Extract:
        key = (name, value)
        if key not in self._extracts:
            self._extracts[key] = _Extract(name, value)
        return self._extracts[key]

    def _report(self, transform: str) -> _Report:
        if transform not in self._reports:
            if transform not in self.transforms:
                raise Unsupported("REPORT: transforms.conf has no stanza [{}]".format(transform))
            self._reports[transform] = _Report(transform, self.transforms[transform])
        return self._reports[transform]

    def _alias(self, name: str, value: str) -> _Alias:
        key = (name, value)
        if key not in self._aliases:
            self._aliases[key] = _Alias(name, value)
        return self._aliases[key]

    def _eval(self, name: str, value: str) -> _Eval:
        key = (name, value)
        if key not in self._evals:
            self._evals[key] = _Eval(name, value)
        return self._evals[key]

    def _lookup(self, name: str, value: str) -> _Lookup:
        key = (name, value)
        if key not in self._lookups:
            self._lookups[key] = _Lookup(name, value, self.transforms, self.lookups_dir)
        return self._lookups[key]

    # --- stanza matching ---
    def settings(self, event: Mapping[str, Any]) -> Dict[str, str]:
        """The merged props settings for the event's sourcetype, source and host (source > host > sourcetype)."""
        cache_key = (event.get("sourcetype"), event.get("source"), event.get("host"))
        if cache_key in self._cache:
            return self._cache[cache_key]
        by_kind: Dict[str, _Stanza] = {}
        for stanza in self.stanzas:
            if stanza.matches(event):
                if stanza.kind in by_kind:
                    raise Unsupported("props.conf: [{}] and [{}] both match {} (precedence between two {} stanzas is not "
                                      "implemented)".format(by_kind[stanza.kind].name, stanza.name, cache_key, stanza.kind))
                by_kind[stanza.kind] = stanza
        merged: Dict[str, str] = {}
        for kind in ("sourcetype", "host", "source"):
            if kind in by_kind:
                merged.update(by_kind[kind].keys)
        self._cache[cache_key] = merged
        return merged

    # --- the pipeline ---
    def fields(self, event: Mapping[str, str]) -> Dict[str, FieldValue]:
        if "_raw" not in event or "sourcetype" not in event:
            raise ValueError("an event needs at least _raw and sourcetype")
        settings = self.settings(event)
        fields: Fields = {}
        for key, value in event.items():
            fields[key] = list(value) if isinstance(value, list) else [value]

        def classes(prefix: str) -> List[Tuple[str, str]]:
            return sorted((k[len(prefix):], v) for k, v in settings.items() if k.startswith(prefix))

        # 1. EXTRACT, in ASCII order of class name
        extracted_by: Dict[str, str] = {}
        for name, value in classes("EXTRACT-"):
            extract = self._extract(name, value)
            source = fields.get(extract.source)
            if not source:
                continue
            if len(source) > 1:
                raise Unsupported("EXTRACT-{}: extraction from multivalue field {} is not implemented".format(name, extract.source))
            match = extract.regex.search(source[0])
            if match is None:
                continue
            for group in extract.groups:
                got = match.group(group)
                if not got:
                    continue
                if group in extracted_by:
                    raise Unsupported("EXTRACT-{} and EXTRACT-{} both extract {} (which wins is not implemented)".format(
                        extracted_by[group], name, group))
                extracted_by[group] = name
                fields[group] = [got]
        # 2. REPORT, classes in ASCII order, transforms left to right
        for name, value in classes("REPORT-"):
            for transform in _split_list(value):
                report = self._report(transform)
                source = fields.get(report.source)
                if not source:
                    continue
                if len(source) > 1:
                    raise Unsupported("transforms.conf [{}]: SOURCE_KEY {} is multivalue (not implemented)".format(
                        transform, report.source))
                for match in report.regex.finditer(source[0]):
                    for field, got in report.pairs(match):
                        if not field or (not got and not report.keep_empty):
                            continue
                        if field in fields:
                            if report.mv_add:
                                fields[field].append(got)
                        else:
                            fields[field] = [got]
        # 3. KV_MODE
        mode = settings.get("KV_MODE", "auto")
        raw = fields["_raw"][0]
        found: Dict[str, List[str]] = {}
        if mode == "json" or (mode == "auto" and raw.lstrip().startswith("{")):
            found = json_fields(raw)
        elif mode == "auto":
            found = auto_kv_fields(raw)
        for key, values in found.items():
            if key not in fields:
                fields[key] = values
        # 4. FIELDALIAS, all reading the fields as they were before aliasing
        before = {k: list(v) for k, v in fields.items()}
        targets: Dict[str, str] = {}
        aliases = [self._alias(n, v) for n, v in classes("FIELDALIAS-")]
        for alias in aliases:
            for source_field, target, _ in alias.pairs:
                if target in targets:
                    raise Unsupported("FIELDALIAS-{} and FIELDALIAS-{} both write {}".format(targets[target], alias.name, target))
                targets[target] = alias.name
        for alias in aliases:
            for source_field, target, asnew in alias.pairs:
                if source_field in targets:
                    raise Unsupported("FIELDALIAS-{}: {} is itself an alias target (chained aliases are not "
                                      "implemented)".format(alias.name, source_field))
                if source_field in before:
                    if not (asnew and target in before):
                        fields[target] = list(before[source_field])
                elif not asnew:
                    fields.pop(target, None)
        # 5. EVAL, in parallel
        before = {k: list(v) for k, v in fields.items()}
        results = [(n, self._eval(n, v).run(before)) for n, v in classes("EVAL-")]
        for field, result in results:
            if result is None:
                fields.pop(field, None)
            else:
                fields[field] = result
        # 6. LOOKUP, in ASCII order of class name
        for name, value in classes("LOOKUP-"):
            self._lookup(name, value).apply(fields)
        return {k: (v[0] if len(v) == 1 else list(v)) for k, v in fields.items() if v}

    def eventtypes(self, event_fields: Mapping[str, FieldValue]) -> List[str]:
        return sorted(name for name, search in self.eventtype_searches.items() if search.matches(event_fields))

    def tags(self, event_fields: Mapping[str, FieldValue]) -> List[str]:
        found = set()
        for name in self.eventtypes(event_fields):
            found.update(self.tag_map.get(name, []))
        return sorted(found)
