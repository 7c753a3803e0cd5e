"""A suite's frozen base: BC on its demonstrations, trained into the cache once and found there afterwards.

The Avoiding and Adroit suites both train their bases here rather than shipping them: a flow-matching base
(`kind="flow"`) or, for DPPO, a diffusion base (DDPM training over T steps, DDIM sampling), chunk H, on the episodes
of a demo file, with the project's BC (`lpds_core.bc`). The file's name carries a hash of every setting that
changes it (`settings_key`, with the versions of whatever made the demos), so a cached file is reused only when a
fresh one would be identical, and an existing file is never replaced unless `retrain=True` asks for it.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np

from lpds_core.errors import CheckpointError

KINDS = ("flow", "diffusion")


def settings_key(settings: Mapping[str, Any], **versions: Any) -> str:
    """12 hex digits naming `settings` plus `versions` (e.g. demo_version=1): equal keys, identical files."""
    return hashlib.sha1(json.dumps(dict(settings, **versions), sort_keys=True).encode()).hexdigest()[:12]


def base_settings(defaults: Mapping[str, Any], diffusion: Mapping[str, Any], kind: str,
                  overrides: Mapping[str, Any], what: str) -> dict[str, Any]:
    """The settings of a `kind` base: `defaults` (plus `diffusion`'s for a diffusion base) with `overrides`;
    a ValueError naming `what` for an unknown kind or setting."""
    if kind not in KINDS:
        raise ValueError(f"unknown {what} base kind {kind!r}; choose one of {KINDS}")
    full = dict(defaults, **(diffusion if kind == "diffusion" else {}))
    bad = sorted(set(overrides) - set(full))
    if bad:
        raise ValueError(f"unknown {what} base setting(s) {bad}; valid: {sorted(full)}")
    return dict(full, **overrides)


def cached_base(path: Path, task: str, kind: str, s: Mapping[str, Any], episodes: Callable[[], list[Any]],
                where: str, progress: bool = True, retrain: bool = False) -> tuple[Any, Path]:
    """(frozen base, `path`): loaded from `path` when it is there (its metadata must say `task` and `kind`), else
    trained on `episodes()` (make_chunks' episodes) with the settings `s` (horizon, hidden, n_layers, num_steps,
    bc_steps, batch_size, lr, bc_seed; num_train_steps for diffusion) and saved there. Deterministic per bc_seed
    up to float non-determinism."""
    import torch
    from lpds_core.bc import make_chunks, train_bc
    from lpds_core.checkpoint import load_backbone, save_backbone
    from lpds_core.diffusion import DiffusionPolicy
    from lpds_core.flow_matching import FlowMatchingPolicy

    path = Path(path)
    if path.is_file() and not retrain:
        try:
            return load_backbone(path, expect={"task": task, "kind": kind}).freeze(), path
        except CheckpointError as e:
            raise CheckpointError(f"cached {where} base {path} is unusable ({e}); delete it (it is only a cache) "
                                  f"or retrain it") from None
    obs, chunks = make_chunks(episodes(), int(s["horizon"]), where=where)
    obs = np.asarray(obs)
    torch.manual_seed(int(s["bc_seed"]))
    net = dict(obs_dim=int(obs.shape[1]), act_dim=int(chunks.shape[2]), horizon=int(s["horizon"]),
               hidden=int(s["hidden"]), n_layers=int(s["n_layers"]), num_steps=int(s["num_steps"]))
    model = (FlowMatchingPolicy(**net) if kind == "flow" else
             DiffusionPolicy(**net, num_train_steps=int(s["num_train_steps"])))
    train_bc(model, obs, chunks, steps=int(s["bc_steps"]), batch_size=int(s["batch_size"]), lr=float(s["lr"]),
             progress=progress, seed=int(s["bc_seed"]))
    path.parent.mkdir(parents=True, exist_ok=True)
    save_backbone(model, path, extra={"task": task, "kind": kind, **s})
    return model.freeze(), path
