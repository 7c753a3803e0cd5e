"""The frozen base policy of the toy task: behaviour cloning on the emulated demos, cached on disk.

Flow matching by default; a diffusion base (DDPM training over T = 20 steps, DPPO's setting) for DPPO, which
fine-tunes a denoising chain. Both are trained the same way (lpds_core.bc) on the same demos and networks.

The cache key is every setting that changes the weights, so a cached file is only reused when it would
be identical to a fresh one (up to float non-determinism).
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np
import torch

from lpds_core.bc import make_chunks, train_bc
from lpds_core.checkpoint import CheckpointError, load_backbone, save_backbone
from lpds_core.chunk_policy import ChunkPolicy
from lpds_core.diffusion import DiffusionPolicy
from lpds_core.flow_matching import FlowMatchingPolicy

from .demos import DEMO_VERSION, make_demos

DEFAULT_BASE = dict(n_demos=400, bc_steps=6000, horizon=4, hidden=128, n_layers=3, num_steps=8, demo_seed=0,
                    bc_seed=0, lr=2e-3, batch_size=256)
DIFFUSION_BASE = dict(num_train_steps=20)  # the extra settings of a diffusion base (DPPO: T = 20)
KINDS = ("flow", "diffusion")


def default_cache_dir() -> Path:
    return Path(os.environ.get("LPDS_CACHE", Path.home() / ".cache" / "lpds"))


def _key(settings: dict) -> str:
    return hashlib.sha1(json.dumps(dict(settings, demo_version=DEMO_VERSION), sort_keys=True).encode()).hexdigest()[:12]


def toy_base_policy(cache_dir: str | os.PathLike | None = None, progress: bool = True, retrain: bool = False,
                    kind: str = "flow", **overrides: int | float) -> tuple[ChunkPolicy, Path]:
    """(frozen flow-matching or diffusion policy, checkpoint path): loaded from the cache or trained and saved
    there."""
    from lpds_sim.benchmarks.cached_base import resolve_settings

    s = resolve_settings("toy", kind, DEFAULT_BASE, DIFFUSION_BASE, overrides)
    key = _key(s) if kind == "flow" else _key(dict(s, kind=kind))  # flow keys as before: old caches stay valid
    path = Path(cache_dir or default_cache_dir()) / f"toy_{kind}_{key}.safetensors"
    if path.is_file() and not retrain:
        try:
            return load_backbone(path, expect={"task": "toy_multigoal"}).freeze(), path  # type: ignore[return-value]
        except CheckpointError as e:
            print(f"cached toy base unusable ({e}); retraining")
    torch.manual_seed(int(s["bc_seed"]))
    demos = make_demos(int(s["n_demos"]), seed=int(s["demo_seed"]))
    obs, chunks = make_chunks(demos, int(s["horizon"]))
    net = dict(obs_dim=2, act_dim=2, horizon=int(s["horizon"]), hidden=int(s["hidden"]), n_layers=int(s["n_layers"]),
               num_steps=int(s["num_steps"]))
    model: ChunkPolicy = (FlowMatchingPolicy(**net) if kind == "flow" else
                          DiffusionPolicy(**net, num_train_steps=int(s["num_train_steps"])))
    train_bc(model, np.asarray(obs), chunks, steps=int(s["bc_steps"]), batch_size=int(s["batch_size"]),
             lr=float(s["lr"]), progress=progress, seed=int(s["bc_seed"]))
    save_backbone(model, path, extra={"task": "toy_multigoal", **s})
    return model.freeze(), path  # type: ignore[return-value]
