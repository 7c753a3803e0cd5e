"""LP-DS simulation: Gymnasium tasks (toy, RAI pick-and-place, mug hanging) and the `lpds` command line.

`import lpds_sim` registers every environment the package ships (`ENV_IDS`). Entry points are "module:Class"
strings, so registering imports neither the env modules nor `robotic`: that happens in `gymnasium.make`.
"""
from __future__ import annotations

import gymnasium as gym

__version__ = "0.1.0"

# task name -> Gymnasium id; the one list of what the package ships (lpds_sim.rai / lpds_sim.toy re-export theirs)
ENV_IDS = {
    "multigoal": "lpds_sim/MultiGoal-v0",
    "pick_place": "lpds_sim/PickPlace-v0",
    "mug_hang": "lpds_sim/MugHang-v0",
}
_ENTRY_POINTS = {
    "multigoal": "lpds_sim.toy.multigoal:MultiGoalEnv",
    "pick_place": "lpds_sim.rai.pick_place_env:PickPlaceEnv",
    "mug_hang": "lpds_sim.rai.mug_hang_env:MugHangEnv",
}


def register_envs() -> None:
    """Register every env id with Gymnasium (idempotent). `gymnasium.make` wraps them in its passive env checker."""
    for name, env_id in ENV_IDS.items():
        if env_id not in gym.registry:
            gym.register(id=env_id, entry_point=_ENTRY_POINTS[name])


register_envs()
