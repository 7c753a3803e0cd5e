"""Toy benchmark: base vs LP-DS (δ ∈ {0.01, 0.05, 0.1}) vs DSRL-NA, DSRL-SAC, LP-DS-A and DPPO.

DPPO fine-tunes a denoising chain, so it runs on the toy's diffusion base (same demos, BC and network sizes as
the flow base the others steer); the table shows that base as its own row.

Same frozen base, same seeds, same env-step budget for every method, side by side in one run.
Prints a table (return, success, KL entropy of end points, per-goal fractions) and appends it,
with the exact command, to bench/RESULTS.md.

    python bench/toy.py --seeds 0 1 2 --steps 3000
"""
from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from pathlib import Path

import numpy as np
from lpds_core import jsonio

def _label(algo: str, delta: float | None) -> str:
    return f"{algo} δ={delta:g}" if delta is not None else algo


RUNS = [("lpds", 0.01), ("lpds", 0.05), ("lpds", 0.1), ("dsrl-na", None), ("dsrl-sac", None), ("lpds-a", 0.05),
        ("dppo", None)]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--steps", type=int, default=3000)
    p.add_argument("--eval-episodes", type=int, default=1000)
    p.add_argument("--out", default="runs/bench_toy")
    p.add_argument("--results", default=str(Path(__file__).with_name("RESULTS.md")))
    p.add_argument("--cache-dir", default=None)
    p.add_argument("--no-append", action="store_true", help="print the table only")
    p.add_argument("--from-runs", action="store_true",
                   help="train nothing: summarise the metrics.json files already under --out")
    args = p.parse_args(argv)

    import torch

    from lpds_sim.toy.base_policy import toy_base_policy
    from lpds_sim.toy.experiment import base_kind, run_toy

    torch.set_num_threads(1)
    bases = {kind: toy_base_policy(cache_dir=args.cache_dir, progress=not args.from_runs, kind=kind)
             for kind in sorted({base_kind(a) for a, _ in RUNS})}
    backbone, path = bases["flow"]
    t_start = time.perf_counter()
    for seed in ([] if args.from_runs else args.seeds):
        for algo, delta in RUNS:
            label = _label(algo, delta)
            m = run_toy(algo, bases[base_kind(algo)][0], delta=delta or 0.05, steps=args.steps, seed=seed,
                        out=Path(args.out) / f"seed{seed}" / label.replace(" δ=", "_d"),
                        eval_episodes=args.eval_episodes, progress=False, plots=True)
            print(f"seed {seed} {label}: return {m['return_base']:.2f} -> {m['return_final']:.2f}, "
                  f"modes {m['mode_fractions']}, {m['train_seconds']:.0f}s", flush=True)
    total = time.perf_counter() - t_start

    # the table is built from the per-run metrics.json files, so a partial run can be summarised too
    rows: dict[str, list[dict]] = {"base": []}
    seeds_done = []
    for seed in args.seeds:
        runs = {}
        for algo, delta in RUNS:
            f = Path(args.out) / f"seed{seed}" / _label(algo, delta).replace(" δ=", "_d") / "metrics.json"
            if f.is_file():
                runs[_label(algo, delta)] = json.loads(f.read_text())
        if len(runs) < len(RUNS):
            print(f"seed {seed}: only {len(runs)}/{len(RUNS)} runs found, left out of the table")
            continue
        seeds_done.append(seed)
        m0 = next(iter(runs.values()))
        rows["base"].append({"return_final": m0["return_base"], "success_final": m0["success_base"],
                             "entropy_final": m0["entropy_base"], "mode_fractions": m0["mode_fractions_base"],
                             "modes_reached": m0["modes_reached_base"], "train_seconds": 0.0})
        m_diff = runs.get(_label("dppo", None))
        if m_diff is not None:  # DPPO's own base (diffusion)
            rows.setdefault("diffusion base", []).append(
                {"return_final": m_diff["return_base"], "success_final": m_diff["success_base"],
                 "entropy_final": m_diff["entropy_base"], "mode_fractions": m_diff["mode_fractions_base"],
                 "modes_reached": m_diff["modes_reached_base"], "train_seconds": 0.0})
        for label, m in runs.items():
            rows.setdefault(label, []).append(m)
    if not seeds_done:
        raise SystemExit("no complete seed to summarise")
    steps = rows[_label(*RUNS[0])][0]["steps"]
    base_ret = np.array([r["return_final"] for r in rows["base"]])
    lines = ["| method | return (mean ± sd over seeds) | vs base | success | KL entropy (nats) | "
             "goal fractions (+x, +y, −x, −y) | goals ≥10 % (min over seeds) | train s |",
             "|---|---|---|---|---|---|---|---|"]
    diff_ret = np.array([r["return_final"] for r in rows.get("diffusion base", rows["base"])])
    for label, ms in rows.items():
        ret = np.array([m["return_final"] for m in ms])
        frac = np.mean([m["mode_fractions"] for m in ms], axis=0)
        ref = diff_ret if label in ("dppo", "diffusion base") else base_ret  # each method against its own base
        lines.append(
            f"| {label} | {ret.mean():.2f} ± {ret.std():.2f} | {ret.mean() / ref.mean() - 1:+.1%} | "
            f"{np.mean([m['success_final'] for m in ms]):.3f} | {np.mean([m['entropy_final'] for m in ms]):.2f} | "
            f"{', '.join(f'{f:.2f}' for f in frac)} | {min(m['modes_reached'] for m in ms)} | "
            f"{np.mean([m['train_seconds'] for m in ms]):.0f} |")
    table = "\n".join(lines)
    print(table)
    cmd = "python " + " ".join(shlex.quote(a) for a in [sys.argv[0], *(argv if argv is not None else sys.argv[1:])])
    (Path(args.out) / "summary.json").write_text(jsonio.dumps(
        {k: [{kk: vv for kk, vv in m.items() if kk in ("return_final", "success_final", "entropy_final",
                                                       "mode_fractions", "modes_reached", "train_seconds")}
             for m in v] for k, v in rows.items()}, indent=1))
    if not args.no_append:
        how = (f"whole run {total / 60:.1f} min on the shared 2-core CPU (train s are wall-clock, noisy)"
               if not args.from_runs else f"summarised from the runs under `{args.out}`")
        with open(args.results, "a") as f:
            f.write(f"\n## Toy multi-goal: LP-DS vs baselines (core-steering)\n\n`{cmd}`\n\n"
                    f"Frozen flow-matching base `{path.name}` (dppo: diffusion base "
                    f"`{bases['diffusion'][1].name}`); seeds {seeds_done}; {steps} env steps per method "
                    f"(warm-up included); {args.eval_episodes} evaluation rollouts per method and seed; {how}.\n\n"
                    f"{table}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
