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
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from lpds_core.config import require_count
    from lpds_core.grid_protocol import GridProtocol
    from lpds_sim.policies import resolve_policy
    from lpds_sim.tasks import get_task, make_env

    for flag in ("rows", "cols", "trials"):
        require_count(getattr(args, flag), f"--{flag}")
    spec = get_task(args.task)
    rows, cols, trials = (args.rows or spec.grid[0], args.cols or spec.grid[1], args.trials or spec.grid[2])
    kw = {"obs_mode": args.obs}
    if args.obs == "image":
        kw["sensor_noise"] = args.sensor_noise
    env = make_env(args.task, **kw)
    policy = resolve_policy(args.policy, env, args.task, seed=args.seed)
    proto = GridProtocol(rows, cols, trials, seed=args.seed)
    res = proto.run(env, policy, progress=not args.no_progress,
                    meta={"task": args.task, "policy": args.policy, "title": f"{args.task} / {args.policy}",
                          "env": env.unwrapped.settings()})
    paths = res.write(args.out)
    env.close()
    print(res.summary())
    print("wrote " + ", ".join(str(p) for p in paths.values()))
    return 0
