"""Run an exported LP-DS policy with onnxruntime and numpy only: this module never imports torch, so the robot
PC (ROS policy node) needs neither torch nor the training code. Files and metadata are written by
`lpds_core.export.export_onnx`.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from .errors import CheckpointError

FORMAT = "lpds-onnx"
FORMAT_VERSION = 1
META_KEY = "lpds"
DECODER_FILE = "decoder.onnx"
PERTURBATION_FILE = "perturbation.onnx"
_ORT_TYPES = {"float32": "tensor(float)", "uint8": "tensor(uint8)"}


def valid_noise_scale(c: Any) -> bool:
    """Whether `c` is a deploy temperature: a finite number ≥ 0 (not a bool). One rule for the CLI, the pipeline
    and the export's metadata."""
    return not isinstance(c, bool) and isinstance(c, (int, float)) and 0.0 <= c < float("inf")


class ExportFileError(CheckpointError, ValueError):
    """An export folder cannot be loaded: missing, truncated or corrupt .onnx files, or foreign metadata."""


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
            raise ExportFileError(f"no {DECODER_FILE} in '{self.model_dir}': check the path, or export one with "
                                  "`lpds export --run RUN --out DIR`")
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = int(threads)
        opts.inter_op_num_threads = 1
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.log_severity_level = 3

        def session(path: Path) -> "ort.InferenceSession":
            try:
                return ort.InferenceSession(str(path), sess_options=opts, providers=["CPUExecutionProvider"])
            except Exception as e:  # onnxruntime raises its own types for truncated/garbled files
                msg = " ".join(str(e).split())[:200]
                raise ExportFileError(f"'{path}' is not a loadable ONNX model: it is corrupt or truncated ({msg}); "
                                      "re-export it with `lpds export`") from e

        self._decoder = session(dec_path)
        self.spec: dict[str, Any] = self._read_meta(self._decoder, dec_path)
        self.obs_spec: dict[str, dict[str, Any]] = self.spec["obs_spec"]
        self.horizon, self.act_dim = int(self.spec["horizon"]), int(self.spec["act_dim"])
        if obs_spec is not None and _canon(obs_spec) != _canon(self.obs_spec):
            raise ExportFileError(
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
                raise ExportFileError(f"'{pert_path}' was exported for another model than '{dec_path}'; re-export both")
            self.takes_eps = bool(pmeta["perturbation_takes_eps"])
            self._check_inputs(self._perturbation, pert_path, list(self.obs_spec) + (["eps"] if self.takes_eps else []))
        else:
            self.takes_eps = False
        self.perturbation_space = self.spec.get("perturbation_space", "noise")
        # the deploy temperature c the export was made with (`lpds export --noise-scale`): act decodes from c·ε
        self.noise_scale = self.spec.get("noise_scale", 1.0)
        if not valid_noise_scale(self.noise_scale):
            raise ExportFileError(f"'{dec_path}' has noise_scale {self.noise_scale!r} in its metadata, not a finite "
                                  "number ≥ 0; re-export it with `lpds export`")
        self.noise_scale = float(self.noise_scale)
        clip = self.spec.get("action_clip")  # the agent's own action clipping (None: exported without it)
        self.action_low = None if clip is None else np.asarray(clip["low"], np.float32)
        self.action_high = None if clip is None else np.asarray(clip["high"], np.float32)
        self._rng = np.random.default_rng()

    # ---- loading checks -------------------------------------------------------------------------------------
    @staticmethod
    def _read_meta(sess: Any, path: Path) -> dict[str, Any]:
        props = sess.get_modelmeta().custom_metadata_map
        if META_KEY not in props:
            raise ExportFileError(f"'{path}' has no LP-DS metadata; it was not written by `lpds export`: re-export it")
        try:
            meta = json.loads(props[META_KEY])
        except ValueError as e:
            raise ExportFileError(f"'{path}' has corrupt LP-DS metadata ({e}); re-export it") from e
        if meta.get("format") != FORMAT or meta.get("format_version") != FORMAT_VERSION:
            raise ExportFileError(f"'{path}' has export format {meta.get('format_version')!r}; re-export with this "
                                  "version")
        return meta

    def _check_inputs(self, sess: Any, path: Path, names: list[str]) -> None:
        got = [(i.name, i.type, list(i.shape)[1:]) for i in sess.get_inputs()]
        want = [(n, _ORT_TYPES[self.obs_spec[n]["dtype"]] if n in self.obs_spec else "tensor(float)",
                 list(self.obs_spec[n]["shape"]) if n in self.obs_spec else [self.horizon, self.act_dim])
                for n in names]
        if got != want:
            raise ExportFileError(f"'{path}' has inputs {got} but its metadata describes {want}; the file is inconsistent, "
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
        """Δ(s[, cε]) (B, H, A) or (H, A), as `act` computes it; zeros when the export has no perturbation."""
        feed, single = self._prepare(obs)
        batch = next(iter(feed.values())).shape[0]
        e = self._scaled(self._noise(eps, batch, single, None)) if self.takes_eps else None
        d = self._delta(feed, e, batch)
        return d[0] if single else d

    def _scaled(self, eps: np.ndarray) -> np.ndarray:
        """c·ε at the export's deploy temperature (ε itself at c = 1, bit for bit)."""
        return eps if self.noise_scale == 1.0 else np.float32(self.noise_scale) * eps

    def _delta(self, feed: dict[str, np.ndarray], eps: np.ndarray | None, batch: int) -> np.ndarray:
        if self._perturbation is None:
            return np.zeros((batch, self.horizon, self.act_dim), np.float32)
        pfeed = {**feed, "eps": eps} if self.takes_eps else feed
        return self._perturbation.run(None, pfeed)[0]

    def _clip(self, a: np.ndarray) -> np.ndarray:
        """Hold actions to the exported bounds, as the agent's `clip` did in training (NaN stays NaN)."""
        return a if self.action_low is None else np.minimum(np.maximum(a, self.action_low), self.action_high)

    def decode(self, obs: Any, w: Any) -> np.ndarray:
        """Φ(s, w): the decoder on explicit noise (no perturbation), clipped to the exported action bounds."""
        feed, single = self._prepare(obs)
        batch = next(iter(feed.values())).shape[0]
        a = self._clip(self._decoder.run(None, {**feed, "w": self._noise(w, batch, single, None)})[0])
        return a[0] if single else a

    def act(self, obs: Any, eps: Any = None, rng: np.random.Generator | None = None) -> np.ndarray:
        """One steered action chunk: w = cε + Δ(s) (or Δ(s, cε)) with the export's deploy temperature c
        (`noise_scale`, 1 unless exported with another); ε ~ N(0, I) from `rng` unless given, so a recorded ε
        replays the same chunk. A single observation gives (H, A); a batch (B, ...) gives (B, H, A)."""
        feed, single = self._prepare(obs)
        batch = next(iter(feed.values())).shape[0]
        e = self._scaled(self._noise(eps, batch, single, rng))
        d = self._delta(feed, e, batch)
        if self.perturbation_space == "action":  # LP-DS-A: clip(clip(Φ(s, ε)) + Δ), as in training
            a = self._clip(self._clip(self._decoder.run(None, {**feed, "w": e})[0]) + d)
        else:
            a = self._clip(self._decoder.run(None, {**feed, "w": e + d})[0])
        return a[0] if single else a


def _canon(spec: Mapping[str, Any]) -> dict[str, tuple[tuple[int, ...], str]]:
    return {k: (tuple(int(d) for d in v["shape"]), str(v["dtype"])) for k, v in spec.items()}
