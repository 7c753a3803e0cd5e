"""`lpds_bench/Avoiding-v0`: a planar re-implementation of D3IL's "Avoiding" task (Jia et al., ICLR 2024).

The end effector starts at (0.525, −0.28) and must cross the finish line y = 0.35 through three rows of cylinders
(1, 2, 3 of them at y = −0.10, 0.08, 0.26; `geometry`) without touching one. Observation (4,): [desired x,
desired y, current x, current y], as D3IL's sim loop and the RL-ready fork (allenzren/d3il) feed the agent;
action (2,): the change of the desired xy, Box ±0.01 (the fork's action space). Reward: 1.0 on the step that
crosses the finish line collision-free, else 0 (sparse success). `info`: `success`, `collided`, `mode` (0..23,
−1 until all three rows are crossed), `mode_bits` (D3IL's 9-bit code).

Deviations from D3IL (MuJoCo Panda, rod end effector, Cartesian pos-quat tracking controller, 35 substeps of
1 ms per step):
- No physics: the rod tip is a disc of radius 0.01 in the plane and the Panda with its controller is replaced by
  first-order tracking `current += TRACKING_GAIN·(desired − current)` per step (gain 0.6 chosen here; the real
  controller's lag and overshoot differ). z and the orientation are fixed, as in D3IL.
- Collision = the disc touches a cylinder anywhere along the step's straight segment (swept test); D3IL checks
  MuJoCo contacts of the rod geom once per step.
- The desired position is clipped to the workspace box x ∈ [0, 1], y ∈ [−0.5, 0.6] (D3IL does not clip; the
  observation space needs bounds).
- Episodes end at success or collision (D3IL's `_check_early_termination`; the fork does not end early) and are
  truncated after `max_episode_steps` = 150 steps (the fork's registered limit for avoiding-m5..m8; D3IL's own
  env allows 250, DPPO's avoid configs run 100).
- Reward: sparse success; D3IL's env defines none and the fork's DPPO reward (mode-5 bonus, −0.1 penalties)
  steers towards one mode, which is not this benchmark's question.
- Mode code: D3IL's rule; the row-3 `elif x > l3_top_xpos` quirk is kept (it only matters at x = 0.5 or 0.65
  exactly); see `geometry`.
- The start pose is fixed (D3IL's reset is deterministic too); `start_noise` adds an optional Gaussian offset.
"""
from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

from .geometry import FINISH_Y, START_XY, ModeTracker, segment_clearance

ENV_ID = "lpds_bench/Avoiding-v0"
ENV_VERSION = 1  # bump whenever the dynamics change: part of the cached base's key
MAX_ACTION = 0.01
TRACKING_GAIN = 0.6
MAX_EPISODE_STEPS = 150
WORKSPACE_LOW = np.array([0.0, -0.5])
WORKSPACE_HIGH = np.array([1.0, 0.6])


class AvoidingEnv(gym.Env):
    """D3IL Avoiding in the plane (see the module doc for what differs from the original)."""

    metadata = {"render_modes": []}

    def __init__(self, max_episode_steps: int = MAX_EPISODE_STEPS, tracking_gain: float = TRACKING_GAIN,
                 start_noise: float = 0.0):
        super().__init__()
        if not 0.0 < tracking_gain <= 1.0:
            raise ValueError(f"tracking_gain must be in (0, 1], got {tracking_gain}")
        self.max_episode_steps, self.tracking_gain = int(max_episode_steps), float(tracking_gain)
        self.start_noise = float(start_noise)
        low = np.concatenate([WORKSPACE_LOW, WORKSPACE_LOW]).astype(np.float32)
        high = np.concatenate([WORKSPACE_HIGH, WORKSPACE_HIGH]).astype(np.float32)
        self.observation_space = gym.spaces.Box(low, high, (4,), np.float32)
        self.action_space = gym.spaces.Box(-MAX_ACTION, MAX_ACTION, (2,), np.float32)
        self.desired = np.array(START_XY, float)
        self.current = self.desired.copy()
        self.tracker = ModeTracker()
        self.t = 0
        self.collided = self.success = False

    def _obs(self) -> np.ndarray:
        return np.concatenate([self.desired, self.current]).astype(np.float32)

    def _info(self) -> dict[str, Any]:
        return {"success": self.success, "collided": self.collided, "mode": self.tracker.mode,
                "mode_bits": self.tracker.bits}

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None
              ) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        start = np.array(START_XY, float)
        if self.start_noise > 0:
            start = start + self.np_random.normal(0.0, self.start_noise, 2)
        self.desired, self.current = start.copy(), start.copy()
        self.tracker = ModeTracker()
        self.tracker.update(*self.current)
        self.t = 0
        self.collided = self.success = False
        return self._obs(), self._info()

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        a = np.asarray(action, dtype=np.float64).reshape(-1)
        if a.shape != (2,):
            raise ValueError(f"Avoiding action must have shape (2,), got {np.shape(action)}")
        if not np.isfinite(a).all():
            raise ValueError("Avoiding action contains NaN/inf")
        if self.collided or self.success:
            raise RuntimeError("step() after the episode ended; call reset()")
        self.desired = np.clip(self.desired + np.clip(a, -MAX_ACTION, MAX_ACTION), WORKSPACE_LOW, WORKSPACE_HIGH)
        prev = self.current
        self.current = prev + self.tracking_gain * (self.desired - prev)
        self.t += 1
        self.collided = bool(np.any(segment_clearance(prev, self.current) < 0))
        self.tracker.update(*self.current)
        self.success = bool(not self.collided and self.current[1] > FINISH_Y)
        reward = 1.0 if self.success else 0.0
        terminated = self.success or self.collided
        truncated = not terminated and self.t >= self.max_episode_steps
        return self._obs(), reward, terminated, truncated, self._info()
