"""Avoiding's demonstrations and frozen bases, cached like the toy's (`lpds_sim.toy.base_policy`).

`avoiding_base_policy(kind=...)` returns the flow-matching (or, for DPPO, the diffusion: DDPM training over T = 20,
DPPO's avoid setting) base trained by the project's BC (`lpds_core.bc`) on the scripted operator's demos, chunk
H = 4 (DPPO's avoid chunk). The demos are written once as robomimic-style HDF5 (`lpds_core.demos_io`, obs key
`state`), so `lpds train-base --data` reads them too. File names carry a hash of every setting that changes them
(and the env's and operator's versions): a cached file is reused only when a fresh one would be identical, and
an existing file under a name is never replaced unless `retrain=True` asks for it.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from ..cached_base import KINDS, cached_bc_base, resolve_settings, settings_key
from .demos import DEMO_VERSION, make_demos
from .env import ENV_ID, ENV_VERSION

TASK = "d3il_avoiding"
DEFAULT_BASE = dict(n_demos=480, bc_steps=8000, horizon=4, hidden=256, n_layers=3, num_steps=8, demo_seed=0,
                    bc_seed=0, lr=1e-3, batch_size=256)
DIFFUSION_BASE = dict(num_train_steps=20)
__all__ = ["KINDS", "TASK", "avoiding_base_policy", "demos_file", "load_demo_episodes"]


def default_cache_dir() -> Path:
    from lpds_sim.toy.base_policy import default_cache_dir as toy_cache

    return toy_cache()


def _key(settings: dict[str, Any]) -> str:
    return settings_key(dict(settings, demo_version=DEMO_VERSION, env_version=ENV_VERSION))


def demos_file(n_demos: int, demo_seed: int, cache_dir: str | os.PathLike | None = None) -> Path:
    """The cached demo file of (n_demos, demo_seed): made (and its operator statistics written beside it as JSON)
    when missing."""
    from lpds_core.demos_io import Episode, write_demos

    path = Path(cache_dir or default_cache_dir()) / f"avoiding_demos_{_key(dict(n=n_demos, seed=demo_seed))}.hdf5"
    if path.is_file():
        return path
    episodes, stats = make_demos(n_demos, seed=demo_seed)
    eps = [Episode({"state": e["obs"]}, e["actions"], _rewards(len(e["actions"])), _dones(len(e["actions"])),
                   {"mode": e["mode"]}) for e in episodes]
    write_demos(path, eps, {"env_name": ENV_ID, "type": "lpds_bench", "env_kwargs": {}, "obs_keys": ["state"],
                            "actions": "delta of the desired xy, Box ±0.01"},
                attrs={"operator_success_rate": stats["success_rate"], "tries": stats["tries"]})
    path.with_suffix(".json").write_text(json.dumps(stats, indent=1) + "\n")
    return path


def _rewards(t: int) -> np.ndarray:
    r = np.zeros(t, np.float32)
    r[-1] = 1.0  # kept demos all succeed on their last step
    return r


def _dones(t: int) -> np.ndarray:
    d = np.zeros(t, np.int64)
    d[-1] = 1
    return d


def load_demo_episodes(path: str | os.PathLike) -> list[dict[str, Any]]:
    """The demo file as make_chunks' episodes ({"obs", "actions", "mode"})."""
    from lpds_core.demos_io import load_demos

    return [{"obs": ep.obs["state"], "actions": ep.actions, "mode": int(ep.attrs["mode"])}
            for ep in load_demos(path)]


def avoiding_base_policy(cache_dir: str | os.PathLike | None = None, progress: bool = True, retrain: bool = False,
                         kind: str = "flow", **overrides: int | float) -> tuple[Any, Path]:
    """(frozen flow-matching or diffusion base, its checkpoint path): loaded from the cache or trained there
    (deterministic per demo_seed / bc_seed up to float non-determinism)."""
    s = resolve_settings("avoiding", kind, DEFAULT_BASE, DIFFUSION_BASE, overrides)
    cache = Path(cache_dir or default_cache_dir())
    path = cache / f"avoiding_{kind}_{_key(dict(s, kind=kind))}.safetensors"
    return cached_bc_base(path, TASK, kind, s, progress=progress, retrain=retrain,
                          episodes=lambda: load_demo_episodes(demos_file(int(s["n_demos"]), int(s["demo_seed"]),
                                                                         cache)))
