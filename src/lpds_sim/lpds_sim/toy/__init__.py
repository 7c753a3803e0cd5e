"""Toy tasks: 2-D multi-goal navigation (registered as `lpds_sim/MultiGoal-v0`) and its emulated demos."""
from __future__ import annotations

import gymnasium as gym

from .multigoal import MultiGoalEnv, goal_positions, reward_map

ENV_ID = "lpds_sim/MultiGoal-v0"
if ENV_ID not in gym.registry:
    gym.register(id=ENV_ID, entry_point="lpds_sim.toy.multigoal:MultiGoalEnv")

__all__ = ["ENV_ID", "MultiGoalEnv", "goal_positions", "reward_map"]
