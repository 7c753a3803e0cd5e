"""Benchmark (issue 13): steering a base fitted to demos recorded in reality, graded on reality's grid.

Per seed: the pipeline's 29 demos recorded in the held-out reality (demo seed 0, as `lpds pipeline --world reality`
records them), the pipeline's flow-matching base trained on them with that seed, then every steering variant from
that same frozen base, with the same env-step budget and the same updates per step. Every policy is graded on the
same 40 reality trials (grid seed 20000 + seed) and, for the steered ones, on the emulation's grid too:

- the base at noise temperatures c ∈ {0, 0.25, 0.5, 0.75, 1} (decode c·ε; the free floor, no training),
- each variant's final policy and its best checkpoint (chosen by the periodic grid of the world it trained in,
  never by reality's),
- for LP-DS variants, that best checkpoint at the same temperatures (decode c·ε + Δθ(s, c·ε)), and the temperature
  `lpds pipeline`'s deploy stage picks on the training world's grid (grid seed 30000 + seed; never reality's),

with the KL action entropy (nats, first action of 512 sampled chunks at 8 reality start states) of each, so the
methods sit on the floor's success-vs-entropy curve; plus each variant's success-AUC over its periodic evaluations.
Training runs and gradings are `lpds` subprocesses whose finished outputs are kept, so a rerun continues.

    python bench/reality_steering.py --out runs/reality --seeds 0,1,2 --variants lpds-id,lpds-dr,dsrl-na-dr
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

# name -> PipelineConfig settings (flat keys) that differ from `lpds pipeline --world reality`'s defaults
VARIANTS: dict[str, dict[str, Any]] = {
    "lpds": {},                                                   # the pipeline's LP-DS, in the nominal emulation
    "lpds-dr": {"steer_world": "randomised"},                     # ... in the randomised emulation
    "lpds-paper-dr": {"steer_world": "randomised", "use_eps": False},  # the paper's Δθ(s), same δ and world
    "dsrl-na": {"algo": "dsrl-na"},
    "dsrl-na-dr": {"algo": "dsrl-na", "steer_world": "randomised"},
    "lpds-id": {"steer_world": "identified"},  # ... in the emulation fitted to the demos (`lpds identify`)
}
TEMPERATURES = (0.0, 0.25, 0.5, 0.75, 1.0)


def variant_config(name: str, seed: int, env_steps: int | None, extra: dict[str, Any]):
    from lpds_sim import runs
    from lpds_sim.pipeline import PipelineConfig

    if name not in VARIANTS:
        raise SystemExit(f"error: unknown variant {name!r}; choose from {', '.join(VARIANTS)}")
    flat = {"world": "reality", "seed": seed, **VARIANTS[name], **extra}
    if env_steps:
        flat["env_steps"] = env_steps
    if flat.get("use_eps") is False:  # Δθ(s) samples plain ε: no noise-level exploration
        flat["explore_eps_scale"] = None
    return runs.config_from_dict(PipelineConfig, flat)


def grade(policy: Path, out: Path, seed: int, world: str, noise_scale: float = 1.0, checkpoint: str = "latest",
          trials: int = 5) -> dict[str, Any]:
    """`lpds eval` on the grid (kept when it is already there)."""
    from lpds_sim.pipeline import lpds

    res = out / "grid_results.json"
    if not res.is_file():
        lpds("eval", "--task", "pick_place", "--policy", str(policy), "--seed", str(20_000 + seed), "--trials",
             str(trials), "--world", world, "--noise-scale", f"{noise_scale:g}", "--checkpoint", checkpoint,
             "--out", str(out), "--no-progress", "--overwrite")
    doc = json.loads(res.read_text())
    return {"n_success": doc["successes"], "n_trials": doc["total"]}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="runs/reality_steering")
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--variants", default="lpds-dr,dsrl-na-dr", help=f"comma list of {', '.join(VARIANTS)}")
    p.add_argument("--env-steps", type=int, default=None, help="steering budget (default: the pipeline's, 100k)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="a PipelineConfig setting for every variant (YAML value), e.g. delta=16")
    p.add_argument("--results", default=None, help="append the section to this markdown file (bench/RESULTS.md)")
    args = p.parse_args(argv)

    import numpy as np
    import torch
    import yaml

    from lpds_core.metrics import curve_auc, mean_ci95, wilson_ci95
    from lpds_sim import runs
    from lpds_sim.pipeline import (IDENTIFIED, IDENTIFIED_FILE, demos_valid, identified_valid, identify_world, lpds,
                                   record_demos, run_done, write_stage_config)

    extra = {}
    for item in args.set:
        key, sep, value = item.partition("=")
        if not sep:
            raise SystemExit(f"error: --set {item!r}: write KEY=VALUE, e.g. --set delta=16")
        extra[key] = yaml.safe_load(value)
    seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    names = [v.strip() for v in args.variants.split(",") if v.strip()]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(1)

    results_path = out / "results.json"
    results: dict[str, Any] = json.loads(results_path.read_text()) if results_path.is_file() else {}

    def save() -> None:
        """Merge this process's rows into results.json (another bench process may be adding variants)."""
        on_disk = json.loads(results_path.read_text()) if results_path.is_file() else {}
        for seed_key, rows_ in on_disk.items():
            mine = results.setdefault(seed_key, {})
            for key, row in rows_.items():
                mine.setdefault(key, row)
        runs.atomic_write_json(results_path, results)
    for seed in seeds:
        root = out / f"seed_{seed}"
        root.mkdir(exist_ok=True)
        cfg0 = variant_config(names[0], seed, args.env_steps, extra)
        demos, base = out / "demos_reality.hdf5", root / "base"
        if not demos_valid(demos, cfg0.task, cfg0.n_demos, cfg0.obs, "reality"):
            record_demos(cfg0, demos)
        if not run_done(base):
            lpds("train-base", "--config", str(write_stage_config(cfg0.base_config(demos), root / "base_config.yaml")),
                 "--out", str(base), "--no-progress", *(["--resume"] if (base / "config.yaml").is_file() else []))
        rows = results.setdefault(str(seed), {})
        for c in TEMPERATURES:
            key = f"base c={c:g}"
            if key not in rows:
                rows[key] = {"reality": grade(base, root / "eval_reality" / f"base_c{c:g}", seed, "reality", c),
                             "policy": str(base), "noise_scale": c}
                save()
        for name in names:
            cfg = variant_config(name, seed, args.env_steps, extra)
            run = root / name
            if not run_done(run):
                world = None
                if cfg.steer_world == IDENTIFIED:  # fitted once to the demos every seed shares
                    world = out / IDENTIFIED_FILE
                    if not identified_valid(world, demos):
                        identify_world(cfg, demos, world)
                sc = cfg.steer_config(base, world)
                lpds("train-steer", "--config", str(write_stage_config(sc, root / f"{name}_config.yaml")),
                     "--out", str(run), "--no-progress", *(["--resume"] if (run / "config.yaml").is_file() else []))
            ev = runs.read_scalars(run, "eval")
            pts = sorted((r["step"], r["success"]) for r in ev)
            for ck in ("latest", "best"):
                key = f"{name} ({'final' if ck == 'latest' else 'best checkpoint'})"
                if key in rows:
                    continue
                rows[key] = {"reality": grade(run, root / "eval_reality" / f"{name}_{ck}", seed, "reality",
                                              checkpoint=ck),
                             "emulation": grade(run, root / "eval_emulation" / f"{name}_{ck}", seed, "emulation",
                                                checkpoint=ck),
                             "policy": str(run), "checkpoint": ck, "variant": name,
                             "steer_world": cfg.steer_world,
                             "auc": curve_auc([p[0] for p in pts], [p[1] for p in pts]) if len(pts) > 1 else None,
                             "env_steps": json.loads((run / "done.json").read_text())["env_steps"]}
                save()
            if cfg.noise_steered:  # the steered policy's own temperature curve, and the temperature deployed
                steered_temperatures(rows, cfg, name, run, root, seed, grade, save,
                                     str(out / IDENTIFIED_FILE) if cfg.steer_world == IDENTIFIED else cfg.steer_world)
        add_entropies(rows, root)
        save()

    table, figure = report(results, [str(s) for s in seeds], out, wilson_ci95, mean_ci95)
    print("\n".join(table))
    if args.results:
        cmd = "python bench/reality_steering.py " + " ".join(argv if argv is not None else sys.argv[1:])
        section = [f"\n### Steering a reality-demo base, graded in reality ({len(seeds)} seeds)\n",
                   f"Command: `{cmd}`  ", "Every policy of a seed is graded on the same 40 reality trials (grid seed "
                   "20000 + seed); steered policies also on the emulation's grid. Entropy: KL action entropy (nats) "
                   "of the first action, 512 samples at 8 reality start states. Intervals: 95 % Wilson per grid "
                   "(pooled over seeds), and the t-interval of the per-seed successes.\n", *table, "",
                   f"Figure: `{figure}`.\n"]
        with open(args.results, "a") as fh:
            fh.write("\n".join(section))
    return 0


def steered_temperatures(rows: dict[str, Any], cfg, name: str, run: Path, root: Path, seed: int, grade, save,
                         world: str) -> None:
    """Rows "NAME (best, c=C)": the best checkpoint (the one the pipeline exports) decoding c·ε, graded on the same
    reality trials as the floor; and "NAME (deployed)": the c the pipeline's deploy stage chooses on the training
    world's grid (its own seeds, never reality's), with that c's reality grade."""
    from lpds_sim.pipeline import choose_deploy

    for c in TEMPERATURES:
        key = f"{name} (best, c={c:g})"
        if key not in rows:
            same = rows.get(f"{name} (best checkpoint)") if c == 1.0 else None  # that grade already (same trials)
            rows[key] = {"reality": same["reality"] if same else grade(
                             run, root / "eval_reality" / f"{name}_best_c{c:g}", seed, "reality", c, checkpoint="best"),
                         "policy": str(run), "checkpoint": "best", "noise_scale": c, "variant": name}
            save()
    key = f"{name} (deployed)"
    if key not in rows:
        choice = choose_deploy(dataclasses.replace(cfg, deploy_checkpoint="best"), root, steer=run,
                               folder=root / f"{name}_deploy", world=world)
        c = choice["noise_scale"]
        rows[key] = {**rows[f"{name} (best, c={c:g})"], "chosen": choice}
        save()


def add_entropies(rows: dict[str, Any], root: Path) -> None:
    """KL action entropy of every graded policy of one seed, at the same 8 reality start states."""
    import torch
    from lpds_core.agents import make_agent

    from lpds_sim.evaluation import make_env
    from lpds_sim.export_run import load_steered_policy
    from lpds_sim.train_steer import load_base
    from pipeline import action_entropy

    import numpy as np

    todo = [k for k, r in rows.items() if "entropy" not in r]
    if not todo:
        return
    env = make_env("pick_place", "state", world="reality")
    try:
        backbone, _ = load_base(root / "base", "pick_place")
        base_agent = make_agent("base", backbone, obs_space=env.observation_space, action_space=env.action_space)
        for key in todo:
            r = rows[key]
            torch.manual_seed(0)
            if "noise_scale" in r and "checkpoint" in r:  # a steered policy decoding c·ε
                _, agent, _ = load_steered_policy(r["policy"], env=env, checkpoint=r["checkpoint"])
                agent.eval()

                def act(o, c=r["noise_scale"], agent=agent):
                    return agent.act_with_noise(o, eps_scale=np.full(len(o), c, np.float32))[0]
            elif "noise_scale" in r:
                def act(o, c=r["noise_scale"]):
                    with torch.no_grad():
                        t, _ = base_agent.obs_to_tensor(o)
                        f = base_agent.features(t)
                        return base_agent.decode(f, c * torch.randn(f.shape[0], *backbone.noise_shape)).numpy()
            else:
                _, agent, _ = load_steered_policy(r["policy"], env=env, checkpoint=r["checkpoint"])
                agent.eval()
                act = agent.act
            r["entropy"] = action_entropy(env, act)
    finally:
        env.close()


COLLAPSED = -20.0  # nats: below this a policy's samples are (nearly) all the same action


def report(results: dict[str, Any], seeds: list[str], out: Path, wilson, mean_ci) -> tuple[list[str], Path]:
    """The table (per seed and pooled, with intervals) and the success-vs-entropy figure."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    keys = list(dict.fromkeys(k for s in seeds for k in results.get(s, {})))
    head = "| policy | " + " | ".join(f"seed {s}: reality" for s in seeds) + (
        " | pooled reality (95 % Wilson) | mean ± t-interval | entropy (nats) | floor at that entropy | "
        "emulation (pooled) | success AUC |")
    table = [head, "|" + "---|" * (len(seeds) + 7)]
    points = []
    floor_curve = []  # (entropy, pooled success rate) of the temperatures, for the floor at a method's entropy
    for k in keys:
        if k.startswith("base c="):
            rs = [results[s][k] for s in seeds if k in results.get(s, {}) and "entropy" in results[s][k]]
            if rs:
                floor_curve.append((float(np.mean([r["entropy"] for r in rs])),
                                    sum(r["reality"]["n_success"] for r in rs) / sum(r["reality"]["n_trials"]
                                                                                   for r in rs)))
    floor_curve.sort()
    for k in keys:
        rs = [results[s][k] for s in seeds if k in results.get(s, {})]
        succ = [r["reality"]["n_success"] for r in rs]
        n = sum(r["reality"]["n_trials"] for r in rs)
        lo, hi = wilson(sum(succ), n)
        m, mlo, mhi = mean_ci(np.asarray(succ, float))
        ent = np.mean([r["entropy"] for r in rs if "entropy" in r]) if any("entropy" in r for r in rs) else np.nan
        emu = [r["emulation"] for r in rs if "emulation" in r]
        emu_txt = (f"{sum(e['n_success'] for e in emu)}/{sum(e['n_trials'] for e in emu)}" if emu else "–")
        aucs = [r["auc"] for r in rs if r.get("auc") is not None]
        auc_txt = f"{np.mean(aucs):.3f}" if aucs else "–"
        per = " | ".join(f"{results[s][k]['reality']['n_success']}/{results[s][k]['reality']['n_trials']}"
                         if k in results.get(s, {}) else "–" for s in seeds)
        ci = f"{m:.1f} [{mlo:.1f}, {mhi:.1f}]" if len(succ) > 1 else f"{m:.1f}"
        at = (f"{np.interp(ent, [f[0] for f in floor_curve], [f[1] for f in floor_curve]):.2f}"
              if floor_curve and np.isfinite(ent) and not k.startswith("base c=") else "–")
        table.append(f"| {k} | {per} | {sum(succ)}/{n} [{lo:.2f}, {hi:.2f}] | {ci} | {ent:.2f} | {at} | {emu_txt} | "
                     f"{auc_txt} |")
        points.append((k, ent, sum(succ) / n, lo, hi, len(rs)))
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    # a collapsed policy (c = 0: every sample the same) has an entropy of about −85 nats (the distance floor);
    # drawn at the left edge, labelled with its value, so the diverse policies are not squeezed into a corner
    finite = [p[1] for p in points if np.isfinite(p[1]) and p[1] > COLLAPSED]
    left = (min(finite) - 1.5) if finite else COLLAPSED
    points = [(k, e if not np.isfinite(e) or e > COLLAPSED else left, *rest, e) for k, e, *rest in points]
    floor = [p for p in points if p[0].startswith("base c=")]
    if floor:
        ax.errorbar([p[1] for p in floor], [p[2] for p in floor],
                    yerr=[[p[2] - p[3] for p in floor], [p[4] - p[2] for p in floor]], color="0.4", marker="o",
                    capsize=3, label="base at noise temperature c (the floor)")
        for p in floor:
            label = p[0][5:] if p[1] == p[6] else f"{p[0][5:]} ({p[6]:.0f} nats: collapsed)"
            ax.annotate(label, (p[1], p[2]), textcoords="offset points", xytext=(4, 4 if p[1] == p[6] else -12),
                        fontsize=7)
    for variant in dict.fromkeys(p[0].split(" (best, c=")[0] for p in points if " (best, c=" in p[0]):
        curve = sorted((p for p in points if p[0].startswith(f"{variant} (best, c=")), key=lambda p: p[1])
        ax.errorbar([p[1] for p in curve], [p[2] for p in curve],
                    yerr=[[p[2] - p[3] for p in curve], [p[4] - p[2] for p in curve]], marker="^", capsize=3,
                    label=f"{variant} (best checkpoint) at noise temperature c")
        for p in curve:
            ax.annotate(p[0].split("c=")[1].rstrip(")"), (p[1], p[2]), textcoords="offset points", xytext=(4, -12),
                        fontsize=7, color="C0")
    for p in points:
        if not p[0].startswith("base c=") and " (best, c=" not in p[0]:
            ax.errorbar([p[1]], [p[2]], yerr=[[p[2] - p[3]], [p[4] - p[2]]], marker="s", capsize=3, ls="none",
                        label=f"{p[0]}, {p[5]} seed{'s' if p[5] > 1 else ''}")
    ax.set_xlabel("KL action entropy (nats; w = 0 is not diverse)")
    ax.set_ylabel("reality grid success (pooled over seeds)")
    ax.set_ylim(-0.02, 1.02)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    figure = out / "success_vs_entropy_reality.png"
    fig.savefig(figure, dpi=120)
    plt.close(fig)
    return table, figure


if __name__ == "__main__":
    sys.exit(main())
