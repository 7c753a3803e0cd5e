"""`lpds train-base`: behaviour cloning of a flow-matching or diffusion backbone on demos (resumable run)."""
from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    from lpds_sim import runs
    from lpds_sim.train_base import BaseConfig

    p = sub.add_parser("train-base", help="behaviour-clone a frozen backbone on demos (run folder, --resume)",
                       description="Behaviour cloning of the base policy. Settings: defaults < --config YAML < "
                                   "flags; every setting has a flag.")
    p.add_argument("--out", required=True, help="run folder to create (or continue with --resume)")
    p.add_argument("--resume", action="store_true",
                   help="continue the run in --out from its newest checkpoint (its saved config.yaml is read: "
                        "only --out is needed)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    runs.add_config_flags(p, BaseConfig)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from lpds_sim import runs
    from lpds_sim.train_base import BaseConfig, train_base

    cfg = runs.config_from_args(BaseConfig, args, kind="base", base=runs.resume_base(BaseConfig, args, "base"))
    summary = train_base(cfg, args.out, resume=args.resume, progress=not args.no_progress)
    print(f"base run done: {args.out} (final BC loss {summary.get('final_loss')})")
    return 0
