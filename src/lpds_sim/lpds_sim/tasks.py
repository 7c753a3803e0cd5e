"""Task registry: one entry per RAI task, so the CLI (`lpds demos`, `lpds eval`), the grid protocol and the vector
envs look tasks up by name. A new task adds one `register_task(TaskSpec(...))` line (see the bottom of this file).
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym

from lpds_core.bench_profile import BenchSetting  # noqa: F401  (the one `bench_profile` field of the task settings)
from lpds_sim import ENV_IDS


@dataclass(frozen=True)
class TaskSpec:
    name: str                       # CLI name, e.g. "pick_place"
    env_id: str                     # Gymnasium id, e.g. "lpds_sim/PickPlace-v0"
    operator: str                   # "module:Class" of the scripted operator (a teleop.ScriptedOperator)
    grid: tuple[int, int, int] = (2, 4, 5)   # rows, cols, trials per cell of the evaluation grid
    default_demos: int = 29
    env_kwargs: dict[str, Any] = field(default_factory=dict)  # defaults for gym.make


TASKS: dict[str, TaskSpec] = {}


def register_task(spec: TaskSpec) -> None:
    TASKS[spec.name] = spec


def get_task(name: str) -> TaskSpec:
    if name not in TASKS:
        raise KeyError(f"unknown task {name!r}; known tasks: {sorted(TASKS)}")
    return TASKS[name]


def _load(path: str):
    module, _, attr = path.partition(":")
    return getattr(importlib.import_module(module), attr)


def make_env(name: str, **kwargs) -> gym.Env:
    """`gym.make` for a registered task, with the task's default kwargs (overridden by `kwargs`).

    The ids are registered by `import lpds_sim` (which importing this module has done)."""
    spec = get_task(name)
    return gym.make(spec.env_id, **{**spec.env_kwargs, **kwargs})


def make_operator(name: str, env: gym.Env, style=None, seed: int | None = None):
    """The task's scripted operator bound to `env` (usable as a policy: `op.reset()`, `op(obs) -> action`)."""
    return _load(get_task(name).operator)(env, style=style, seed=seed)


register_task(TaskSpec("pick_place", ENV_IDS["pick_place"], "lpds_sim.rai.pick_place_teleop:PickPlaceOperator",
                       grid=(2, 4, 5), default_demos=29))
register_task(TaskSpec("mug_hang", ENV_IDS["mug_hang"], "lpds_sim.rai.mug_teleop:MugHangOperator",
                       grid=(2, 2, 5), default_demos=20))
