"""Behaviour cloning for any chunk backbone: episodes → (obs, next-H-actions) pairs → minibatch training."""
from __future__ import annotations

from typing import Any, Callable, Mapping, Sequence

import numpy as np
import torch
from tqdm.auto import tqdm

from .backbone import Obs
from .augment import random_shift
from .chunk_policy import ChunkPolicy, batch_size_of
from .errors import DataError

Episode = Mapping[str, Any] | tuple[Any, Any]


def check_finite(name: str, arrays: Mapping[str, Any], where: str = "dataset") -> None:
    """DataError naming the episode, the key and the first step when a float array holds NaN/Inf: one bad value
    would make every BC loss NaN, far from its cause."""
    for key, arr in arrays.items():
        a = np.asarray(arr)
        if np.issubdtype(a.dtype, np.floating) and not np.isfinite(a).all():
            bad = np.argwhere(~np.isfinite(a.reshape(len(a), -1)) if a.ndim else ~np.isfinite(a[None]))
            step = int(bad[0][0])
            raise DataError(f"{where}: {name} has NaN/Inf in '{key}' (first at step {step}); re-record that demo "
                            f"or remove it from the file")


def make_chunks(episodes: Sequence[Episode], horizon: int, names: Sequence[str] | None = None,
                where: str = "dataset", obs_name: str = "obs") -> tuple[np.ndarray | dict[str, np.ndarray], np.ndarray]:
    """Pair every observation with the next `horizon` actions of its episode.

    An episode is {"obs": (T, ...) array or dict of (T, ...) arrays, "actions": (T, A)} or a tuple
    (obs, actions); a trailing final observation (T+1 of them) is dropped. Chunks that run past the end repeat
    the last action, i.e. "hold still", which is what a finished demonstration does.
    Returns (obs (N, ...) or dict of them, chunks (N, horizon, A)) with N = Σ T. Bad data (NaN/Inf, lengths,
    action sizes) is a DataError naming the episode (`names`, e.g. the HDF5 group), the key (`obs_name` for an
    array observation) and `where` (the file).
    """
    if horizon < 1:
        raise ValueError(f"horizon must be >= 1, got {horizon}")
    if len(episodes) == 0:
        raise DataError(f"{where} holds no episodes (make_chunks needs at least one episode); record demos first")
    names = list(names) if names is not None else [f"episode {i}" for i in range(len(episodes))]
    obs_parts: list[Any] = []
    chunk_parts: list[np.ndarray] = []
    for i, ep in enumerate(episodes):
        obs, actions = (ep["obs"], ep["actions"]) if isinstance(ep, Mapping) else ep
        actions = np.asarray(actions, dtype=np.float32)
        if actions.ndim != 2 or actions.shape[0] == 0:
            raise DataError(f"{where}: {names[i]}: actions must be a non-empty (T, A) array, got shape "
                            f"{actions.shape}; re-record that demo")
        if chunk_parts and actions.shape[1] != chunk_parts[0].shape[-1]:
            raise DataError(f"{where}: {names[i]} has actions of size {actions.shape[1]} but {names[0]} has "
                            f"{chunk_parts[0].shape[-1]}; the file mixes tasks: re-record it")
        t_len = actions.shape[0]
        obs = {k: np.asarray(v) for k, v in obs.items()} if isinstance(obs, Mapping) else np.asarray(obs)
        parts = obs.items() if isinstance(obs, dict) else [(obs_name, obs)]
        for name, arr in parts:
            if arr.ndim == 0 or arr.shape[0] not in (t_len, t_len + 1):
                raise DataError(
                    f"{where}: {names[i]}: '{name}' has {arr.shape[0] if arr.ndim else 0} steps but there are "
                    f"{t_len} actions (expected {t_len} or {t_len + 1} observations); re-record that demo"
                )
        check_finite(names[i], {**dict(parts), "actions": actions}, where)
        obs_parts.append({k: v[:t_len] for k, v in obs.items()} if isinstance(obs, dict) else obs[:t_len])
        idx = np.minimum(np.arange(t_len)[:, None] + np.arange(horizon)[None, :], t_len - 1)
        chunk_parts.append(actions[idx])
    chunks = np.concatenate(chunk_parts, axis=0)
    if isinstance(obs_parts[0], dict):
        keys = obs_parts[0].keys()
        for name, p in zip(names, obs_parts):
            if set(p.keys()) != set(keys):
                raise DataError(f"{where}: {name} has observation keys {sorted(p)} but {names[0]} has "
                                f"{sorted(keys)}; re-record the file with one observation mode")
        return {k: np.concatenate([p[k] for p in obs_parts], axis=0) for k in keys}, chunks
    return np.concatenate(obs_parts, axis=0), chunks


def _as_tensor(x: Any) -> torch.Tensor:
    """uint8 images stay uint8; everything else becomes float32 (the model's dtype)."""
    t = x if isinstance(x, torch.Tensor) else torch.as_tensor(np.asarray(x))
    return t if t.dtype == torch.uint8 else t.to(torch.float32)


def _as_tensor_obs(obs: Any) -> Obs:
    if isinstance(obs, Mapping):
        return {k: _as_tensor(v) for k, v in obs.items()}
    return _as_tensor(obs)


def _index(obs: Obs, idx: torch.Tensor) -> Obs:
    if isinstance(obs, Mapping):
        return {k: v[idx] for k, v in obs.items()}
    return obs[idx]


def train_bc(
    model: ChunkPolicy,
    obs: Any,
    actions: Any,
    steps: int,
    batch_size: int = 256,
    lr: float = 1e-3,
    progress: bool = True,
    callback: Callable[[int, float], Any] | None = None,
    *,
    optimizer: torch.optim.Optimizer | None = None,
    fit_normalizers: bool = True,
    start_step: int = 0,
    grad_clip: float | None = 1.0,
    seed: int = 0,
    threads: int | None = 1,
    image_shift: int = 0,
) -> list[float]:
    """Minimise `model.bc_loss` over random minibatches; returns the loss of every step.

    obs: (N, obs_dim) or a dict of (N, ...) arrays/tensors; actions: (N, H, A) chunks (see `make_chunks`).
    Normalisers are fitted from this data first unless `fit_normalizers=False` (resuming). Pass your own
    `optimizer` to checkpoint/resume it; `callback(step, loss)` runs after every step (logging, checkpoints);
    if it returns True, training stops early. `threads` sets torch's CPU threads (None leaves it alone).
    `image_shift` > 0 shifts the images of every minibatch by up to that many pixels (see `augment`).
    """
    if threads is not None:
        torch.set_num_threads(threads)
    obs_t = _as_tensor_obs(obs)
    acts = _as_tensor(actions)
    n = batch_size_of(obs_t)
    if acts.shape[0] != n:
        raise ValueError(f"{n} observations but {acts.shape[0]} action chunks; they must pair one to one")
    if n == 0:
        raise ValueError("no training data")
    if fit_normalizers:
        model.fit_normalizers(obs_t, acts)
    elif not model.normalizers_fitted:
        raise ValueError("the model's normalisers were never fitted: call with fit_normalizers=True")
    opt = optimizer or torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=lr, weight_decay=1e-6)
    gen = torch.Generator().manual_seed(seed + start_step)
    losses: list[float] = []
    model.train()
    bar = tqdm(range(start_step, steps), desc=f"BC {type(model).__name__}", disable=not progress, dynamic_ncols=True)
    for step in bar:
        idx = torch.randint(0, n, (min(batch_size, n),), generator=gen)
        batch_obs = _index(obs_t, idx)
        if image_shift > 0 and isinstance(batch_obs, Mapping):
            batch_obs = random_shift(batch_obs, image_shift, gen)
        loss = model.bc_loss(batch_obs, acts[idx], generator=gen)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if grad_clip is not None:
            torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
        opt.step()
        value = float(loss.detach())
        if not np.isfinite(value):
            raise FloatingPointError(f"BC loss became {value} at step {step}; lower the learning rate (lr={lr})")
        losses.append(value)
        if progress and (step % 50 == 0 or step == steps - 1):
            bar.set_postfix(loss=f"{value:.4f}")
        if callback is not None and callback(step, value) is True:
            break
    model.eval()
    return losses
