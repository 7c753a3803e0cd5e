"""ONNX export of a steered policy, and `OnnxPolicy`, which runs it with onnxruntime alone (no torch).

Two self-contained files go to the robot:
  decoder.onnx       observation tensor(s) + noise w (B, H, A) → raw actions (B, H, A); the encoder (image CNN
                     included), normalisation and the whole K-step flow/DDIM loop are unrolled inside.
  perturbation.onnx  observation tensor(s) [+ eps (B, H, A)] → Δ (B, H, A); encoder included, so it needs no
                     features from the decoder.
Both carry the same JSON metadata (`metadata_props["lpds"]`): observation/action spec, horizon, K, δ, task,
algorithm, backbone kind, and whatever the caller adds. `OnnxPolicy` (re-exported here) lives in
`lpds_core.onnx_policy`, which does not import torch.
"""
from __future__ import annotations

import inspect
import logging
import warnings
from pathlib import Path
from typing import Any, Mapping

import torch
from torch import nn

from . import jsonio
from .chunk_policy import ChunkPolicy
from .onnx_policy import DECODER_FILE, FORMAT, FORMAT_VERSION, META_KEY, PERTURBATION_FILE, OnnxPolicy

__all__ = ["export_onnx", "OnnxPolicy", "perturbation_takes_eps"]


def perturbation_takes_eps(perturbation: nn.Module) -> bool:
    """True for the Δθ(s, ε) variant: `forward(features, eps)`; False for `forward(features)`.
    A module may say so explicitly with a `takes_eps` attribute."""
    flag = getattr(perturbation, "takes_eps", None)
    if flag is not None:
        return bool(flag)
    params = [p for p in inspect.signature(perturbation.forward).parameters.values()
              if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and p.default is p.empty]
    if len(params) not in (1, 2):
        raise ValueError(f"perturbation.forward must take (features) or (features, eps), got {len(params)} arguments")
    return len(params) == 2


class _DecoderGraph(nn.Module):
    """obs tensors..., w → actions: the exported decoder."""

    def __init__(self, backbone: ChunkPolicy) -> None:
        super().__init__()
        self.backbone = backbone

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        *obs, w = inputs
        return self.backbone._decode(self.backbone.encoder.features(*obs), w)


class _PerturbationGraph(nn.Module):
    """obs tensors... [, eps] → Δ: the exported perturbation (with its own copy of the encoder)."""

    def __init__(self, backbone: ChunkPolicy, perturbation: nn.Module, takes_eps: bool) -> None:
        super().__init__()
        self.encoder = backbone.encoder
        self.perturbation = perturbation
        self.takes_eps = takes_eps

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        if self.takes_eps:
            *obs, eps = inputs
            return self.perturbation(self.encoder.features(*obs), eps)
        return self.perturbation(self.encoder.features(*inputs))


def _example_obs(spec: Mapping[str, Mapping[str, Any]], batch: int) -> tuple[torch.Tensor, ...]:
    out = []
    for s in spec.values():
        shape = (batch, *s["shape"])
        out.append(torch.randint(0, 256, shape, dtype=torch.uint8) if s["dtype"] == "uint8" else torch.rand(shape))
    return tuple(out)


def _export(module: nn.Module, args: tuple[torch.Tensor, ...], names: list[str], output: str, path: Path,
            meta: Mapping[str, Any], exporter: str) -> None:
    import onnx

    quiet = logging.getLogger("torch.onnx")  # the dynamo exporter logs harmless "torchvision is not installed" lines
    level = quiet.level
    quiet.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if exporter == "dynamo":
                batch = torch.export.Dim("batch", min=1, max=4096)
                torch.onnx.export(
                    module, args, str(path), input_names=names, output_names=[output],
                    dynamic_shapes=(tuple({0: batch} for _ in args),), dynamo=True, external_data=False,
                    verbose=False,
                )
            elif exporter == "torchscript":
                torch.onnx.export(
                    module, args, str(path), input_names=names, output_names=[output], opset_version=17,
                    dynamic_axes={n: {0: "batch"} for n in [*names, output]}, dynamo=False,
                )
            else:
                raise ValueError(f"unknown exporter {exporter!r}; use 'torchscript' or 'dynamo'")
    finally:
        quiet.setLevel(level)
    model = onnx.load(str(path))
    del model.metadata_props[:]
    entry = model.metadata_props.add()
    entry.key, entry.value = META_KEY, jsonio.dumps(meta)
    onnx.save(model, str(path))


def _norm_meta(norm: nn.Module) -> dict[str, Any]:
    """y = (x - shift) / scale."""
    return {"mode": norm.mode, "shift": norm.shift.tolist(), "scale": norm.scale.tolist()}


def _clip_meta(bounds: tuple[Any, Any] | None, horizon: int, act_dim: int) -> dict[str, Any] | None:
    """{"low", "high"}: (H, A) nested lists of the action clipping bounds, or None for no clipping."""
    if bounds is None:
        return None
    import numpy as np

    low, high = (np.broadcast_to(np.asarray(b, np.float64), (horizon, act_dim)) for b in bounds)
    if not (np.isfinite(low).all() and np.isfinite(high).all() and (high >= low).all()):
        raise ValueError(f"action_bounds must be finite with high >= low, got {bounds}")
    return {"low": low.tolist(), "high": high.tolist()}


def export_onnx(
    backbone: ChunkPolicy,
    perturbation: nn.Module | None,
    out_dir: str | Path,
    metadata: Mapping[str, Any] | None = None,
    exporter: str = "torchscript",
    action_bounds: tuple[Any, Any] | None = None,
) -> dict[str, Path]:
    """Write decoder.onnx (and perturbation.onnx unless `perturbation` is None) into `out_dir`.

    `perturbation`: an nn.Module with forward(features) → (B, H, A) or forward(features, eps) → (B, H, A), on
    `backbone.encode` features. `metadata`: JSON-able facts for the robot side, e.g. {"task": ..., "algo": ...,
    "delta": ..., "perturbation_space": "noise" | "action"} ("action": Δ is added to the decoded raw actions,
    as in LP-DS-A; default "noise": w = ε + Δ). `action_bounds`: (low, high), each (A,) or (H, A), that the
    agent clips its actions to (`Agent.action_bounds()`); recorded as metadata["action_clip"] so that `OnnxPolicy`
    clips exactly as training does: the decoded chunk, and in action space again after adding Δ.
    Returns {"decoder": path, "perturbation": path}.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    spec = backbone.obs_spec()
    obs_names = list(spec)
    space = (metadata or {}).get("perturbation_space", "noise")
    if space not in ("noise", "action"):
        raise ValueError(f"metadata perturbation_space must be 'noise' or 'action', got {space!r}")
    takes_eps = perturbation is not None and perturbation_takes_eps(perturbation)
    meta = {
        "format": FORMAT, "format_version": FORMAT_VERSION,
        "backbone": backbone.kind, "backbone_class": type(backbone).__name__, "backbone_config": backbone.config,
        "obs_type": backbone.obs_type, "obs_spec": spec, "action_spec": backbone.action_spec(),
        "horizon": backbone.horizon, "act_dim": backbone.act_dim, "num_steps": backbone.num_steps,
        "feature_dim": backbone.feature_dim,
        "normalization": {  # applied inside the graphs (raw in, raw out); recorded here for inspection
            "obs": _norm_meta(backbone.encoder.norm), "action": _norm_meta(backbone.action_norm),
            **({"rgb": "x/127.5 - 1", "depth": f"clip(d, 0, {backbone.encoder.max_depth}) scaled to [-1, 1]"}
               if backbone.obs_type == "image" else {}),
        },
        "has_perturbation": perturbation is not None, "perturbation_takes_eps": takes_eps,
        "perturbation_space": space, "task": None, "algo": None, "delta": None,
        **dict(metadata or {}),
    }
    meta["perturbation_space"] = space
    meta["action_clip"] = _clip_meta(action_bounds, backbone.horizon, backbone.act_dim)
    batch = 2  # an example batch > 1 so the exporter cannot specialise on 1
    obs_args = _example_obs(spec, batch)
    noise = torch.randn(batch, *backbone.noise_shape)
    was_training = backbone.training
    backbone.eval()
    paths: dict[str, Path] = {}
    try:
        with torch.no_grad():
            paths["decoder"] = out / DECODER_FILE
            _export(_DecoderGraph(backbone).eval(), (*obs_args, noise), obs_names + ["w"], "actions",
                    paths["decoder"], {**meta, "role": "decoder"}, exporter)
            if perturbation is not None:
                p_was_training = perturbation.training
                graph = _PerturbationGraph(backbone, perturbation.eval(), takes_eps)
                args = (*obs_args, noise) if takes_eps else obs_args
                paths["perturbation"] = out / PERTURBATION_FILE
                _export(graph, args, obs_names + (["eps"] if takes_eps else []), "delta",
                        paths["perturbation"], {**meta, "role": "perturbation"}, exporter)
                perturbation.train(p_was_training)
            elif (out / PERTURBATION_FILE).exists():
                (out / PERTURBATION_FILE).unlink()  # a stale perturbation from an older export must not be picked up
    finally:
        backbone.train(was_training)
    return paths
