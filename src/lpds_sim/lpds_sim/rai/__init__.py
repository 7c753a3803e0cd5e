"""RAI (PyPI `robotic`) Franka Panda tasks as Gymnasium environments.

Importing this module registers the environment ids; it does not import `robotic` (entry points are strings).
"""
from __future__ import annotations

import gymnasium as gym

ENV_IDS = {
    "pick_place": "lpds_sim/PickPlace-v0",
}


def _register(env_id: str, entry_point: str) -> None:
    if env_id not in gym.registry:
        gym.register(id=env_id, entry_point=entry_point, disable_env_checker=True)


_register("lpds_sim/PickPlace-v0", "lpds_sim.rai.pick_place_env:PickPlaceEnv")

ENV_IDS["mug_hang"] = "lpds_sim/MugHang-v0"
_register("lpds_sim/MugHang-v0", "lpds_sim.rai.mug_hang_env:MugHangEnv")
