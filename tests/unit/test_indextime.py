"""tools/indextime.py: the index-time props.conf keys the offline evaluator implements, and refuses the rest."""
import pytest

from tools import indextime
from tools.indextime import IndexTimeError

DAEMON = {"SHOULD_LINEMERGE": "false", "LINE_BREAKER": r"([\r\n]+)(?=time=)", "TIME_PREFIX": r'^time="',
          "TIME_FORMAT": "%Y-%m-%dT%H:%M:%S.%9N%Z", "MAX_TIMESTAMP_LOOKAHEAD": "40", "KV_MODE": "none",
          "EXTRACT-escape_level": r"level=(?<escape_level>\w+)"}


def settings(**changes: str) -> dict:
    stanza = dict(DAEMON, **changes)
    return indextime.index_time_settings({k: v for k, v in stanza.items() if v is not None}, "docker:daemon")


def test_line_breaker_drops_the_delimiter_and_keeps_continuation_lines() -> None:
    data = b'time="2026-11-29T03:43:44.707024772Z" level=debug msg="a"\n  continued\n' \
           b'time="2026-11-29T03:43:45.000000001Z" level=info msg="b"\r\n'
    broken = indextime.break_events(data, settings())
    assert [raw for raw, _ in broken.events] == ['time="2026-11-29T03:43:44.707024772Z" level=debug msg="a"\n  continued',
                                                 'time="2026-11-29T03:43:45.000000001Z" level=info msg="b"']
    assert broken.events[0][1] == pytest.approx(1795923824.707025)
    assert broken.untimed == 0


def test_epoch_with_nanoseconds_and_zone_offsets() -> None:
    stanza = settings(TIME_PREFIX='"timeNano":', TIME_FORMAT="%s%9N", LINE_BREAKER=r"([\r\n]+)")
    broken = indextime.break_events(b'{"time":1795923725,"timeNano":1795923725152414000}\n', stanza)
    assert broken.events[0][1] == pytest.approx(1795923725.152414)
    stanza = settings(TIME_PREFIX="^", TIME_FORMAT="%d/%b/%Y:%H:%M:%S %z", LINE_BREAKER=r"([\r\n]+)")
    assert indextime.break_events(b"29/Nov/2026:04:43:44 +0100 x\n", stanza).events[0][1] == 1795923824
    stanza = settings(TIME_PREFIX="^", TIME_FORMAT="%m/%d/%Y %I:%M:%S %p", TZ="America/New_York", LINE_BREAKER=r"([\r\n]+)")
    assert indextime.break_events(b"11/28/2026 10:43:44 PM x\n", stanza).events[0][1] == 1795923824


def test_no_timestamp_takes_the_previous_time_and_is_counted() -> None:
    data = b'time="2026-11-29T03:43:44.000000000Z" a\ntime="garbage" b\n'
    broken = indextime.break_events(data, settings())
    assert [t for _, t in broken.events] == [1795923824.0, 1795923824.0] and broken.untimed == 1


def test_truncate_cuts_long_events_in_bytes() -> None:
    data = b'time="2026-11-29T03:43:44.000000000Z" ' + b"x" * 100 + b"\n"
    broken = indextime.break_events(data, settings(TRUNCATE="50"))
    assert len(broken.events[0][0]) == 50 and broken.truncated == 1
    assert len(indextime.break_events(data, settings(TRUNCATE="0")).events[0][0]) == len(data) - 1


@pytest.mark.parametrize("changes, message", [
    ({"SEDCMD-mask": "s/a/b/"}, "SEDCMD-mask is not an index-time setting"),
    ({"TRANSFORMS-route": "x"}, "TRANSFORMS-route is not an index-time setting"),
    ({"DATETIME_CONFIG": "CURRENT"}, "DATETIME_CONFIG is not an index-time setting"),
    ({"SHOULD_LINEMERGE": "true"}, "SHOULD_LINEMERGE must be false"),
    ({"TIME_FORMAT": None}, "TIME_FORMAT is required"),
    ({"CHARSET": "AUTO"}, "CHARSET = AUTO is not implemented"),
])
def test_unimplemented_settings_are_refused(changes: dict, message: str) -> None:
    with pytest.raises(IndexTimeError, match=message):
        settings(**changes)


def test_unknown_time_format_directive_is_refused() -> None:
    with pytest.raises(IndexTimeError, match="directive '%Q"):
        indextime.break_events(b"x\n", settings(TIME_FORMAT="%Q"))
