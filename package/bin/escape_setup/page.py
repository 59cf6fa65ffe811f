"""The setup page's decisions, without I/O: what a save writes, what a page load shows, which warnings apply.

The REST handler (bin/TA_escape_to_host_rh_settings.py) reads the macros and saved searches from splunkd, calls
these functions, and writes what they return. Everything is validated before anything is written, so an invalid
value leaves every macro untouched.
"""
import math
import re
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

from escape_engine.ground import saved_search_name
from escape_setup import tunables

SCOPE_STATUS_FIELD = "scope_status"
SCOPE_OK = "Every enabled analytic's data scope names an index and found events in the last 24 hours."


class Manifest:
    """The settings manifest the build writes from content/ (tools/setup_manifest.py)."""

    def __init__(self, data: Mapping[str, object]) -> None:
        self.tunables = tunables.load_specs({"tunables": data["tunables"]})
        self.scopes, self.field_names = tunables.load_scope_specs({"macros": data["data_scope"]})
        detections = data.get("detections")
        if not isinstance(detections, list):
            raise ValueError("settings manifest has no 'detections' list")
        self.detections = [Detection(d) for d in detections]


class Detection:
    """One detection: its saved search, analytic, type, schedule and the data-scope macros its search uses."""

    def __init__(self, entry: Mapping[str, object]) -> None:
        self.slug = str(entry["slug"])
        self.title = str(entry["title"])
        self.analytic = str(entry["analytic"])
        self.type = str(entry["type"])
        schedule = entry["schedule"]
        if not isinstance(schedule, Mapping):
            raise ValueError("detection {}: schedule must be a mapping".format(self.slug))
        self.cron = str(schedule["cron"])
        self.earliest = str(schedule["earliest"])
        self.latest = str(schedule["latest"])
        scopes = entry.get("scopes", [])
        self.scopes = [str(s) for s in scopes] if isinstance(scopes, list) else []
        self.saved_search = saved_search_name(self.title)
        # Maintenance searches that keep state only this detection reads: enabled and disabled with it.
        companions = entry.get("companions", [])
        self.companions = [str(c) for c in companions] if isinstance(companions, list) else []


def managed_searches(manifest: Manifest) -> List[str]:
    """Every saved search the Analytics tab turns on or off: each detection's, then its companions'."""
    names: Dict[str, None] = {}
    for detection in manifest.detections:
        names[detection.saved_search] = None
        names.update(dict.fromkeys(detection.companions))
    return list(names)


# --- Tunables ------------------------------------------------------------------------------------------------------

def tunable_values(manifest: Manifest, definitions: Mapping[str, str]) -> Tuple[Dict[str, str], List[str]]:
    """The Tunables tab's values read back from the macros' current definitions, and a note per macro that is not in
    rendered form (shown as its raw definition, so the page never hides what the searches use)."""
    values: Dict[str, str] = {}
    notes: List[str] = []
    for spec in manifest.tunables.values():
        definition = definitions[spec.macro]
        try:
            values[spec.field] = tunables.parse_definition(spec, definition)
        except ValueError as err:
            # Shown as written, without the quotes of a one-string definition (the field holds the value, not SPL), so
            # the page's own validator names what is wrong with it, e.g. "C:" stored by an older version.
            text = definition.strip()
            quoted = len(text) >= 2 and text[0] == text[-1] == '"' and '"' not in text[1:-1]
            values[spec.field] = text[1:-1] if quoted else definition
            notes.append("{} (edited outside this page; saving the tab rewrites it only with a valid value)"
                         .format(err))
    return values, notes


def plan_tunables(manifest: Manifest, submitted: Mapping[str, str],
                  definitions: Mapping[str, str]) -> List[Tuple[str, str]]:
    """(macro, definition) for every tunable whose rendered value differs from its current definition.

    Every value is validated first; the first invalid one raises ValueError and nothing is planned.
    """
    rendered: Dict[str, str] = {}
    errors: List[str] = []
    for spec in manifest.tunables.values():
        value = submitted.get(spec.field)
        if value is None:
            continue
        try:
            rendered[spec.macro] = tunables.render(spec, value)
        except ValueError as err:
            errors.append(str(err))
    if errors:
        raise ValueError(" ".join(errors))
    return [(m, d) for m, d in rendered.items() if definitions.get(m, "").strip() != d]


_CRON_FIELD = re.compile(r"\*|\*/[0-9]+|[0-9]+")
_RELATIVE = re.compile(r"-([0-9]+)(s|m|h|d)@m")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def cron_period_seconds(cron: str) -> int:
    """The period of a regular cron schedule: minute-, hour- or day-stepped ('7 * * * *', '*/15 * * * *',
    '5 */4 * * *')."""
    fields = cron.split()
    if len(fields) != 5 or not all(_CRON_FIELD.fullmatch(f) for f in fields[:2]) or fields[2:] != ["*", "*", "*"]:
        raise ValueError("cron schedule {!r} is not a regular minute, hour or day step".format(cron))
    minute, hour = fields[0], fields[1]
    if minute == "*":
        return 60
    if minute.startswith("*/"):
        return 60 * int(minute[2:]) if hour == "*" else _bad_cron(cron)
    if hour == "*":
        return 3600
    if hour.startswith("*/"):
        return 3600 * int(hour[2:])
    return 86400


def _bad_cron(cron: str) -> int:
    raise ValueError("cron schedule {!r} mixes a minute step with an hour".format(cron))


def relative_seconds(modifier: str) -> int:
    """Seconds before now of a '-<n><s|m|h|d>@m' time modifier."""
    match = _RELATIVE.fullmatch(modifier.strip())
    if not match:
        raise ValueError("time modifier {!r} is not of the form -<n><s|m|h|d>@m".format(modifier))
    return int(match.group(1)) * _UNIT_SECONDS[match.group(2)]


def chain_earliest(detection: Detection, window_seconds: int) -> str:
    """dispatch.earliest_time of a chain detection: one cron period before its latest time plus the window, in whole
    minutes rounded up, so consecutive runs overlap by at least the window."""
    start = relative_seconds(detection.latest) + cron_period_seconds(detection.cron) + window_seconds
    return "-{}m@m".format(math.ceil(start / 60.0))


def plan_chain_windows(manifest: Manifest, writes: Sequence[Tuple[str, str]]) -> List[Tuple[str, str]]:
    """(saved search, dispatch.earliest_time) for every chain detection when the time window macro is written."""
    window = dict(writes).get("escape_time_window")
    if window is None:
        return []
    return [(d.saved_search, chain_earliest(d, int(window))) for d in manifest.detections if d.type == "chain"]


# --- Data sources --------------------------------------------------------------------------------------------------

def scope_values(manifest: Manifest, definitions: Mapping[str, str]) -> Tuple[Dict[str, str], List[str]]:
    """The Data sources tab's values read back from the data-scope macros, and a note per macro not in rendered form."""
    values: Dict[str, str] = {}
    notes: List[str] = []
    for spec in manifest.scopes.values():
        try:
            indexes, sourcetypes = tunables.parse_scope(spec, definitions[spec.macro])
            values[spec.indexes_field] = ",".join(indexes)
            values[spec.sourcetypes_field] = ",".join(sourcetypes)
        except ValueError as err:
            values[spec.indexes_field] = ""
            values[spec.sourcetypes_field] = ""
            notes.append(str(err))
    for fspec in manifest.field_names.values():
        values[fspec.field] = definitions[fspec.macro].strip()
    return values, notes


def plan_scopes(manifest: Manifest, submitted: Mapping[str, str],
                definitions: Mapping[str, str]) -> List[Tuple[str, str]]:
    """(macro, definition) for every data-scope macro the submitted values change; validates everything first."""
    rendered: Dict[str, str] = {}
    errors: List[str] = []
    for spec in manifest.scopes.values():
        indexes = submitted.get(spec.indexes_field)
        sourcetypes = submitted.get(spec.sourcetypes_field)
        if indexes is None and sourcetypes is None:
            continue
        if sourcetypes is None or indexes is None:
            try:
                current_indexes, current_sourcetypes = tunables.parse_scope(spec, definitions[spec.macro])
            except ValueError as err:
                errors.append(str(err))
                continue
            indexes = ",".join(current_indexes) if indexes is None else indexes
            sourcetypes = ",".join(current_sourcetypes) if sourcetypes is None else sourcetypes
        try:
            rendered[spec.macro] = tunables.render_scope_values(spec, indexes, sourcetypes)
        except ValueError as err:
            errors.append(str(err))
    for fspec in manifest.field_names.values():
        value = submitted.get(fspec.field)
        if value is None:
            continue
        try:
            rendered[fspec.macro] = tunables.render_field_name(fspec, value)
        except ValueError as err:
            errors.append(str(err))
    if errors:
        raise ValueError(" ".join(errors))
    return [(m, d) for m, d in rendered.items() if " ".join(definitions.get(m, "").split()) != d]


def tstats_search(macro: str) -> str:
    """The search that counts a data scope's events in the last 24 hours (indexed fields only, so tstats can)."""
    return "| tstats count where `{}` earliest=-24h latest=now".format(macro)


def enabled_scopes(manifest: Manifest, disabled: Mapping[str, bool]) -> List[str]:
    """Data-scope macros used by at least one enabled detection, in manifest order."""
    used: Dict[str, None] = {}
    for detection in manifest.detections:
        if not disabled.get(detection.saved_search, True):
            for macro in detection.scopes:
                if macro in manifest.scopes:
                    used[macro] = None
    return [m for m in manifest.scopes if m in used]


def scope_warnings(manifest: Manifest, disabled: Mapping[str, bool], definitions: Mapping[str, str],
                   counts: Mapping[str, Optional[int]]) -> List[str]:
    """One warning per data scope of an enabled analytic that names no index or found no events in 24 hours.

    `counts` holds each scope's event count (None: the count search failed, reported as such)."""
    warnings: List[str] = []
    for macro in enabled_scopes(manifest, disabled):
        spec = manifest.scopes[macro]
        analytics = sorted({d.analytic for d in manifest.detections
                            if macro in d.scopes and not disabled.get(d.saved_search, True)})
        who = "{} ({}, used by the enabled {} analytic{})".format(
            spec.label, macro, ", ".join(analytics), "s" if len(analytics) > 1 else "")
        if not re.search(r'\bindex="', definitions.get(macro, "")):
            warnings.append("WARNING: {} names no index; add the index that holds these events.".format(who))
        count = counts.get(macro)
        if count is None:
            warnings.append("WARNING: {}: the 24-hour event count could not be read.".format(who))
        elif count == 0:
            warnings.append("WARNING: {} found no events in the last 24 hours; check the indexes and sourcetypes."
                            .format(who))
    return warnings


def scope_status(warnings: Sequence[str], notes: Sequence[str]) -> str:
    """The read-only text the Data sources tab shows."""
    lines = list(warnings) + ["NOTE: " + n for n in notes]
    return "\n".join(lines) if lines else SCOPE_OK


# --- Analytics -----------------------------------------------------------------------------------------------------

_TRUE = ("1", "true", "yes", "on", "t", "y")
_FALSE = ("0", "false", "no", "off", "f", "n", "")


def analytics_values(manifest: Manifest, disabled: Mapping[str, bool]) -> Dict[str, str]:
    """The Analytics tab's checkboxes: 1 where the saved search is enabled."""
    return {d.slug: "0" if disabled.get(d.saved_search, True) else "1" for d in manifest.detections}


def plan_analytics(manifest: Manifest, submitted: Mapping[str, str],
                   disabled: Mapping[str, bool]) -> List[Tuple[str, str]]:
    """(saved search, disabled 0|1) for every detection whose submitted state differs from its current one."""
    plan: List[Tuple[str, str]] = []
    errors: List[str] = []
    for detection in manifest.detections:
        value = submitted.get(detection.slug)
        if value is None:
            continue
        text = value.strip().lower()
        if text not in _TRUE and text not in _FALSE:
            errors.append("{}: {!r} is not a checkbox value; use 1 (enabled) or 0 (disabled).".format(
                detection.title, value))
            continue
        want_disabled = text in _FALSE
        # The detection and its companions follow the checkbox together: a baseline never learns while its detection
        # is off, and never stays off while its detection is on.
        for name in [detection.saved_search] + detection.companions:
            if disabled.get(name, True) != want_disabled and (name, "1" if want_disabled else "0") not in plan:
                plan.append((name, "1" if want_disabled else "0"))
    if errors:
        raise ValueError(" ".join(errors))
    return plan
