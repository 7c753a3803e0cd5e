"""`lpds eval`: evaluate a policy on a task with the grid protocol; writes JSON, CSV and a heatmap PNG."""
from __future__ import annotations

import argparse


def register(subparsers) -> None:
    p = subparsers.add_parser("eval", help="evaluate a policy with the grid protocol (JSON, CSV, heatmap)",
                              formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--task", default="pick_place", help="task name from lpds_sim.tasks")
    p.add_argument("--policy", default="scripted",
                   help="'scripted' (emulated teleop operator), 'random', or a policy path with a registered loader")
    p.add_argument("--protocol", choices=["grid"], default="grid", help="evaluation protocol")
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument("--seed", type=int, default=0, help="seed of the in-cell jitter (same seed: same start states)")
    p.add_argument("--rows", type=int, default=None, help="grid rows (none: the task's, 2)")
    p.add_argument("--cols", type=int, default=None, help="grid columns (none: the task's, 4 for pick_place)")
    p.add_argument("--trials", type=int, default=None, help="trials per grid cell (none: the task's, 5)")
    p.add_argument("--obs", choices=["state", "image"], default="state", help="observation mode")
    p.add_argument("--sensor-noise", action="store_true", help="emulate RealSense noise in image observations")
    p.add_argument("--checkpoint", default="latest", metavar="latest|best|PATH",
                   help="for a train-steer run folder: latest (agent.pt), best (checkpoints/best.pt, the best "
                        "periodic evaluation) or a checkpoint file")
    p.add_argument("--noise-scale", dest="noise_scale", type=float, default=1.0, metavar="C",
                   help="decode c·ε instead of ε ~ N(0, I) (the noise-temperature floor: 0 = the mean-noise "
                        "policy, 1 = the policy as deployed; an export made with `lpds export --noise-scale` "
                        "decodes at c × its own)")
    p.add_argument("--max-trials", dest="max_trials", type=int, default=None,
                   help="stop after this many trials: the grid is saved as partial (cells not reached: 'not run')")
    p.add_argument("--videos", type=int, default=0, metavar="N",
                   help="also write GIFs of the first N grid trials to OUT/videos/ (160 px, every 2nd step; needs "
                        "a display or Xvfb); 0: nothing is rendered")
    p.add_argument("--overwrite", action="store_true", help="replace the grid results already in --out")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    from lpds_core.bench_profile import BenchSetting

    BenchSetting.add_flag(p)
    from lpds_sim.rai.world import WorldSetting

    WorldSetting.add_flag(p)
    p.set_defaults(func=run)


GRID_FILES = ("grid_results.json", "grid_cells.csv", "grid_trials.csv", "grid_heatmap.png", "grid_trajectories.npz",
              "trajectories.png")


def check_out(out: str, overwrite: bool) -> None:
    """Refuse to write over earlier results (or into a file) unless --overwrite: nothing is lost by accident."""
    from pathlib import Path

    from lpds_core.errors import RunError

    path = Path(out)
    if path.exists() and not path.is_dir():
        raise RunError(f"--out {out} is a file; pass a folder for the grid results")
    found = [f for f in GRID_FILES if (path / f).exists()]
    if found and not overwrite:
        raise RunError(f"--out {out} already holds grid results ({', '.join(found)}); pass --overwrite to replace "
                       f"them or choose another --out")


def run(args: argparse.Namespace) -> int:
    import sys

    from lpds_core.config import require_count
    from lpds_core.errors import ConfigError
    from lpds_core.grid_protocol import GridProtocol

    from lpds_sim.export_run import check_noise_scale
    from lpds_sim.policies import resolve_policy
    from lpds_sim.rai.world import WorldSetting, world_label
    from lpds_sim.tasks import TASKS, BenchSetting, get_task, make_env

    check_out(args.out, args.overwrite)
    if args.task not in TASKS:
        raise ConfigError(f"unknown task {args.task!r}; choose one of {', '.join(sorted(TASKS))}")
    for flag in ("rows", "cols", "trials", "max_trials"):
        require_count(getattr(args, flag), f"--{flag.replace('_', '-')}")
    require_count(args.videos, "--videos", minimum=0, meaning="GIFs of the first N trials; 0 = none")
    check_noise_scale(args.noise_scale)
    spec = get_task(args.task)
    rows, cols, trials = (args.rows or spec.grid[0], args.cols or spec.grid[1], args.trials or spec.grid[2])
    kw = {"obs_mode": args.obs, **BenchSetting(args.bench_profile).env_kwargs(),
          **WorldSetting(args.world).env_kwargs()}
    world = world_label(args.world)
    if args.obs == "image":
        kw["sensor_noise"] = args.sensor_noise
    from lpds_sim import eval_pictures

    if args.videos:  # a missing display is one line now, not an error after the first trial
        from lpds_sim.rai.display import ensure_display

        ensure_display()
    env = eval_pictures.EpisodeRecorder(make_env(args.task, **kw), videos=args.videos)
    try:
        policy = resolve_policy(args.policy, env, args.task, seed=args.seed, checkpoint=args.checkpoint,
                                noise_scale=args.noise_scale)
        proto = GridProtocol(rows, cols, trials, seed=args.seed)
        title = " / ".join([args.task, args.policy] + ([world] if world != "emulation" else [])
                           + ([f"c = {args.noise_scale:g}"] if args.noise_scale != 1.0 else []))
        res = proto.run(env, policy, progress=not args.no_progress, max_trials=args.max_trials,
                        keep_on_interrupt=True,
                        meta={"task": args.task, "policy": args.policy, "checkpoint": args.checkpoint,
                              "noise_scale": args.noise_scale, "world": world, "title": title,
                              "env": env.unwrapped.settings()})
        paths = res.write(args.out)
        eval_pictures.clear_videos(args.out)  # --overwrite: GIFs of an earlier grid would show other trials
        paths.update(env.write(args.out, res, title=title))
    finally:
        env.close()
    print(res.summary())
    print(f"world: {world}")
    print("wrote " + ", ".join(str(p) for p in paths.values()))
    if res.stopped == "interrupted":
        print(f"interrupted: the partial grid ({len(res.trials)} of {res.planned} trials) is saved in {args.out}",
              file=sys.stderr)
        return 130
    return 0
