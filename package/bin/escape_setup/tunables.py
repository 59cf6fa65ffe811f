"""Validation and SPL rendering of the setup-page tunables (the DET0219 "mutable elements").

A value is validated against its kind's character allowlist and rules, normalised, then rendered into a macro
definition that is a single SPL literal: a quoted string for lists (the allowlists exclude quotes and
backslashes, so nothing needs escaping) or a bare integer. Raw user text never reaches SPL.
"""
import posixpath
import re
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

from escape_engine.ground import ESCAPE_SYSCALLS  # the syscall_list kind may name only these

MAX_VALUE_LENGTH = 4096

_UNIX_PATH_ITEM = re.compile(r"/[A-Za-z0-9._/@+:=-]*")
# A drive letter, or a UNC server and share (\\server\share, also written //server/share: the form render() produces
# and reads back; the Windows engine needs the share, escape_engine.winpath.parse_dir_list).
_WINDOWS_DRIVE = r"[A-Za-z]:[\\/]"
_WINDOWS_UNC = r"(?:\\\\|//)[A-Za-z0-9._$-]+[\\/]+[A-Za-z0-9._$-]+(?:[\\/]|$)"
_WINDOWS_REST = r"[A-Za-z0-9 ._\\/()%$~+-]*"
_WINDOWS_DIR_ITEM = re.compile(r"(?:{}|{}){}".format(_WINDOWS_DRIVE, _WINDOWS_UNC, _WINDOWS_REST))
_MODULE_ITEM = re.compile(r"[A-Za-z0-9_.-]+")
_DIGITS = re.compile(r"[0-9]+")

# Per-kind characters a value may contain at all; checked first so the message names the offending character.
ALLOWED_CHARACTERS: Dict[str, str] = {
    "unix_path_list": "letters, digits and . _ / @ + : = - separated by commas",
    "windows_dir_list": "letters, digits, spaces and . _ \\ / : ( ) % $ ~ + - separated by commas",
    "syscall_list": "syscall names separated by commas",
    "module_list": "letters, digits and _ . - separated by commas",
    "integer": "digits",
    "duration_seconds": "digits",
}
_CHARSETS: "Dict[str, re.Pattern[str]]" = {
    "unix_path_list": re.compile(r"[A-Za-z0-9._/@+:=, -]*"),
    "windows_dir_list": re.compile(r"[A-Za-z0-9 ._\\/:()%$~+,-]*"),
    "syscall_list": re.compile(r"[a-z0-9_, ]*"),
    "module_list": re.compile(r"[A-Za-z0-9_., -]*"),
    "integer": re.compile(r"[0-9]*"),
    "duration_seconds": re.compile(r"[0-9]*"),
}


class TunableSpec:
    """One tunable from content/tunables.yml."""

    def __init__(self, entry: Mapping[str, object]) -> None:
        self.macro = str(entry["macro"])
        self.field = str(entry["field"])
        self.label = str(entry["label"])
        self.kind = str(entry["kind"])
        if self.kind not in _CHARSETS:
            raise ValueError("tunable {}: unknown kind {!r}".format(self.macro, self.kind))
        self.default = str(entry.get("default", ""))
        self.minimum = int(str(entry["min"])) if "min" in entry else None
        self.maximum = int(str(entry["max"])) if "max" in entry else None


def load_specs(schema: Mapping[str, object]) -> Dict[str, TunableSpec]:
    """Index the tunables of a parsed content/tunables.yml by macro name."""
    entries = schema.get("tunables")
    if not isinstance(entries, list):
        raise ValueError("tunable schema has no 'tunables' list")
    specs = [TunableSpec(e) for e in entries]
    return {s.macro: s for s in specs}


def _split_list(value: str) -> List[str]:
    return [item.strip() for item in value.split(",") if item.strip()]


def _normalise_unix_path(item: str) -> str:
    if not item.startswith("/"):
        raise ValueError("{!r} is not an absolute Unix path (it must start with /)".format(item))
    if not _UNIX_PATH_ITEM.fullmatch(item):
        raise ValueError("{!r} contains a space, which is not allowed in a path (separate paths with commas)"
                         .format(item))
    normalised = posixpath.normpath(item)
    # normpath keeps a leading '//' (POSIX allows it to mean something else); a mount path never does.
    return "/" + normalised.lstrip("/")


def _normalise_windows_dir(item: str) -> str:
    if not _WINDOWS_DIR_ITEM.fullmatch(item):
        if item.startswith(("\\\\", "//")):
            raise ValueError("{!r} is not a UNC directory: it needs a server and a share (\\\\server\\share)"
                             .format(item))
        if re.match(r"[A-Za-z]:", item):
            raise ValueError("{!r} is not a Windows directory: a drive letter must be followed by \\ or / "
                             "(C:\\Windows)".format(item))
        raise ValueError("{!r} is not a Windows directory: it has no drive letter (C:\\Windows) or UNC prefix "
                         "(\\\\server\\share)".format(item))
    # Rendered with forward slashes so the SPL literal never holds a backslash escape; a drive root keeps its slash
    # (C:/), so the stored form is itself a valid value and reads back unchanged.
    unc = item.startswith(("\\\\", "//"))
    parts = [p for p in re.split(r"[\\/]+", item) if p]
    joined = "/".join(parts)
    if unc:
        return "//" + joined
    return joined if len(parts) > 1 else joined + "/"


def normalise(spec: TunableSpec, value: str) -> str:
    """Return the canonical form of `value`, or raise ValueError saying what is allowed."""
    if len(value) > MAX_VALUE_LENGTH:
        raise ValueError("{}: the value is {} characters long; at most {} are allowed".format(
            spec.label, len(value), MAX_VALUE_LENGTH))
    if not _CHARSETS[spec.kind].fullmatch(value):
        bad = next(c for c in value if not _CHARSETS[spec.kind].fullmatch(c))
        raise ValueError("{}: the character {!r} is not allowed; use {}".format(
            spec.label, bad, ALLOWED_CHARACTERS[spec.kind]))
    try:
        return _normalise_checked(spec, value)
    except ValueError as err:
        raise ValueError("{}: {}".format(spec.label, err)) from None


def _normalise_checked(spec: TunableSpec, value: str) -> str:
    if spec.kind in ("integer", "duration_seconds"):
        if not _DIGITS.fullmatch(value):
            raise ValueError("a whole number is required")
        number = int(value)
        if (spec.minimum is not None and number < spec.minimum) or (spec.maximum is not None and number > spec.maximum):
            raise ValueError("{} is out of range; use {} to {}".format(number, spec.minimum, spec.maximum))
        return str(number)
    items = _split_list(value)
    if spec.kind == "unix_path_list":
        items = [_normalise_unix_path(i) for i in items]
    elif spec.kind == "windows_dir_list":
        items = [_normalise_windows_dir(i) for i in items]
    elif spec.kind == "syscall_list":
        for item in items:
            if item not in ESCAPE_SYSCALLS:
                raise ValueError("{!r} is not one of the inspected syscalls: {}".format(
                    item, ", ".join(ESCAPE_SYSCALLS)))
    elif spec.kind == "module_list":
        for item in items:
            if not _MODULE_ITEM.fullmatch(item):
                raise ValueError("{!r} is not a module name of [A-Za-z0-9_.-]".format(item))
    return ",".join(dict.fromkeys(items))  # de-duplicated, order kept


def render(spec: TunableSpec, value: str) -> str:
    """Validate `value` and return the macro definition: a bare integer or one double-quoted SPL string."""
    canonical = normalise(spec, value)
    if spec.kind in ("integer", "duration_seconds"):
        return canonical
    return '"' + canonical + '"'


def parse_definition(spec: TunableSpec, definition: str) -> str:
    """Read a macro definition back into the value the setup page shows (inverse of `render`)."""
    text = definition.strip()
    if spec.kind not in ("integer", "duration_seconds"):
        if len(text) < 2 or text[0] != '"' or text[-1] != '"':
            raise ValueError("{}: the macro definition {!r} is not one quoted string".format(spec.label, definition))
        text = text[1:-1]
    return normalise(spec, text)


def render_all(specs: Sequence[TunableSpec], values: Mapping[str, str]) -> Dict[str, str]:
    """Render every tunable at once; raises on the first invalid value so nothing is half-applied."""
    return {s.macro: render(s, values.get(s.macro, s.default)) for s in specs}


def ucc_charset_pattern(kind: str) -> str:
    """The regex of the setup page's first validator of a list kind: only the characters the kind allows (its message
    names them), so a quote or a backtick is reported as such and not as a malformed item."""
    return "^" + _CHARSETS[kind].pattern + "$"


_WINDOWS_ITEM_UCC = (r"(?:[A-Za-z]:[\\/][A-Za-z0-9 ._\\/()%$~+-]*"
                     r"|(?:\\\\|//)[A-Za-z0-9._$-]+[\\/]+[A-Za-z0-9._$-]+(?:[\\/][A-Za-z0-9 ._\\/()%$~+-]*)?)")


def ucc_pattern(kind: str) -> str:
    """The regex of the setup page's second validator of a list kind: the shape of every item (splunktaucclib checks
    it again on the server)."""
    patterns = {
        "unix_path_list": r"^\s*(/[A-Za-z0-9._/@+:=-]*\s*(,\s*/[A-Za-z0-9._/@+:=-]*\s*)*)?$",
        "windows_dir_list": r"^\s*(" + _WINDOWS_ITEM_UCC + r"(,\s*" + _WINDOWS_ITEM_UCC + r")*)?\s*$",
        "syscall_list": (r"^\s*((" + "|".join(ESCAPE_SYSCALLS) + r")\s*(,\s*(" + "|".join(ESCAPE_SYSCALLS)
                         + r")\s*)*)?$"),
        "module_list": r"^\s*([A-Za-z0-9_.-]+\s*(,\s*[A-Za-z0-9_.-]+\s*)*)?$",
    }
    return patterns[kind]


# --- Data scope (content/macros/data_scope.yml): one macro per source, rebuilt with the admin's indexes -------------

# Splunk's index-name rule (indexes.conf): lowercase letters, digits, _ and -, not starting with _ or -, not "kvstore".
_INDEX_NAME = re.compile(r"[a-z0-9][a-z0-9_-]*")
_INDEX_CHARSET = re.compile(r"[a-z0-9_, -]*")
# Sourcetype names as the add-ons write them (kube:apiserver-audit, vmware:esxlog:*); '*' is Splunk's wildcard.
_SOURCETYPE_ITEM = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.:*/-]*")
_SOURCETYPE_CHARSET = re.compile(r"[A-Za-z0-9_.:*/, -]*")
# A field name as search results carry it (host, cluster_name, objectRef.namespace).
_FIELD_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.]*")
MAX_FIELD_NAME_LENGTH = 128
_SCOPE_TERM = re.compile(r'(index|sourcetype|source)="([^"\\]*)"')


class ScopeSpec:
    """One data-scope macro with a `scope` block: sourcetypes (editable), sources (fixed) and how they combine."""

    def __init__(self, entry: Mapping[str, object]) -> None:
        self.macro = str(entry["name"])
        self.definition = str(entry["definition"])
        scope = entry["scope"]
        if not isinstance(scope, Mapping):
            raise ValueError("data scope {}: 'scope' must be a mapping".format(self.macro))
        self.label = str(scope["label"])
        self.sourcetypes = [str(s) for s in _as_list(scope.get("sourcetypes"), self.macro)]
        self.sources = [str(s) for s in _as_list(scope.get("sources"), self.macro)]
        self.combine = str(scope.get("combine", "or"))
        if self.combine not in ("or", "and"):
            raise ValueError("data scope {}: combine must be 'or' or 'and'".format(self.macro))
        if self.combine == "and" and not self.sources:
            raise ValueError("data scope {}: combine 'and' needs at least one source".format(self.macro))
        self.source = self.macro[len("escape_"):]
        self.indexes_field = self.source + "_indexes"
        self.sourcetypes_field = self.source + "_sourcetypes"


class FieldNameSpec:
    """A data-scope macro that holds one bare field name (escape_kube_cluster)."""

    def __init__(self, entry: Mapping[str, object]) -> None:
        self.macro = str(entry["name"])
        self.definition = str(entry["definition"])
        block = entry["field_name"]
        if not isinstance(block, Mapping):
            raise ValueError("data scope {}: 'field_name' must be a mapping".format(self.macro))
        self.label = str(block["label"])
        self.field = self.macro[len("escape_"):] + "_field"


def _as_list(value: object, macro: str) -> List[object]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise ValueError("data scope {}: expected a list, got {!r}".format(macro, value))
    return list(value)


def load_scope_specs(schema: Mapping[str, object]) -> Tuple[Dict[str, ScopeSpec], Dict[str, FieldNameSpec]]:
    """Index the data-scope macros of a parsed content/macros/data_scope.yml by macro name."""
    entries = schema.get("macros")
    if not isinstance(entries, list):
        raise ValueError("data scope schema has no 'macros' list")
    scopes: Dict[str, ScopeSpec] = {}
    fields: Dict[str, FieldNameSpec] = {}
    for entry in entries:
        if "scope" in entry:
            spec = ScopeSpec(entry)
            scopes[spec.macro] = spec
        elif "field_name" in entry:
            fspec = FieldNameSpec(entry)
            fields[fspec.macro] = fspec
    return scopes, fields


def _checked_list(label: str, value: str, charset: "re.Pattern[str]", allowed: str) -> List[str]:
    if len(value) > MAX_VALUE_LENGTH:
        raise ValueError("{}: the value is {} characters long; at most {} are allowed".format(
            label, len(value), MAX_VALUE_LENGTH))
    if not charset.fullmatch(value):
        bad = next(c for c in value if not charset.fullmatch(c))
        raise ValueError("{}: the character {!r} is not allowed; use {}".format(label, bad, allowed))
    return list(dict.fromkeys(_split_list(value)))


def normalise_indexes(label: str, value: str) -> List[str]:
    """Comma-separated index names per Splunk's rules; empty means no index (the macro then names none)."""
    items = _checked_list(label, value, _INDEX_CHARSET,
                          "index names of lowercase letters, digits, _ and - separated by commas")
    for item in items:
        if not _INDEX_NAME.fullmatch(item):
            raise ValueError("{}: {!r} is not an index name; use lowercase letters, digits, _ and -, starting with a "
                             "lowercase letter or a digit".format(label, item))
        if item == "kvstore":
            raise ValueError("{}: 'kvstore' is reserved and cannot be an index name".format(label))
    return items


def normalise_sourcetypes(label: str, value: str) -> List[str]:
    """Comma-separated sourcetype names (letters, digits, _ . : / - and the * wildcard); at least one."""
    items = _checked_list(label, value, _SOURCETYPE_CHARSET,
                          "sourcetype names of letters, digits and _ . : / - * separated by commas")
    for item in items:
        if not _SOURCETYPE_ITEM.fullmatch(item):
            raise ValueError("{}: {!r} is not a sourcetype name; use letters, digits and _ . : / - * (no spaces), "
                             "starting with a letter, a digit or _".format(label, item))
    if not items:
        raise ValueError("{}: at least one sourcetype is required".format(label))
    return items


def _or_group(field: str, values: Sequence[str]) -> str:
    terms = ['{}="{}"'.format(field, v) for v in values]
    return terms[0] if len(terms) == 1 else "(" + " OR ".join(terms) + ")"


def render_scope(spec: ScopeSpec, indexes: Sequence[str], sourcetypes: Sequence[str]) -> str:
    """The data-scope definition for validated indexes and sourcetypes (the shipped one for none and the defaults)."""
    if spec.combine == "or":
        terms = ['sourcetype="{}"'.format(s) for s in sourcetypes] + ['source="{}"'.format(s) for s in spec.sources]
        constraint = terms[0] if len(terms) == 1 else "(" + " OR ".join(terms) + ")"
    else:
        constraint = "({} {})".format(_or_group("sourcetype", sourcetypes), _or_group("source", spec.sources))
    if not indexes:
        return constraint
    # Parenthesised as a whole: SPL's OR binds tighter than the implicit AND, so a search that continues the macro
    # with "... OR x" must not split the index from its sourcetypes.
    return "({} {})".format(_or_group("index", indexes), constraint)


def render_scope_values(spec: ScopeSpec, indexes: str, sourcetypes: str) -> str:
    """Validate the page's two text values for one source and render its macro definition."""
    return render_scope(spec, normalise_indexes(spec.label + " indexes", indexes),
                        normalise_sourcetypes(spec.label + " sourcetypes", sourcetypes))


def parse_scope(spec: ScopeSpec, definition: str) -> Tuple[List[str], List[str]]:
    """Read a data-scope definition back into (indexes, sourcetypes); raise ValueError if it is not in rendered form."""
    found: Dict[str, List[str]] = {"index": [], "sourcetype": [], "source": []}
    for key, value in _SCOPE_TERM.findall(definition):
        found[key].append(value)
    text = " ".join(definition.split())
    try:
        rendered: Optional[str] = (render_scope(spec, found["index"], found["sourcetype"]) if found["sourcetype"]
                                   else None)
    except ValueError:
        rendered = None
    if rendered != text or found["source"] != spec.sources:
        raise ValueError("{}: the macro {} was edited outside this page ({}); change it in Settings > Advanced search "
                         "> Search macros, or restore a definition of the form {}".format(
                             spec.label, spec.macro, definition.strip(), spec.definition))
    return found["index"], found["sourcetype"]


def render_field_name(spec: FieldNameSpec, value: str) -> str:
    """Validate one bare field name (the macro definition is the name itself)."""
    text = value.strip()
    if len(text) > MAX_FIELD_NAME_LENGTH:
        raise ValueError("{}: the value is {} characters long; at most {} are allowed".format(
            spec.label, len(text), MAX_FIELD_NAME_LENGTH))
    if not _FIELD_NAME.fullmatch(text):
        raise ValueError("{}: {!r} is not a field name; use one name of letters, digits, _ and . that starts with a "
                         "letter or _".format(spec.label, text))
    return text
