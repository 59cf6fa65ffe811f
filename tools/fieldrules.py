"""The field classes of props.conf and their transforms, as the search-time evaluator (tools/searchtime.py) runs them:
EXTRACT-, REPORT- (with its transforms.conf stanza), FIELDALIAS- and LOOKUP- (with a file-based lookup), plus the
conf-value helpers they share. Each class validates its setting when it is built and raises Unsupported, naming the
setting, for anything it does not implement.
"""
import csv
import pathlib
from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple

import pcre2

Fields = Dict[str, List[str]]

REPORT_TRANSFORM_KEYS = frozenset({"REGEX", "FORMAT", "SOURCE_KEY", "MV_ADD", "CLEAN_KEYS", "KEEP_EMPTY_VALS",
                                   "CAN_OPTIMIZE"})
LOOKUP_TRANSFORM_KEYS = frozenset({"filename", "case_sensitive_match", "max_matches", "min_matches", "default_match"})


class Unsupported(ValueError):
    """A setting, function or case this evaluator does not implement (never guessed)."""


def conf_bool(value: str, what: str) -> bool:
    lowered = value.strip().lower()
    if lowered in ("1", "true", "t", "yes", "y"):
        return True
    if lowered in ("0", "false", "f", "no", "n"):
        return False
    raise Unsupported("{}: not a boolean: {!r}".format(what, value))


def compile_pcre(regex: str, what: str) -> "pcre2.Pattern":
    try:
        return pcre2.compile(regex)
    except Exception as err:  # noqa: BLE001  pcre2 raises its own error types
        raise Unsupported("{}: PCRE does not compile {!r}: {}".format(what, regex, err)) from None


class Extract:
    def __init__(self, name: str, value: str) -> None:
        self.name = name
        regex, self.source = value, "_raw"
        head, sep, tail = value.rpartition(" in ")
        if sep and tail and all(c.isalnum() or c in "_.:{}" for c in tail):
            regex, self.source = head, tail
        self.regex = compile_pcre(regex, "EXTRACT-" + name)
        self.groups = [g for g in self.regex.groupindex]
        for group in self.groups:
            if group.startswith(("_KEY_", "_VAL_")):
                raise Unsupported("EXTRACT-{}: dynamic field names (_KEY_/_VAL_ groups) are not implemented".format(
                    name))
        if not self.groups:
            raise Unsupported("EXTRACT-{}: the regex has no named group, so it extracts nothing".format(name))


class Report:
    def __init__(self, name: str, keys: Mapping[str, str]) -> None:
        self.name = name
        for key in keys:
            if key not in REPORT_TRANSFORM_KEYS:
                raise Unsupported("transforms.conf [{}]: setting {} is not implemented for REPORT".format(name, key))
        if "REGEX" not in keys:
            raise Unsupported("transforms.conf [{}]: REPORT transform without REGEX (DELIMS/FIELDS are not "
                              "implemented)".format(name))
        self.regex = compile_pcre(keys["REGEX"], "transforms.conf [{}] REGEX".format(name))
        self.source = keys.get("SOURCE_KEY", "_raw").strip()
        if self.source.startswith("MetaData:") or self.source.startswith("_meta"):
            raise Unsupported("transforms.conf [{}]: SOURCE_KEY {} is not implemented".format(name, self.source))
        self.mv_add = conf_bool(keys.get("MV_ADD", "false"), "[{}] MV_ADD".format(name))
        self.clean_keys = conf_bool(keys.get("CLEAN_KEYS", "true"), "[{}] CLEAN_KEYS".format(name))
        self.keep_empty = conf_bool(keys.get("KEEP_EMPTY_VALS", "false"), "[{}] KEEP_EMPTY_VALS".format(name))
        if "CAN_OPTIMIZE" in keys:
            conf_bool(keys["CAN_OPTIMIZE"], "[{}] CAN_OPTIMIZE".format(name))  # affects speed only
        self.format: Optional[List[Tuple[str, str]]] = None
        if "FORMAT" in keys:
            pairs = []
            for token in keys["FORMAT"].split():
                field, sep, value = token.partition("::")
                if not sep or not field or not value:
                    raise Unsupported("transforms.conf [{}]: FORMAT token {!r} is not <name>::<value>".format(
                        name, token))
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
            name = substitute_groups(field, match)
            if field != name and self.clean_keys:
                name = clean_key(name)
            result.append((name, substitute_groups(value, match)))
        return result


def substitute_groups(template: str, match: Any) -> str:
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


def clean_key(name: str) -> str:
    cleaned = "".join(c if c.isalnum() and ord(c) < 128 else "_" for c in name)
    return cleaned.lstrip("_0123456789")


class Alias:
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


class Lookup:
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
                raise Unsupported("transforms.conf [{}]: setting {} is not implemented for LOOKUP".format(
                    self.table, key))
        if "filename" not in keys:
            raise Unsupported("transforms.conf [{}]: only file-based lookups (filename) are implemented".format(
                self.table))
        self.case_sensitive = conf_bool(keys.get("case_sensitive_match", "true"),
                                        "[{}] case_sensitive_match".format(self.table))
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
                raise Unsupported("LOOKUP-{}: multivalue input field {} is not implemented".format(
                    self.name, event_field))
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
