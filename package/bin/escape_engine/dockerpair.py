"""Pairing of dockerd debug lines: a create or exec logs its "Calling POST ..." line (which names the container) and
its "form data: {...}" line (which holds the settings) separately, a few milliseconds apart, either one first.

Per (host, source), each line waits up to PENDING_SPAN seconds of log for its partner within PAIR_WINDOW seconds; the
closest one of the same kind (create or exec) is taken. A completed pair is held PAIR_WINDOW seconds of log more, so
that an authorization plugin's refusal of the call ("AuthZRequest for POST ... returned error: authorization denied
by plugin ...", logged right after the body) marks it whichever order the lines come in. Volume-create bodies name
their volume themselves and are not paired. What is held is bounded by MAX_PENDING lines per log.
"""
from typing import Any, Callable, Dict, Iterator, List, NamedTuple, Optional, Tuple

from . import docker
from .ground import Record
from .scalars import finite_float, first_text

PAIR_WINDOW = 2.0       # seconds between a Calling line and its form data line
PENDING_SPAN = 10.0     # seconds of log after which an unpaired line is given up
MAX_PENDING = 512


def line_time(record: Record, text: str) -> float:
    """Splunk's _time; else (missing, "nan", "inf", a list of garbage) the dockerd line's own time; else 0."""
    when = finite_float(first_text(record.get("_time")))
    if when is None:
        when = docker.line_time(text)
    return when if when is not None else 0.0


class Pending:
    """A line waiting for its partner: a Calling line (with the container's name) or a form data line (body)."""

    def __init__(self, time: float, record: Record, kind: str, name: str = "",
                 body: Any = None) -> None:
        self.time = time
        self.record = record
        self.kind = kind
        self.name = name
        self.body = body


class Match(NamedTuple):
    """A form data line with its Calling line, a form data line given up alone (call None), or a Calling line
    given up alone (form None)."""
    form: Optional[Pending]
    call: Optional[Pending]
    denied: bool = False    # an authorization plugin refused the call (AuthZRequest ... denied by plugin)


class DaemonPairing:
    """The lines waiting for a partner, per (host, source). `add` once per dockerd line, `flush` after the last."""

    def __init__(self, unreadable: Callable[[], None]) -> None:
        self._unreadable = unreadable  # told about a form data line whose body is not JSON
        self._forms: Dict[Tuple[str, str], List[Pending]] = {}
        self._calls: Dict[Tuple[str, str], List[Pending]] = {}
        # Completed pairs wait PAIR_WINDOW seconds of log for an authorization denial that follows them (oldest
        # first) or was seen before them (newest first).
        self._done: Dict[Tuple[str, str], List[Match]] = {}
        self._denials: Dict[Tuple[str, str], List[Pending]] = {}

    def add(self, record: Record, text: str) -> Iterator[Match]:
        """The matches this line completes or gives up, in order."""
        msg = docker.message(text)
        if msg is None:
            return
        key = (first_text(record.get("host")), first_text(record.get("source")))
        now = line_time(record, text)
        yield from self._expire(key, now)
        refused = docker.denial(msg)
        if refused is not None:
            self._denials.setdefault(key, []).append(Pending(now, record, refused[0], name=refused[1]))
            return
        call = docker.api_call(msg)
        if call is not None:
            entry = Pending(now, record, call[0], name=call[1])
            form = _closest(self._forms.get(key, []), entry, lambda f, c: f.time - c.time)
            if form is not None:
                self._forms[key].remove(form)
                self._done.setdefault(key, []).append(Match(form, entry))
            else:
                self._calls.setdefault(key, []).append(entry)
            return
        try:
            body = docker.form_body(msg)
        except ValueError:
            self._unreadable()
            return
        if body is None:
            return
        kind = docker.body_kind(body)
        if kind is None:
            return
        entry = Pending(now, record, kind, body=body)
        if kind == "volume":     # the body names the volume itself: nothing to pair
            yield Match(entry, None)
            return
        match = _closest(self._calls.get(key, []), entry, lambda c, f: f.time - c.time)
        if match is not None:
            self._calls[key].remove(match)
            self._done.setdefault(key, []).append(Match(entry, match))
        else:
            self._forms.setdefault(key, []).append(entry)

    def flush(self) -> Iterator[Match]:
        """Every line still waiting, given up, and every pair held back."""
        for key in list(dict.fromkeys(list(self._done) + list(self._forms) + list(self._calls))):
            yield from self._expire(key, 0.0, everything=True)

    def _denied(self, key: Tuple[str, str], call: Pending) -> bool:
        return any(d.kind == call.kind and d.name == call.name and 0 <= d.time - call.time <= PAIR_WINDOW
                   for d in self._denials.get(key, []))

    def _expire(self, key: Tuple[str, str], now: float, everything: bool = False) -> Iterator[Match]:
        done = self._done.get(key, [])
        ready = [m for m in done if everything or m.call is None or abs(m.call.time - now) > PAIR_WINDOW]
        if len(done) - len(ready) > MAX_PENDING:     # a flood within one window: the oldest held pairs go out
            ready.extend(m for m in done[:len(done) - MAX_PENDING] if not any(m is r for r in ready))
        self._done[key] = [m for m in done if not any(m is r for r in ready)]
        for match in ready:
            yield match._replace(denied=match.call is not None and self._denied(key, match.call))
        denials = self._denials.get(key, [])
        self._denials[key] = [] if everything else [
            d for d in denials if abs(d.time - now) <= PENDING_SPAN][-MAX_PENDING:]
        forms = self._forms.get(key, [])
        calls = self._calls.get(key, [])
        keep_forms = [] if everything else [f for f in forms if abs(f.time - now) <= PENDING_SPAN][-MAX_PENDING:]
        keep_calls = [] if everything else [c for c in calls if abs(c.time - now) <= PENDING_SPAN][-MAX_PENDING:]
        for form in forms:
            if not any(form is k for k in keep_forms):
                yield Match(form, None)
        for call in calls:
            if not any(call is k for k in keep_calls):
                yield Match(None, call)
        self._forms[key] = keep_forms
        self._calls[key] = keep_calls


def _closest(candidates: List[Pending], entry: Pending, gap: Any) -> Optional[Pending]:
    """The candidate of the matching kind within PAIR_WINDOW whose gap (form time - call time, >= 0) is smallest."""
    best: Optional[Pending] = None
    best_gap = PAIR_WINDOW + 1
    for candidate in candidates:
        if candidate.kind != entry.kind:
            continue
        distance = float(gap(candidate, entry))
        if 0 <= distance <= PAIR_WINDOW and distance < best_gap:
            best, best_gap = candidate, distance
    return best
