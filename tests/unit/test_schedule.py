"""tools/schedule.py: the cron forms and time modifiers the simulation evaluates, and the ones it refuses."""
from datetime import datetime, timezone

import pytest

from tools.schedule import Cron, ScheduleError, parse_iso, relative_time

UTC = timezone.utc


def at(text: str) -> datetime:
    return parse_iso(text)


def test_hourly_at_a_minute() -> None:
    runs = list(Cron("27 * * * *").times(at("2026-11-21T10:00:00Z"), at("2026-11-21T13:00:00Z")))
    assert [r.strftime("%H:%M") for r in runs] == ["10:27", "11:27", "12:27"]


def test_every_fourth_hour_and_lists_and_ranges() -> None:
    runs = list(Cron("47 */4 * * *").times(at("2026-11-21T00:00:00Z"), at("2026-11-22T00:00:00Z")))
    assert [r.hour for r in runs] == [0, 4, 8, 12, 16, 20]
    assert [r.minute for r in Cron("5,35 1-2 * * *").times(at("2026-11-21T00:00:00Z"), at("2026-11-21T03:00:00Z"))
            ] == [5, 35, 5, 35]


def test_the_end_is_excluded_and_the_start_included() -> None:
    assert [r.minute for r in Cron("0 * * * *").times(at("2026-11-21T10:00:00Z"), at("2026-11-21T11:00:00Z"))] == [0]


def test_day_of_month_or_day_of_week_when_both_are_restricted() -> None:
    cron = Cron("0 0 1 * 0")  # the 1st of the month OR a Sunday
    assert cron.matches(datetime(2026, 11, 1, tzinfo=UTC))  # a Sunday and the 1st
    assert cron.matches(datetime(2026, 11, 8, tzinfo=UTC))  # a Sunday
    assert cron.matches(datetime(2026, 12, 1, tzinfo=UTC))  # a Tuesday, the 1st
    assert not cron.matches(datetime(2026, 11, 10, tzinfo=UTC))
    assert Cron("0 0 * * 7").matches(datetime(2026, 11, 8, tzinfo=UTC))  # 7 is Sunday too


@pytest.mark.parametrize("text", ["@hourly", "0 * * * * *", "0 * * JAN *", "0 * * * MON", "60 * * * *", "*/0 * * * *",
                                  "0 24 * * *", "L * * * *"])
def test_forms_outside_the_evaluated_ones_are_refused(text: str) -> None:
    with pytest.raises(ScheduleError):
        Cron(text)


def test_offset_then_snap_to_the_minute() -> None:
    now = at("2026-11-21T10:27:42Z")
    assert relative_time("-70m@m", now) == at("2026-11-21T09:17:00Z")
    assert relative_time("-10m@m", now) == at("2026-11-21T10:17:00Z")
    assert relative_time("-2h@h", now) == at("2026-11-21T08:00:00Z")
    assert relative_time("@d", now) == at("2026-11-21T00:00:00Z")
    assert relative_time("now", now) == now


@pytest.mark.parametrize("text", ["-1w@w", "-1mon", "rt-5m", "2026-11-21", "-5", "@w0", "-70m@q"])
def test_modifiers_outside_the_evaluated_ones_are_refused(text: str) -> None:
    with pytest.raises(ScheduleError):
        relative_time(text, at("2026-11-21T10:27:00Z"))
