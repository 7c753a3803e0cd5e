"""`lpds toy`: steer the frozen flow-matching base policy on the 2-D multi-goal task and write metrics + figures."""
from __future__ import annotations

import argparse

ALGO_CHOICES = ("lpds", "dsrl-na", "dsrl-sac", "lpds-a")


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("toy", help="LP-DS vs baselines on the 2-D multi-goal toy task (minutes on a CPU)",
                              description=__doc__)
    p.add_argument("--algo", choices=ALGO_CHOICES, default="lpds")
    p.add_argument("--delta", type=float, default=0.05, help="trust-region size δ for E‖Δθ(s)‖² (lpds, lpds-a)")
    p.add_argument("--steps", type=int, default=3000, help="env-step budget of steering (after warm-up included)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="runs/toy", help="output folder for metrics.json and PNGs")
    p.add_argument("--warmup", type=int, default=600, help="env steps of the base policy before updates start")
    p.add_argument("--utd", type=int, default=4, help="gradient updates per collected chunk")
    p.add_argument("--eval-episodes", type=int, default=1000)
    p.add_argument("--eval-every", type=int, default=600, help="env steps between mode-coverage evaluations")
    p.add_argument("--tr-norm", choices=("sum", "per_dim"), default="sum",
                   help="trust-region norm: squared norm summed over noise dims (paper) or per dimension")
    p.add_argument("--use-eps", action="store_true", help="perturbation Δθ(s, ε) instead of Δθ(s)")
    p.add_argument("--cache-dir", default=None, help="where the toy base policy is cached (default ~/.cache/lpds)")
    p.add_argument("--retrain-base", action="store_true", help="ignore the cached base policy")
    p.add_argument("--bc-steps", type=int, default=None, help="behaviour-cloning steps of the base (default 6000)")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from lpds_core import jsonio

    import torch

    from lpds_sim.toy.base_policy import toy_base_policy
    from lpds_sim.toy.experiment import run_toy

    from pathlib import Path

    from lpds_core.errors import RunError

    if args.steps <= 0 or args.delta <= 0:
        raise SystemExit("lpds toy: --steps and --delta must be > 0")
    for flag, value in (("--out", args.out), ("--cache-dir", args.cache_dir)):
        if value and Path(value).exists() and not Path(value).is_dir():
            raise RunError(f"{flag} {value} is a file; pass a folder")
    torch.set_num_threads(args.threads)
    backbone, path = toy_base_policy(cache_dir=args.cache_dir, progress=not args.no_progress,
                                     retrain=args.retrain_base,
                                     **({} if args.bc_steps is None else {"bc_steps": args.bc_steps}))
    print(f"base policy: {path}")
    m = run_toy(args.algo, backbone, delta=args.delta, steps=args.steps, seed=args.seed, out=args.out,
                eval_episodes=args.eval_episodes, eval_every=args.eval_every,
                config={"tr_norm": args.tr_norm, "use_eps": args.use_eps, "num_threads": args.threads,
                        "warmup_steps": args.warmup, "utd": args.utd},
                progress=not args.no_progress)
    summary = {k: m[k] for k in ("algo", "delta", "return_base", "return_final", "success_final", "mode_fractions",
                                 "entropy_base", "entropy_final")}
    print(jsonio.dumps(summary, indent=1))
    print(f"wrote {args.out}/metrics.json, rollouts.png, mode_coverage.png, training.png")
    return 0
