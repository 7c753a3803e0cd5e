"""Which reason the policy node is holding for now, and when to tell the log and ~/hold_reason (ROS-free).

A hold reason carries numbers ("observation is 0.532 s old") that change every tick; it is a *new* reason only
when its kind (the text with numbers masked) changes. The topic hears every change of kind at once; the log hears
it at once too unless it spoke less than `min_interval` ago, in which case `flush` (called from a timer) writes
the current reason as soon as the interval is over. So the log names the reason of now within `min_interval`,
at most 1/min_interval lines a second whatever arrives, and only a fixed-length history is kept.
"""
from __future__ import annotations

import re
from collections import deque

_NUMBER = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?|nan|inf", re.IGNORECASE)


def reason_kind(reason: str) -> str:
    """The reason with its numbers masked: what decides whether a reason is new."""
    return _NUMBER.sub("#", reason)


class HoldReasons:
    def __init__(self, min_interval: float = 0.5, history: int = 32):
        self.min_interval = float(min_interval)
        self.current = ""  # "" while streaming
        self._kind = ""
        self._logged_kind = ""
        self._last_log = float("-inf")
        self.history: deque[tuple[float, str]] = deque(maxlen=history)  # the last changes, for diagnostics
        self.changes = 0

    @property
    def holding(self) -> bool:
        return bool(self.current)

    def update(self, reason: str, now: float) -> tuple[bool, str | None]:
        """Record the reason of now ("" = streaming). Returns (publish it on the topic, log line or None)."""
        kind = reason_kind(reason)
        changed = kind != self._kind
        self.current, self._kind = reason, kind
        if changed:
            self.changes += 1
            self.history.append((now, reason))
        return changed, self.flush(now)

    def flush(self, now: float) -> str | None:
        """The log line owed for the current reason, if the log does not name it yet and may speak again."""
        if self._kind == self._logged_kind or now - self._last_log < self.min_interval:
            return None
        self._logged_kind, self._last_log = self._kind, now
        return f"holding: {self.current}" if self.current else "streaming resumed"
