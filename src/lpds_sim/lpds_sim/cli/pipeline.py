"""`lpds pipeline`: demos → base → LP-DS → ONNX → grid evaluation → report; reruns skip finished stages."""
from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    from lpds_sim import runs
    from lpds_sim.pipeline import PipelineConfig

    p = sub.add_parser("pipeline", help="the whole job: demos → base → LP-DS → ONNX → grid evaluation → report",
                       description="Every stage checks its outputs and is skipped when they exist and are valid, "
                                   "so a rerun continues where the last one stopped. "
                                   "Settings: defaults < --config < flags; every setting has a flag.")
    p.add_argument("--out", default=None, help="pipeline folder (default: runs/pipeline_<task>)")
    p.add_argument("--force", action="append", default=[], metavar="STAGE",
                   help="rerun this stage even if its outputs are valid (repeatable)")
    runs.add_config_flags(p, PipelineConfig)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from lpds_sim import runs
    from lpds_sim.pipeline import PipelineConfig, run_pipeline

    cfg = runs.config_from_args(PipelineConfig, args, kind="pipeline")
    out = args.out or f"runs/pipeline_{cfg.task}"
    res = run_pipeline(cfg, out, force=tuple(args.force))
    print(f"pipeline done; report: {res['report']}")
    return 0
