"""`lpds train-base`: behaviour cloning of a flow-matching or diffusion backbone on demos (resumable run)."""
from __future__ import annotations

import argparse
import sys


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train-base", help="behaviour-clone a frozen backbone on demos (run folder, --resume)",
                       description="Behaviour cloning of the base policy. Settings: defaults < --config YAML < flags.")
    p.add_argument("--task", choices=("pick_place", "mug_hang"))
    p.add_argument("--data", help="demo file from `lpds demos` (robomimic-style HDF5)")
    p.add_argument("--backbone", choices=("flow", "diffusion"))
    p.add_argument("--obs", choices=("state", "image"))
    p.add_argument("--out", required=True, help="run folder to create (or continue with --resume)")
    p.add_argument("--config", help="YAML file with any BaseConfig keys; unknown keys are an error")
    p.add_argument("--grad-steps", dest="grad_steps", type=int)
    p.add_argument("--batch-size", dest="batch_size", type=int)
    p.add_argument("--horizon", type=int, help="action-chunk length H")
    p.add_argument("--num-steps", dest="num_steps", type=int, help="K decoding steps")
    p.add_argument("--lr", type=float)
    p.add_argument("--seed", type=int)
    p.add_argument("--ckpt-every", dest="ckpt_every", type=int, help="gradient steps between checkpoints")
    p.add_argument("--threads", type=int, help="torch threads (default 1: the machine is shared)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its newest checkpoint")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from lpds_sim import runs
    from lpds_sim.train_base import BaseConfig, train_base

    try:
        cfg = runs.config_from_args(BaseConfig, args)
        summary = train_base(cfg, args.out, resume=args.resume, progress=not args.no_progress)
    except runs.USER_ERRORS as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"base run done: {args.out} (final BC loss {summary.get('final_loss')})")
    return 0
