"""Mug-hanging benchmark: scripted-operator success on the 20-trial grid, and MugHang-v0 env steps/s.

Usage: python bench/mug_hang.py [--seeds 0 1 2] [--steps 2000]  (from the repo root, PYTHONPATH as in the README)
Prints one markdown row per measurement (paste into bench/RESULTS.md). Timings share 2 noisy cores; the
operator rate is what matters (issue target: >= 85 % of the mug trials).
"""
from __future__ import annotations

import argparse
import time

import numpy as np


def operator_grid(seed: int) -> tuple[int, int, float, int, float]:
    """(successes, trials, wall seconds, env steps, planning seconds) of the scripted operator on the mug grid."""
    from lpds_core.grid_protocol import GridProtocol
    from lpds_sim.tasks import get_task, make_env, make_operator

    env = make_env("mug_hang")
    op = make_operator("mug_hang", env, seed=seed)
    rows, cols, trials = get_task("mug_hang").grid
    t0 = time.perf_counter()
    res = GridProtocol(rows, cols, trials, seed=seed).run(env, op, progress=False)
    wall = time.perf_counter() - t0
    env.close()
    return res.successes, len(res.trials), wall, sum(r.length for r in res.trials), op.plan_seconds


def env_steps_per_s(task: str, n: int, seed: int = 0) -> float:
    """State env steps/s with random actions in one process (resets excluded)."""
    from lpds_sim.tasks import make_env

    env = make_env(task)
    env.reset(seed=seed)
    rng = np.random.default_rng(seed)
    acts = rng.uniform(-1, 1, (n, env.action_space.shape[0])).astype(np.float32)
    dt = 0.0
    for a in acts:
        t = time.perf_counter()
        _, _, term, trunc, _ = env.step(a)
        dt += time.perf_counter() - t
        if term or trunc:
            env.reset()
    env.close()
    return n / dt


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--steps", type=int, default=2000)
    args = ap.parse_args()
    print("| measurement | value | notes |")
    print("|---|---|---|")
    tot_ok = tot_n = 0
    for seed in args.seeds:
        ok, n, wall, steps, plan = operator_grid(seed)
        tot_ok, tot_n = tot_ok + ok, tot_n + n
        print(f"| mug operator, grid 2x2x5, seed {seed} | {ok}/{n} = {100 * ok / n:.0f} % | {wall:.1f} s wall, "
              f"{steps / n:.0f} steps/episode, KOMO planning {plan / n:.2f} s/episode, "
              f"{steps / wall:.0f} env steps/s incl. planning |", flush=True)
    if len(args.seeds) > 1:
        print(f"| mug operator, all seeds | {tot_ok}/{tot_n} = {100 * tot_ok / tot_n:.1f} % | |")
    sps, ref = env_steps_per_s("mug_hang", args.steps), env_steps_per_s("pick_place", args.steps)
    print(f"| MugHang-v0 state env, random actions, 1 process | {sps:.0f} steps/s = {sps / ref:.2f}x PickPlace-v0 "
          f"({ref:.0f} steps/s, same run) | 10 Hz control, 10 PhysX substeps of 10 ms |")


if __name__ == "__main__":
    main()
