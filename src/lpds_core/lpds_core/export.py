"""ONNX export of a steered policy, and `OnnxPolicy`, which runs it with onnxruntime alone (no torch).

Two self-contained files go to the robot:
  decoder.onnx       observation tensor(s) + noise w (B, H, A) → raw actions (B, H, A); the encoder (image CNN
                     included), normalisation and the whole K-step flow/DDIM loop are unrolled inside.
  perturbation.onnx  observation tensor(s) [+ eps (B, H, A)] → Δ (B, H, A); encoder included, so it needs no
                     features from the decoder.
Both carry the same JSON metadata (`metadata_props["lpds"]`): observation/action spec, horizon, K, δ, task,
algorithm, backbone kind, and whatever the caller adds.
"""
from __future__ import annotations

import inspect
import json
import logging
import warnings
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch
from torch import nn

from .chunk_policy import ChunkPolicy

FORMAT = "lpds-onnx"
FORMAT_VERSION = 1
META_KEY = "lpds"
DECODER_FILE = "decoder.onnx"
PERTURBATION_FILE = "perturbation.onnx"
_NP_DTYPES = {"float32": np.float32, "uint8": np.uint8}
_ORT_TYPES = {"float32": "tensor(float)", "uint8": "tensor(uint8)"}


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
    entry.key, entry.value = META_KEY, json.dumps(meta)
    onnx.save(model, str(path))


def export_onnx(
    backbone: ChunkPolicy,
    perturbation: nn.Module | None,
    out_dir: str | Path,
    metadata: Mapping[str, Any] | None = None,
    exporter: str = "torchscript",
) -> dict[str, Path]:
    """Write decoder.onnx (and perturbation.onnx unless `perturbation` is None) into `out_dir`.

    `perturbation`: an nn.Module with forward(features) → (B, H, A) or forward(features, eps) → (B, H, A), on
    `backbone.encode` features. `metadata`: JSON-able facts for the robot side, e.g. {"task": ..., "algo": ...,
    "delta": ..., "perturbation_space": "noise" | "action"} ("action": Δ is added to the decoded raw actions,
    as in LP-DS-A; default "noise": w = ε + Δ). Returns {"decoder": path, "perturbation": path}.
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
        "feature_dim": backbone.feature_dim, "normalization": "inside the graph: raw observations in, raw actions out",
        "has_perturbation": perturbation is not None, "perturbation_takes_eps": takes_eps,
        "perturbation_space": space, "task": None, "algo": None, "delta": None,
        **dict(metadata or {}),
    }
    meta["perturbation_space"] = space
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


class OnnxPolicy:
    """Runs an exported policy with onnxruntime: `act(obs)` → one action chunk (H, A) in raw units.

    The observation must match the exported spec exactly (keys, per-sample shapes, uint8 vs float); float inputs
    of another float dtype are cast to float32. Anything else, or NaN/inf, is refused with a ValueError.
    """

    def __init__(self, model_dir: str | Path, threads: int = 1, obs_spec: Mapping[str, Any] | None = None) -> None:
        import onnxruntime as ort

        self.model_dir = Path(model_dir)
        dec_path = self.model_dir / DECODER_FILE
        if not dec_path.is_file():
            raise FileNotFoundError(f"no {DECODER_FILE} in '{self.model_dir}': export one with `lpds export`")
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = int(threads)
        opts.inter_op_num_threads = 1
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.log_severity_level = 3

        def session(path: Path) -> "ort.InferenceSession":
            try:
                return ort.InferenceSession(str(path), sess_options=opts, providers=["CPUExecutionProvider"])
            except Exception as e:
                raise ValueError(f"'{path}' is not a loadable ONNX model ({e}); re-export it") from e

        self._decoder = session(dec_path)
        self.spec: dict[str, Any] = self._read_meta(self._decoder, dec_path)
        self.obs_spec: dict[str, dict[str, Any]] = self.spec["obs_spec"]
        self.horizon, self.act_dim = int(self.spec["horizon"]), int(self.spec["act_dim"])
        if obs_spec is not None and _canon(obs_spec) != _canon(self.obs_spec):
            raise ValueError(
                f"model in '{self.model_dir}' expects observations {self.obs_spec}, but {dict(obs_spec)} was given; "
                "export the policy for this observation setup (state vs image, sizes)"
            )
        self._check_inputs(self._decoder, dec_path, list(self.obs_spec) + ["w"])
        pert_path = self.model_dir / PERTURBATION_FILE
        self._perturbation = None
        if pert_path.is_file():
            self._perturbation = session(pert_path)
            pmeta = self._read_meta(self._perturbation, pert_path)
            if _canon(pmeta["obs_spec"]) != _canon(self.obs_spec) or pmeta["horizon"] != self.horizon:
                raise ValueError(f"'{pert_path}' was exported for another model than '{dec_path}'; re-export both")
            self.takes_eps = bool(pmeta["perturbation_takes_eps"])
            self._check_inputs(self._perturbation, pert_path, list(self.obs_spec) + (["eps"] if self.takes_eps else []))
        else:
            self.takes_eps = False
        self.perturbation_space = self.spec.get("perturbation_space", "noise")
        self._rng = np.random.default_rng()

    # ---- loading checks -------------------------------------------------------------------------------------
    @staticmethod
    def _read_meta(sess: Any, path: Path) -> dict[str, Any]:
        props = sess.get_modelmeta().custom_metadata_map
        if META_KEY not in props:
            raise ValueError(f"'{path}' has no LP-DS metadata; it was not written by lpds_core.export.export_onnx")
        meta = json.loads(props[META_KEY])
        if meta.get("format") != FORMAT or meta.get("format_version") != FORMAT_VERSION:
            raise ValueError(f"'{path}' has export format {meta.get('format_version')!r}; re-export with this version")
        return meta

    def _check_inputs(self, sess: Any, path: Path, names: list[str]) -> None:
        got = [(i.name, i.type, list(i.shape)[1:]) for i in sess.get_inputs()]
        want = [(n, _ORT_TYPES[self.obs_spec[n]["dtype"]] if n in self.obs_spec else "tensor(float)",
                 list(self.obs_spec[n]["shape"]) if n in self.obs_spec else [self.horizon, self.act_dim])
                for n in names]
        if got != want:
            raise ValueError(f"'{path}' has inputs {got} but its metadata describes {want}; the file is inconsistent, "
                             "re-export it")

    # ---- running --------------------------------------------------------------------------------------------
    def _prepare(self, obs: Any) -> tuple[dict[str, np.ndarray], bool]:
        """Checked feed dict and whether the caller passed a single (unbatched) observation."""
        if not isinstance(obs, Mapping):
            if list(self.obs_spec) != ["state"]:
                raise ValueError(f"this policy takes a dict observation with keys {list(self.obs_spec)}")
            obs = {"state": obs}
        keys, want_keys = set(obs), set(self.obs_spec)
        if keys != want_keys:
            raise ValueError(f"observation keys {sorted(keys)} do not match the model's {sorted(want_keys)} "
                             f"(missing {sorted(want_keys - keys)}, unexpected {sorted(keys - want_keys)})")
        feed: dict[str, np.ndarray] = {}
        single: bool | None = None
        batch: int | None = None
        for name, s in self.obs_spec.items():
            x = np.asarray(obs[name])
            shape = tuple(s["shape"])
            if x.shape == shape:
                is_single = True
                x = x[None]
            elif x.ndim == len(shape) + 1 and x.shape[1:] == shape:
                is_single = False
            else:
                raise ValueError(f"observation '{name}' has shape {x.shape}, expected {shape} or (B, {', '.join(map(str, shape))})")
            if single is not None and (is_single != single or (not is_single and x.shape[0] != batch)):
                raise ValueError("observation parts disagree on batching/batch size")
            single, batch = is_single, x.shape[0]
            if s["dtype"] == "uint8":
                if x.dtype != np.uint8:
                    raise ValueError(f"observation '{name}' must be uint8, got {x.dtype}")
            else:
                if not np.issubdtype(x.dtype, np.floating):
                    raise ValueError(f"observation '{name}' must be a float array ({s['dtype']}), got {x.dtype}")
                x = np.ascontiguousarray(x, dtype=np.float32)
                if not np.isfinite(x).all():
                    raise ValueError(f"observation '{name}' contains NaN or inf values; refusing to act on it")
            feed[name] = x
        return feed, bool(single)

    def _noise(self, eps: Any, batch: int, single: bool, rng: np.random.Generator | None) -> np.ndarray:
        shape = (batch, self.horizon, self.act_dim)
        if eps is None:
            return (rng or self._rng).standard_normal(shape, dtype=np.float32)
        e = np.asarray(eps, dtype=np.float32)
        if single and e.shape == shape[1:]:
            e = e[None]
        if e.shape != shape:
            raise ValueError(f"eps has shape {np.shape(eps)}, expected {shape[1:] if single else shape}")
        if not np.isfinite(e).all():
            raise ValueError("eps contains NaN or inf values")
        return e

    def delta(self, obs: Any, eps: Any = None) -> np.ndarray:
        """Δ(s[, ε]) (B, H, A) or (H, A); zeros when the export has no perturbation."""
        feed, single = self._prepare(obs)
        batch = next(iter(feed.values())).shape[0]
        e = self._noise(eps, batch, single, None) if self.takes_eps else None
        d = self._delta(feed, e, batch)
        return d[0] if single else d

    def _delta(self, feed: dict[str, np.ndarray], eps: np.ndarray | None, batch: int) -> np.ndarray:
        if self._perturbation is None:
            return np.zeros((batch, self.horizon, self.act_dim), np.float32)
        pfeed = {**feed, "eps": eps} if self.takes_eps else feed
        return self._perturbation.run(None, pfeed)[0]

    def decode(self, obs: Any, w: Any) -> np.ndarray:
        """Φ(s, w): the bare decoder on explicit noise (no perturbation)."""
        feed, single = self._prepare(obs)
        batch = next(iter(feed.values())).shape[0]
        a = self._decoder.run(None, {**feed, "w": self._noise(w, batch, single, None)})[0]
        return a[0] if single else a

    def act(self, obs: Any, eps: Any = None, rng: np.random.Generator | None = None) -> np.ndarray:
        """One steered action chunk: w = ε + Δ(s) (or Δ(s, ε)); ε ~ N(0, I) from `rng` unless given.
        A single observation gives (H, A); a batch (B, ...) gives (B, H, A)."""
        feed, single = self._prepare(obs)
        batch = next(iter(feed.values())).shape[0]
        e = self._noise(eps, batch, single, rng)
        d = self._delta(feed, e, batch)
        if self.perturbation_space == "action":
            a = self._decoder.run(None, {**feed, "w": e})[0] + d
        else:
            a = self._decoder.run(None, {**feed, "w": e + d})[0]
        return a[0] if single else a


def _canon(spec: Mapping[str, Any]) -> dict[str, tuple[tuple[int, ...], str]]:
    return {k: (tuple(int(d) for d in v["shape"]), str(v["dtype"])) for k, v in spec.items()}
