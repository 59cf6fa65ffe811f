"""The typed model of content/: what a detection (content/detections/<slug>.yml) and a maintenance search
(content/baselines/<slug>.yml) hold, and the checks each key must pass (docs/development.md §1).

Each YAML file becomes a frozen dataclass. A field declares its check with `key(...)`; `parse` walks the declared
fields, refuses missing and unknown keys, runs each field's check, and names the file and the key in every error
("linux_x.yml: suppress.period: must look like 24h, 30m, 1d"). Cross-key rules (slug = file name, title length,
unique ids) run after the fields. The model reads nothing but the YAML it is given and the SPL pipe splitter.
"""
import dataclasses
import datetime
import re
import uuid
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Type, TypeVar

from escape_engine.ground import SAVED_SEARCH_FORMAT, SEVERITIES, filter_macro_name, saved_search_name
from tools import es
from tools.spl import escape_pipes, split_pipes, strip_comments


class DetectionError(ValueError):
    pass


class Invalid(ValueError):
    """One key's value is wrong. `keys` is the path to it (["samples", "fires", "[0]", "path"]), filled in on the
    way out of `parse`, so the message names the key however deep it sits."""

    def __init__(self, message: str, keys: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.message = message
        self.keys: List[str] = list(keys)

    def __str__(self) -> str:
        if not self.keys:
            return self.message
        where = "".join(k if k.startswith("[") else "." + k for k in self.keys).lstrip(".")
        return "{}: {}".format(where, self.message)


class Analytic(str, Enum):
    CONTAINER = "container"
    LINUX = "linux"
    WINDOWS = "windows"
    ESXI = "esxi"


class Status(str, Enum):
    PRODUCTION = "production"
    EXPERIMENTAL = "experimental"


class DetectionType(str, Enum):
    SINGLE = "single"        # one event
    CHAIN = "chain"          # several events within escape_time_window
    THRESHOLD = "threshold"  # a count over a period
    HEALTH = "health"        # the data a detection needs is missing


class DataSource(str, Enum):
    """Where a detection's events come from, named as Splunk's ESCU names its data sources; the two Docker sources
    have no ESCU name and are named here in the same style."""
    KUBERNETES_AUDIT = "Kubernetes Audit"
    DOCKER_DAEMON = "Docker Daemon"
    DOCKER_INSPECT = "Docker Inspect"
    LINUX_AUDITD_SYSCALL = "Linux Auditd Syscall"
    LINUX_AUDITD_EXECVE = "Linux Auditd Execve"
    LINUX_AUDITD_PATH = "Linux Auditd Path"
    LINUX_AUDITD_PROCTITLE = "Linux Auditd Proctitle"
    SYSMON_LINUX_1 = "Sysmon for Linux EventID 1"
    SYSMON_LINUX_11 = "Sysmon for Linux EventID 11"
    WINDOWS_SECURITY_4688 = "Windows Event Log Security 4688"
    SYSMON_1 = "Sysmon EventID 1"
    SYSMON_11 = "Sysmon EventID 11"
    ESXI_SYSLOG = "VMWare ESXi Syslog"


def enum_values(enum: Type[Enum]) -> Tuple[str, ...]:
    return tuple(str(member.value) for member in enum)


ANALYTICS = enum_values(Analytic)
STATUSES = enum_values(Status)
TYPES = enum_values(DetectionType)
DATA_SOURCES = enum_values(DataSource)
SLUG = re.compile(r"(kube|docker|container|linux|windows|esxi)_[a-z0-9]+(_[a-z0-9]+)*")
MAX_STANZA = 81
MAX_TITLE = MAX_STANZA - len(SAVED_SEARCH_FORMAT.format(""))

# ---------------------------------------------------------------- checks: a value in, the typed value out
Check = Callable[[Any], Any]


def text(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise Invalid("must be non-empty text")
    return value


def one_of(allowed: Sequence[str]) -> Check:
    def check(value: Any) -> str:
        if value not in allowed:
            raise Invalid("must be one of {}, not {!r}".format(", ".join(allowed), value))
        return str(value)
    return check


def matching(pattern: str, hint: str) -> Check:
    def check(value: Any) -> str:
        if isinstance(value, bool) or not isinstance(value, (str, int)) or not re.fullmatch(pattern, str(value)):
            raise Invalid("must look like {}, not {!r}".format(hint, value))
        return str(value)
    return check


def whole(minimum: int) -> Check:
    def check(value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise Invalid("must be a whole number >= {}, not {!r}".format(minimum, value))
        return int(value)
    return check


def a_uuid(value: Any) -> str:
    try:
        parsed = uuid.UUID(str(value))
    except ValueError:
        parsed = None
    if not isinstance(value, str) or parsed is None or str(parsed) != value:
        raise Invalid("must be a UUID in lower-case 8-4-4-4-12 form, not {!r}".format(value))
    return value


def iso_date(value: Any) -> str:
    """YAML reads an unquoted 2026-12-06 as a date; a quoted one is text. Both must be a real ISO date."""
    if isinstance(value, datetime.date) and not isinstance(value, datetime.datetime):
        return value.isoformat()
    try:
        if isinstance(value, str) and datetime.date.fromisoformat(value).isoformat() == value:
            return value
    except ValueError:
        pass
    raise Invalid("must be an ISO date like 2026-12-06, not {!r}".format(value))


def url(value: Any) -> str:
    if not isinstance(value, str) or not re.fullmatch(r"https://[A-Za-z0-9.-]+\.[A-Za-z]{2,}(/[^\s]*)?", value):
        raise Invalid("must be an https:// URL, not {!r}".format(value))
    return value


def list_of(item: Check, minimum: int = 1, unique: bool = True) -> Check:
    def check(value: Any) -> List[Any]:
        if not isinstance(value, list) or len(value) < minimum:
            raise Invalid("must be a list of at least {} item(s)".format(minimum))
        result = []
        for index, entry in enumerate(value):
            try:
                result.append(item(entry))
            except Invalid as err:
                err.keys.insert(0, "[{}]".format(index))
                raise
        if unique and len(set(result)) != len(result):
            raise Invalid("lists an item twice")
        return result
    return check


T = TypeVar("T")


def nested(cls: Type[T]) -> Check:
    def check(value: Any) -> T:
        return parse(cls, value)
    return check


def key(check: Check, optional: bool = False, hint: str = "") -> Any:
    """Declare a dataclass field read from the YAML key of the same name, checked by `check`."""
    return dataclasses.field(metadata={"check": check, "optional": optional, "hint": hint})


def parse(cls: Type[T], data: Any) -> T:
    """Build `cls` from a YAML mapping, checking every declared key; raise Invalid naming the key at fault."""
    declared = [f for f in dataclasses.fields(cls) if "check" in f.metadata]  # type: ignore[arg-type]
    names = [f.name for f in declared]
    if not isinstance(data, dict):
        raise Invalid("must be a mapping with {}".format(", ".join(names)))
    missing = [f.name for f in declared if f.name not in data and not f.metadata["optional"]]
    if missing:
        raise Invalid("missing keys: {}".format(", ".join(missing)))
    unknown = sorted(set(data) - set(names))
    if unknown:
        raise Invalid("unknown keys: {} (allowed: {})".format(", ".join(map(str, unknown)), ", ".join(names)))
    values: Dict[str, Any] = {}
    for f in declared:
        if f.name not in data:
            values[f.name] = None
            continue
        try:
            values[f.name] = f.metadata["check"](data[f.name])
        except Invalid as err:
            if f.metadata["hint"]:
                raise Invalid(f.metadata["hint"], [f.name]) from None
            err.keys.insert(0, f.name)
            raise
    return cls(**values)


# ---------------------------------------------------------------- the YAML shapes
@dataclass(frozen=True)
class Schedule:
    cron: str = key(text)
    earliest: str = key(text)
    latest: str = key(text)


@dataclass(frozen=True)
class Suppress:
    fields: List[str] = key(list_of(text))
    period: str = key(matching(r"\d+[smhd]", "24h, 30m, 1d"))


@dataclass(frozen=True)
class Sample:
    sourcetype: str = key(text)
    path: str = key(text)
    source: Optional[str] = key(text, optional=True)
    host: Optional[str] = key(text, optional=True)

    def as_dict(self) -> Dict[str, str]:
        return {k: v for k, v in dataclasses.asdict(self).items() if v is not None}


@dataclass(frozen=True)
class Samples:
    fires: List[Sample] = key(list_of(nested(Sample)))
    silent: List[Sample] = key(list_of(nested(Sample)))

    def __getitem__(self, kind: str) -> List[Dict[str, str]]:
        """samples["fires"]: one {sourcetype, path[, source][, host]} dict per sample (the replay's input)."""
        entries: List[Sample] = getattr(self, kind)
        return [s.as_dict() for s in entries]


def es_block(value: Any) -> Dict[str, Any]:
    try:
        es.validate(value, "es")
    except ValueError as err:
        raise Invalid(str(err).split(": ", 1)[1]) from None
    block: Dict[str, Any] = value
    return block


@dataclass(frozen=True)
class Detection:
    """One validated content/detections/<slug>.yml: ESCU's identity keys (id, version, date, references,
    data_source) beside the add-on's own."""
    slug: str = key(matching(SLUG.pattern, "<source>_<behaviour> with a prefix kube_ docker_ container_ linux_ "
                                           "windows_ esxi_"))
    id: str = key(a_uuid)
    version: int = key(whole(1))
    date: str = key(iso_date)
    title: str = key(text)
    analytic: str = key(one_of(ANALYTICS))
    status: str = key(one_of(STATUSES))
    type: str = key(one_of(TYPES))
    data_source: List[str] = key(list_of(one_of(DATA_SOURCES)))
    search: str = key(text)
    schedule: Schedule = key(nested(Schedule), hint="must have exactly cron, earliest and latest")
    severity: str = key(one_of(SEVERITIES))
    suppress: Suppress = key(nested(Suppress))
    description: str = key(text)
    how_to_tune: str = key(text)
    known_false_positives: str = key(text)
    mitre_attack: List[str] = key(list_of(matching(r"T\d{4}(\.\d{3})?", "a technique id like T1611")))
    references: List[str] = key(list_of(url))
    samples: Samples = key(nested(Samples))
    es: Optional[Dict[str, Any]] = key(es_block, optional=True)  # Enterprise Security (tools/es.py)
    path: Path = Path()
    data: Dict[str, Any] = dataclasses.field(default_factory=dict, compare=False, repr=False)

    @property
    def stanza(self) -> str:
        return saved_search_name(self.title)

    @property
    def filter_macro(self) -> str:
        return filter_macro_name(self.slug)

    @property
    def replay_pipes(self) -> int:
        """How many pipes after the base search the replay runs: the escape<verb> commands right after it."""
        return escape_pipes(self.search)

    @property
    def suppress_fields(self) -> List[str]:
        return list(self.suppress.fields)

    @property
    def reads_saved_results(self) -> bool:
        """The search starts with a generating escape<verb> command that reads what a companion maintenance search
        saved (the Linux detections' escapefindings), instead of from a data-scope macro."""
        return strip_comments(self.search).lstrip().startswith("|")

    @property
    def suppress_period(self) -> str:
        return self.suppress.period

    def text(self, name: str) -> str:
        """A prose key on one line (YAML folded text keeps its line breaks in some forms)."""
        return " ".join(str(getattr(self, name)).split())


def slugs(value: Any) -> List[str]:
    """One detection slug or a list of them."""
    return [text(value)] if isinstance(value, str) else list_of(text)(value)


@dataclass(frozen=True)
class MaintenanceSearch:
    """One content/baselines/<slug>.yml: a search that keeps state detections read (never alerts). `companion_of`
    names the detections that read its state (one slug or a list): it then ships disabled, and the setup page enables
    it while any of them is enabled (docs/development.md §1). `run: once` makes it an unscheduled search an admin runs
    by hand (a seeding search); its schedule's earliest and latest are then its time range. `feeds` names the
    maintenance search whose input it keeps (the container registry feeds the Linux correlation): it is then no
    producer of what its detections read, and the replay runs it before the search it feeds."""
    slug: str = key(text)
    title: str = key(text)
    analytic: Optional[str] = key(one_of(ANALYTICS), optional=True)
    search: str = key(text)
    schedule: Schedule = key(nested(Schedule), hint="must have exactly cron, earliest and latest")
    description: str = key(text)
    companion_of: Optional[List[str]] = key(slugs, optional=True)
    run: Optional[str] = key(one_of(("scheduled", "once")), optional=True)
    feeds: Optional[str] = key(text, optional=True)
    path: Path = Path()

    def __getitem__(self, name: str) -> Any:
        """The value of one YAML key (the lint reads maintenance["search"])."""
        return getattr(self, name)

    @property
    def stanza(self) -> str:
        """"Escape to Host - <title>": the saved-search prefix without the " - Rule" that marks a detection."""
        return SAVED_SEARCH_FORMAT.split("{}")[0] + self.title

    @property
    def replay_pipes(self) -> int:
        """The escape<verb> commands right after the base search (the replay and the simulation run maintenance
        searches too)."""
        return escape_pipes(self.search)

    @property
    def filter_macro(self) -> str:
        """None of its own: a maintenance search ends with its commands (the replay warns about any other pipe)."""
        return ""


def _fail(path: Path, message: str) -> DetectionError:
    return DetectionError("{}: {}".format(path.name, message))


def validate_detection(data: Any, path: Path) -> Detection:
    """Check one detection's YAML; raise DetectionError naming the file and the key that is wrong."""
    try:
        detection: Detection = parse(Detection, data)
    except Invalid as err:
        raise _fail(path, str(err)) from None
    detection = dataclasses.replace(detection, path=path, data=dict(data))
    if path.stem != detection.slug:
        raise _fail(path, "slug: the file name must be {}.yml".format(detection.slug))
    if len(detection.stanza) > MAX_STANZA:
        raise _fail(path, "title: must be 1-{} characters (stanza name at most {})".format(MAX_TITLE, MAX_STANZA))
    if detection.replay_pipes < 1:
        raise _fail(path, "search: the base search must be followed by at least one escape<verb> command, which "
                          "the replay runs")
    return detection


def validate_maintenance(data: Any, path: Path) -> MaintenanceSearch:
    try:
        maintenance: MaintenanceSearch = parse(MaintenanceSearch, data)
    except Invalid as err:
        raise _fail(path, str(err)) from None
    pipes = split_pipes(strip_comments(maintenance.search).strip())
    if len(pipes) < 2 or not pipes[-1].startswith("escape"):
        raise _fail(path, "search: a maintenance search must end in one of the add-on's commands")
    return dataclasses.replace(maintenance, path=path)


def check_unique(detections: Sequence[Detection]) -> None:
    """Slugs, ids and stanza names are each used once."""
    for attr in ("slug", "id", "stanza"):
        seen: Dict[str, Path] = {}
        for detection in detections:
            value = str(getattr(detection, attr))
            if value in seen:
                raise DetectionError("{}: {}: {} is also used by {}".format(
                    detection.path.name, attr, value, seen[value].name))
            seen[value] = detection.path
