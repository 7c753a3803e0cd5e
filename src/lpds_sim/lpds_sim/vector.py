"""Vectorised RAI envs across processes, so rollouts use every core (PhysX runs each env single-threaded).

`make_vector_env("pick_place", num_envs=2)` returns a Gymnasium `AsyncVectorEnv` (one subprocess per env,
observations in shared memory). Gymnasium 1.x semantics: autoreset happens on the step *after* an episode ends
(`autoreset_mode=NextStep`), actions are batched `(num_envs, A)`. Subprocesses start with `forkserver` (never fork a
process that already runs PhysX threads). For image observations the parent makes sure a display exists first, so
every worker inherits the same `DISPLAY` instead of starting its own Xvfb.

Like any spawn/forkserver multiprocessing, the script that creates the vector env must guard its entry point with
`if __name__ == "__main__":` (workers import the main module; without the guard they fail to start).

With `pin_workers=True` (default) worker i runs on CPU i mod n of the parent's CPU set: each worker process then
holds its PhysX thread and its stepping thread on one CPU (see `rai/cpu_pin.py` for why that matters) and the
workers do not compete for the same core.
"""
from __future__ import annotations

import functools
import os

import gymnasium as gym


def _make(task: str, env_kwargs: dict, cpu: int | None = None, parent_pid: int | None = None) -> gym.Env:
    # pin a worker process as a whole (its env then needs no per-step pinning); never the parent, where
    # AsyncVectorEnv also calls this once for a dummy env to read the spaces
    if cpu is not None and os.getpid() != parent_pid:
        os.sched_setaffinity(0, {cpu})
    from .tasks import make_env
    return make_env(task, **env_kwargs)


def make_vector_env(task: str, num_envs: int = 2, asynchronous: bool = True, context: str = "forkserver",
                    pin_workers: bool = True, **env_kwargs) -> gym.vector.VectorEnv:
    if num_envs < 1:
        raise ValueError(f"num_envs must be >= 1, got {num_envs}")
    if env_kwargs.get("obs_mode") == "image":
        from .rai.display import ensure_display
        ensure_display()
    cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    pin = pin_workers and asynchronous and len(cpus) > 1
    fns = [functools.partial(_make, task, dict(env_kwargs), cpus[i % len(cpus)] if pin else None, os.getpid())
           for i in range(num_envs)]
    if asynchronous:
        return gym.vector.AsyncVectorEnv(fns, shared_memory=True, context=context)
    return gym.vector.SyncVectorEnv(fns)
