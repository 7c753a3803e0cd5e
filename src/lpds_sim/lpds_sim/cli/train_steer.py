"""`lpds train-steer`: steer a frozen base run with LP-DS or a baseline in the RAI env (resumable run)."""
from __future__ import annotations

import argparse
import sys


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train-steer", help="steer a base run with LP-DS / DSRL in the RAI env (run folder, --resume)",
                       description="Steering with the dense reward on vector envs, periodic grid evaluation, "
                                   "curves and checkpoints. Settings: defaults < --config YAML < flags.")
    p.add_argument("--base", help="finished `lpds train-base` run folder")
    p.add_argument("--algo", choices=("lpds", "dsrl-na", "dsrl-sac", "lpds-a"))
    p.add_argument("--delta", type=float, help="trust-region budget δ on E‖Δ‖²")
    p.add_argument("--env-steps", dest="env_steps", type=int, help="env-step budget")
    p.add_argument("--out", required=True, help="run folder to create (or continue with --resume)")
    p.add_argument("--task", choices=("pick_place", "mug_hang"), help="optional: must match the base run's task")
    p.add_argument("--config", help="YAML file with any SteerConfig keys; unknown keys are an error")
    p.add_argument("--n-envs", dest="n_envs", type=int)
    p.add_argument("--eval-every", dest="eval_every", type=int, help="env steps between grid evaluations")
    p.add_argument("--ckpt-every", dest="ckpt_every", type=int, help="env steps between checkpoints")
    p.add_argument("--warmup-steps", dest="warmup_steps", type=int)
    p.add_argument("--utd", type=int, help="gradient updates per collected chunk")
    p.add_argument("--batch-size", dest="batch_size", type=int)
    p.add_argument("--use-eps", dest="use_eps", action="store_const", const=True, default=None,
                   help="perturbation Δθ(s, ε) instead of Δθ(s) (lpds, lpds-a)")
    p.add_argument("--eps-form", dest="eps_form", choices=("mlp", "shrink"),
                   help="form of Δθ(s, ε) with --use-eps: a free MLP of (s, ε), or shift + noise gain h(s) − g(s)⊙ε")
    p.add_argument("--explore-eps-scale", dest="explore_eps_scale", type=float, nargs=2, metavar=("LO", "HI"),
                   help="lpds/lpds-a: collect each chunk with ε·c, c ~ U(LO, HI) (exploration over the noise level)")
    p.add_argument("--critic-state", dest="critic_state", action="store_const", const=True, default=None,
                   help="image bases (lpds/lpds-a): the critic reads the simulator state, Δθ the image features")
    p.add_argument("--actor-avg-rate", dest="actor_avg_rate", type=float,
                   help="lpds/lpds-a: evaluate and export a Polyak average of Δθ (rate per update, e.g. 0.002)")
    p.add_argument("--seed", type=int)
    p.add_argument("--vector", choices=("sync", "async"))
    p.add_argument("--threads", type=int, help="torch threads (default 1: the machine is shared)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its newest checkpoint")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from lpds_sim import runs
    from lpds_sim.train_steer import SteerConfig, train_steer

    try:
        cfg = runs.config_from_args(SteerConfig, args)
        summary = train_steer(cfg, args.out, resume=args.resume, progress=not args.no_progress)
    except runs.USER_ERRORS as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"steer run done: {args.out} (periodic-eval success {summary['final_success_periodic_eval']:.2f})")
    return 0
