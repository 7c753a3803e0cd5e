"""Learning-curve PNGs from a run's scalars.jsonl (so plots never depend on TensorBoard's file format)."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

from lpds_sim.runs import read_scalars


def env_steps_axis(ax) -> None:
    """Label an x axis of env steps with 50k / 1.2M ticks: full integers overlap from 100k on."""
    from matplotlib.ticker import EngFormatter

    ax.set_xlabel("env steps")
    ax.xaxis.set_major_formatter(EngFormatter(sep=""))


def _series(rows: list[dict], key: str) -> tuple[list[float], list[float]]:
    pts = [(r["step"], r[key]) for r in rows if key in r]
    return [p[0] for p in pts], [p[1] for p in pts]


def plot_steer_curves(run: str | os.PathLike, out: str | os.PathLike | None = None) -> list[Path]:
    """success & return vs env steps (grid evaluation), λ and ‖Δ‖² vs env steps (training)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    run = Path(run)
    out = Path(out) if out else run / "plots"
    out.mkdir(parents=True, exist_ok=True)
    ev, tr = read_scalars(run, "eval"), read_scalars(run, "train")
    written = []

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    for ax, key, label in ((axes[0], "success", "grid success rate"), (axes[1], "return", "grid mean return")):
        x, y = _series(ev, key)
        ax.plot(x, y, marker="o")
        env_steps_axis(ax)
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
    band = [(r["step"], r["success_lo"], r["success_hi"]) for r in ev if "success_lo" in r]
    if band:  # runs logged before the interval existed have none
        trials = sorted({int(r["trials"]) for r in ev if "trials" in r})
        axes[0].fill_between([b[0] for b in band], [b[1] for b in band], [b[2] for b in band], alpha=0.25,
                             label=f"95 % binomial interval ({'/'.join(map(str, trials))} trials)")
        axes[0].legend(loc="lower right", fontsize=8)
    axes[0].set_ylim(-0.02, 1.02)
    fig.suptitle(f"{run.name}: evaluation")
    fig.tight_layout()
    written.append(out / "success_return.png")
    fig.savefig(written[-1], dpi=110)
    plt.close(fig)

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    for ax, key, label in ((axes[0], "lambda", "λ (dual variable)"), (axes[1], "delta_sq", "‖Δ‖² (batch mean)")):
        x, y = _series(tr, key)
        ax.plot(x, y, lw=1)
        env_steps_axis(ax)
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
    x, _ = _series(tr, "delta_sq")
    budgets = [r["delta"] for r in tr if "delta" in r]
    if budgets and x:
        axes[1].axhline(budgets[-1], color="k", ls="--", lw=0.8, label="δ")
        axes[1].legend()
    fig.suptitle(f"{run.name}: trust region")
    fig.tight_layout()
    written.append(out / "lambda_delta.png")
    fig.savefig(written[-1], dpi=110)
    plt.close(fig)
    return written


def plot_base_curve(run: str | os.PathLike) -> Path:
    """BC loss vs gradient steps."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    run = Path(run)
    x, y = _series(read_scalars(run, "train"), "loss")
    fig, ax = plt.subplots(figsize=(5, 3.4))
    ax.plot(x, y, lw=1)
    ax.set_yscale("log")
    ax.set_xlabel("gradient steps")
    ax.set_ylabel("BC loss")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    path = run / "plots" / "bc_loss.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_comparison(runs: Sequence[tuple[str, str | os.PathLike]], out: str | os.PathLike,
                    key: str = "success") -> Path:
    """Several runs' evaluation curves on one axis (benchmark figure)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.8))
    for label, run in runs:
        x, y = _series(read_scalars(run, "eval"), key)
        ax.plot(x, y, marker="o", label=label)
    env_steps_axis(ax)
    ax.set_ylabel(key)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out
