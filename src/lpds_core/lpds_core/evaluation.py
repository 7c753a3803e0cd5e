"""Evaluate a chunk policy on any per-step Gymnasium env: the library's one episode-return evaluator.

Training logs only the returns of the episodes it collects (with exploration noise, cut by the budget); a
benchmark needs returns of the policy as deployed, over a fixed set of seeded episodes, with the chunk executed the
way the task's preset says (all H actions, or only the first k before re-planning, as DPPO/DSRL evaluate).
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np

ActBatch = Callable[[Any], np.ndarray]  # obs batch (B, ...) -> chunks (B, H, A)


def evaluate_chunks(make_env: Callable[[], Any], act: ActBatch, n_episodes: int, seed: int, *,
                    exec_steps: int | None = None, n_envs: int = 8,
                    max_steps: int | None = None) -> dict[str, Any]:
    """Mean return / success / length over `n_episodes` seeded episodes (seed, seed+1, ...).

    `act` gets the observations of the still-running episodes as one batch and returns (B, H, A) chunks; each env
    executes the first `exec_steps` of its chunk (None: all H), then the policy re-plans. `success` is the mean of
    `info["success"]` (or `is_success`) at the end of an episode where the env reports it, else NaN. Episodes run
    `n_envs` at a time in this process (batching the policy, not the physics: on few cores IPC costs more than a
    MuJoCo step). Returns the per-episode returns too, for intervals.
    """
    if n_episodes < 1:
        raise ValueError(f"n_episodes must be >= 1, got {n_episodes}")
    if exec_steps is not None and exec_steps < 1:
        raise ValueError(f"exec_steps must be >= 1 or None, got {exec_steps}")
    envs = [make_env() for _ in range(min(n_envs, n_episodes))]
    returns = np.zeros(n_episodes)
    lengths = np.zeros(n_episodes, dtype=int)
    success = np.full(n_episodes, np.nan)
    next_ep = 0
    slots: list[dict[str, Any] | None] = [None] * len(envs)

    def start(i: int) -> None:
        nonlocal next_ep
        if next_ep >= n_episodes:
            slots[i] = None
            return
        obs, _ = envs[i].reset(seed=seed + next_ep)
        slots[i] = {"ep": next_ep, "obs": obs}
        next_ep += 1

    for i in range(len(envs)):
        start(i)
    try:
        while any(s is not None for s in slots):
            live = [i for i, s in enumerate(slots) if s is not None]
            obs = [slots[i]["obs"] for i in live]  # type: ignore[index]
            batch = ({k: np.stack([o[k] for o in obs]) for k in obs[0]} if isinstance(obs[0], dict)
                     else np.stack(obs))
            chunks = np.asarray(act(batch))
            if chunks.ndim != 3 or chunks.shape[0] != len(live):
                raise ValueError(f"act must return (B, H, A) chunks for B={len(live)} observations, got "
                                 f"shape {chunks.shape}")
            k = chunks.shape[1] if exec_steps is None else min(exec_steps, chunks.shape[1])
            for j, i in enumerate(live):
                slot = slots[i]
                ep = slot["ep"]  # type: ignore[index]
                for t in range(k):
                    o, r, term, trunc, info = envs[i].step(chunks[j, t])
                    returns[ep] += float(r)
                    lengths[ep] += 1
                    if max_steps is not None and lengths[ep] >= max_steps:
                        trunc = True
                    if term or trunc:
                        flag = info.get("success", info.get("is_success"))
                        if flag is not None:
                            success[ep] = float(bool(flag))
                        start(i)
                        break
                    slot["obs"] = o  # type: ignore[index]
    finally:
        for e in envs:
            e.close()
    return {"return": float(returns.mean()), "return_std": float(returns.std()),
            "success": float(np.nanmean(success)) if np.isfinite(success).any() else float("nan"),
            "length": float(lengths.mean()), "returns": returns.tolist()}
