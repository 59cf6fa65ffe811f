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


# ---------------------------------------------------------------- the shipped docker stanzas (package/default/props.conf)
def shipped(sourcetype: str) -> dict:
    from tests.conftest import ROOT
    from tools import conffile
    stanza = conffile.parse(ROOT / "package" / "default" / "props.conf")[sourcetype]
    return indextime.index_time_settings(stanza, sourcetype)


LOGRUS = 'time="2026-01-15T10:20:00.123456789{}" level=debug msg="Calling POST /v1.41/containers/create?name=x"'


@pytest.mark.parametrize("line, epoch", [
    (LOGRUS.format("Z"), 1768472400.123456789),
    (LOGRUS.format("+01:00"), 1768468800.123456789),            # dockerd with TZ=Europe/Berlin
    (LOGRUS.format("-05:30"), 1768492200.123456789),
    ("Jan 15 10:20:00 node7 dockerd[811]: " + LOGRUS.format("Z"), 1768472400.123456789),       # rsyslog / journalctl
    ("2026-01-15T11:20:00+0100 node7 dockerd[811]: " + LOGRUS.format("+01:00"), 1768468800.123456789),  # short-iso
    ("<30>1 2026-01-15T10:20:00Z node7 dockerd 811 - - " + LOGRUS.format("Z"), None),   # RFC 5424: no ": " prefix
])
def test_docker_daemon_lines_with_or_without_a_journal_prefix_and_any_offset(line: str, epoch: float) -> None:
    broken = indextime.break_events(line.encode() + b"\n", shipped("docker:daemon"))
    if epoch is None:
        assert broken.untimed == 1
    else:
        assert broken.untimed == 0 and broken.events[0][1] == pytest.approx(epoch, abs=1e-6)


def test_a_time_inside_msg_is_not_taken_for_the_line_time() -> None:
    line = 'level=info msg="form data: {\\"x\\":\\"a: time=\\"2020-01-01T00:00:00.000000000Z\\"\\"}"'
    assert indextime.break_events(line.encode() + b"\n", shipped("docker:daemon")).untimed == 1


def inspect_record(created: str) -> str:
    return '{"Id":"' + "a" * 64 + '","Created":"' + created + '","State":{"Status":"running"}}'


@pytest.mark.parametrize("created, epoch", [
    ("2026-11-29T03:43:47.32902582Z", 1795923827),       # Go trims trailing zeros: 8 digits
    ("2026-11-29T03:43:47.3Z", 1795923827),
    ("2026-11-29T03:43:47Z", 1795923827),                # no fraction at all
    ("2026-11-29T03:43:47.708695177Z", 1795923827),
])
def test_docker_inspect_created_with_any_number_of_fractional_digits(created: str, epoch: float) -> None:
    broken = indextime.break_events(inspect_record(created).encode() + b"\n", shipped("docker:inspect"))
    assert broken.untimed == 0 and broken.events[0][1] == epoch


def test_docker_inspect_time_is_the_event_the_input_reacted_to_not_the_creation() -> None:
    """A restart of a week-old container: _time is the restart (EscapeEvent.time), inside the search window."""
    record = '{"EscapeEvent":{"time":"2026-12-06T04:00:01.5Z","action":"start"},' + \
        inspect_record("2026-11-29T03:43:47.32902582Z")[1:]
    broken = indextime.break_events(record.encode() + b"\n", shipped("docker:inspect"))
    assert broken.untimed == 0 and broken.events[0][1] == 1796529601


def test_the_shipped_docker_stanzas_use_only_what_the_evaluator_implements() -> None:
    for sourcetype in ("docker:daemon", "docker:events", "docker:inspect"):
        indextime.time_format_regex(shipped(sourcetype)["TIME_FORMAT"])


# podman events --format json (issue 18): Go trims the fraction's trailing zeros, so the shipped format stops at the
# whole second; the first "Time":" is podman's own key, never one inside an escaped name or a label.
PODMAN = '{{"ID":"{}","Image":"localhost/lab/busybox:latest","Name":{},"Status":"create","Time":"{}",' \
         '"Type":"container","Attributes":{{"Time":"1999-01-01T00:00:00Z"}}}}'


@pytest.mark.parametrize("name, stamp", [
    ('"lab-s01"', "2026-12-06T14:14:47.385275495Z"),
    ('"lab-s01"', "2026-12-06T14:14:47.38527549Z"),
    ('"lab-s01"', "2026-12-06T14:14:47Z"),
    ('"x\\",\\"Time\\":\\"2001-01-01T00:00:00Z"', "2026-12-06T14:14:47.5Z"),
])
def test_podman_events_take_podmans_time_to_the_second(name: str, stamp: str) -> None:
    line = PODMAN.format("a" * 64, name, stamp)
    broken = indextime.break_events(line.encode() + b"\n", shipped("podman:events"))
    assert broken.untimed == 0 and broken.events[0][1] == 1796566487.0


def test_every_podman_event_of_the_lab_capture_is_timed() -> None:
    from escape_engine.containers import rfc3339
    from tests.conftest import DATA
    data = (DATA / "lab-podman" / "podman-events.json").read_bytes()
    broken = indextime.break_events(data, shipped("podman:events"))
    assert len(broken.events) == 144 and broken.untimed == 0
    for raw, when in broken.events:
        stamp = rfc3339(raw.split('"Time":"', 1)[1].split('"', 1)[0])
        assert stamp is not None and when == float(int(stamp))
