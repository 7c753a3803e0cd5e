"""`lpds export`: ONNX files for the robot PC (perturbation + unrolled decoder, metadata inside), parity-checked."""
from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("export", help="export a steer (or base) run to ONNX, with a torch-vs-onnxruntime parity check",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter,
                       description="Builds the export in a temporary folder beside --out and installs it only when "
                                   "the parity check passes; an --out holding anything but an earlier export is "
                                   "refused, and a failed export leaves an existing one untouched.")
    p.add_argument("--run", required=True, help="train-steer run folder (a train-base run exports the base)")
    p.add_argument("--out", required=True, help="output folder for the .onnx files (new, empty or an earlier export)")
    p.add_argument("--tol", type=float, default=1e-4, help="max |torch − onnxruntime| allowed")
    p.add_argument("--checkpoint", default="latest", metavar="latest|best|PATH",
                   help="which agent of a steer run: latest (the finished run's agent.pt), best (the best periodic "
                        "evaluation, checkpoints/best.pt) or a checkpoint file")
    p.add_argument("--noise-scale", dest="noise_scale", type=float, default=1.0, metavar="C",
                   help="deploy temperature: the exported policy decodes c·ε + Δ(s, c·ε), ε ~ N(0, I) (1 = as "
                        "trained; `lpds pipeline` picks c on the steering world's grid)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from lpds_sim.export_run import export_run

    info = export_run(args.run, args.out, tol=args.tol, checkpoint=args.checkpoint, noise_scale=args.noise_scale)
    temp = f", c = {args.noise_scale:g}" if args.noise_scale != 1.0 else ""
    print(f"exported {args.run} ({args.checkpoint}{temp}) → {args.out}: max |torch − onnxruntime| = "
          f"{info['max_abs_diff']:.2e} (tolerance {args.tol:g})")
    return 0
