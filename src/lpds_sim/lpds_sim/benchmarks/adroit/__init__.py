"""Adroit (gymnasium-robotics 1.4.2: AdroitHand{Pen,Door,Hammer,Relocate}-v1) for `lpds bench adroit`: the envs
by short name (`tasks`, registered with Gymnasium on import so `gym.make("AdroitHandRelocate-v1")` works), the hand's
servo and inverse kinematics read from the MuJoCo model (`control`), scripted operators with privileged state
(`operators`), their robomimic-style demos (`demos`) and the cached bases trained on them (`base`).
docs/adroit.md says how each operator works and how good it is."""
from __future__ import annotations

import gymnasium as gym
import gymnasium_robotics  # its import registers AdroitHand*-v1 (and prints its note on the v1 reward change)

gym.register_envs(gymnasium_robotics)

from .tasks import TASKS, AdroitSuccess, get_task, make_env  # noqa: E402

__all__ = ["TASKS", "AdroitSuccess", "get_task", "make_env"]
