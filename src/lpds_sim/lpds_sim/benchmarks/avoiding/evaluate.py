"""Evaluation on Avoiding: success and return through the library's evaluator (`lpds_core.evaluation`), plus what
D3IL reports beside them: the normalised entropy of the modes of the successful rollouts, and the paths drawn in
the trajectory figure."""
from __future__ import annotations

from typing import Any, Callable

import gymnasium as gym
import numpy as np

from .env import AvoidingEnv
from .geometry import mode_entropy


class _Recorder(gym.Wrapper):
    """Keeps every finished episode's end-effector path and final info, keyed by the episode's reset seed."""

    def __init__(self, env: AvoidingEnv, store: dict[int, dict[str, Any]]):
        super().__init__(env)
        self.store, self.seed_, self.path = store, -1, []

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> Any:
        obs, info = self.env.reset(seed=seed, options=options)
        self.seed_, self.path = -1 if seed is None else int(seed), [obs[2:].copy()]
        return obs, info

    def step(self, action: Any) -> Any:
        obs, r, term, trunc, info = self.env.step(action)
        self.path.append(obs[2:].copy())
        if term or trunc:
            self.store[self.seed_] = {"path": np.stack(self.path), "success": bool(info["success"]),
                                      "collided": bool(info["collided"]), "mode": int(info["mode"])}
        return obs, r, term, trunc, info


def evaluate_avoiding(act: Callable[[Any], np.ndarray], n_episodes: int, seed: int,
                      exec_steps: int | None = None, env_kwargs: dict[str, Any] | None = None) -> dict[str, Any]:
    """{"return", "success", "mode_entropy", "collision", "modes_found", "length"} over `n_episodes` seeded
    episodes of `act(obs batch) -> chunks (B, H, 2)`, and "episodes": each one's path, success, collision, mode
    (in seed order)."""
    from lpds_core.evaluation import evaluate_chunks

    store: dict[int, dict[str, Any]] = {}
    res = evaluate_chunks(lambda: _Recorder(AvoidingEnv(**(env_kwargs or {})), store), act, n_episodes, seed,
                          exec_steps=exec_steps)
    episodes = [store[s] for s in sorted(store)]
    won = [e["mode"] for e in episodes if e["success"]]
    return {"return": res["return"], "success": res["success"], "mode_entropy": mode_entropy(won),
            "collision": float(np.mean([e["collided"] for e in episodes])), "modes_found": len(set(won)),
            "length": res["length"], "episodes": episodes}
