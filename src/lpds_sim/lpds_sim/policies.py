"""Resolve a `--policy` argument to a callable `policy(obs) -> action` (with optional `policy.reset()`).

Built in: `scripted` (the task's emulated-teleoperation operator) and `random`. Anything else is a path (an exported
model dir, a training run dir, ...) handled by a registered loader: a module that can load such a path calls
`register_policy_loader(...)` at import time and is listed in `POLICY_LOADER_MODULES` (append-only), so `lpds eval`
learns new policy kinds without changes here.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

# modules that register loaders for policy directories (exported ONNX models, run dirs); append yours here
POLICY_LOADER_MODULES: list[str] = [
    "lpds_sim.policy_loaders",
]


@dataclass
class PolicyLoader:
    name: str
    matches: Callable[[Path], bool]                  # does this loader understand that path?
    load: Callable[..., Callable]                      # (path, env, task, checkpoint=...) -> policy


_LOADERS: list[PolicyLoader] = []


def register_policy_loader(name: str, matches: Callable[[Path], bool], load: Callable[..., Callable]) -> None:
    _LOADERS.append(PolicyLoader(name, matches, load))


class RandomPolicy:
    def __init__(self, action_space, seed: int | None = None) -> None:
        self.space = action_space
        self.rng = np.random.default_rng(seed)

    def reset(self) -> None:
        pass

    def __call__(self, obs) -> np.ndarray:
        return self.rng.uniform(self.space.low, self.space.high).astype(np.float32)


def resolve_policy(spec: str, env, task: str, seed: int | None = None, checkpoint: str = "latest",
                   noise_scale: float = 1.0) -> Callable:
    """`checkpoint` (latest | best | PATH) picks the weights of a run folder; other policies take only latest.
    `noise_scale` c decodes c·ε (the noise-temperature floor); only our generative policies have noise."""
    from lpds_core.errors import RunError

    if spec in ("scripted", "random"):
        if noise_scale != 1.0:
            raise RunError(f"--noise-scale {noise_scale:g} scales a generative policy's noise; --policy {spec} has "
                           "none")
        if checkpoint != "latest":
            raise RunError(f"--checkpoint {checkpoint} picks a train-steer run's weights; --policy {spec} has none")
        if spec == "scripted":
            from .tasks import make_operator
            return make_operator(task, env, seed=seed)
        return RandomPolicy(env.action_space, seed)
    path = Path(spec)
    if not path.exists():
        raise RunError(f"--policy {spec}: no such file or folder, and not 'scripted' or 'random'; pass a run "
                       "folder, an `lpds export` folder, scripted or random")
    for mod in POLICY_LOADER_MODULES:
        importlib.import_module(mod)
    for loader in _LOADERS:
        if loader.matches(path):
            return loader.load(path, env, task, checkpoint=checkpoint, noise_scale=noise_scale)
    known = [ld.name for ld in _LOADERS] or ["none registered"]
    raise RunError(f"--policy {spec}: not a run folder (config.yaml) nor an export (decoder.onnx) (loaders: "
                   f"{', '.join(known)}); pass a `lpds train-*` run or an `lpds export` folder")
