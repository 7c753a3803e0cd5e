"""Benchmark: base flow-matching policy vs LP-DS vs DSRL-NA on pick-and-place, same demos, seeds and budget.

One run, side by side: the same 29 emulated demos and the same base run feed every steering algorithm; each gets
the same env-step budget and seed; all are evaluated on the same 40-trial grid (same cell jitter seeds). Reports
grid success, mean return, action entropy (Kozachenko–Leonenko, nats, of the first action of a chunk sampled
512 times at each of 8 fixed start observations, averaged), env steps and wall time, and appends a section to
bench/RESULTS.md. Every stage reuses finished outputs in --out, so an interrupted benchmark continues.

    python bench/pipeline.py --out runs/bench_pipeline --env-steps 100000
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path


ROOT = Path(__file__).resolve().parents[1]


def action_entropy(env, act_batch, n_obs: int = 8, n_samples: int = 512, seed: int = 0) -> float:
    """Mean KL entropy (nats) of the first action of a sampled chunk at fixed start observations."""
    from lpds_core.metrics import action_entropy as entropy_at

    from lpds_sim.export_run import sample_observations

    return entropy_at(act_batch, sample_observations(env, n_obs, seed), n_samples)


def success_auc(run: Path) -> float | None:
    """Area under the periodic-evaluation success curve, normalised by the step range (= time-averaged success)."""
    rows = [json.loads(line) for line in (run / "scalars.jsonl").read_text().splitlines() if line.strip()]
    pts = sorted((r["step"], r["success"]) for r in rows if r.get("group") == "eval" and "success" in r)
    if len(pts) < 2:
        return None
    from lpds_core.metrics import curve_auc

    return curve_auc([p[0] for p in pts], [p[1] for p in pts])


def merged_config(out: Path, common: str | None, extra: str | None) -> str:
    """One YAML for `lpds train-steer --config`: the shared settings, then the algorithm-specific ones."""
    import yaml

    from lpds_sim.runs import read_yaml_mapping

    data = {**(read_yaml_mapping(common) if common else {}), **(read_yaml_mapping(extra) if extra else {})}
    path = out / f"steer_config_{Path(common).stem if common else 'none'}_{Path(extra).stem if extra else 'none'}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return str(path)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="runs/bench_pipeline")
    p.add_argument("--task", default="pick_place", choices=("pick_place", "mug_hang"))
    p.add_argument("--obs", default="state", choices=("state", "image"))
    p.add_argument("--n-demos", type=int, default=29)
    p.add_argument("--bc-steps", type=int, default=3000)
    p.add_argument("--env-steps", type=int, default=100_000)
    p.add_argument("--eval-every", type=int, default=10_000)
    p.add_argument("--delta", type=float, default=0.05)
    p.add_argument("--algos", default="lpds,dsrl-na",
                   help="comma list; 'lpds@1.0' gives one algorithm its own δ, 'lpds+eps' uses Δθ(s, ε)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--trials-per-cell", type=int, default=5)
    p.add_argument("--noise-scales", default="",
                   help="also evaluate the base with w = s·ε for these s (e.g. '0.5,0'): how much of the base's "
                        "failure is sampling noise")
    p.add_argument("--steer-config", help="YAML with SteerConfig keys for every algorithm (the same for all)")
    p.add_argument("--lpds-config", help="YAML with extra SteerConfig keys for the lpds/lpds-a runs only (e.g. the "
                                         "Δθ(s, ε) form and noise-level exploration); its file name tags the run")
    p.add_argument("--results", default=str(ROOT / "bench" / "RESULTS.md"))
    args = p.parse_args(argv)

    import torch
    from lpds_core.agents import make_agent

    from lpds_sim import runs
    from lpds_sim.curves import plot_comparison
    from lpds_sim.evaluation import evaluate_grid, make_env
    from lpds_sim.export_run import load_steered_policy
    from lpds_sim.pipeline import PipelineConfig, demos_valid, lpds, record_demos, run_done
    from lpds_sim.train_steer import load_base

    torch.set_num_threads(1)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    pcfg = runs.config_from_dict(PipelineConfig, {"task": args.task, "obs": args.obs, "n_demos": args.n_demos,
                                                  "bc_steps": args.bc_steps, "seed": args.seed,
                                                  "trials": args.trials_per_cell})
    demos, base = out / "demos.hdf5", out / "base"
    # training runs in `lpds` subprocesses: this process holds exactly one RAI env (the evaluation env)
    if not demos_valid(demos, args.task, args.n_demos, args.obs):
        record_demos(pcfg, demos)
    if not run_done(base):
        lpds("train-base", "--task", args.task, "--data", str(demos), "--obs", args.obs, "--bc-steps",
             str(args.bc_steps), "--seed", str(args.seed), "--out", str(base), "--no-progress",
             *(["--resume"] if (base / "config.yaml").is_file() else []))
    steer_runs = []
    for item in [a.strip() for a in args.algos.split(",") if a.strip()]:
        algo, _, d = item.partition("@")  # "lpds@1.0": this algorithm with its own δ
        algo, _, variant = algo.partition("+")  # "lpds+eps@8": the Δθ(s, ε) variant
        delta = float(d) if d else args.delta
        extra = args.lpds_config if args.lpds_config and algo.startswith("lpds") else None
        tag = f" [{Path(extra).stem}]" if extra else ""
        label = (f"{algo}{' Δθ(s,ε)' if variant == 'eps' else ''}{tag} (δ={delta:g})" if algo.startswith("lpds")
                 else algo)
        run = out / (f"steer_{algo}{'_eps' if variant == 'eps' else ''}{f'_{Path(extra).stem}' if extra else ''}"
                     f"{f'_d{delta:g}' if d else ''}")
        if not run_done(run):
            lpds("train-steer", "--base", str(base), "--algo", algo, "--delta", str(delta), "--env-steps",
                 str(args.env_steps), "--eval-every", str(args.eval_every), "--seed", str(args.seed),
                 "--out", str(run), "--no-progress",
                 *(["--config", merged_config(out, args.steer_config, extra)] if args.steer_config or extra else []),
                 *(["--use-eps"] if variant == "eps" else []),
                 *(["--resume"] if (run / "config.yaml").is_file() else []))
        steer_runs.append((label, run))

    env = make_env(args.task, args.obs)
    backbone, _ = load_base(base, args.task)
    rows = []
    results_path = out / "results.json"
    cached = json.loads(results_path.read_text()) if results_path.is_file() else {}

    def evaluate(name: str, act, wall: float, env_steps: int) -> dict:
        if name in cached and cached[name].get("env_steps") == env_steps:
            return cached[name]
        torch.manual_seed(args.seed)
        t0 = time.perf_counter()
        res = evaluate_grid(args.task, args.obs, act, backbone.horizon, trials_per_cell=args.trials_per_cell,
                            seed=20_000 + args.seed, out=out / "eval" / name, env=env)
        row = {"policy": name, "success": res["success_rate"], "n_success": res["n_success"],
               "n_trials": res["n_trials"], "return": res["mean_return"], "entropy": action_entropy(env, act),
               "env_steps": env_steps, "train_wall_s": wall, "eval_wall_s": time.perf_counter() - t0}
        cached[name] = row
        runs.atomic_write_json(results_path, cached)
        return row

    base_agent = make_agent("base", backbone, obs_space=env.observation_space, action_space=env.action_space)
    rows.append(evaluate("base", lambda o: base_agent.act(o), 0.0, 0))
    for s in [float(x) for x in args.noise_scales.split(",") if x.strip()]:
        def scaled(o, s=s):
            with torch.no_grad():
                t, single = base_agent.obs_to_tensor(o)
                f = base_agent.features(t)
                a = base_agent.decode(f, s * torch.randn(f.shape[0], *backbone.noise_shape)).numpy()
            return a[0] if single else a
        rows.append(evaluate(f"base, noise ×{s:g} (not a method)", scaled, 0.0, 0))
    for algo, run in steer_runs:
        done = json.loads((run / "done.json").read_text())
        _, agent, _ = load_steered_policy(run, env=env)
        rows.append(evaluate(algo, lambda o, a=agent: a.act(o), done.get("train_seconds", done["train_seconds_this_session"]),
                             done["env_steps"]))
        rows[-1]["auc"] = success_auc(run)
    env.close()
    plot_comparison(steer_runs, out / "success_vs_steps.png")

    table = ["| policy | grid success | mean return | action entropy (nats) | env steps | train wall (s) | "
             "success AUC (periodic evals) |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        auc = f"{r['auc']:.3f}" if r.get("auc") is not None else "–"
        table.append(f"| {r['policy']} | {r['n_success']}/{r['n_trials']} ({r['success']:.2f}) | {r['return']:.2f} | "
                     f"{r['entropy']:.2f} | {r['env_steps']} | {r['train_wall_s']:.0f} | {auc} |")
    aucs = {r["policy"]: r["auc"] for r in rows if r.get("auc") is not None}
    dsrl = aucs.get("dsrl-na")
    ratios = [f"{k} / dsrl-na = {v / dsrl:.2f}×" for k, v in aucs.items() if k != "dsrl-na" and dsrl]
    if ratios:
        table += ["", "Success-AUC ratio (DESIGN §6 aims at ≥ 1.25×): " + "; ".join(ratios) + "."]
    print("\n".join(table))
    cmd = "python bench/pipeline.py " + " ".join(argv if argv is not None else sys.argv[1:])
    section = [f"\n## Pipeline: base vs steering on {args.task} ({args.obs} obs, {args.n_demos} emulated demos)\n",
               f"Command: `{cmd}`  ", f"Budget: {args.env_steps} env steps per algorithm (δ as in the policy column; "
               f"DSRL-NA has no δ, its noise is bounded by |w| ≤ 1.5), seed {args.seed}, "
               f"{rows[0]['n_trials']}-trial grid with the same cell seeds for every policy. Action entropy: "
               f"Kozachenko–Leonenko (nats) of the first action of 512 sampled chunks at 8 fixed start states. "
               f"Wall times are on the shared 2-core machine with other jobs running: compare them only within "
               f"this table.\n", *table, "",
               f"Curves: `{out}/success_vs_steps.png`, per-run plots in `{out}/steer_*/plots/`.\n"]
    if args.results:
        with open(args.results, "a") as fh:
            fh.write("\n".join(section))
    return 0


if __name__ == "__main__":
    sys.exit(main())
