"""Benchmark the RAI Panda envs: state env steps/s (one process), vector env speed-up on 2 cores, image env steps/s.

Run:  python bench/rai_env.py [--steps 3000] [--image-steps 200] [--baseline GIT_REV]
Every comparison is measured side by side in one run (the 2 cores are shared, absolute numbers are noisy).
`--baseline REV` also times the state env of an older commit (its `src/` exported with `git archive`) against the
working tree, each in a fresh subprocess, interleaved round by round.
Action streams: `random` = i.i.d. uniform actions (worst case: arm often pushed into the table, gripper toggling
every other step); `smooth` = low-pass-filtered random actions (closer to what a policy or operator sends).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from lpds_core import jsonio


def actions(kind: str, n: int, dim: int, rng: np.random.Generator) -> np.ndarray:
    a = rng.uniform(-1, 1, (n, dim))
    if kind == "smooth":
        for t in range(1, n):
            a[t] = 0.85 * a[t - 1] + 0.15 * a[t]
        a[:, -1] = np.where(np.sin(np.arange(n) / 15.0) > 0, 1.0, -1.0)  # gripper flips every ~5 s
        a[:, :3] /= np.maximum(np.abs(a[:, :3]).max(), 1e-9)
    return a.astype(np.float32)


def bench_single(task: str, kind: str, steps: int, obs_mode: str = "state", **kw) -> tuple[float, float]:
    """(steps per wall second, steps per CPU second of this process). The CPU-time rate is what one free core
    would give; on a shared, overloaded machine the wall rate is lower by the time-slicing factor."""
    from lpds_sim.tasks import make_env
    env = make_env(task, obs_mode=obs_mode, **kw)
    A = actions(kind, steps, env.action_space.shape[0], np.random.default_rng(0))
    env.reset(seed=0)
    t, c = time.perf_counter(), time.process_time()
    for a in A:
        _, _, term, trunc, _ = env.step(a)
        if term or trunc:
            env.reset()
    dt, dc = time.perf_counter() - t, time.process_time() - c
    env.close()
    return steps / dt, steps / dc


REPO = Path(__file__).resolve().parents[1]


def export_src(rev: str, dest: str) -> str:
    """Write `src/` of git revision `rev` under `dest` (for a baseline measured side by side); returns `dest`."""
    archive = subprocess.run(["git", "-C", str(REPO), "archive", rev, "src"], check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", dest], input=archive, check=True)
    return dest


def measure_subprocess(root: str | Path, what: str, task: str, kind: str, steps: int) -> list[float]:
    """`bench_single` (what="single") or `bench_vector` x2 (what="vector") in a fresh interpreter importing lpds_sim
    from `root/src` (its vector workers inherit that path): baseline and working tree under the same conditions."""
    env = dict(os.environ, PYTHONPATH=f"{root}/src/lpds_core:{root}/src/lpds_sim")
    out = subprocess.run([sys.executable, __file__, "--measure", json.dumps([what, task, kind, steps])], env=env,
                         check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def _cpu_seconds(pid: int) -> float:
    """utime + stime of a process from /proc (Linux), in seconds."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def bench_vector(task: str, kind: str, steps: int, num_envs: int, **kw) -> tuple[float, float, float]:
    """(env steps per wall second, worker CPU-s per env step, parent CPU-s per vector step)."""
    from lpds_sim.vector import make_vector_env
    venv = make_vector_env(task, num_envs=num_envs, obs_mode="state", **kw)
    A = actions(kind, steps, venv.single_action_space.shape[0], np.random.default_rng(0))
    venv.reset(seed=0)
    venv.step(np.repeat(A[:1], num_envs, 0))  # warm-up: workers started
    pids = [p.pid for p in venv.processes]
    w0, c0, t = [_cpu_seconds(p) for p in pids], time.process_time(), time.perf_counter()
    for a in A:
        venv.step(np.repeat(a[None], num_envs, 0))
    dt, dc = time.perf_counter() - t, time.process_time() - c0
    worker_cpu = sum(_cpu_seconds(p) - w for p, w in zip(pids, w0))
    venv.close()
    return steps * num_envs / dt, worker_cpu / (steps * num_envs), dc / steps


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--task", default="pick_place")
    ap.add_argument("--steps", type=int, default=3000)
    ap.add_argument("--image-steps", type=int, default=200)
    ap.add_argument("--rounds", type=int, default=2, help="interleaved rounds; the best round of each is reported")
    ap.add_argument("--json", default=None)
    ap.add_argument("--baseline", default=None, metavar="GIT_REV",
                    help="also time the state env of this commit against the working tree, side by side")
    ap.add_argument("--baseline-only", action="store_true", help="only the --baseline comparison")
    ap.add_argument("--measure", default=None, help=argparse.SUPPRESS)  # internal: [what, task, kind, steps] -> JSON
    args = ap.parse_args()
    if args.measure:
        what, task, kind, steps = json.loads(args.measure)
        print(json.dumps(bench_single(task, kind, steps) if what == "single" else bench_vector(task, kind, steps, 2)))
        return
    print(f"load average before: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
    res = {}
    if args.baseline:
        with tempfile.TemporaryDirectory() as tmp:
            base_root = export_src(args.baseline, tmp)
            for kind in ("random", "smooth"):
                rows = {}
                for _ in range(args.rounds):  # interleaved, fresh processes, best round of each
                    for name, root in (("baseline", base_root), ("new", REPO)):
                        one = measure_subprocess(root, "single", args.task, kind, args.steps)
                        vec = measure_subprocess(root, "vector", args.task, kind, args.steps // 2)
                        rows.setdefault(name, []).append((one[0], one[1], vec[0], vec[0] / one[0]))
                best = {k: [max(r[i] for r in v) for i in range(4)] for k, v in rows.items()}
                res[f"baseline_{kind}"] = {"rev": args.baseline, **{
                    f"{k}_{f}": v[i] for k, v in best.items()
                    for i, f in enumerate(("steps_per_s", "steps_per_cpu_s", "vector2_steps_per_s", "speedup"))}}
                (bw, bc, bv, bs), (nw, nc, nv, ns) = best["baseline"], best["new"]
                print(f"[{kind:6s}] baseline {args.baseline}: 1 process {bw:6.0f} steps/s ({bc:6.0f}/CPU-s), "
                      f"AsyncVectorEnv x2 {bv:6.0f} steps/s ({bs:.2f}x) | working tree: 1 process {nw:6.0f} steps/s "
                      f"({nc:6.0f}/CPU-s), x2 {nv:6.0f} steps/s ({ns:.2f}x) | 1 process x{nw / bw:.2f} wall, "
                      f"x{nc / bc:.2f} CPU")
        if args.baseline_only:
            return
    for kind in ("random", "smooth"):
        ones, cpus, vecs, wcpu, pcpu = [], [], [], [], []
        for _ in range(args.rounds):  # side by side, interleaved
            w, c = bench_single(args.task, kind, args.steps)
            ones.append(w)
            cpus.append(c)
            v, wc, pc = bench_vector(args.task, kind, args.steps // 2, 2)
            vecs.append(v)
            wcpu.append(wc)
            pcpu.append(pc)
        one, cpu, vec = max(ones), max(cpus), max(vecs)
        # CPU-time model of two free cores: each worker runs its env at its CPU cost per step, the parent adds
        # its per-vector-step overhead to the critical path
        wc, pc = min(wcpu), min(pcpu)
        projected = 2.0 / (wc + pc) / cpu
        res[kind] = {"single_steps_per_s": one, "single_steps_per_cpu_s": cpu, "vector2_steps_per_s": vec,
                     "speedup": vec / one, "worker_cpu_s_per_env_step": wc, "parent_cpu_s_per_vector_step": pc,
                     "projected_speedup_2_free_cores": projected}
        print(f"[{kind:6s}] state env, 1 process: {one:6.0f} steps/s (wall), {cpu:6.0f} steps/CPU-s | "
              f"AsyncVectorEnv x2: {vec:6.0f} steps/s | speed-up {vec / one:.2f}x (wall) | worker "
              f"{1e3 * wc:.2f} ms CPU/env-step, parent {1e3 * pc:.2f} ms CPU/vector-step -> projected "
              f"{projected:.2f}x on 2 free cores")
    for kind in ("random", "smooth"):
        w, c = bench_single(args.task, kind, args.steps, free_space_substeps=False)
        res[f"{kind}_no_free_space_substeps"] = {"single_steps_per_s": w, "single_steps_per_cpu_s": c}
        print(f"[{kind:6s}] free_space_substeps=False (coarse only with the gripper open and at rest): {w:6.0f} "
              f"steps/s (wall), {c:6.0f} steps/CPU-s")
    for kind in ("random", "smooth"):  # CPU pinning off (cpu_pin.py), side by side with pinning on
        w1, c1 = bench_single(args.task, kind, args.steps)
        w0, c0 = bench_single(args.task, kind, args.steps, physx_cpu=None)
        v1 = bench_vector(args.task, kind, args.steps // 2, 2)[0]
        v0 = bench_vector(args.task, kind, args.steps // 2, 2, pin_workers=False, physx_cpu=None)[0]
        res[f"{kind}_pinning"] = {"single_pinned": w1, "single_unpinned": w0, "vector2_pinned": v1,
                                  "vector2_unpinned": v0}
        print(f"[{kind:6s}] CPU pinning on / off: 1 process {w1:6.0f} / {w0:6.0f} steps/s (wall), {c1:6.0f} / "
              f"{c0:6.0f} steps/CPU-s | AsyncVectorEnv x2 {v1:6.0f} ({v1 / w1:.2f}x) / {v0:6.0f} ({v0 / w0:.2f}x)")
    w, c = bench_single(args.task, "smooth", args.steps, coarse_free_motion=False)
    res["smooth_fixed_substeps"] = {"single_steps_per_s": w, "single_steps_per_cpu_s": c}
    print(f"[smooth] without coarse substeps (always sim_dt): {w:6.0f} steps/s (wall), {c:6.0f} steps/CPU-s")
    img, img_cpu = bench_single(args.task, "smooth", args.image_steps, obs_mode="image")
    res["image_steps_per_s"], res["image_steps_per_cpu_s"] = img, img_cpu
    print(f"image env (84x84 RGB-D + proprio, Xvfb/llvmpipe), 1 process: {img:.1f} steps/s (wall), "
          f"{img_cpu:.1f} steps/CPU-s")
    print(f"load average after: {os.getloadavg()[0]:.2f}")
    if args.json:
        with open(args.json, "w") as f:
            f.write(jsonio.dumps(res, indent=2))


if __name__ == "__main__":
    main()
