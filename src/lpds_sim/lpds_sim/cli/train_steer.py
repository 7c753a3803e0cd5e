"""`lpds train-steer`: steer a frozen base run with LP-DS or a baseline in the RAI env (resumable run)."""
from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    from lpds_sim import runs
    from lpds_sim.train_steer import SteerConfig

    p = sub.add_parser("train-steer", help="steer a base run with LP-DS / DSRL in the RAI env (run folder, --resume)",
                       description="Steering with the dense reward on vector envs, periodic grid evaluation, "
                                   "curves and checkpoints. Settings: defaults < --config YAML < flags; every "
                                   "setting has a flag. Presets: config/agents/*.yaml.")
    p.add_argument("--out", required=True, help="run folder to create (or continue with --resume)")
    p.add_argument("--resume", action="store_true",
                   help="continue the run in --out from its newest checkpoint (its saved config.yaml is read: "
                        "only --out is needed)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    runs.add_config_flags(p, SteerConfig)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from lpds_sim import runs
    from lpds_sim.train_steer import SteerConfig, train_steer

    cfg = runs.config_from_args(SteerConfig, args, kind="steer", base=runs.resume_base(SteerConfig, args, "steer"))
    summary = train_steer(cfg, args.out, resume=args.resume, progress=not args.no_progress)
    print(f"steer run done: {args.out} (periodic-eval success {summary['final_success_periodic_eval']:.2f})")
    return 0
