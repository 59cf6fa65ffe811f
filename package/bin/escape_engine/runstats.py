"""What the Windows and ESXi commands share: run counters (malformed and skipped events are reported, never lost
or fatal), the findings= option parser."""
from typing import List, Mapping, Sequence, Tuple

MAX_REASONS = 5


class Stats:
    """What one run saw: events read, events of other kinds skipped, malformed events (with the first reasons)."""

    def __init__(self) -> None:
        self.read = 0
        self.skipped = 0
        self.malformed = 0
        self.reasons: List[str] = []

    def bad(self, reason: str) -> None:
        self.malformed += 1
        if len(self.reasons) < MAX_REASONS:
            self.reasons.append(reason)


def choose_findings(value: str, findings: Sequence[str], aliases: Mapping[str, Tuple[str, ...]]) -> Tuple[str, ...]:
    """The finding types a findings= option names, in order, aliases expanded; ValueError saying what is allowed."""
    chosen: List[str] = []
    for item in value.split(","):
        item = item.strip().lower()
        if not item:
            continue
        names = (item,) if item in findings else aliases.get(item)
        if names is None:
            raise ValueError("findings: {!r} is not one of {}".format(
                item, ", ".join(sorted(set(findings) | set(aliases)))))
        chosen.extend(n for n in names if n not in chosen)
    if not chosen:
        raise ValueError("findings: name at least one of {}".format(", ".join(findings)))
    return tuple(chosen)
