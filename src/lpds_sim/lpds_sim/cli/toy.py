"""`lpds toy`: steer the frozen base policy (flow matching; diffusion for dppo) on the 2-D multi-goal task and write
metrics + figures."""
from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    from lpds_sim import runs
    from lpds_sim.toy.experiment import ToyConfig

    p = subparsers.add_parser("toy", help="LP-DS vs baselines on the 2-D multi-goal toy task (minutes on a CPU)",
                              description=__doc__ + " Settings: defaults < --config YAML < flags.")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    runs.add_config_flags(p, ToyConfig)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    import torch
    from lpds_core import jsonio
    from lpds_core.errors import RunError

    from lpds_sim import runs
    from lpds_sim.toy.base_policy import toy_base_policy
    from lpds_sim.toy.experiment import ToyConfig, base_kind, toy_experiment

    cfg = runs.config_from_args(ToyConfig, args, kind="toy")
    for flag, value in (("--out", cfg.out), ("--cache-dir", cfg.cache_dir)):
        if value and Path(value).exists() and not Path(value).is_dir():
            raise RunError(f"{flag} {value} is a file; pass a folder")
    torch.set_num_threads(cfg.agent.threads)
    backbone, path = toy_base_policy(cache_dir=cfg.cache_dir, progress=not args.no_progress,
                                     retrain=cfg.retrain_base, kind=base_kind(cfg.algo),
                                     **({} if cfg.bc_steps is None else {"bc_steps": cfg.bc_steps}))
    print(f"base policy: {path}")
    m = toy_experiment(cfg, backbone, out=cfg.out, progress=not args.no_progress)
    summary = {k: m[k] for k in ("algo", "delta", "return_base", "return_final", "success_final", "mode_fractions",
                                 "entropy_base", "entropy_final")}
    print(jsonio.dumps(summary, indent=1))
    print(f"wrote {cfg.out}/metrics.json, rollouts.png, mode_coverage.png, training.png")
    return 0
