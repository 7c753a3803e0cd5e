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
    """`obs_spec` ({key: {"shape": [...], "dtype": "float32" | "uint8"}}, state vectors under "state") is optional:
    the node checks observations and reloads against it when present."""
    horizon: int
    act_dim: int

    def act(self, obs: Any) -> np.ndarray:
        """An action chunk (horizon, act_dim) in raw env units for one observation."""
        ...


class OnnxRunner:
    """Adapter over lpds_core.export.OnnxPolicy: fresh noise every call, eps from a seeded generator."""

    def __init__(self, model_dir: str, seed: int = 0):
        try:
            from lpds_core.onnx_policy import OnnxPolicy  # numpy + onnxruntime only: no torch on the robot PC
        except ImportError as exc:  # pragma: no cover - depends on the installed lpds_core
            raise RuntimeError("runner 'onnx' needs lpds_core.onnx_policy.OnnxPolicy and onnxruntime "
                               f"(pip install -e src/lpds_core onnxruntime); import failed: {exc}") from exc
        if not model_dir:
            raise ValueError("runner 'onnx' needs the parameter model_dir (a folder with decoder.onnx and "
                             "perturbation.onnx from `lpds export`)")
        self.policy = OnnxPolicy(model_dir)
        self.spec = self.policy.spec
        self.horizon, self.act_dim = int(self.policy.horizon), int(self.policy.act_dim)
        self.obs_spec = self.policy.obs_spec  # checked by the node against the running model on ~/reload
        self._rng = np.random.default_rng(seed)
        self.last_eps: np.ndarray | None = None  # the noise of the last chunk (recorded, so a replay can reuse it)

    def act(self, obs: Any) -> np.ndarray:
        """ε ~ N(0, I) from the node's seeded generator -> c·ε at the export's deploy temperature -> perturbation ->
        decode (all inside OnnxPolicy)."""
        self.last_eps = self._rng.standard_normal((self.horizon, self.act_dim), dtype=np.float32)
        return np.asarray(self.policy.act(obs, eps=self.last_eps), dtype=np.float64).reshape(self.horizon,
                                                                                            self.act_dim)


class ScriptedPickPlace:
    """A state-machine operator over named state fields (ee_*, gripper_width, obj_*, target_*).

    Stateless (the phase is read off the observation), so it can be restarted at any point like a learned policy;
    it stands behind the same `act(obs) -> chunk` interface as the exported model, to test the deployment path
    independently of how well a trained model does. Actions (dx, dy, dz, gripper) in the env's units.
    """

    names = ("ee_x", "ee_y", "ee_z", "gripper_width", "obj_x", "obj_y", "obj_z", "target_x", "target_y", "target_z")

    def __init__(self, obs_names: list[str] | None = None, horizon: int = 4, action_scale: float = 0.03,
                 gripper_open_value: float = 1.0, gripper_closed_value: float = -1.0, hover: float = 0.10,
                 grasp_depth: float = 0.0, release_height: float = 0.04, held_width: float = 0.04,
                 min_held_width: float = 0.008, gain: float = 0.5):
        self.horizon, self.act_dim = int(horizon), 4
        self.obs_names = list(obs_names) if obs_names else list(self.names)
        missing = [n for n in self.names if n not in self.obs_names]
        if missing:
            raise ValueError(f"scripted operator needs state fields {missing}; the observation has {self.obs_names}")
        self._idx = [self.obs_names.index(n) for n in self.names]
        self.obs_spec = {"state": {"shape": [len(self.obs_names)], "dtype": "float32"}}
        self.scale, self.open_v, self.closed_v = action_scale, gripper_open_value, gripper_closed_value
        self.hover, self.grasp_depth, self.release_height = hover, grasp_depth, release_height
        self.held_width, self.min_held_width, self.gain = held_width, min_held_width, gain

    def act(self, obs: Any) -> np.ndarray:
        v = np.asarray(obs, dtype=np.float64).reshape(-1)[self._idx]
        ee, width, obj, tgt = v[0:3], v[3], v[4:7], v[7:10]
        goal, close = self._phase(ee, width, obj, tgt)
        chunk = np.zeros((self.horizon, 4))
        for i in range(self.horizon):
            # proportional step: the env integrates its own target ahead of the measured pose, so full steps overshoot
            step = np.clip(self.gain * (goal - ee) / self.scale, -1.0, 1.0)
            chunk[i, :3] = step
            chunk[i, 3] = self.closed_v if close else self.open_v
            ee = ee + step * self.scale
        return chunk

    def _phase(self, ee, width, obj, tgt) -> tuple[np.ndarray, bool]:
        held = np.linalg.norm(obj - ee) < 0.04 and self.min_held_width < width < self.held_width
        if held:
            dxy = np.linalg.norm(ee[:2] - tgt[:2])
            if dxy > 0.02:
                if ee[2] < tgt[2] + self.hover - 0.03 and dxy > 0.05:
                    return np.array([ee[0], ee[1], tgt[2] + self.hover]), True  # lift first
                return np.array([tgt[0], tgt[1], tgt[2] + self.hover]), True
            if ee[2] > tgt[2] + self.release_height:
                return np.array([tgt[0], tgt[1], tgt[2] + self.release_height - 0.01]), True
            return ee, False  # release over the target
        grasp = np.array([obj[0], obj[1], obj[2] - self.grasp_depth])
        dxy = np.linalg.norm(ee[:2] - obj[:2])
        low = ee[2] < obj[2] + self.hover - 0.03
        if dxy > (0.02 if low else 0.008):
            if low and dxy > 0.03:
                return np.array([ee[0], ee[1], obj[2] + self.hover]), False  # rise before moving sideways
            return np.array([obj[0], obj[1], obj[2] + self.hover]), False
        if np.linalg.norm(ee - grasp) > 0.012 and width > self.held_width:
            return grasp, False
        return grasp, True  # close on the cube, keep centred while the fingers close


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
