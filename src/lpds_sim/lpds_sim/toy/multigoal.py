"""2-D multi-goal navigation: a point starts near the origin; four equal Gaussian reward peaks at (±g,0), (0,±g).

Every goal is worth the same, so a good policy may pick any of them: the task measures whether steering
improves return *without* collapsing the base policy's four modes. The per-step reward is
`Σ_i exp(−‖x − g_i‖² / (2σ²))` (≤ 1 near a peak): return rewards reaching a goal fast and staying on it.
"""
from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np


def goal_positions(goal_distance: float) -> np.ndarray:
    g = float(goal_distance)
    return np.array([[g, 0.0], [0.0, g], [-g, 0.0], [0.0, -g]], dtype=np.float64)


def reward_map(points: np.ndarray, goals: np.ndarray, sigma: float) -> np.ndarray:
    """Reward at points (..., 2): the sum of the four Gaussian peaks."""
    d2 = ((np.asarray(points)[..., None, :] - goals) ** 2).sum(-1)
    return np.exp(-d2 / (2 * sigma**2)).sum(-1)


class MultiGoalEnv(gym.Env):
    """Observation: position (2,). Action: velocity in [−1, 1]² scaled by `max_step` per step.

    Episodes last `max_steps` steps (truncation only: the reward keeps the point on a peak, no termination).
    `info["goal"]` is the index of the goal within `success_radius` of the point, or −1.
    """

    metadata = {"render_modes": []}

    def __init__(self, goal_distance: float = 1.5, reward_sigma: float = 0.2, max_step: float = 0.1,
                 max_steps: int = 40, start_noise: float = 0.02, success_radius: float = 0.25,
                 bound: float = 2.0):
        super().__init__()
        self.goals = goal_positions(goal_distance)
        self.goal_distance, self.reward_sigma = float(goal_distance), float(reward_sigma)
        self.max_step, self.max_steps = float(max_step), int(max_steps)
        self.start_noise, self.success_radius, self.bound = float(start_noise), float(success_radius), float(bound)
        self.observation_space = gym.spaces.Box(-self.bound, self.bound, (2,), np.float32)
        self.action_space = gym.spaces.Box(-1.0, 1.0, (2,), np.float32)
        self.pos = np.zeros(2)
        self.t = 0

    def goal_index(self, pos: np.ndarray) -> int:
        d = np.linalg.norm(self.goals - pos, axis=1)
        i = int(np.argmin(d))
        return i if d[i] <= self.success_radius else -1

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict]:
        super().reset(seed=seed)
        self.pos = self.np_random.normal(0.0, self.start_noise, 2)
        self.t = 0
        return self.pos.astype(np.float32), {"goal": -1}

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict]:
        a = np.asarray(action, dtype=np.float64)
        if a.shape != (2,):
            raise ValueError(f"MultiGoal action must have shape (2,), got {a.shape}")
        if not np.isfinite(a).all():
            raise ValueError("MultiGoal action contains NaN/inf")
        self.pos = np.clip(self.pos + self.max_step * np.clip(a, -1.0, 1.0), -self.bound, self.bound)
        self.t += 1
        r = float(reward_map(self.pos, self.goals, self.reward_sigma))
        return self.pos.astype(np.float32), r, False, self.t >= self.max_steps, {"goal": self.goal_index(self.pos)}
