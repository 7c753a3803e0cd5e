"""On-policy rollout storage: what the steering loop collects for an on-policy agent (DPPO) between updates.

One entry per vector step, each over all E envs: the observation, what the agent returned with the chunk
(`extras`, e.g. DPPO's denoising chain), the chunk reward Σγ^k r_k, its bootstrap discount γ^n, `terminated`
(true termination), `ended` (terminated or truncated) and the next observation (a finished episode's final one).
The same conventions as the replay buffer (lpds_core.replay), so both kinds of agent see one definition.
"""
from __future__ import annotations

from typing import Any

import numpy as np


def _stack(items: list[Any]) -> Any:
    if isinstance(items[0], dict):
        return {k: np.stack([np.asarray(it[k]) for it in items]) for k in items[0]}
    return np.stack([np.asarray(it) for it in items])


class Rollout:
    """add(...) one vector step; arrays() → {key: (T, E, ...)}; clear() after the update."""

    KEYS = ("obs", "reward", "discount", "terminated", "ended", "next_obs")

    def __init__(self, capacity: int):
        if capacity < 1:
            raise ValueError(f"rollout capacity must be >= 1, got {capacity}")
        self.capacity = int(capacity)
        self._steps: list[dict[str, Any]] = []

    def __len__(self) -> int:
        return len(self._steps)

    @property
    def full(self) -> bool:
        return len(self._steps) >= self.capacity

    def add(self, obs: Any, extras: dict[str, np.ndarray], reward: Any, discount: Any, terminated: Any,
            ended: Any, next_obs: Any) -> None:
        clash = set(extras) & set(self.KEYS)
        if clash:
            raise ValueError(f"rollout extras may not reuse the names {sorted(clash)}")
        self._steps.append({"obs": obs, "reward": np.asarray(reward, np.float64),
                            "discount": np.asarray(discount, np.float64),
                            "terminated": np.asarray(terminated, np.float64),
                            "ended": np.asarray(ended, np.float64), "next_obs": next_obs, **extras})

    def arrays(self) -> dict[str, Any]:
        if not self._steps:
            raise ValueError("the rollout is empty: collect at least one step before an update")
        return {k: _stack([s[k] for s in self._steps]) for k in self._steps[0]}

    def clear(self) -> None:
        self._steps = []
