"""Resident memory against DESIGN §6: training ≤ 8 GiB (the whole process tree: learner + env workers) and the
ROS policy node ≤ 500 MiB.

Run after `make demo` (it reuses that run's base and export):
    python bench/memory.py [--base runs/demo/pick_place/base] [--export runs/demo/pick_place/export]
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


def _rss_mib(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return 0.0


def _tree(pid: int) -> list[int]:
    """pid and all its descendants (Linux /proc)."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        try:
            for tid in os.listdir(f"/proc/{p}/task"):
                todo += [int(c) for c in Path(f"/proc/{p}/task/{tid}/children").read_text().split()]
        except OSError:
            pass
    return out


def peak_tree_rss(cmd: list[str], poll_s: float = 0.25) -> tuple[int, float]:
    """Run cmd; return (exit code, peak of the summed RSS of its process tree in MiB)."""
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    peak = 0.0
    while proc.poll() is None:
        peak = max(peak, sum(_rss_mib(p) for p in _tree(proc.pid)))
        time.sleep(poll_s)
    return proc.returncode, peak


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--base", default="runs/demo/pick_place/base")
    ap.add_argument("--export", default="runs/demo/pick_place/export")
    ap.add_argument("--env-steps", type=int, default=10_000)
    args = ap.parse_args()
    lpds = [sys.executable, "-m", "lpds_sim.cli"]
    with tempfile.TemporaryDirectory() as tmp:
        rc, train_peak = peak_tree_rss(lpds + ["train-steer", "--base", args.base, "--algo", "lpds", "--delta", "1.0",
                                               "--env-steps", str(args.env_steps), "--eval-every",
                                               str(args.env_steps), "--out", f"{tmp}/steer", "--no-progress"])
        if rc != 0:
            print(f"train-steer failed (exit {rc})", file=sys.stderr)
            return rc
        out = Path(tmp) / "ros"
        rc = subprocess.run(lpds + ["ros-sim", "--task", "pick_place", "--model-dir", args.export, "--max-trials", "2",
                                    "--trials", "1", "--speedup", "3", "--out", str(out)],
                            stdout=subprocess.DEVNULL).returncode
        if rc != 0:
            print(f"ros-sim failed (exit {rc})", file=sys.stderr)
            return rc
        nodes = json.loads((out / "memory.json").read_text())["peak_rss_mib"]
    print("| what | peak resident | target |\n|---|---|---|")
    print(f"| train-steer, {args.env_steps} env steps (learner + env workers) | {train_peak:.0f} MiB | ≤ 8192 MiB |")
    print(f"| ROS policy node (ONNX) | {nodes['policy']:.0f} MiB | ≤ 500 MiB |")
    for k in sorted(set(nodes) - {"policy"}):
        print(f"| ROS {k} node | {nodes[k]:.0f} MiB | — |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
