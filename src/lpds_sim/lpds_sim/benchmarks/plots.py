"""The bench's figures (matplotlib, Agg): learning curves per task, the noise-temperature floor, the δ ablation."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from lpds_sim.curves import env_steps_axis


def _plt() -> Any:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def plot_curves(bands: dict[str, dict[str, dict[str, np.ndarray] | None]], path: Path, metric: str,
                budget: int) -> Path:
    """One panel per task (in a row, like the paper's Gym row): each method's mean curve with its 95 % band (a
    success rate's band is cut to [0, 1]: the t interval of 3 seeds knows no bounds)."""
    plt = _plt()
    tasks = list(bands) or ["(no runs)"]
    fig, axes = plt.subplots(1, len(tasks), figsize=(4.6 * len(tasks), 3.6), squeeze=False)
    for ax, task in zip(axes[0], tasks):
        for lab, b in sorted(bands.get(task, {}).items()):
            if b is None:
                continue
            style = {"ls": "--", "color": "gray"} if lab == "base" else {}
            line, = ax.plot(b["steps"], b["mean"], marker="o" if len(b["steps"]) < 30 else None, ms=3,
                            label=f"{lab} (n={b['n']})", **style)
            if np.isfinite(b["lo"]).all():
                lo, hi = (np.clip(b["lo"], 0, 1), np.clip(b["hi"], 0, 1)) if metric == "success" else (b["lo"], b["hi"])
                ax.fill_between(b["steps"], lo, hi, alpha=0.2, color=line.get_color())
        ax.set_title(task)
        env_steps_axis(ax)
        ax.set_xlim(0, budget)
        ax.grid(alpha=0.3)
        if ax.has_data():
            ax.legend(fontsize=7)
    axes[0][0].set_ylabel(f"evaluation {metric} (mean, 95 % CI over seeds)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_floor(rows: list[dict[str, Any]], tasks: list[str], path: Path, metric: str) -> Path:
    """Per task: the temperature curve (c from 0 to 1) in metric vs KL action entropy, and every other method's
    final policy as a point with 95 % error bars, on the same axes. Above-and-right of the curve is better:
    more return at equal diversity."""
    plt = _plt()
    tasks = tasks or ["(no runs)"]
    fig, axes = plt.subplots(1, len(tasks), figsize=(4.8 * len(tasks), 3.8), squeeze=False)
    for ax, task in zip(axes[0], tasks):
        mine = [r for r in rows if r["task"] == task and r[metric]["mean"] is not None
                and r["action_entropy"]["mean"] is not None]
        temp = sorted((r for r in mine if r["c"] is not None), key=lambda r: r["c"])
        if temp:
            x = [r["action_entropy"]["mean"] for r in temp]
            y = [r[metric]["mean"] for r in temp]
            ax.plot(x, y, "-o", color="k", lw=1, ms=4, label="noise temperature c·ε")
            for r, xi, yi in zip(temp, x, y):
                ax.annotate(f"c={r['c']:g}", (xi, yi), fontsize=7, textcoords="offset points", xytext=(3, 3))
        for r in (r for r in mine if r["c"] is None):
            e, v = r["action_entropy"], r[metric]
            xerr = None if e["lo"] is None else [[e["mean"] - e["lo"]], [e["hi"] - e["mean"]]]
            yerr = None if v["lo"] is None else [[v["mean"] - v["lo"]], [v["hi"] - v["mean"]]]
            ax.errorbar([e["mean"]], [v["mean"]], xerr=xerr, yerr=yerr, fmt="s", ms=6, capsize=2,
                        label=r["method"])
        _clip_collapsed(ax, [r["action_entropy"]["mean"] for r in mine])
        ax.set_title(task)
        ax.set_xlabel("KL action entropy (nats)")
        ax.grid(alpha=0.3)
        if ax.has_data():
            ax.legend(fontsize=7)
    axes[0][0].set_ylabel(f"final {metric}")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_deltas(rows: list[dict[str, Any]], tasks: list[str], path: Path, metric: str) -> Path:
    """Per task: LP-DS's final metric and its AUC against δ (log axis) with 95 % error bars, and the action entropy
    on a twin axis: is the result insensitive to δ above some value, and what does a larger δ cost in diversity?"""
    plt = _plt()
    tasks = tasks or ["(no runs)"]
    fig, axes = plt.subplots(1, len(tasks), figsize=(4.8 * len(tasks), 3.8), squeeze=False)
    for ax, task in zip(axes[0], tasks):
        pts = sorted((r for r in rows if r["task"] == task and r.get("delta_ablation") and r[metric]["mean"]
                      is not None), key=lambda r: r["delta"])
        if not pts:
            continue
        d = [r["delta"] for r in pts]
        for key, lab, fmt in ((metric, f"final {metric}", "-o"), ("auc", f"{metric} AUC", "--s")):
            m = [r[key]["mean"] for r in pts]
            err = [[0 if r[key]["lo"] is None else r[key]["mean"] - r[key]["lo"] for r in pts],
                   [0 if r[key]["hi"] is None else r[key]["hi"] - r[key]["mean"] for r in pts]]
            ax.errorbar(d, m, yerr=err, fmt=fmt, ms=4, capsize=2, label=lab)
        base = next((r for r in rows if r["task"] == task and r["method"] == "base"), None)
        if base is not None and base[metric]["mean"] is not None:
            ax.axhline(base[metric]["mean"], color="gray", ls=":", label="base")
        twin = ax.twinx()
        twin.plot(d, [r["action_entropy"]["mean"] for r in pts], "-^", color="tab:green", ms=4, alpha=0.7,
                  label="KL action entropy (right)")
        twin.set_ylabel("KL action entropy (nats)", color="tab:green", fontsize=8)
        if metric == "success":
            ax.set_ylim(bottom=max(ax.get_ylim()[0], 0.0))
        ax.set_xscale("log")
        ax.set_title(f"{task}: LP-DS vs δ")
        ax.set_xlabel("trust-region δ")
        ax.grid(alpha=0.3)
        # the twin axis is drawn over `ax`, so the legend lives on it (else its line crosses the legend)
        hs, ls = ax.get_legend_handles_labels()
        ht, lt = twin.get_legend_handles_labels()
        twin.legend(hs + ht, ls + lt, fontsize=7)
    axes[0][0].set_ylabel(metric)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _clip_collapsed(ax: Any, xs: list[float], gap: float = 10.0) -> None:
    """A collapsed policy (c = 0 decodes one action: KL entropy ≈ d·log(1e-10)) sits tens of nats left of every
    other point and would squash them; such points stay drawn, the axis starts just left of the others and the
    collapsed ones are marked at its edge with their value."""
    xs = sorted(x for x in xs if x is not None)
    if len(xs) < 2:
        return
    rest = [x for x in xs if x > xs[0] + gap]
    if not rest or len(rest) == len(xs):
        return
    span = max(rest[-1] - rest[0], 1.0)
    left = rest[0] - 0.25 * span
    ax.set_xlim(left, rest[-1] + 0.1 * span)
    for x in xs[:len(xs) - len(rest)]:
        ax.annotate(f"◀ {x:.0f} nats (collapsed)", (left, ax.get_ylim()[0]), fontsize=7, xytext=(2, 4),
                    textcoords="offset points")
