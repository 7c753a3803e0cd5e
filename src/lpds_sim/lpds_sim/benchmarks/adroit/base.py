"""The Adroit suite's frozen bases: BC on the scripted operator's demos, trained into the cache on first use.

`adroit_base_policy(task, kind=...)` makes the task's demos (`demos.make_demos`, into CACHE/adroit/TASK/) when they
are missing and trains a flow-matching (or, for DPPO, a diffusion: T = 20) base on them through the suites'
shared `benchmarks.cached_base.cached_bc_base`, chunk H = 4 executed whole (as the other sparse-success suites).
D4RL's Adroit "human" sets hold 25 demos per task; here the base sees 100 (on 25 demos, and on 100 with 3k-5k BC
steps, it never succeeded), and stays clearly below the operator (Relocate: 4-10 % vs 99 %, numbers in
docs/adroit.md): the room steering needs.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ..cached_base import cached_bc_base, resolve_settings, settings_key
from .demos import MAKER, default_path, load_adroit_demos, make_demos
from .tasks import get_task

DEFAULT_BASE = dict(n_demos=100, bc_steps=10_000, horizon=4, hidden=256, n_layers=3, num_steps=8, demo_seed=0,
                    bc_seed=0, lr=1e-3, batch_size=256)
DIFFUSION_BASE = dict(num_train_steps=20)


def task_tag(task: str) -> str:
    """The `task` a base's checkpoint metadata carries (checked on load)."""
    return f"adroit_{get_task(task).name}"


def demos_path(task: str, n_demos: int, demo_seed: int, cache_dir: str | os.PathLike | None = None) -> Path:
    """The cached demo file of (task, n_demos, demo_seed), made when missing."""
    path = default_path(task, n_demos, demo_seed, cache_dir)
    if not path.is_file():
        make_demos(task, n_demos, seed=demo_seed, out=path)
    return path


def adroit_base_policy(task: str, cache_dir: str | os.PathLike | None = None, progress: bool = True,
                       retrain: bool = False, kind: str = "flow", **overrides: int | float) -> tuple[Any, Path]:
    """(frozen base of `task`, its checkpoint path), from the cache or trained there."""
    from lpds_sim.toy.base_policy import default_cache_dir

    s = resolve_settings("adroit", kind, DEFAULT_BASE, DIFFUSION_BASE, overrides)
    cache = Path(cache_dir or default_cache_dir())
    key = settings_key(dict(s, kind=kind, task=task, maker=MAKER))
    path = cache / "adroit" / task / f"{kind}_base_{key}.safetensors"
    return cached_bc_base(path, task_tag(task), kind, s, progress=progress, retrain=retrain,
                          episodes=lambda: load_adroit_demos(demos_path(task, int(s["n_demos"]),
                                                                        int(s["demo_seed"]), cache)))
