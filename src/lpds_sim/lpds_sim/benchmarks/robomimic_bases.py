"""RoboMimic's frozen bases: the project's BC on the scripted operators' demos, cached like Avoiding's.

robomimic's human datasets are out of reach, so a task's base is trained on `n_demos` scripted demos
(`robomimic_data.make_demos`, written once into the dataset cache, ~/.cache/lpds/robomimic, where
`lpds datasets make TASK-scripted` puts them too). Chunk H = 4 executed whole and 5 sampler steps (DPPO's and
DSRL's low-dim robomimic settings use 4-step chunks); diffusion T = 20 as on Gym. Fewer demos than robomimic's
200 keep the base clearly below its operator, so there is room for steering (the table in bench/RESULTS.md).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from .cached_base import cached_bc_base, resolve_settings, settings_key
from .robomimic_data import MAKER, default_path, load_robomimic, make_demos
from .robomimic_tasks import get_task

DEFAULT_BASE = dict(n_demos=50, bc_steps=10_000, horizon=4, hidden=256, n_layers=3, num_steps=5, demo_seed=0,
                    bc_seed=0, lr=1e-3, batch_size=256)
# measured (40 seeded episodes, flow base): Lift 3 demos / 2k BC steps 27/40, Can 15 / 5k 18/40, Square 50 / 10k
# 12/40; with 20 Lift demos and 10k steps the base already reaches 38/40 (50 Can demos: 34/40 of 20 episodes),
# next to the operators' 96-100 %
TASK_BASE: dict[str, dict[str, Any]] = {"lift": {"n_demos": 3, "bc_steps": 2_000},
                                        "can": {"n_demos": 15, "bc_steps": 5_000}, "square": {}}
DIFFUSION_BASE = dict(num_train_steps=20)


def default_cache_dir() -> Path:
    from lpds_sim.toy.base_policy import default_cache_dir as toy_cache

    return toy_cache()


def base_task_tag(task: str) -> str:
    """The `task` a robomimic base's checkpoint carries (and is checked against on load)."""
    return f"robomimic_{get_task(task).name}"


def demo_file(task: str, n_demos: int, seed: int) -> Path:
    """The scripted demo file of (task, n_demos, seed) in the dataset cache: made there when missing."""
    t = get_task(task)
    path = default_path(t, n_demos, seed)
    if not path.is_file():
        make_demos(t.name, n_demos, seed=seed, out=path, progress=False)
    return path


def robomimic_base_policy(task: str, cache_dir: str | os.PathLike | None = None, progress: bool = True,
                          retrain: bool = False, kind: str = "flow", **overrides: int | float) -> tuple[Any, Path]:
    """(frozen flow-matching or diffusion base of `task`, its checkpoint path): from the cache or trained there."""
    t = get_task(task)
    s = resolve_settings("robomimic", kind, dict(DEFAULT_BASE, **TASK_BASE[t.name]), DIFFUSION_BASE, overrides)
    key = settings_key(dict(s, kind=kind, task=t.name, maker=MAKER))
    path = Path(cache_dir or default_cache_dir()) / f"robomimic_{t.name}_{kind}_{key}.safetensors"

    def episodes():
        eps, _ = load_robomimic(demo_file(t.name, int(s["n_demos"]), int(s["demo_seed"])))
        return eps

    return cached_bc_base(path, base_task_tag(t.name), kind, s, episodes=episodes, progress=progress,
                          retrain=retrain)
