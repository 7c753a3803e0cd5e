"""Glue between chunk policies and the RAI tasks: training vector envs and grid evaluation.

The envs, the grid protocol and its runner belong to the simulation package; this module only adapts a chunk
policy (observation → (H, A) chunk) to them: vector envs whose step takes a chunk, and a per-step callable that
replays a chunk open loop (what the robot does) for the grid runner.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import numpy as np

# the grid each task is evaluated on: pick-and-place 2×4×5 = 40 trials, mug hanging 2×2×5 = 20 trials
TASK_GRIDS = {"pick_place": (2, 4), "mug_hang": (2, 2)}


def env_id(task: str) -> str:
    from lpds_sim.rai import ENV_IDS  # importing registers the ids

    if task not in ENV_IDS:
        raise ValueError(f"unknown or not yet available task {task!r}; available: {', '.join(ENV_IDS)}")
    return ENV_IDS[task]


def make_env(task: str, obs_mode: str, **kwargs: Any):
    import gymnasium as gym

    return gym.make(env_id(task), obs_mode=obs_mode, **kwargs)


def _chunk_env_factory(task: str, obs_mode: str, horizon: int, gamma: float) -> Callable[[], Any]:
    def make():
        from lpds_core.chunking import ActionChunkWrapper

        return ActionChunkWrapper(make_env(task, obs_mode), horizon, gamma)

    return make


def make_train_envs(task: str, obs_mode: str, n_envs: int, horizon: int, gamma: float, seed: int,
                    vector: str = "sync"):
    """n_envs chunk-stepping envs in a Gymnasium vector env (SAME_STEP autoreset: final obs in info)."""
    import gymnasium as gym

    fns = [_chunk_env_factory(task, obs_mode, horizon, gamma) for _ in range(n_envs)]
    mode = gym.vector.AutoresetMode.SAME_STEP
    if vector == "async" and n_envs > 1:
        envs = gym.vector.AsyncVectorEnv(fns, autoreset_mode=mode, context="spawn")
    else:
        envs = gym.vector.SyncVectorEnv(fns, autoreset_mode=mode)
    return envs, envs.single_observation_space, envs.single_action_space


def info_at(info: dict[str, Any], key: str, i: int, done: bool, default: Any = None) -> Any:
    """Env i's value of `key` in a vector-env info (for a finished env, from its final step, not its reset)."""
    src = info.get("final_info", info) if done else info
    if key not in src:
        return default
    mask = src.get(f"_{key}")
    if mask is not None and not mask[i]:
        return default
    return src[key][i]


class ChunkExecutor:
    """Per-step policy from a chunk policy: plans a chunk, replays it open loop, replans when it runs out.

    `reset()` must be called at the start of every episode (the grid runner does, through `reset` if present).
    """

    def __init__(self, chunk_policy: Callable[[Any], np.ndarray], horizon: int, execute: int | None = None):
        self.chunk_policy = chunk_policy
        self.execute = int(execute or horizon)
        self._queue: list[np.ndarray] = []

    def reset(self) -> None:
        self._queue = []

    def __call__(self, obs: Any) -> np.ndarray:
        if not self._queue:
            chunk = np.asarray(self.chunk_policy(obs))
            self._queue = list(chunk[: self.execute])
        return self._queue.pop(0)


def evaluate_grid(task: str, obs_mode: str, chunk_policy: Callable[[Any], np.ndarray], horizon: int,
                  trials_per_cell: int = 5, seed: int = 0, out: str | Path | None = None) -> dict[str, Any]:
    """Run the task's grid protocol with a chunk policy; returns at least success_rate, mean_return, n_trials."""
    from lpds_sim.grid import GridProtocol, run_grid  # type: ignore[import-not-found]

    rows, cols = TASK_GRIDS[task]
    protocol = GridProtocol(rows=rows, cols=cols, trials=trials_per_cell, seed=seed)
    env = make_env(task, obs_mode)
    try:
        res = run_grid(env, ChunkExecutor(chunk_policy, horizon), protocol, out=out)
    finally:
        env.close()
    return res
