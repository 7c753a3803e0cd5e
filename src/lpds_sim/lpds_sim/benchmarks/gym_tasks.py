"""The Gym locomotion tasks of the benchmark and D4RL's reference scores.

D4RL normalises a return as 100·(R − REF_MIN)/(REF_MAX − REF_MIN); REF_MAX is the return of D4RL's SAC expert,
REF_MIN that of a random policy: REF_MAX_SCORE / REF_MIN_SCORE in d4rl/infos.py of Farama-Foundation/D4RL
(github.com/Farama-Foundation/D4RL/blob/master/d4rl/infos.py; the -v2 datasets reuse the -v0 values). Its "medium"
policies were SAC snapshots at roughly one third of the expert's return, so our medium target is REF_MAX / 3.
"""
from __future__ import annotations

from dataclasses import dataclass

from lpds_core.errors import ConfigError


@dataclass(frozen=True)
class GymTask:
    name: str
    env_id: str
    ref_min: float  # D4RL REF_MIN_SCORE (random policy)
    ref_max: float  # D4RL REF_MAX_SCORE (SAC expert)
    community_prefix: str  # Minari's namespace for the same task, e.g. mujoco/hopper

    @property
    def medium_target(self) -> float:
        """D4RL's medium policies: about one third of the expert's return."""
        return self.ref_max / 3.0

    def normalized(self, ret: float) -> float:
        """D4RL's normalised score (0 = random, 100 = expert)."""
        return 100.0 * (ret - self.ref_min) / (self.ref_max - self.ref_min)


TASKS: dict[str, GymTask] = {
    "hopper": GymTask("hopper", "Hopper-v5", -20.272305, 3234.3, "mujoco/hopper"),
    "walker2d": GymTask("walker2d", "Walker2d-v5", 1.629008, 4592.3, "mujoco/walker2d"),
    "halfcheetah": GymTask("halfcheetah", "HalfCheetah-v5", -280.178953, 12135.0, "mujoco/halfcheetah"),
}
MEDIUM_TOLERANCE = 0.15  # keep the first snapshot whose eval return is within ±15 % of the target


def get_task(name: str) -> GymTask:
    """The task called `name` (hopper, walker2d, halfcheetah)."""
    key = name.lower().replace("-v5", "").replace("_", "")
    if key not in TASKS:
        raise ConfigError(f"unknown gym task {name!r}; choose one of {', '.join(TASKS)}")
    return TASKS[key]
