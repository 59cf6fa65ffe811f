"""When a scheduled search runs and which events it covers: 5-field cron and Splunk's relative time modifiers.

Only the forms that savedsearches.conf of this add-on can hold are evaluated; anything else is refused with the reason,
so the simulation never guesses at a schedule.

- cron_schedule (savedsearches.conf.spec: "standard cron notation"): five fields, minute hour day-of-month month
  day-of-week, each `*`, a number, `A-B`, `*/S` or `A-B/S`, or a comma list of those. Day-of-week 0 and 7 are Sunday.
  When both day fields are restricted, a day matches either (as cron reads them). Names (JAN, MON), `@hourly` and
  six-field forms are refused.
- dispatch.earliest_time / dispatch.latest_time (Splunk's "time modifiers" in the Search Reference): `now`, or an
  optional offset `[+-]<integer><unit>` followed by an optional snap `@<unit>`, with units s, m, h, d. The offset is
  applied first, then the snap rounds down to the start of that unit ("-70m@m": 70 minutes back, then to the start of
  that minute). Other units (w, mon, q, y), `rt` and absolute times are refused. Times are UTC.
"""
import re
from datetime import datetime, timedelta, timezone
from typing import Iterator, List, Sequence, Set, Tuple

FIELDS: Tuple[Tuple[str, int, int], ...] = (
    ("minute", 0, 59), ("hour", 0, 23), ("day of month", 1, 31), ("month", 1, 12), ("day of week", 0, 7))
UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_PART = re.compile(r"(\*|[0-9]+|[0-9]+-[0-9]+)(?:/([0-9]+))?")
_MODIFIER = re.compile(r"(?:([+-])([0-9]+)([a-z]+))?(?:@([a-z]+))?")


class ScheduleError(ValueError):
    """A cron expression or time modifier outside the forms evaluated here."""


def _field(text: str, name: str, low: int, high: int) -> Set[int]:
    values: Set[int] = set()
    for part in text.split(","):
        match = _PART.fullmatch(part)
        if not match:
            raise ScheduleError("cron {} {!r}: use *, N, A-B, */S or A-B/S (names and other forms are not "
                                "evaluated)".format(name, part))
        span, step_text = match.group(1), match.group(2)
        if span == "*":
            first, last = low, high
        elif "-" in span:
            first, last = (int(x) for x in span.split("-"))
        else:
            first = last = int(span)
        step = int(step_text) if step_text else 1
        if not low <= first <= last <= high or step < 1:
            raise ScheduleError("cron {} {!r} is outside {}-{}".format(name, part, low, high))
        values.update(range(first, last + 1, step))
    return values


class Cron:
    """One parsed 5-field cron expression."""

    def __init__(self, text: str) -> None:
        parts = text.split()
        if len(parts) != 5:
            raise ScheduleError("cron {!r}: five fields expected (minute hour day month weekday)".format(text))
        self.text = text
        fields: List[Set[int]] = [_field(p, *spec) for p, spec in zip(parts, FIELDS)]
        self.minutes, self.hours, self.days, self.months, weekdays = fields
        self.weekdays = {d % 7 for d in weekdays}
        self.any_day, self.any_weekday = parts[2] == "*", parts[4] == "*"

    def matches(self, when: datetime) -> bool:
        if when.minute not in self.minutes or when.hour not in self.hours or when.month not in self.months:
            return False
        day = when.day in self.days
        weekday = (when.isoweekday() % 7) in self.weekdays  # cron: 0 = Sunday
        if self.any_day or self.any_weekday:
            return day and weekday
        return day or weekday

    def times(self, start: datetime, end: datetime) -> Iterator[datetime]:
        """Every minute t with start <= t < end that the expression selects."""
        when = start.replace(second=0, microsecond=0)
        if when < start:
            when += timedelta(minutes=1)
        while when < end:
            if self.matches(when):
                yield when
            when += timedelta(minutes=1)


def relative_time(modifier: str, now: datetime) -> datetime:
    """The time a dispatch.earliest_time / latest_time modifier names, relative to the run time `now`."""
    text = modifier.strip()
    if text in ("now", ""):
        return now
    match = _MODIFIER.fullmatch(text)
    if not match or not (match.group(1) or match.group(4)):
        raise ScheduleError("time modifier {!r}: use [+-]<n><unit>[@<unit>] with units s, m, h, d".format(modifier))
    sign, amount, unit, snap = match.groups()
    when = now
    if sign:
        if unit not in UNITS:
            raise ScheduleError("time modifier {!r}: unit {!r} is not evaluated (s, m, h, d)".format(modifier, unit))
        seconds = int(amount) * UNITS[unit]
        when = when + timedelta(seconds=seconds if sign == "+" else -seconds)
    if snap:
        if snap not in UNITS:
            raise ScheduleError("time modifier {!r}: snap unit {!r} is not evaluated (s, m, h, d)".format(
                modifier, snap))
        epoch = int(when.timestamp())
        when = datetime.fromtimestamp(epoch - epoch % UNITS[snap], timezone.utc)
    return when


def parse_iso(text: str) -> datetime:
    """An ISO 8601 time; without a zone it is UTC."""
    try:
        when = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ScheduleError("{!r} is not an ISO 8601 time (e.g. 2026-12-01T00:00:00Z)".format(text)) from None
    return when if when.tzinfo else when.replace(tzinfo=timezone.utc)


def check_window(earliest: str, latest: str, sample: Sequence[datetime]) -> None:
    """Refuse a dispatch window whose earliest is not before its latest (it would cover nothing)."""
    for now in sample:
        if relative_time(earliest, now) >= relative_time(latest, now):
            raise ScheduleError("dispatch window {} .. {} is empty at {}".format(earliest, latest, now.isoformat()))
