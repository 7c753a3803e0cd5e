"""The scripted Adroit operators by task, and one episode of one of them.

Each operator module (`op_<task>`) provides `operator` (the generator `script.run_episode` drives), `STYLES` (its
named styles: several per task, like robomimic's multi-human operators) and `ARM` (the actuator name prefixes its
driver servos as the arm). Tasks without a module here have no operator yet (docs/adroit.md says why).
"""
from __future__ import annotations

from types import ModuleType
from typing import Any

from lpds_core.errors import ConfigError

from . import op_hammer, op_relocate
from .script import run_episode as _run

OPERATORS: dict[str, ModuleType] = {"relocate": op_relocate, "hammer": op_hammer}


def operator_module(task: str) -> ModuleType:
    if task not in OPERATORS:
        raise ConfigError(f"no scripted Adroit operator for {task!r} yet; tasks with one: {', '.join(OPERATORS)}")
    return OPERATORS[task]


def styles(task: str) -> list[str]:
    return list(operator_module(task).STYLES)


def run_episode(env: Any, task: str, seed: int, style: str) -> dict[str, Any]:
    """One episode of `task`'s operator in `style` from `env.reset(seed=seed)` (see `script.run_episode`)."""
    mod = operator_module(task)
    if style not in mod.STYLES:
        raise ConfigError(f"unknown {task} operator style {style!r}; choose one of {', '.join(mod.STYLES)}")
    return _run(env, mod.operator, mod.ARM, seed, mod.STYLES[style])
