"""Batched evaluation of a chunk policy on the multi-goal task: return, success, per-goal fractions, entropy."""
from __future__ import annotations

from typing import Any

import numpy as np

from lpds_core.metrics import kl_entropy, mode_coverage

from .multigoal import MultiGoalEnv


def rollouts(agent: Any, n_episodes: int = 200, seed: int = 0, env_kwargs: dict | None = None
             ) -> dict[str, np.ndarray]:
    """Run `n_episodes` in lock-step with batched `agent.act` (sampled, not deterministic: the policy's
    stochasticity *is* its multimodality). Returns paths (N, T+1, 2) and returns (N,)."""
    envs = [MultiGoalEnv(**(env_kwargs or {})) for _ in range(n_episodes)]
    obs = np.stack([e.reset(seed=seed * 100_003 + i)[0] for i, e in enumerate(envs)])
    paths, rets = [obs.copy()], np.zeros(n_episodes)
    done = False
    while not done:
        chunks = np.asarray(agent.act(obs))
        for a in range(chunks.shape[1]):
            step = [e.step(chunks[i, a]) for i, e in enumerate(envs)]
            obs = np.stack([s[0] for s in step])
            rets += [s[1] for s in step]
            paths.append(obs.copy())
            done = step[0][3]
            if done:
                break
    return {"paths": np.stack(paths, 1), "returns": rets}


def summarize(env: MultiGoalEnv, paths: np.ndarray, returns: np.ndarray) -> dict[str, Any]:
    """Scalar metrics from rollouts: mean return, success, per-goal fractions, KL entropy of end points."""
    final = paths[:, -1]
    fractions = [float(f) for f in mode_coverage(final, env.goals, env.success_radius)]
    return {"return": float(np.mean(returns)), "return_std": float(np.std(returns)),
            "success": float(sum(fractions)), "mode_fractions": fractions,
            "modes_reached": int(sum(f >= 0.10 for f in fractions)),
            "entropy": float(kl_entropy(final.astype(np.float64), k=3))}


def evaluate(agent: Any, n_episodes: int = 200, seed: int = 0, env_kwargs: dict | None = None) -> dict[str, Any]:
    r = rollouts(agent, n_episodes, seed, env_kwargs)
    return {**summarize(MultiGoalEnv(**(env_kwargs or {})), r["paths"], r["returns"]), "paths": r["paths"]}
