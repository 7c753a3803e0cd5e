"""Adroit demonstrations made by the scripted operators, as robomimic-style HDF5 (the RoboMimic part's layout).

The paper's Adroit data are 25 human teleoperation demos per task (DAPG's, via D4RL), which cannot be downloaded
here; `make_demos` rolls the scripted operators out from seeded resets instead (styles cycling), keeps the
successful episodes only and writes them through `lpds_core.demos_io` like `robomimic_data.make_demos`: `data`
attrs `env_args` (JSON: `env_name` = the gymnasium-robotics id, `type` = 2 (robomimic's gym type), `env_kwargs`,
`env_version`), `data/demo_k` with `obs/state` and `next_obs/state` (the env's flat observation), `actions`
(normalised joint targets), `rewards` (the env's v1 dense reward), `dones`, `states` (qpos ‖ qvel) and attrs `seed`
(the reset seed: replaying it restores the object placement, which Adroit keeps in the model, not the state),
`operator`; masks `train`/`valid` (90/10) and one per style. `load_adroit_demos` reads them back for BC.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from lpds_core.demos_io import Episode, write_demos
from lpds_core.errors import ConfigError

from ..robomimic_data import MakeSummary, check_target, collect_successes, demo_masks, load_robomimic
from .operators import run_episode, styles
from .tasks import get_task, make_env

MAKER = "lpds scripted adroit demos v2"  # stamped on our files (only those may be overwritten); bump the version
# whenever an operator or the driver changes: it is part of the cached bases' key
OBS_KEY = "state"
GYM_TYPE = 2  # robomimic's EnvType.GYM_TYPE


def data_root(cache_dir: str | os.PathLike | None = None) -> Path:
    """Where made demos go: CACHE/adroit, CACHE being `cache_dir`, $LPDS_CACHE or ~/.cache/lpds (the suite's cache,
    so the bases it trains find them)."""
    from lpds_sim.toy.base_policy import default_cache_dir

    return Path(cache_dir or default_cache_dir()) / "adroit"


def default_path(task: str, n_demos: int, seed: int, cache_dir: str | os.PathLike | None = None) -> Path:
    return data_root(cache_dir) / task / f"scripted_n{n_demos}_seed{seed}.hdf5"


def env_args(task: str) -> dict[str, Any]:
    import gymnasium_robotics

    return {"env_name": get_task(task).env_id, "type": GYM_TYPE, "env_version": gymnasium_robotics.__version__,
            "env_kwargs": {}, "obs_keys": [OBS_KEY],
            "actions": "normalised joint position targets in [-1, 1] (the env's action space)",
            "success": f"D4RL's: goal achieved on more than {get_task(task).success_steps} steps"}


def make_demos(task: str, n_demos: int, seed: int = 0, out: str | os.PathLike | None = None,
               overwrite: bool = False, progress: bool = False, cache_dir: str | os.PathLike | None = None
               ) -> MakeSummary:
    """Roll the operator out until `n_demos` succeed and write them to `out` (default: the cache).

    Episode i starts from `reset(seed=seed * 1_000_003 + i)` with style i mod (number of styles), so a seed always
    gives the same file. An existing file is replaced only with `overwrite` and only if this maker wrote it."""
    get_task(task)
    if n_demos < 1:
        raise ConfigError(f"--n-demos must be >= 1, got {n_demos}")
    names = styles(task)
    path = Path(out) if out else default_path(task, n_demos, seed, cache_dir)
    check_target(path, overwrite, MAKER)
    env = make_env(task)
    try:
        got = collect_successes(lambda s, style: run_episode(env, task, s, style), names, n_demos, seed, task,
                                "gymnasium-robotics", progress)
    finally:
        env.close()
    kept = [Episode({OBS_KEY: ep["obs"]}, ep["actions"], ep["rewards"], ep["dones"].astype(bool),
                    attrs={"seed": ep["seed"], "operator": ep["style"], "return": ep["ret"],
                           "goal_steps": ep["goal_steps"]},
                    next_obs={OBS_KEY: ep["next_obs"]}, states=ep["states"]) for ep in got.kept]
    attempts, per_style, returns = got.attempts, got.per_style, got.returns
    check_target(path, overwrite, MAKER)  # again: another maker may have written it meanwhile
    write_demos(path, kept, env_args(task), masks=demo_masks([e.attrs["operator"] for e in kept], names, seed),
                attrs={"maker": MAKER, "task": task, "seed": seed, "attempts": attempts,
                       "operator_success_rate": len(kept) / attempts, "operator_return": float(np.mean(returns)),
                       "demo_return": float(np.mean([e.attrs["return"] for e in kept]))})
    return MakeSummary(path, len(kept), attempts, len(kept) / attempts,
                       {s: (v[0], v[1]) for s, v in per_style.items()}, float(np.mean([len(e) for e in kept])),
                       float(np.mean(returns)))


def load_adroit_demos(path: str | os.PathLike, split: str | None = None) -> list[dict[str, np.ndarray]]:
    """The demos of an Adroit file as BC episodes ({"obs" (T, O), "actions" (T, A), ...}; `split` a mask)."""
    episodes, _ = load_robomimic(path, split=split, keys=(OBS_KEY,))
    return episodes
