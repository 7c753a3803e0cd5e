"""Toy tasks: 2-D multi-goal navigation (`lpds_sim/MultiGoal-v0`, registered by `import lpds_sim`) and its demos."""
from __future__ import annotations

from lpds_sim import ENV_IDS

from .multigoal import MultiGoalEnv, goal_positions, reward_map

ENV_ID = ENV_IDS["multigoal"]

__all__ = ["ENV_ID", "MultiGoalEnv", "goal_positions", "reward_map"]
