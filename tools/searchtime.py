"""A strict, small offline evaluator of Splunk's search-time knowledge for one app.

It follows the order of Splunk's search-time operations sequence (Knowledge Manager Manual): EXTRACT (ASCII order of
class) -> REPORT -> KV_MODE -> FIELDALIAS -> EVAL (in parallel) -> LOOKUP -> eventtypes -> tags. Regexes are PCRE
(the pcre2 package). It implements exactly what is written here and raises `Unsupported`, naming the setting, for anything else: an
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
- Eventtype searches are read by the one search-term parser (tools/searchterms.py) and matched like the replay's
  base search; eventtype=, tag=, index=, earliest=, latest= and the words IN and WHERE are refused.

Modules: tools/fieldrules.py (EXTRACT, REPORT, FIELDALIAS, LOOKUP), tools/autokv.py (KV_MODE), tools/evalexpr.py
(EVAL); this module holds the app's stanzas and runs them in order.
"""
import pathlib
import re
from typing import Any, Dict, List, Mapping, Tuple

from escape_engine.ground import Value
from tools import conffile
from tools.autokv import JSON_EXTRACTION_CUTOFF, auto_kv_fields, json_fields
from tools.evalexpr import Eval
from tools.fieldrules import Alias, Extract, Fields, Lookup, Report, Unsupported, conf_bool
from tools.indextime import INDEX_TIME_KEYS
from tools.searchterms import Node, Refusals, matches, parse_search_expression
from tools.spl import SplError

__all__ = ["INDEX_TIME_KEYS", "JSON_EXTRACTION_CUTOFF", "SearchTimeKnowledge", "Unsupported", "auto_kv_fields",
           "json_fields"]

# Descriptive keys with no effect on fields; index-time keys are tools/indextime.py's (docs/development.md section 4).
DESCRIPTIVE_KEYS = frozenset({"category", "description", "pulldown_type"})
CLASS_PREFIXES = ("EXTRACT-", "REPORT-", "FIELDALIAS-", "EVAL-", "LOOKUP-")
KV_MODES = ("none", "auto", "json")
EVENTTYPE_KEYS = frozenset({"search", "description", "priority", "color", "disabled"})
# An eventtype search may not name what eventtypes and tags make, nor what is no field of the event.
EVENTTYPE_REFUSALS = Refusals(fields=frozenset({"eventtype", "tag", "index", "earliest", "latest"}),
                              words=frozenset({"IN", "WHERE"}))


def _stanza_pattern(pattern: str) -> "re.Pattern[str]":
    """A props.conf stanza pattern (`...` any, `*` any but /, an optional leading `(?i)`) as an anchored regex.
    Built here from literal text, so Python's re is exact for it (PCRE is kept for the regexes of the conf files)."""
    flags = 0
    if pattern.startswith("(?i)"):
        flags, pattern = re.IGNORECASE, pattern[4:]
    out = []
    index = 0
    while index < len(pattern):
        if pattern.startswith("...", index):
            out.append(".*")
            index += 3
            continue
        char = pattern[index]
        out.append("[^/]*" if char == "*" else re.escape(char))
        index += 1
    return re.compile("(?:" + "".join(out) + r")\Z", flags | re.DOTALL)


def _eventtype_search(search: str, where: str) -> Node:
    """An eventtype search through the one search-term parser (tools/searchterms.py), with the eventtype refusals."""
    try:
        return parse_search_expression(search, EVENTTYPE_REFUSALS)
    except SplError as err:
        raise Unsupported("{}: not implemented: {}".format(where, err)) from None


# --------------------------------------------------------------------------------------------------------------
# The app


class _Stanza:
    def __init__(self, name: str, keys: Mapping[str, str], owner: "SearchTimeKnowledge") -> None:
        self.name = name
        self.kind, self.pattern = "sourcetype", None
        if name.startswith(("source::", "host::")):
            self.kind, _, text = name.partition("::")
            self.pattern = _stanza_pattern(text)
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
        self._extracts: Dict[Tuple[str, str], Extract] = {}
        self._reports: Dict[str, Report] = {}
        self._lookups: Dict[Tuple[str, str], Lookup] = {}
        self._aliases: Dict[Tuple[str, str], Alias] = {}
        self._evals: Dict[Tuple[str, str], Eval] = {}
        self.stanzas = [_Stanza(name, keys, self) for name, keys in props.items()]
        self._cache: Dict[Tuple[Any, Any, Any], Dict[str, str]] = {}
        self.eventtype_searches: Dict[str, Node] = {}
        for name, keys in eventtypes.items():
            for key in keys:
                if key not in EVENTTYPE_KEYS:
                    raise Unsupported("eventtypes.conf [{}]: setting {} is not implemented".format(name, key))
            if "search" not in keys:
                raise Unsupported("eventtypes.conf [{}]: no search".format(name))
            if conf_bool(keys.get("disabled", "0"), "[{}] disabled".format(name)):
                continue
            where = "eventtypes.conf [{}] search".format(name)
            self.eventtype_searches[name] = _eventtype_search(keys["search"], where)
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
    def _extract(self, name: str, value: str) -> Extract:
        key = (name, value)
        if key not in self._extracts:
            self._extracts[key] = Extract(name, value)
        return self._extracts[key]

    def _report(self, transform: str) -> Report:
        if transform not in self._reports:
            if transform not in self.transforms:
                raise Unsupported("REPORT: transforms.conf has no stanza [{}]".format(transform))
            self._reports[transform] = Report(transform, self.transforms[transform])
        return self._reports[transform]

    def _alias(self, name: str, value: str) -> Alias:
        key = (name, value)
        if key not in self._aliases:
            self._aliases[key] = Alias(name, value)
        return self._aliases[key]

    def _eval(self, name: str, value: str) -> Eval:
        key = (name, value)
        if key not in self._evals:
            self._evals[key] = Eval(name, value)
        return self._evals[key]

    def _lookup(self, name: str, value: str) -> Lookup:
        key = (name, value)
        if key not in self._lookups:
            self._lookups[key] = Lookup(name, value, self.transforms, self.lookups_dir)
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
                    raise Unsupported("props.conf: [{}] and [{}] both match {} (precedence between two {} stanzas is "
                                      "not implemented)".format(by_kind[stanza.kind].name, stanza.name, cache_key,
                                                                stanza.kind))
                by_kind[stanza.kind] = stanza
        merged: Dict[str, str] = {}
        for kind in ("sourcetype", "host", "source"):
            if kind in by_kind:
                merged.update(by_kind[kind].keys)
        self._cache[cache_key] = merged
        return merged

    # --- the pipeline ---
    def fields(self, event: Mapping[str, str]) -> Dict[str, Value]:
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
                raise Unsupported("EXTRACT-{}: extraction from multivalue field {} is not implemented".format(
                    name, extract.source))
            match = extract.regex.search(source[0])
            if match is None:
                continue
            for group in extract.groups:
                got = match.group(group)
                if not got:
                    continue
                if group in extracted_by:
                    raise Unsupported("EXTRACT-{} and EXTRACT-{} both extract {} (which wins is not "
                                      "implemented)".format(extracted_by[group], name, group))
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
                    raise Unsupported("FIELDALIAS-{} and FIELDALIAS-{} both write {}".format(
                        targets[target], alias.name, target))
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

    def eventtypes(self, event_fields: Mapping[str, Value]) -> List[str]:
        return sorted(name for name, search in self.eventtype_searches.items() if matches(search, event_fields))

    def tags(self, event_fields: Mapping[str, Value]) -> List[str]:
        found = set()
        for name in self.eventtypes(event_fields):
            found.update(self.tag_map.get(name, []))
        return sorted(found)
