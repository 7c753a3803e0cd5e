"""Run any Gymnasium env with action-chunk policies: one wrapper step = up to H env steps, open loop.

THE discounting convention of every agent over action chunks lives here, in `chunk_discounting`:
γ is per *env step*; a chunk of the n ≤ H steps actually executed (it stops early at termination or
truncation) has reward `Σ_{k<n} γ^k r_k` and bootstraps with `γ^n`, so every agent optimises the same
per-step discounted return whatever its chunk size, and an early-ended chunk stays exact. (The DSRL
reference instead sums the chunk's rewards undiscounted and discounts once per chunk with γ_c; on full
chunks its bootstrap γ_c equals ours with γ = γ_c^(1/H).) `info` carries `chunk_steps` (n),
`chunk_discount` (γ^n, what the TD target bootstraps with), `chunk_return_undiscounted` (for logging
returns in env units) and the last step's info.
"""
from __future__ import annotations

from typing import Any, Callable, Sequence

import gymnasium as gym
import numpy as np
from gymnasium.wrappers import OrderEnforcing, PassiveEnvChecker

# wrappers that hand the base env's observations through unchanged and never end an episode themselves
_OBS_PASSTHROUGH = (OrderEnforcing, PassiveEnvChecker)


def bootstrap_discount(gamma: float, n_steps: int) -> float:
    """γ^n: what a chunk transition of n executed env steps bootstraps with (stored as the replay's `discount`)."""
    if not 0.0 < gamma <= 1.0 or n_steps < 0:
        raise ValueError(f"gamma must be in (0, 1] and n_steps >= 0, got {gamma}, {n_steps}")
    return float(gamma) ** int(n_steps)


def chunk_discounting(rewards: Sequence[float], gamma: float) -> tuple[float, float]:
    """(chunk reward Σ_{k<n} γ^k r_k, bootstrap discount γ^n) of the n = len(rewards) executed env steps.
    The one definition the chunk wrapper and the training loops use for every agent."""
    total = sum(bootstrap_discount(gamma, k) * float(r) for k, r in enumerate(rewards))
    return total, bootstrap_discount(gamma, len(rewards))


def render_skipper(env: gym.Env) -> Callable[[bool], None] | None:
    """The base env's `skip_render(on)` hook, or None.

    An env whose observations are costly to render (camera images) may offer `skip_render(on)`: while on, a step
    that does not end the episode may return the previous step's images. Open-loop chunk execution reads only the
    last step's observation, so it turns the hook on for the others. None when a wrapper in between could change
    observations or end the episode itself (a TimeLimit would then end it on stale images): only wrappers in
    `_OBS_PASSTHROUGH`, or with a true `keeps_observations` attribute, may stand between."""
    e = env
    while isinstance(e, gym.Wrapper):
        if not (isinstance(e, _OBS_PASSTHROUGH) or getattr(type(e), "keeps_observations", False)):
            return None
        e = e.env
    hook = getattr(e, "skip_render", None)
    return hook if callable(hook) else None


class ActionChunkWrapper(gym.Wrapper):
    """A per-step env driven by action chunks (H, A): one `step` executes the chunk's first `exec_steps` actions
    (None: all H; fewer = re-plan sooner, DPPO's act_steps < horizon) and returns their discounted reward sum."""

    def __init__(self, env: gym.Env, horizon: int, gamma: float = 0.99, exec_steps: int | None = None):
        super().__init__(env)
        if exec_steps is not None and not 1 <= int(exec_steps) <= int(horizon):
            raise ValueError(f"ActionChunkWrapper: exec_steps must be in [1, horizon={horizon}] or None, "
                             f"got {exec_steps}")
        self.exec_steps = int(horizon) if exec_steps is None else int(exec_steps)
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
        rewards: list[float] = []
        terminated = truncated = False
        info: dict = {}
        obs = None
        skip = render_skipper(self.env)  # only the chunk's last observation is read: render no other
        try:
            for k, a in enumerate(chunk[:self.exec_steps]):
                if skip is not None:
                    skip(k < self.exec_steps - 1)
                obs, r, terminated, truncated, info = self.env.step(a)
                rewards.append(float(r))
                if terminated or truncated:
                    break
        finally:
            if skip is not None:
                skip(False)
        total, disc = chunk_discounting(rewards, self.gamma)
        info = dict(info, chunk_steps=len(rewards), chunk_discount=disc, chunk_return_undiscounted=sum(rewards))
        return obs, total, terminated, truncated, info
