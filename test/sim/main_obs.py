"""The observations captured on main before bench profiles and worlds existed, and how a rollout is compared to them.

Task features appended to the state vector later (`extra_state_dim`: the mug's grasp yaw) are not in the capture:
the captured columns must match bit for bit, and the only new columns are the task's extras."""
from __future__ import annotations

import gymnasium as gym
import numpy as np
from gymnasium.envs.registration import load_env_creator

import lpds_sim
from isolation import ROOT

MAIN = ROOT / "test" / "sim" / "data" / "bench_default_obs_main.npz"


def assert_main_state(state: np.ndarray, main_state: np.ndarray, task: str) -> None:
    n = main_state.shape[1]
    assert np.array_equal(state[:, :n], main_state)
    assert state.shape[1] - n == load_env_creator(gym.spec(lpds_sim.ENV_IDS[task]).entry_point).extra_state_dim
