"""What each reality setting alone costs on the grid: the scripted operator and any number of policies.

Usage (repo root, the venv's python, under xvfb-run for --obs image):
    python bench/reality_gaps.py [--task pick_place] [--obs state] [--seed 0] [--work /tmp/lpds_reality_gaps]
                                 [--policy RUN_OR_EXPORT [--policy ...]] [--world reality]

Rows: the emulation, then every group of settings of `--world` (default: the reality preset) switched on alone
(everything else at the emulation's value), then the whole world. Each cell is one `lpds eval --world FILE.yaml`
in a fresh process (RAI's PhysX keeps process-wide state, so a fresh process per grid is what makes rows
comparable), on the same grid seed, so every row grades the same 40 start states. Prints a Markdown table and
writes it with the numbers as JSON (--out). Image-only groups are marked n/a on a state grid (and the reverse).
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# group -> (the World fields it switches on, what it models, the observation modes it can change)
GROUPS: dict[str, tuple[tuple[str, ...], str, tuple[str, ...]]] = {
    "camera extrinsics": (("camera_shift_mm", "camera_tilt_deg"), "camera pose off its calibration (state: the "
                          "object estimate moves with it)", ("state", "image")),
    "depth/colour noise + holes": (("sensor",), "RealSense noise, random and edge holes", ("image",)),
    "object-position noise": (("obj_pos_noise_mm",), "per-step noise of the object estimate", ("state",)),
    "object mass": (("object_mass_scale",), "heavier object", ("state", "image")),
    "object friction": (("object_friction",), "more slippery object", ("state", "image")),
    "object size": (("object_size_scale",), "smaller object", ("state", "image")),
    "controller gain": (("controller_gain_scale",), "softer joint controller: the arm lags", ("state", "image")),
    "command latency": (("command_latency_steps",), "actions arrive later", ("state", "image")),
    "gripper delays": (("gripper_close_delay_steps", "gripper_open_delay_steps"), "gripper reacts later",
                       ("state", "image")),
    "table height": (("table_offset_mm",), "table lower than modelled", ("state", "image")),
}


def show(value) -> str:
    if dataclasses.is_dataclass(value):
        return ", ".join(f"{f.name} {getattr(value, f.name):g}" for f in dataclasses.fields(value)
                         if getattr(value, f.name))
    if isinstance(value, tuple):
        return f"{value[0]:g}" if value[0] == value[1] else f"{value[0]:g}–{value[1]:g}"
    return str(value)


def grade(task: str, obs: str, policy: str, world_file: Path | None, seed: int, out: Path) -> dict:
    """One `lpds eval` grid in its own process; its grid_results.json."""
    cmd = [sys.executable, "-m", "lpds_sim.cli", "eval", "--task", task, "--obs", obs, "--policy", policy,
           "--seed", str(seed), "--out", str(out), "--overwrite", "--no-progress"]
    if world_file is not None:
        cmd += ["--world", str(world_file)]
    proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    if proc.returncode:
        raise SystemExit(f"{' '.join(cmd)} failed: {proc.stderr.strip()[-500:]}")
    return json.loads((out / "grid_results.json").read_text())


def main() -> int:
    from lpds_sim.rai.world import World, resolve_world, world_yaml

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--task", default="pick_place")
    ap.add_argument("--obs", default="state", choices=["state", "image"])
    ap.add_argument("--world", default="reality", help="the world whose settings are switched on one group at a time")
    ap.add_argument("--policy", action="append", default=[], help="a run or export folder (repeatable)")
    ap.add_argument("--seed", type=int, default=0, help="grid seed (the same 40 start states in every row)")
    ap.add_argument("--seeds", type=int, default=1, help="grids per cell: seeds --seed .. --seed+N-1, summed")
    ap.add_argument("--work", default="/tmp/lpds_reality_gaps", help="world files and grid results go here")
    ap.add_argument("--out", default=None, help="JSON with the table's numbers (default: WORK/reality_gaps.json)")
    args = ap.parse_args()

    world = resolve_world(args.world)
    if world is None:
        raise SystemExit(f"--world {args.world} is the emulation: nothing to switch on")
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    policies = {"operator": "scripted", **{Path(p).name: p for p in args.policy}}
    rows: list[tuple[str, str, World | None]] = [("emulation", "today's scene", None)]
    for name, (keys, what, modes) in GROUPS.items():
        if args.obs not in modes:
            rows.append((name, what, "n/a"))  # type: ignore[arg-type]
            continue
        rows.append((name, what, dataclasses.replace(World(), world_name=f"{world.world_name}:{name}",
                                                     world_seed=world.world_seed,
                                                     **{k: getattr(world, k) for k in keys})))
    rows.append((f"all ({world.world_name})", "every setting above", world))

    results: list[dict] = []
    t_all = time.perf_counter()
    for i, (name, what, w) in enumerate(rows):
        keys = GROUPS.get(name, ((), "", ()))[0]
        values = "; ".join(show(getattr(world, k)) for k in keys) if keys else ""
        row = {"group": name, "models": what, "values": values, "grids": {}}
        if w == "n/a":
            row["grids"] = {p: None for p in policies}
            results.append(row)
            continue
        wf = None
        if w is not None:
            wf = work / f"world_{i}.yaml"
            wf.write_text(world_yaml(w))
        for label, pol in policies.items():
            t0 = time.perf_counter()
            docs = [grade(args.task, args.obs, pol, wf, s, work / f"grid_{i}_{label}_{s}")
                    for s in range(args.seed, args.seed + args.seeds)]
            row["grids"][label] = {"successes": sum(d["successes"] for d in docs),
                                   "total": sum(d["total"] for d in docs), "per_seed": [d["successes"] for d in docs],
                                   "world": docs[0]["meta"]["world"], "wall_s": round(time.perf_counter() - t0, 1)}
            g = row["grids"][label]
            print(f"{name:28s} {label:12s} {g['successes']}/{g['total']} {g['per_seed']}  "
                  f"({g['wall_s']:.0f} s)", flush=True)
        results.append(row)
    wall = time.perf_counter() - t_all

    head = "| setting (alone) | models | reality value | " + " | ".join(policies) + " |"
    lines = [head, "|" + "---|" * (3 + len(policies))]
    for row in results:
        cells = [("n/a" if g is None else f"{g['successes']}/{g['total']}") for g in row["grids"].values()]
        lines.append(f"| {row['group']} | {row['models']} | {row['values']} | " + " | ".join(cells) + " |")
    table = "\n".join(lines)
    print()
    print(table)
    print(f"\n{args.task} ({args.obs}), grid seeds {args.seed}..{args.seed + args.seeds - 1}, world seed "
          f"{world.world_seed}; {wall:.0f} s wall")
    out = Path(args.out) if args.out else work / "reality_gaps.json"
    out.write_text(json.dumps({"task": args.task, "obs": args.obs, "seed": args.seed, "seeds": args.seeds,
                               "world": world.world_name,
                               "world_seed": world.world_seed, "policies": policies, "rows": results,
                               "wall_s": round(wall, 1), "table": table}, indent=1))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
