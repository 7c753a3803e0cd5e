"""A bench's results, read from its run folders (never from memory), so a resumed sweep redraws everything.

Writes into the bench folder: curves.png (return or success vs env steps, mean and 95 % t-interval over seeds, one
panel per task), floor.png (return vs KL action entropy: the noise-temperature curve over c with every method's
final policy on the same axes, one panel per task), table.md + table.csv (return, normalised return, success, AUC,
KL action entropy, env steps, wall time; mean ± 95 % half-width over seeds) and summary.json. Unfinished runs are
left out and counted.
"""
from __future__ import annotations

import csv
import io
import json
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from lpds_core.metrics import mean_ci95

from lpds_sim import runs

COLUMNS = ("return", "normalised_return", "success", "auc", "action_entropy", "env_steps", "wall_s")


def _stat(values: list[float | None]) -> dict[str, float | None]:
    vals = [float(v) for v in values if v is not None and np.isfinite(v)]
    if not vals:
        return {"mean": None, "lo": None, "hi": None, "n": 0}
    m, lo, hi = mean_ci95(vals)
    f = lambda x: None if not np.isfinite(x) else float(x)  # noqa: E731
    return {"mean": float(m), "lo": f(lo), "hi": f(hi), "n": len(vals)}


def _eval_curve(root: Path, metric: str) -> tuple[np.ndarray, np.ndarray]:
    rows = {r["step"]: r[metric] for r in runs.read_scalars(root, "eval") if metric in r}
    steps = np.array(sorted(rows), dtype=float)
    return steps, np.array([rows[s] for s in sorted(rows)], dtype=float)


def collect(jobs: list[dict[str, Any]], metric: str) -> dict[str, Any]:
    """Finished runs grouped by task and method label: their metrics and eval curves."""
    groups: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    missing = []
    for job in jobs:
        root = Path(job["root"])
        if not (root / "done.json").is_file() or not (root / "metrics.json").is_file():
            missing.append(job["name"])
            continue
        m = json.loads((root / "metrics.json").read_text())
        steps, vals = _eval_curve(root, metric)
        c = job["config"]
        groups[(c["task"], c["label"])].append({"seed": c["seed"], "algo": c["algo"], "metrics": m,
                                                "steps": steps, "values": vals,
                                                "delta": c["agent"].get("delta"),
                                                "overrides": c.get("overrides", [])})
    return {"groups": groups, "missing": missing}


def curve_band(seed_runs: list[dict[str, Any]]) -> dict[str, np.ndarray] | None:
    """Mean and 95 % interval over seeds on the union of their eval steps (each seed's curve interpolated)."""
    curves = [(r["steps"], r["values"]) for r in seed_runs if len(r["steps"])]
    if not curves:
        return None
    grid = np.unique(np.concatenate([s for s, _ in curves]))
    ys = np.stack([np.interp(grid, s, v) for s, v in curves])
    m, lo, hi = mean_ci95(ys, axis=0)
    return {"steps": grid, "mean": m, "lo": lo, "hi": hi, "n": len(curves)}


def table_rows(groups: dict[tuple[str, str], list[dict[str, Any]]], extra: tuple[str, ...] = (),
               metric: str = "return") -> list[dict[str, Any]]:
    """One row per (task, method); the temperature run gives one row per c. `extra`: the suite's own columns.
    An untrained policy's curve is flat, so a temperature row's AUC is its final `metric` (the suite's curve)."""
    cols = COLUMNS + tuple(extra)
    rows = []
    for (task, lab), seed_runs in sorted(groups.items()):
        if seed_runs[0]["algo"] == "temperature":
            by_c: dict[float, list[dict[str, Any]]] = defaultdict(list)
            for r in seed_runs:
                for row in r["metrics"]["temperature"]:
                    by_c[float(row["c"])].append({**row, "auc": row[metric], "env_steps": 0,
                                                  "wall_s": r["metrics"]["wall_s"] / len(r["metrics"]["temperature"])})
            for c, rs in sorted(by_c.items()):
                rows.append({"task": task, "method": f"temperature c={c:g}", "c": c, "seeds": len(rs),
                             **{k: _stat([x.get(k) for x in rs]) for k in cols}})
            continue
        ms = [r["metrics"] for r in seed_runs]
        rows.append({"task": task, "method": lab, "c": None, "seeds": len(ms), "delta": seed_runs[0].get("delta"),
                     "delta_ablation": any(k == "delta" for k, _ in seed_runs[0].get("overrides", [])),
                     **{k: _stat([m.get(k) for m in ms]) for k in cols}})
    return rows


def auc_ratios(rows: list[dict[str, Any]], num: str = "lpds", den: str = "dsrl-na") -> dict[str, float | None]:
    """Per task: mean AUC of `num` over mean AUC of `den` (the paper's aim: LP-DS ≥ 1.25× DSRL-NA at equal env
    steps); None where either is missing or the denominator is not positive."""
    out: dict[str, float | None] = {}
    for task in dict.fromkeys(r["task"] for r in rows):
        a = next((r["auc"]["mean"] for r in rows if r["task"] == task and r["method"] == num), None)
        b = next((r["auc"]["mean"] for r in rows if r["task"] == task and r["method"] == den), None)
        out[task] = None if a is None or b is None or b <= 0 else float(a / b)
    return out


def _fmt(s: dict[str, float | None], digits: int = 2) -> str:
    if s["mean"] is None:
        return "—"
    if s["lo"] is None:
        return f"{s['mean']:.{digits}f}"
    return f"{s['mean']:.{digits}f} ± {(s['hi'] - s['mean']):.{digits}f}"


def write_tables(rows: list[dict[str, Any]], out: Path, note: str, extra: tuple[str, ...] = ()) -> None:
    head = ["task", "method", "seeds", "return", "normalised return", "success", "AUC", "KL action entropy (nats)",
            "env steps", "wall time (s)"] + [k.replace("_", " ") for k in extra]
    md = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        md.append("| " + " | ".join([r["task"], r["method"], str(r["seeds"]), _fmt(r["return"]),
                                     _fmt(r["normalised_return"]), _fmt(r["success"]), _fmt(r["auc"]),
                                     _fmt(r["action_entropy"]), _fmt(r["env_steps"], 0), _fmt(r["wall_s"], 1)]
                                    + [_fmt(r[k]) for k in extra])
                  + " |")
    runs.atomic_write_bytes(out / "table.md", ("\n".join(md) + "\n\n" + note + "\n").encode())
    buf = io.StringIO()
    w = csv.writer(buf)
    cols = COLUMNS + tuple(extra)
    w.writerow(["task", "method", "seeds"] + [f"{k}_{s}" for k in cols for s in ("mean", "ci95_lo", "ci95_hi")])
    for r in rows:
        w.writerow([r["task"], r["method"], r["seeds"]] +
                   ["" if r[k][s] is None else r[k][s] for k in cols for s in ("mean", "lo", "hi")])
    runs.atomic_write_bytes(out / "table.csv", buf.getvalue().encode())


def aggregate(cfg: Any, jobs: list[dict[str, Any]], suite: Any) -> dict[str, Any]:
    """Tables, figures and summary.json of the finished runs among `jobs`, in `cfg.out_dir`."""
    from .plots import plot_curves, plot_deltas, plot_floor

    out = Path(cfg.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    got = collect(jobs, suite.metric)
    groups = got["groups"]
    extra = tuple(getattr(suite, "extra_columns", ()))
    rows = table_rows(groups, extra, suite.metric)
    kinds = {j["config"].get("base_kind", "flow") for j in jobs}
    dppo_note = "; dppo: the diffusion base of the same demos, the others the flow base" if len(kinds) > 1 else ""
    note = (f"Mean ± half-width of the two-sided 95 % Student-t interval over seeds ({suite.name} suite, "
            f"{cfg.train.env_steps} env steps per run, the same base for every method{dppo_note}). AUC: area "
            f"under the "
            f"evaluation {suite.metric} curve over env steps divided by the budget. KL action entropy: "
            f"Kozachenko–Leonenko (k=3) of the first action of {cfg.entropy_samples} sampled chunks at "
            f"{cfg.entropy_states} fixed observations, averaged. {len(got['missing'])} of {len(jobs)} runs "
            f"unfinished.")
    write_tables(rows, out, note, extra)
    tasks = list(dict.fromkeys(j["config"]["task"] for j in jobs))
    bands = {task: {lab: curve_band(rs) for (t, lab), rs in groups.items()
                    if t == task and rs[0]["algo"] != "temperature"} for task in tasks}
    plot_curves(bands, out / "curves.png", suite.metric, cfg.train.env_steps)
    plot_floor(rows, tasks, out / "floor.png", suite.metric)
    figures = ["curves.png", "floor.png"]
    if any(r.get("delta_ablation") for r in rows):
        plot_deltas(rows, tasks, out / "deltas.png", suite.metric)
        figures.append("deltas.png")
    figures += suite.bench_figures(jobs, rows, out)
    summary = {"suite": suite.name, "out": str(out), "runs": len(jobs), "unfinished": got["missing"],
               "table": rows, "auc_ratios": auc_ratios(rows), "figures": figures,
               "tables": ["table.md", "table.csv"]}
    runs.atomic_write_json(out / "summary.json", summary)
    return summary
