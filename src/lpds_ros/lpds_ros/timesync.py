"""Approximate-time matching of two stamped streams (our small stand-in for message_filters, which has no wheel).

Each stream keeps a short queue ordered by stamp; a message older than or equal to the newest one already seen
on its stream is rejected (out of order) — unless the caller passes `now` and the newer ones lie after it: those
came from a clock running ahead (or one that jumped back) and must not block the stream, so they are dropped.
`latest_pair` returns the newest pair whose stamps differ by at most `slop` seconds.
"""
from __future__ import annotations

from collections import deque
from typing import Any, Generic, TypeVar

A = TypeVar("A")
B = TypeVar("B")


class ApproxTimePairBuffer(Generic[A, B]):
    def __init__(self, slop: float = 0.05, queue_size: int = 10):
        if slop < 0 or queue_size < 1:
            raise ValueError("slop must be >= 0 seconds and queue_size >= 1")
        self.slop = float(slop)
        self._queues: tuple[deque, deque] = (deque(maxlen=queue_size), deque(maxlen=queue_size))
        self.rejected_out_of_order = 0

    def _add(self, i: int, stamp: float, msg: Any, now: float | None) -> bool:
        q = self._queues[i]
        if stamp != stamp or stamp in (float("inf"), float("-inf")):  # NaN or Inf stamp
            self.rejected_out_of_order += 1
            return False
        if q and stamp <= q[-1][0] and now is not None and q[-1][0] > now >= stamp:
            while q and q[-1][0] > now:  # stamps from the future cannot hold back messages stamped now
                q.pop()
        if q and stamp <= q[-1][0]:
            self.rejected_out_of_order += 1
            return False
        q.append((float(stamp), msg))
        return True

    def add_a(self, stamp: float, msg: A, now: float | None = None) -> bool:
        """False when the stamp is not newer than the last one on stream A (message dropped)."""
        return self._add(0, stamp, msg, now)

    def add_b(self, stamp: float, msg: B, now: float | None = None) -> bool:
        return self._add(1, stamp, msg, now)

    def reached(self, i: int, stamp: float) -> bool:
        """Stream i (0: A, 1: B) has a message stamped at or after `stamp`: no closer match can still come."""
        q = self._queues[i]
        return bool(q) and q[-1][0] >= stamp

    def unmatched_a(self) -> tuple[float, float | None] | None:
        """(stamp of the newest A, stamp of the B nearest to it or None) when that A has no B within slop."""
        qa, qb = self._queues
        if not qa:
            return None
        sa = qa[-1][0]
        if not qb:
            return sa, None
        sb = min((s for s, _ in qb), key=lambda s: abs(s - sa))
        return None if abs(sb - sa) <= self.slop else (sa, sb)

    def sizes(self) -> tuple[int, int]:
        return len(self._queues[0]), len(self._queues[1])

    def latest_pair(self) -> tuple[float, A, float, B] | None:
        """Newest A with a B within slop (closest such B): (stamp_a, a, stamp_b, b), or None."""
        qa, qb = self._queues
        if not qa or not qb:
            return None
        for sa, a in reversed(qa):
            best = min(qb, key=lambda sb_b: abs(sb_b[0] - sa))
            if abs(best[0] - sa) <= self.slop:
                return sa, a, best[0], best[1]
        return None

    def newest_stamp(self) -> float | None:
        stamps = [q[-1][0] for q in self._queues if q]
        return min(stamps) if len(stamps) == 2 else None

    def clear(self) -> None:
        for q in self._queues:
            q.clear()
