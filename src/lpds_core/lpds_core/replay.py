"""Fixed-capacity off-policy replay buffer in numpy (ring buffer).

One entry is one chunk transition: obs, the executed action chunk (raw units), the noise
that produced it, the chunk reward, next obs, `discount = γ^n` (n env steps executed) and
`done` (true termination only; truncation still bootstraps). Observations may be arrays or
dicts of arrays (image observations).
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch


def _as_dict(obs: Any) -> dict[str, np.ndarray]:
    return {k: np.asarray(v) for k, v in obs.items()} if isinstance(obs, dict) else {"": np.asarray(obs)}


class ReplayBuffer:
    """add(...) one transition at a time; sample(batch_size) → dict of torch tensors."""

    def __init__(self, capacity: int, noise_shape: tuple[int, int], seed: int | None = None):
        if capacity <= 0:
            raise ValueError(f"replay capacity must be > 0, got {capacity}")
        self.capacity = int(capacity)
        self.noise_shape = tuple(noise_shape)
        self.rng = np.random.default_rng(seed)
        self.size = 0
        self.pos = 0
        self._obs: dict[str, np.ndarray] | None = None
        self._next_obs: dict[str, np.ndarray] | None = None
        self._dict_obs = False
        self.action = np.zeros((self.capacity, *self.noise_shape), np.float32)
        self.noise = np.zeros((self.capacity, *self.noise_shape), np.float32)
        self.reward = np.zeros(self.capacity, np.float32)
        self.discount = np.zeros(self.capacity, np.float32)
        self.done = np.zeros(self.capacity, np.float32)

    def __len__(self) -> int:
        return self.size

    def _alloc(self, obs: dict[str, np.ndarray]) -> None:
        self._obs = {k: np.zeros((self.capacity, *v.shape), v.dtype if v.dtype == np.uint8 else np.float32)
                     for k, v in obs.items()}
        self._next_obs = {k: np.zeros_like(v) for k, v in self._obs.items()}

    def add(self, obs: Any, action: np.ndarray, noise: np.ndarray, reward: float, next_obs: Any,
            discount: float, done: bool) -> None:
        o, no = _as_dict(obs), _as_dict(next_obs)
        if self._obs is None:
            self._dict_obs = isinstance(obs, dict)
            self._alloc(o)
        assert self._obs is not None and self._next_obs is not None
        if o.keys() != self._obs.keys() or no.keys() != self._obs.keys():
            raise ValueError(f"replay: observation keys changed: {sorted(o)} vs {sorted(self._obs)}")
        for k in self._obs:
            if o[k].shape != self._obs[k].shape[1:] or no[k].shape != self._obs[k].shape[1:]:
                raise ValueError(f"replay: observation {k or 'obs'} has shape {o[k].shape}, "
                                 f"buffer expects {self._obs[k].shape[1:]}")
        action, noise = np.asarray(action, np.float32), np.asarray(noise, np.float32)
        if action.shape != self.noise_shape or noise.shape != self.noise_shape:
            raise ValueError(f"replay: action and noise must have shape {self.noise_shape}, "
                             f"got {action.shape} and {noise.shape}")
        if not (np.isfinite(action).all() and np.isfinite(noise).all() and np.isfinite(reward)):
            raise ValueError("replay: non-finite action, noise or reward; check the env and the policy")
        i = self.pos
        for k in self._obs:
            self._obs[k][i] = o[k]
            self._next_obs[k][i] = no[k]
        self.action[i], self.noise[i] = action, noise
        self.reward[i], self.discount[i], self.done[i] = reward, discount, float(done)
        self.pos = (self.pos + 1) % self.capacity
        self.size = min(self.size + 1, self.capacity)

    def _obs_out(self, store: dict[str, np.ndarray], idx: np.ndarray) -> Any:
        out = {k: torch.as_tensor(v[idx]) for k, v in store.items()}
        return out if self._dict_obs else out[""]

    def sample(self, batch_size: int) -> dict[str, Any]:
        if self.size == 0:
            raise ValueError("replay: cannot sample from an empty buffer (collect warm-up steps first)")
        idx = self.rng.integers(0, self.size, size=batch_size)
        assert self._obs is not None and self._next_obs is not None
        return {
            "obs": self._obs_out(self._obs, idx),
            "action": torch.as_tensor(self.action[idx]),
            "noise": torch.as_tensor(self.noise[idx]),
            "reward": torch.as_tensor(self.reward[idx]),
            "next_obs": self._obs_out(self._next_obs, idx),
            "discount": torch.as_tensor(self.discount[idx]),
            "done": torch.as_tensor(self.done[idx]),
        }

    # ---- persistence (resumable training) -------------------------------------------------------------
    def save(self, path: str) -> None:
        """Write the filled part of the buffer to an .npz file (no pickle)."""
        if self._obs is None or self._next_obs is None:
            raise ValueError("replay: nothing to save, the buffer is empty")
        arrays = {f"obs/{k}": v[: self.size] for k, v in self._obs.items()}
        arrays.update({f"next_obs/{k}": v[: self.size] for k, v in self._next_obs.items()})
        for name in ("action", "noise", "reward", "discount", "done"):
            arrays[name] = getattr(self, name)[: self.size]
        meta = np.array([self.capacity, self.size, self.pos, int(self._dict_obs)], np.int64)
        np.savez_compressed(path, _meta=meta, **arrays)

    @classmethod
    def load(cls, path: str, seed: int | None = None) -> "ReplayBuffer":
        """A buffer restored from `save` (same capacity, contents and write position)."""
        try:
            data = np.load(path, allow_pickle=False)
            capacity, size, pos, dict_obs = (int(x) for x in data["_meta"])
            buf = cls(capacity, tuple(data["action"].shape[1:]), seed=seed)  # type: ignore[arg-type]
        except (OSError, KeyError, ValueError) as e:
            raise ValueError(f"replay: '{path}' is not a readable replay-buffer file ({e}); delete it and "
                             f"collect fresh data") from e
        keys = [k[4:] for k in data.files if k.startswith("obs/")]
        buf._dict_obs = bool(dict_obs)
        buf._alloc({k: data[f"obs/{k}"][0] for k in keys})
        assert buf._obs is not None and buf._next_obs is not None
        for k in keys:
            buf._obs[k][:size] = data[f"obs/{k}"]
            buf._next_obs[k][:size] = data[f"next_obs/{k}"]
        for name in ("action", "noise", "reward", "discount", "done"):
            getattr(buf, name)[:size] = data[name]
        buf.size, buf.pos = size, pos
        return buf
