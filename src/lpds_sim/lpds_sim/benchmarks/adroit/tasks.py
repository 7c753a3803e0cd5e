"""The four Adroit hand tasks of gymnasium-robotics 1.4.2 by short name, and the env every part of the suite makes.

`make_env(task)` is `gym.make("AdroitHand<Task>-v1")` (200-step episodes, the v1 dense reward, normalised joint
position targets in [-1, 1]) inside `AdroitSuccess`, which changes two things for the benchmark:
- `info["success"]` is D4RL's episode success (`evaluate_success` of the DAPG/D4RL Adroit code): the goal was
  achieved on more than `success_steps` steps of the episode so far (25 for door, hammer and relocate, 20 for pen);
  the env's own per-step flag is kept as `info["goal_achieved"]`, the count as `info["goal_steps"]`. The
  evaluators read `success` at the episode's end, so it is D4RL's number.
- observations are float32 (the bases and replay buffers are float32; the env returns float64).
The env's import warning about the v1 reward change (gymnasium-robotics 1.2.1, without a version bump) is shown once
per process by gymnasium-robotics itself; docs/adroit.md says what it means for our returns.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np


@dataclass(frozen=True)
class AdroitTask:
    name: str  # our short name
    env_id: str  # gymnasium-robotics' id
    success_steps: int  # D4RL: success when the goal was achieved on more than this many steps


TASKS: dict[str, AdroitTask] = {t.name: t for t in (
    AdroitTask("pen", "AdroitHandPen-v1", 20),
    AdroitTask("door", "AdroitHandDoor-v1", 25),
    AdroitTask("hammer", "AdroitHandHammer-v1", 25),
    AdroitTask("relocate", "AdroitHandRelocate-v1", 25),
)}


def get_task(name: str) -> AdroitTask:
    from lpds_core.errors import ConfigError

    if name not in TASKS:
        raise ConfigError(f"unknown Adroit task {name!r}; choose one of {', '.join(TASKS)}")
    return TASKS[name]


class AdroitSuccess(gym.Wrapper, gym.utils.RecordConstructorArgs):
    """D4RL's episode success in `info["success"]` and float32 observations (see the module doc)."""

    def __init__(self, env: gym.Env, success_steps: int):
        gym.utils.RecordConstructorArgs.__init__(self, success_steps=success_steps)  # so gym can recreate it
        gym.Wrapper.__init__(self, env)
        self.success_steps = int(success_steps)
        space = env.observation_space
        self.observation_space = gym.spaces.Box(space.low.astype(np.float32), space.high.astype(np.float32),
                                                dtype=np.float32)
        self._goal_steps = 0

    def reset(self, **kwargs: Any) -> tuple[np.ndarray, dict[str, Any]]:
        obs, info = self.env.reset(**kwargs)
        self._goal_steps = 0
        return obs.astype(np.float32), dict(info, success=False, goal_steps=0)

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        obs, reward, term, trunc, info = self.env.step(action)
        achieved = bool(info.get("success", False))
        self._goal_steps += int(achieved)
        info = dict(info, goal_achieved=achieved, goal_steps=self._goal_steps,
                    success=self._goal_steps > self.success_steps)
        return obs.astype(np.float32), float(reward), term, trunc, info


def make_env(task: str, **kwargs: Any) -> gym.Env:
    """One per-step env of `task` (pen, door, hammer, relocate); `kwargs` go to `gym.make` (e.g. reward_type)."""
    t = get_task(task)
    return AdroitSuccess(gym.make(t.env_id, **kwargs), t.success_steps)
