"""Streams one action chunk step per control tick, and says when to plan the next chunk.

Steps are consumed in order (the actions are end-effector deltas: skipping one would drift the target).
`replan_after` steps into a chunk the node asks for a new one from a fresh observation (receding horizon);
if no new chunk arrives, the old one keeps streaming until it runs out, then the scheduler reports empty and
the node holds.
"""
from __future__ import annotations

import numpy as np


class ChunkScheduler:
    def __init__(self, replan_after: int = 4):
        if replan_after < 1:
            raise ValueError(f"replan_after must be >= 1 step, got {replan_after}")
        self.replan_after = int(replan_after)
        self._chunk: np.ndarray | None = None
        self._i = 0

    def set_chunk(self, chunk: np.ndarray) -> None:
        c = np.asarray(chunk, dtype=np.float64)
        if c.ndim != 2 or c.shape[0] < 1:
            raise ValueError(f"an action chunk must be (H, A) with H >= 1, got shape {c.shape}")
        self._chunk, self._i = c, 0

    def clear(self) -> None:
        self._chunk, self._i = None, 0

    @property
    def remaining(self) -> int:
        return 0 if self._chunk is None else self._chunk.shape[0] - self._i

    def needs_plan(self) -> bool:
        return self._chunk is None or self._i >= min(self.replan_after, self._chunk.shape[0])

    def pop(self) -> np.ndarray | None:
        """The next step to execute, or None when the chunk is used up."""
        if self.remaining <= 0:
            return None
        a = self._chunk[self._i]
        self._i += 1
        return a
