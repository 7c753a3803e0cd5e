"""`lpds export`: ONNX files for the robot PC (perturbation + unrolled decoder, metadata inside), parity-checked."""
from __future__ import annotations

import argparse
import sys


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("export", help="export a steer (or base) run to ONNX, with a torch-vs-onnxruntime parity check",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--run", required=True, help="finished train-steer run folder (a train-base run exports the base)")
    p.add_argument("--out", required=True, help="output folder for the .onnx files")
    p.add_argument("--tol", type=float, default=1e-4, help="max |torch − onnxruntime| allowed")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from lpds_sim import runs
    from lpds_sim.export_run import ParityError, export_run

    try:
        info = export_run(args.run, args.out, tol=args.tol)
    except (*runs.USER_ERRORS, ParityError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"exported {args.run} → {args.out}: max |torch − onnxruntime| = {info['max_abs_diff']:.2e} "
          f"(tolerance {args.tol:g})")
    return 0
