"""Counters one command run keeps, so malformed and skipped events are reported instead of lost or fatal."""
from typing import List

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
