"""Benchmark the RAI Panda envs: state env steps/s (one process), vector env speed-up on 2 cores, image env steps/s.

Run:  python bench/rai_env.py [--steps 3000] [--image-steps 200]
Every comparison is measured side by side in one run (the 2 cores are shared, absolute numbers are noisy).
Action streams: `random` = i.i.d. uniform actions (worst case: arm often pushed into the table, gripper toggling
every other step); `smooth` = low-pass-filtered random actions (closer to what a policy or operator sends).
"""
from __future__ import annotations

import argparse
import json
import time

import numpy as np


def actions(kind: str, n: int, dim: int, rng: np.random.Generator) -> np.ndarray:
    a = rng.uniform(-1, 1, (n, dim))
    if kind == "smooth":
        for t in range(1, n):
            a[t] = 0.85 * a[t - 1] + 0.15 * a[t]
        a[:, -1] = np.where(np.sin(np.arange(n) / 15.0) > 0, 1.0, -1.0)  # gripper flips every ~5 s
        a[:, :3] /= np.maximum(np.abs(a[:, :3]).max(), 1e-9)
    return a.astype(np.float32)


def bench_single(task: str, kind: str, steps: int, obs_mode: str = "state") -> float:
    from lpds_sim.tasks import make_env
    env = make_env(task, obs_mode=obs_mode)
    A = actions(kind, steps, env.action_space.shape[0], np.random.default_rng(0))
    env.reset(seed=0)
    t = time.perf_counter()
    for a in A:
        _, _, term, trunc, _ = env.step(a)
        if term or trunc:
            env.reset()
    dt = time.perf_counter() - t
    env.close()
    return steps / dt


def bench_vector(task: str, kind: str, steps: int, num_envs: int) -> float:
    from lpds_sim.vector import make_vector_env
    venv = make_vector_env(task, num_envs=num_envs, obs_mode="state")
    A = actions(kind, steps, venv.single_action_space.shape[0], np.random.default_rng(0))
    venv.reset(seed=0)
    venv.step(np.repeat(A[:1], num_envs, 0))  # warm-up: workers started
    t = time.perf_counter()
    for a in A:
        venv.step(np.repeat(a[None], num_envs, 0))
    dt = time.perf_counter() - t
    venv.close()
    return steps * num_envs / dt


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--task", default="pick_place")
    ap.add_argument("--steps", type=int, default=3000)
    ap.add_argument("--image-steps", type=int, default=200)
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    res = {}
    for kind in ("random", "smooth"):
        one = bench_single(args.task, kind, args.steps)
        vec = bench_vector(args.task, kind, args.steps // 2, 2)
        res[kind] = {"single_steps_per_s": one, "vector2_steps_per_s": vec, "speedup": vec / one}
        print(f"[{kind:6s}] state env, 1 process: {one:7.0f} steps/s | AsyncVectorEnv x2: {vec:7.0f} steps/s "
              f"| speed-up {vec / one:.2f}x")
    img = bench_single(args.task, "smooth", args.image_steps, obs_mode="image")
    res["image_steps_per_s"] = img
    print(f"image env (84x84 RGB-D + proprio, Xvfb/llvmpipe), 1 process: {img:.1f} steps/s")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(res, f, indent=2)


if __name__ == "__main__":
    main()
