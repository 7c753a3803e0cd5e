"""Run any Gymnasium env with action-chunk policies: one wrapper step = up to H env steps, open loop.

The chunk reward is the discounted sum `Σ_{k<n} γ^k r_k` over the n ≤ H steps actually
executed (the chunk stops early at termination or truncation). `info` carries
`chunk_steps` (n), `chunk_discount` (γ^n, what the TD target bootstraps with),
`chunk_return_undiscounted` (for logging returns in env units) and the last step's info.
"""
from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np


class ActionChunkWrapper(gym.Wrapper):
    def __init__(self, env: gym.Env, horizon: int, gamma: float = 0.99):
        super().__init__(env)
        space = env.action_space
        if not isinstance(space, gym.spaces.Box) or len(space.shape) != 1:
            raise ValueError(f"ActionChunkWrapper needs a 1-D Box action space, got {space}")
        if horizon < 1 or not 0.0 < gamma <= 1.0:
            raise ValueError(f"ActionChunkWrapper: horizon must be >= 1 and gamma in (0, 1], got {horizon}, {gamma}")
        self.horizon, self.gamma = int(horizon), float(gamma)
        self.action_space = gym.spaces.Box(np.repeat(space.low[None], self.horizon, 0),
                                           np.repeat(space.high[None], self.horizon, 0), dtype=space.dtype)

    def step(self, chunk: np.ndarray) -> tuple[Any, float, bool, bool, dict]:
        chunk = np.asarray(chunk)
        if chunk.shape != self.action_space.shape:
            raise ValueError(f"action chunk must have shape {self.action_space.shape} (H, A), got {chunk.shape}")
        if not np.isfinite(chunk).all():
            raise ValueError("action chunk contains NaN/inf; refusing to send it to the env")
        total, undiscounted, disc = 0.0, 0.0, 1.0
        terminated = truncated = False
        info: dict = {}
        obs = None
        n = 0
        for a in chunk:
            obs, r, terminated, truncated, info = self.env.step(a)
            total += disc * float(r)
            undiscounted += float(r)
            disc *= self.gamma
            n += 1
            if terminated or truncated:
                break
        info = dict(info, chunk_steps=n, chunk_discount=disc, chunk_return_undiscounted=undiscounted)
        return obs, total, terminated, truncated, info
