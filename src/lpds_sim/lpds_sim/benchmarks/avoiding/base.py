"""Avoiding's demonstrations and frozen bases, cached like the toy's (`lpds_sim.toy.base_policy`).

`avoiding_base_policy(kind=...)` returns the flow-matching (or, for DPPO, the diffusion: DDPM training over T = 20,
DPPO's avoid setting) base trained by the project's BC (`lpds_core.bc`) on the scripted operator's demos, chunk
H = 4 (DPPO's avoid chunk). The demos are written once as robomimic-style HDF5 (`lpds_core.demos_io`, obs key
`state`), so `lpds train-base --data` reads them too. File names carry a hash of every setting that changes them
(and the env's and operator's versions): a cached file is reused only when a fresh one would be identical, and
an existing file under a name is never replaced unless `retrain=True` asks for it.
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from lpds_core.errors import CheckpointError

from .demos import DEMO_VERSION, make_demos
from .env import ENV_ID, ENV_VERSION

TASK = "d3il_avoiding"
DEFAULT_BASE = dict(n_demos=480, bc_steps=8000, horizon=4, hidden=256, n_layers=3, num_steps=8, demo_seed=0,
                    bc_seed=0, lr=1e-3, batch_size=256)
DIFFUSION_BASE = dict(num_train_steps=20)
KINDS = ("flow", "diffusion")


def default_cache_dir() -> Path:
    from lpds_sim.toy.base_policy import default_cache_dir as toy_cache

    return toy_cache()


def _key(settings: dict[str, Any]) -> str:
    s = dict(settings, demo_version=DEMO_VERSION, env_version=ENV_VERSION)
    return hashlib.sha1(json.dumps(s, sort_keys=True).encode()).hexdigest()[:12]


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
    import torch
    from lpds_core.bc import make_chunks, train_bc
    from lpds_core.checkpoint import load_backbone, save_backbone
    from lpds_core.diffusion import DiffusionPolicy
    from lpds_core.flow_matching import FlowMatchingPolicy

    if kind not in KINDS:
        raise ValueError(f"unknown avoiding base kind {kind!r}; choose one of {KINDS}")
    defaults = dict(DEFAULT_BASE, **(DIFFUSION_BASE if kind == "diffusion" else {}))
    bad = sorted(set(overrides) - set(defaults))
    if bad:
        raise ValueError(f"unknown avoiding base setting(s) {bad}; valid: {sorted(defaults)}")
    s = dict(defaults, **overrides)
    cache = Path(cache_dir or default_cache_dir())
    path = cache / f"avoiding_{kind}_{_key(dict(s, kind=kind))}.safetensors"
    if path.is_file() and not retrain:
        try:
            return load_backbone(path, expect={"task": TASK, "kind": kind}).freeze(), path
        except CheckpointError as e:
            raise CheckpointError(f"cached avoiding base {path} is unusable ({e}); delete it (it is only a cache) "
                                  f"or retrain it") from None
    episodes = load_demo_episodes(demos_file(int(s["n_demos"]), int(s["demo_seed"]), cache))
    obs, chunks = make_chunks(episodes, int(s["horizon"]), where="avoiding demos")
    torch.manual_seed(int(s["bc_seed"]))
    net = dict(obs_dim=4, act_dim=2, horizon=int(s["horizon"]), hidden=int(s["hidden"]), n_layers=int(s["n_layers"]),
               num_steps=int(s["num_steps"]))
    model = (FlowMatchingPolicy(**net) if kind == "flow" else
             DiffusionPolicy(**net, num_train_steps=int(s["num_train_steps"])))
    train_bc(model, np.asarray(obs), chunks, steps=int(s["bc_steps"]), batch_size=int(s["batch_size"]),
             lr=float(s["lr"]), progress=progress, seed=int(s["bc_seed"]))
    save_backbone(model, path, extra={"task": TASK, "kind": kind, **s})
    return model.freeze(), path
