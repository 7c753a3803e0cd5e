"""Save/load a backbone as one safetensors file: weights + a JSON header that can rebuild the model.

safetensors never executes code on load (unlike pickle), and keeping the metadata in the same file means
weights and config can never drift apart. Writes are atomic (temp file + rename), so a run killed mid-save
leaves the previous checkpoint intact.
"""
from __future__ import annotations

import importlib
import json
import os
from pathlib import Path
from typing import Any, Mapping

import torch
from safetensors import safe_open
from safetensors.torch import save_file

from . import jsonio
from .backbone import FrozenDecoder
from .errors import CheckpointError  # noqa: F401  (re-exported: lpds_core.checkpoint.CheckpointError)

FORMAT_VERSION = 1
META_KEY = "lpds_backbone"
# class name → module; imported lazily so the checkpoint module has no import cycle with the backbones
BACKBONE_CLASSES = {
    "FlowMatchingPolicy": "lpds_core.flow_matching",
    "DiffusionPolicy": "lpds_core.diffusion",
}


def save_backbone(model: FrozenDecoder, path: str | os.PathLike, extra: Mapping[str, Any] | None = None) -> Path:
    """Write `model` to `path` (conventionally `*.safetensors`). `extra`: JSON-able facts (task, algo, ...)
    that `load_backbone(expect=...)` can check later."""
    cls = type(model).__name__
    if cls not in BACKBONE_CLASSES:
        raise CheckpointError(f"cannot save a {cls}: only {sorted(BACKBONE_CLASSES)} are known backbones")
    meta = {
        "format_version": FORMAT_VERSION,
        "class": cls,
        "kind": getattr(model, "kind", ""),
        "config": model.config,
        "obs_spec": model.obs_spec(),
        "action_spec": model.action_spec(),
        "extra": dict(extra or {}),
    }
    try:
        header = jsonio.dumps(meta)
    except (TypeError, ValueError) as e:
        raise CheckpointError(f"checkpoint metadata must be JSON-serialisable: {e}") from e
    tensors = {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    save_file(tensors, str(tmp), metadata={META_KEY: header})
    os.replace(tmp, path)
    return path


def read_metadata(path: str | os.PathLike) -> dict[str, Any]:
    """The JSON header of a backbone checkpoint, without building the model."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(
            f"no backbone checkpoint at '{path}': check the path, or train one first (lpds train-base)"
        )
    try:
        with safe_open(str(path), framework="pt") as f:
            header = f.metadata() or {}
    except Exception as e:  # safetensors raises its own error types for truncated/garbled files
        raise CheckpointError(
            f"'{path}' is not a readable safetensors checkpoint ({type(e).__name__}: {e}); the file is corrupt or "
            "truncated (e.g. an interrupted copy) - delete it and re-save or re-train the backbone"
        ) from e
    if META_KEY not in header:
        raise CheckpointError(
            f"'{path}' is a safetensors file but not an LP-DS backbone checkpoint (no '{META_KEY}' metadata); "
            "save backbones with lpds_core.checkpoint.save_backbone"
        )
    try:
        meta = json.loads(header[META_KEY])
    except json.JSONDecodeError as e:
        raise CheckpointError(f"'{path}' has corrupt backbone metadata ({e}); re-save the backbone") from e
    if meta.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(
            f"'{path}' has checkpoint format {meta.get('format_version')!r}, this code reads {FORMAT_VERSION}; "
            "re-save it with this version of lpds_core"
        )
    return meta


def load_backbone(
    path: str | os.PathLike, expect: Mapping[str, Any] | None = None, device: str | torch.device = "cpu"
) -> FrozenDecoder:
    """Rebuild the backbone stored at `path` (eval mode, not frozen, so training can resume).

    `expect`: facts the caller needs, e.g. {"task": "pick_place", "kind": "flow", "obs_type": "state"}; each is
    looked up in the checkpoint's `extra`, then its top level, then its config, and a mismatch is an error.
    """
    meta = read_metadata(path)
    for key, want in (expect or {}).items():
        have = _lookup(meta, key)
        if have != want:
            raise CheckpointError(
                f"checkpoint '{path}' has {key}={have!r} but {want!r} was expected; "
                f"pass a checkpoint trained for {key}={want!r} (or retrain)"
            )
    cls_name = meta.get("class")
    if cls_name not in BACKBONE_CLASSES:
        raise CheckpointError(f"checkpoint '{path}' is for unknown backbone class {cls_name!r}")
    cls = getattr(importlib.import_module(BACKBONE_CLASSES[cls_name]), cls_name)
    try:
        model = cls(**meta["config"])
    except (TypeError, ValueError, KeyError) as e:
        raise CheckpointError(f"checkpoint '{path}' has a config that {cls_name} rejects: {e}") from e
    try:
        with safe_open(str(path), framework="pt", device=str(device)) as f:
            state = {k: f.get_tensor(k) for k in f.keys()}
    except Exception as e:
        raise CheckpointError(
            f"'{path}' has unreadable weights ({type(e).__name__}: {e}); the file is corrupt or truncated - "
            "re-save or re-train the backbone"
        ) from e
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    wrong = sorted(k for k in set(own) & set(state) if own[k].shape != state[k].shape)
    if missing or unexpected or wrong:
        raise CheckpointError(
            f"checkpoint '{path}' does not match {cls_name}({meta['config']}): missing {missing[:5]}, "
            f"unexpected {unexpected[:5]}, wrong shapes {wrong[:5]}; it was saved by different code - retrain or "
            "use the lpds_core version that wrote it"
        )
    model.load_state_dict(state)
    return model.to(device).eval()


def _lookup(meta: Mapping[str, Any], key: str) -> Any:
    for scope in (meta.get("extra", {}), meta, meta.get("config", {})):
        if key in scope:
            return scope[key]
    return None
