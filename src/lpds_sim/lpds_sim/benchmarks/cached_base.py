"""One frozen BC base per (task, kind, settings), trained into a cache on first use and reused after.

Every suite whose base is trained here (Avoiding, RoboMimic, ...) goes through `cached_bc_base`, so the rules are
the same for all: the file name carries a hash of every setting that changes the weights (the caller adds its
data's version tags), a cached file is reused only when a fresh one would be identical, and an existing file
is replaced only when `retrain=True` asks for it. Flow matching by default; `kind="diffusion"` is the DDPM
chain DPPO fine-tunes (`num_train_steps` denoising steps).
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from lpds_core.errors import CheckpointError

KINDS = ("flow", "diffusion")
NET_KEYS = ("horizon", "hidden", "n_layers", "num_steps")  # every base setting the network itself is built from


def settings_key(settings: Mapping[str, Any]) -> str:
    """A short stable hash of JSON-able settings (file names of cached demos and bases)."""
    return hashlib.sha1(json.dumps(dict(settings), sort_keys=True).encode()).hexdigest()[:12]


def resolve_settings(what: str, kind: str, defaults: Mapping[str, Any], diffusion_extra: Mapping[str, Any],
                     overrides: Mapping[str, Any]) -> dict[str, Any]:
    """`defaults` (+ `diffusion_extra` for a diffusion base) with `overrides`; an unknown key or kind is an
    error that lists the valid ones."""
    if kind not in KINDS:
        raise ValueError(f"unknown {what} base kind {kind!r}; choose one of {KINDS}")
    merged = dict(defaults, **(diffusion_extra if kind == "diffusion" else {}))
    bad = sorted(set(overrides) - set(merged))
    if bad:
        raise ValueError(f"unknown {what} base setting(s) {bad}; valid: {sorted(merged)}")
    return dict(merged, **overrides)


def cached_bc_base(path: Path, task: str, kind: str, settings: Mapping[str, Any],
                   episodes: Callable[[], Sequence[Mapping[str, np.ndarray]]], progress: bool = True,
                   retrain: bool = False) -> tuple[Any, Path]:
    """(frozen base, `path`): loaded from `path`, or trained by the project's BC on `episodes()` (make_chunks'
    episodes; called only when training, since making demos can take minutes) and saved there with `task`,
    `kind` and the settings. The network's sizes come from the data."""
    import torch
    from lpds_core.bc import make_chunks, train_bc
    from lpds_core.checkpoint import load_backbone, save_backbone
    from lpds_core.diffusion import DiffusionPolicy
    from lpds_core.flow_matching import FlowMatchingPolicy

    s = dict(settings)
    if path.is_file() and not retrain:
        try:
            return load_backbone(path, expect={"task": task, "kind": kind}).freeze(), path
        except CheckpointError as e:
            raise CheckpointError(f"cached {task} base {path} is unusable ({e}); delete it (it is only a cache) "
                                  f"or retrain it") from None
    obs, chunks = make_chunks(list(episodes()), int(s["horizon"]), where=f"{task} demos")
    obs = np.asarray(obs)
    torch.manual_seed(int(s["bc_seed"]))
    net = dict(obs_dim=int(obs.shape[1]), act_dim=int(chunks.shape[2]), **{k: int(s[k]) for k in NET_KEYS})
    model = (FlowMatchingPolicy(**net) if kind == "flow" else
             DiffusionPolicy(**net, num_train_steps=int(s["num_train_steps"])))
    train_bc(model, obs, chunks, steps=int(s["bc_steps"]), batch_size=int(s["batch_size"]),
             lr=float(s["lr"]), progress=progress, seed=int(s["bc_seed"]))
    path.parent.mkdir(parents=True, exist_ok=True)
    save_backbone(model, path, extra={"task": task, "kind": kind, **s})
    return model.freeze(), path
