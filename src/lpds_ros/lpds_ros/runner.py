"""What the policy node runs: anything with `act(obs) -> (H, A) chunk`.

`onnx` loads the exported decoder + perturbation (lpds_core.export.OnnxPolicy, imported lazily); `scripted` is a
hand-written pick-and-place operator behind the same interface (for plumbing tests and as a reference when no
trained model succeeds yet); `package.module:factory` plugs in anything else (factory(model_dir) -> runner).
"""
from __future__ import annotations

import importlib
from typing import Any, Protocol, runtime_checkable

import numpy as np


@runtime_checkable
class PolicyRunner(Protocol):
    horizon: int
    act_dim: int

    def act(self, obs: Any) -> np.ndarray:
        """An action chunk (horizon, act_dim) in raw env units for one observation."""
        ...


class OnnxRunner:
    """Adapter over lpds_core.export.OnnxPolicy: fresh noise every call, eps from a seeded generator."""

    def __init__(self, model_dir: str, seed: int = 0):
        try:
            from lpds_core.export import OnnxPolicy
        except ImportError as exc:  # pragma: no cover - depends on the installed lpds_core
            raise RuntimeError("runner 'onnx' needs lpds_core.export.OnnxPolicy (pip install -e src/lpds_core); "
                               f"import failed: {exc}") from exc
        if not model_dir:
            raise ValueError("runner 'onnx' needs the parameter model_dir (a folder with decoder.onnx and "
                             "perturbation.onnx from `lpds export`)")
        self.policy = OnnxPolicy(model_dir)
        self.spec = getattr(self.policy, "spec", None)
        self.horizon = int(_spec_get(self.spec, "horizon", "H"))
        self.act_dim = int(_spec_get(self.spec, "act_dim", "A"))
        self._rng = np.random.default_rng(seed)

    def act(self, obs: Any) -> np.ndarray:
        eps = self._rng.standard_normal((self.horizon, self.act_dim)).astype(np.float32)
        return np.asarray(self.policy.act(obs, eps=eps), dtype=np.float64).reshape(self.horizon, self.act_dim)


def _spec_get(spec: Any, *names: str) -> Any:
    for n in names:
        if isinstance(spec, dict) and n in spec:
            return spec[n]
        if hasattr(spec, n):
            return getattr(spec, n)
    raise KeyError(f"policy spec has none of {names}: {spec!r}")


class ScriptedPickPlace:
    """A state-machine operator over named state fields (ee_*, gripper_width, obj_*, target_*).

    Stateless (the phase is read off the observation), so it can be restarted at any point like a learned policy.
    Actions: (dx, dy, dz, gripper) with dx..dz in metres/`action_scale` and gripper -1 open / +1 close.
    """

    names = ("ee_x", "ee_y", "ee_z", "gripper_width", "obj_x", "obj_y", "obj_z", "target_x", "target_y", "target_z")

    def __init__(self, obs_names: list[str] | None = None, horizon: int = 4, max_delta: float = 0.015,
                 action_scale: float = 1.0, hover: float = 0.10, grasp_width: float = 0.035):
        self.horizon, self.act_dim = int(horizon), 4
        self.obs_names = list(obs_names) if obs_names else list(self.names)
        missing = [n for n in self.names if n not in self.obs_names]
        if missing:
            raise ValueError(f"scripted operator needs state fields {missing}; the observation has {self.obs_names}")
        self._idx = [self.obs_names.index(n) for n in self.names]
        self.max_delta, self.scale, self.hover, self.grasp_width = max_delta, action_scale, hover, grasp_width

    def act(self, obs: Any) -> np.ndarray:
        v = np.asarray(obs, dtype=np.float64).reshape(-1)[self._idx]
        ee, width, obj, tgt = v[0:3], v[3], v[4:7], v[7:10]
        chunk, ee = np.zeros((self.horizon, 4)), ee.copy()
        for i in range(self.horizon):
            goal, grip = self._phase(ee, width, obj, tgt)
            step = goal - ee
            n = np.linalg.norm(step)
            if n > self.max_delta:
                step *= self.max_delta / n
            chunk[i, :3], chunk[i, 3] = step / self.scale, grip
            ee = ee + step
            if np.linalg.norm(obj - (v[0:3])) < 0.03 and width < self.grasp_width:
                obj = obj + step  # carried
        return chunk

    def _phase(self, ee, width, obj, tgt):
        held = width < self.grasp_width and np.linalg.norm(obj - ee) < 0.04 and width > 0.002
        xy = np.linalg.norm(ee[:2] - obj[:2])
        if not held:
            if width < self.grasp_width and np.linalg.norm(obj - ee) < 0.02:
                return ee, 1.0  # closing: keep still until the fingers settle
            if xy > 0.01:
                return np.array([obj[0], obj[1], max(obj[2] + self.hover, ee[2])]), -1.0
            if ee[2] - obj[2] > 0.005:
                return np.array([obj[0], obj[1], obj[2]]), -1.0
            return ee, 1.0
        txy = np.linalg.norm(ee[:2] - tgt[:2])
        if txy > 0.01:
            if ee[2] < tgt[2] + self.hover - 0.01 and txy > 0.03:
                return np.array([ee[0], ee[1], tgt[2] + self.hover]), 1.0
            return np.array([tgt[0], tgt[1], tgt[2] + self.hover]), 1.0
        if ee[2] - (tgt[2] + 0.03) > 0.005:
            return np.array([tgt[0], tgt[1], tgt[2] + 0.03]), 1.0
        return ee, -1.0


def load_runner(kind: str, model_dir: str = "", seed: int = 0, **kwargs: Any) -> PolicyRunner:
    if kind == "onnx":
        return OnnxRunner(model_dir, seed=seed)
    if kind == "scripted":
        return ScriptedPickPlace(**kwargs)
    if ":" in kind:
        mod, _, attr = kind.partition(":")
        try:
            factory = getattr(importlib.import_module(mod), attr)
        except (ImportError, AttributeError) as exc:
            raise ValueError(f"runner {kind!r}: cannot import {attr} from {mod}: {exc}") from exc
        runner = factory(model_dir)
        if not isinstance(runner, PolicyRunner):
            raise TypeError(f"runner factory {kind!r} returned {type(runner).__name__}, which lacks "
                            "horizon/act_dim/act(obs)")
        return runner
    raise ValueError(f"unknown runner {kind!r}: use onnx, scripted or package.module:factory")
