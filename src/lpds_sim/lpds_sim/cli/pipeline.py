"""`lpds pipeline`: demos → base → LP-DS → ONNX → grid evaluation → report; reruns skip finished stages."""
from __future__ import annotations

import argparse
import sys


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("pipeline", help="the whole job: demos → base → LP-DS → ONNX → grid evaluation → report",
                       description="Every stage checks its outputs and is skipped when they exist and are valid, "
                                   "so a rerun continues where the last one stopped. "
                                   "Settings: defaults < --config < flags.")
    p.add_argument("--task", choices=("pick_place", "mug_hang"))
    p.add_argument("--out", default=None, help="pipeline folder (default runs/pipeline_<task>)")
    p.add_argument("--config", help="YAML file with any PipelineConfig keys; unknown keys are an error")
    p.add_argument("--obs", choices=("state", "image"))
    p.add_argument("--backbone", choices=("flow", "diffusion"))
    p.add_argument("--algo", choices=("lpds", "dsrl-na", "dsrl-sac", "lpds-a"))
    p.add_argument("--n-demos", dest="n_demos", type=int)
    p.add_argument("--bc-steps", dest="bc_steps", type=int)
    p.add_argument("--bc-batch-size", dest="bc_batch_size", type=int)
    p.add_argument("--batch-size", dest="batch_size", type=int, help="steering minibatch")
    p.add_argument("--utd", type=int, help="steering updates per collected chunk")
    p.add_argument("--warmup-steps", dest="warmup_steps", type=int)
    p.add_argument("--delta", type=float)
    p.add_argument("--env-steps", dest="env_steps", type=int)
    p.add_argument("--eval-every", dest="eval_every", type=int)
    p.add_argument("--trials-per-cell", dest="trials_per_cell", type=int)
    p.add_argument("--seed", type=int)
    p.add_argument("--threads", type=int)
    p.add_argument("--eps-form", dest="eps_form", choices=("mlp", "shrink"),
                   help="form of LP-DS's Δθ(s, ε) (default shrink: h(s) − g(s)⊙ε)")
    p.add_argument("--no-critic-state", dest="critic_state", action="store_const", const=False, default=None,
                   help="image obs: the critic reads the image features too (default: the simulator state)")
    p.add_argument("--force", action="append", default=[], metavar="STAGE",
                   help="rerun this stage even if its outputs are valid (repeatable)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from lpds_sim import runs
    from lpds_sim.pipeline import PipelineConfig, run_pipeline

    try:
        cfg = runs.config_from_args(PipelineConfig, args)
        out = args.out or f"runs/pipeline_{cfg.task}"
        res = run_pipeline(cfg, out, force=tuple(args.force))
    except runs.USER_ERRORS as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"pipeline done; report: {res['report']}")
    return 0
