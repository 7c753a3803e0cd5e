"""`lpds bench SUITE`: train and evaluate every (task, algo, seed) of a benchmark on Ray, resumable, then write
return vs env steps (mean, 95 % interval over seeds), the final table (markdown + CSV) and the noise-temperature
floor figure. Rerun the same command after an interruption: finished runs are skipped, unfinished ones resume."""
from __future__ import annotations

import argparse

LIST_FLAGS = ("tasks", "algos", "seeds", "deltas", "temperatures")  # also accept comma-separated values


def register(subparsers: argparse._SubParsersAction) -> None:
    from lpds_sim import runs
    from lpds_sim.benchmarks.suites import SUITES
    from lpds_sim.benchmarks.sweep import BenchConfig

    p = subparsers.add_parser("bench", help="benchmark sweeps (suite x tasks x algos x seeds) on Ray",
                              description=__doc__ + " Settings: defaults < the suite's presets < --config YAML "
                                                    "< flags. List flags take `a,b,c` or `a b c`.")
    p.add_argument("suite", choices=sorted(SUITES), help="benchmark suite")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    runs.add_config_flags(p, BenchConfig, skip=("suite", "seed"))
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from lpds_sim import runs
    from lpds_sim.benchmarks.sweep import BenchConfig, bench_defaults, run_sweep

    for name in LIST_FLAGS:  # `--seeds 0,1,2` → ["0", "1", "2"], converted by the schema like `--seeds 0 1 2`
        value = getattr(args, name, None)
        if value is not None:
            setattr(args, name, [p for v in value for p in str(v).split(",") if p.strip()])
    cfg = runs.config_from_args(BenchConfig, args, base=bench_defaults(args.suite))
    cfg.suite = args.suite
    summary = run_sweep(cfg, progress=not args.no_progress)
    for row in summary["table"]:
        print(f"{row['task']:<12} {row['method']:<22} {suite_metric(row)}")
    out = cfg.out_dir
    print(f"wrote {out}/table.md, table.csv, {', '.join(summary['figures'])}, summary.json")
    return 0


def suite_metric(row: dict) -> str:
    r, e = row["return"], row["action_entropy"]
    fmt = lambda s: "—" if s["mean"] is None else f"{s['mean']:.2f}"  # noqa: E731
    return f"return {fmt(r)}  KL action entropy {fmt(e)}  (seeds {row['seeds']})"
