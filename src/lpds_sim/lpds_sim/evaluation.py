"""Glue between chunk policies and the RAI tasks: training vector envs and grid evaluation.

The envs, the grid protocol and its runner belong to the simulation package; this module only adapts a chunk
policy (observation → (H, A) chunk) to them: vector envs whose step takes a chunk, and a per-step callable that
replays a chunk open loop (what the robot does) for the grid runner.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import numpy as np


def grid_shape(task: str) -> tuple[int, int, int]:
    """(rows, cols, trials per cell) of the task's evaluation grid (pick-and-place 2×4×5, mug hanging 20 trials)."""
    from lpds_sim.tasks import get_task

    return tuple(get_task(task).grid)  # type: ignore[return-value]


def make_env(task: str, obs_mode: str, **kwargs: Any):
    """The task's env (the sim's registry, with its default kwargs)."""
    from lpds_core.errors import ConfigError

    from lpds_sim.tasks import TASKS, make_env as make_task_env

    if task not in TASKS:
        raise ConfigError(f"unknown task {task!r}; choose one of {', '.join(sorted(TASKS))}")
    return make_task_env(task, obs_mode=obs_mode, **kwargs)


def check_policy_fits(env: Any, act_dim: int, obs_keys: Any, what: str, task: str) -> None:
    """RunError when a policy (a run, an export) was made for another action size or observation layout than
    `env`'s: caught at load time, with the keys found and expected, instead of a shape error mid-evaluation."""
    from lpds_core.errors import RunError

    want = int(env.action_space.shape[0])
    if int(act_dim) != want:
        raise RunError(f"{what} outputs actions of size {act_dim}, but task '{task}' takes actions of size {want}; "
                       f"use a policy trained for '{task}'")
    space = env.observation_space
    env_keys = sorted(space.spaces) if hasattr(space, "spaces") else ["state"]
    if obs_keys is not None and not set(obs_keys) <= set(env_keys):
        raise RunError(f"{what} reads observation keys {sorted(obs_keys)}, but the '{task}' env gives "
                       f"{env_keys}; pass --obs to match the policy (state or image)")


def _chunk_env_factory(task: str, obs_mode: str, horizon: int, gamma: float, exec_steps: int | None = None,
                       **env_kwargs: Any) -> Callable[[], Any]:
    def make():
        from lpds_core.chunking import ActionChunkWrapper

        return ActionChunkWrapper(make_env(task, obs_mode, **env_kwargs), horizon, gamma, exec_steps)

    return make


def _env_world(env_kwargs: dict[str, Any], seed: int, n_envs: int, i: int) -> dict[str, Any]:
    """Env i's kwargs: a world (a World) gets env i's own world seed, offset by the run seed so another run draws
    other worlds."""
    if env_kwargs.get("world") is None:
        return env_kwargs
    from lpds_sim.rai.world import per_env, resolve_world

    world = resolve_world(env_kwargs["world"])
    return {**env_kwargs, "world": None if world is None else per_env(world, seed * n_envs + i)}


def make_train_envs(task: str, obs_mode: str, n_envs: int, horizon: int, gamma: float, seed: int,
                    vector: str = "async", exec_steps: int | None = None, **env_kwargs: Any):
    """n_envs chunk-stepping envs in a Gymnasium vector env (SAME_STEP autoreset: final obs in info);
    `env_kwargs` go to every env (e.g. privileged_state=True; a `world` with a world seed of each env's own).

    "async" (default) puts every env in its own process, even a single one: robotic 0.4.1 segfaults in
    `~PhysXInterface` when a process that holds several PhysX simulations destroys one after others were destroyed
    (an env's reset makes a fresh Simulation), so a training env must not share its process with the evaluation env.
    """
    import gymnasium as gym

    if obs_mode == "image":  # one display for all workers (as lpds_sim.vector does), not one Xvfb each
        from lpds_sim.rai.display import ensure_display

        ensure_display()
    fns = [_chunk_env_factory(task, obs_mode, horizon, gamma, exec_steps, **_env_world(env_kwargs, seed, n_envs, i))
           for i in range(n_envs)]
    mode = gym.vector.AutoresetMode.SAME_STEP
    # envs of a world stand on their own table heights, so their state bounds (the workspace floor) differ slightly
    spaces = {"observation_mode": "different"} if env_kwargs.get("world") is not None else {}
    if vector == "async":
        envs = gym.vector.AsyncVectorEnv(fns, autoreset_mode=mode, context="forkserver", **spaces)
    else:
        envs = gym.vector.SyncVectorEnv(fns, autoreset_mode=mode, **spaces)
    return envs, envs.single_observation_space, envs.single_action_space


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

    @property
    def reads_next_obs(self) -> bool:
        """Whether the next call looks at its observation (only when the chunk has run out: it replans)."""
        return not self._queue

    def __call__(self, obs: Any) -> np.ndarray:
        if not self._queue:
            chunk = np.asarray(self.chunk_policy(obs))
            self._queue = list(chunk[: self.execute])
        return self._queue.pop(0)


def evaluate_grid(task: str, obs_mode: str, chunk_policy: Callable[[Any], np.ndarray], horizon: int,
                  trials_per_cell: int | None = None, seed: int = 0, out: str | Path | None = None,
                  progress: bool = False, meta: dict[str, Any] | None = None, env: Any = None,
                  videos: int = 0) -> dict[str, Any]:
    """Run the task's grid protocol with a chunk policy; returns success_rate, n_success, n_trials, mean_return.
    With `out`, the sim's per-cell JSON/CSV and heatmap PNG are written there, with the end-effector trajectories
    (npz + figure) and GIFs of the first `videos` trials (lpds_sim.eval_pictures); without `out` nothing is
    recorded. Pass `env` to reuse one evaluation env for many evaluations (a process should hold as few RAI envs
    as possible, see `make_train_envs`)."""
    from lpds_core.grid_protocol import GridProtocol

    from lpds_sim.eval_pictures import EpisodeRecorder

    rows, cols, per_cell = grid_shape(task)
    protocol = GridProtocol(rows=rows, cols=cols, trials=trials_per_cell or per_cell, seed=seed)
    own = env is None
    env = make_env(task, obs_mode) if own else env
    run_env = EpisodeRecorder(env, videos=videos) if out is not None else env
    try:
        res = protocol.run(run_env, ChunkExecutor(chunk_policy, horizon), progress=progress, meta=meta)
        if out is not None:
            res.write(out)
            run_env.write(out, res, title=(meta or {}).get("title", ""))
    finally:
        if run_env is not env:
            run_env.close_camera()
        if own:
            env.close()
    return {"success_rate": res.success_rate, "n_success": res.successes, "n_trials": len(res.trials),
            "mean_return": float(np.mean([t.ret for t in res.trials])),
            "success_table": res.success_table.tolist()}
