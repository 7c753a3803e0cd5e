"""`lpds demos`: record scripted-teleoperation demonstrations to a robomimic-style HDF5 file."""
from __future__ import annotations

import argparse


def register(subparsers) -> None:
    p = subparsers.add_parser("demos", help="record emulated-teleoperation demos (robomimic-style HDF5)",
                              formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--task", default="pick_place", help="task name from lpds_sim.tasks (pick_place, mug_hang, ...)")
    p.add_argument("--n-demos", type=int, default=None,
                   help="number of successful demos to keep (none: the task's, 29 for pick_place)")
    p.add_argument("--obs", choices=["state", "image"], default="state", help="observation mode")
    p.add_argument("--out", required=True, help="output .hdf5 file")
    p.add_argument("--seed", type=int, default=0, help="seed of the emulated operator and the scene")
    p.add_argument("--max-attempts", type=int, default=None, help="give up after this many episodes (none: 3n)")
    p.add_argument("--control-hz", type=float, default=10.0, help="control rate of the recording")
    p.add_argument("--sensor-noise", action="store_true", help="emulate RealSense noise in image observations")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --out file (otherwise: refuse)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    from lpds_core.bench_profile import BenchSetting

    BenchSetting.add_flag(p)
    from lpds_sim.rai.world import WorldSetting

    WorldSetting.add_flag(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import sys
    from pathlib import Path

    from lpds_core.config import require_count
    from lpds_core.errors import ConfigError, RunError
    from lpds_sim.collect import collect_demos
    from lpds_sim.demos_io import write_demos
    from lpds_sim.rai.world import WorldSetting, world_label
    from lpds_sim.tasks import TASKS, BenchSetting, get_task

    out = Path(args.out)
    if out.is_dir():
        raise RunError(f"--out {out} is a folder; pass a file name such as {out / 'demos.hdf5'}")
    if out.exists() and not args.overwrite:
        raise RunError(f"--out {out} already exists; pass --overwrite to replace it or choose another --out")
    if args.task not in TASKS:
        raise ConfigError(f"unknown task {args.task!r}; choose one of {', '.join(sorted(TASKS))}")
    require_count(args.n_demos, "--n-demos")
    require_count(args.max_attempts, "--max-attempts")
    if not args.control_hz > 0:
        raise ConfigError(f"--control-hz must be > 0, got {args.control_hz}")
    spec = get_task(args.task)
    n = args.n_demos if args.n_demos is not None else spec.default_demos
    env_kwargs = {"control_hz": args.control_hz, **BenchSetting(args.bench_profile).env_kwargs(),
                  **WorldSetting(args.world).env_kwargs()}
    if args.obs == "image":
        env_kwargs["sensor_noise"] = args.sensor_noise
    eps, stats, settings = collect_demos(args.task, n, args.obs, args.seed, args.max_attempts,
                                         progress=not args.no_progress, env_kwargs=env_kwargs)
    world = world_label(args.world)
    print(f"operator success rate: {stats.successes}/{stats.attempts} = {100 * stats.rate:.1f}% "
          f"(task {args.task}, obs {args.obs}, world {world})")
    if not eps:
        print("no successful demo recorded; nothing written", file=sys.stderr)
        return 1
    settings.update(env_id=spec.env_id, obs_keys=sorted(eps[0].obs))
    write_demos(args.out, eps, settings, {"operator_success_rate": stats.rate, "operator_attempts": stats.attempts,
                                          "seed": args.seed, "task": args.task, "world": world})
    total = sum(len(e) for e in eps)
    print(f"wrote {len(eps)} demos ({total} steps) to {args.out}")
    return 0 if len(eps) == n else 1
