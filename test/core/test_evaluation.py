"""lpds_core.evaluation.evaluate_chunks: seeded episodes, chunk execution (all H or the first k), success."""
from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

from lpds_core.evaluation import evaluate_chunks


class Counter(gym.Env):
    """Reward 1 per step; ends after `length` steps; `success` when the last action was positive; the reset seed
    is the observation (so a test sees which seeds the episodes used)."""

    observation_space = gym.spaces.Box(-1e9, 1e9, (1,), np.float64)
    action_space = gym.spaces.Box(-1, 1, (1,), np.float64)

    def __init__(self, length: int = 10, flag: bool = True):
        self.length, self.flag, self.t, self.seed_seen = length, flag, 0, None

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t, self.seed_seen = 0, seed
        return np.array([float(seed)]), {}

    def step(self, action):
        self.t += 1
        done = self.t >= self.length
        return np.array([float(self.seed_seen)]), 1.0, done, False, ({"success": bool(action[0] > 0)} if done and self.flag else {})


def test_every_episode_runs_once_with_its_seed_and_full_length():
    seen = []

    def act(obs):
        seen.extend(obs[:, 0].tolist())
        return np.ones((len(obs), 4, 1))

    res = evaluate_chunks(lambda: Counter(10), act, n_episodes=5, seed=100, n_envs=2)
    assert res["returns"] == [10.0] * 5 and res["length"] == 10 and res["success"] == 1.0
    assert sorted(set(seen)) == [100, 101, 102, 103, 104]


@pytest.mark.parametrize("exec_steps, calls", [(None, 3), (4, 3), (2, 5), (1, 10)])
def test_exec_steps_replans_after_k_actions(exec_steps, calls):
    n = {"calls": 0}

    def act(obs):
        n["calls"] += 1
        return np.ones((len(obs), 4, 1))

    evaluate_chunks(lambda: Counter(10), act, n_episodes=1, seed=0, exec_steps=exec_steps)
    assert n["calls"] == calls  # 10 steps in chunks of min(k, 4): ceil(10 / k)


def test_success_is_nan_without_a_flag_and_bad_shapes_are_refused():
    res = evaluate_chunks(lambda: Counter(5, flag=False), lambda o: np.ones((len(o), 2, 1)), 2, seed=0)
    assert np.isnan(res["success"]) and res["length"] == 5
    res = evaluate_chunks(lambda: Counter(5), lambda o: -np.ones((len(o), 2, 1)), 2, seed=0)
    assert res["success"] == 0.0
    with pytest.raises(ValueError, match=r"\(B, H, A\)"):
        evaluate_chunks(lambda: Counter(3), lambda o: np.ones((len(o), 1)), 1, seed=0)
