"""Grid protocol bookkeeping without ROS: the trial list, per-cell tables, and JSON/CSV/heatmap output."""
from __future__ import annotations

import csv
import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class Trial:
    index: int
    row: int
    col: int
    k: int  # repetition inside the cell
    seed: int


@dataclass
class TrialResult:
    trial: Trial
    success: bool
    collision: bool
    steps: int
    duration_s: float
    note: str = ""


def grid_trials(rows: int, cols: int, trials: int, seed: int = 0) -> list[Trial]:
    """Cell-major order; trial seed = seed + index (the jitter inside the cell comes from the env's reset seed)."""
    if rows < 1 or cols < 1 or trials < 1:
        raise ValueError(f"grid needs rows, cols, trials >= 1, got {rows}x{cols}x{trials}")
    out = []
    for r in range(rows):
        for c in range(cols):
            for k in range(trials):
                i = len(out)
                out.append(Trial(i, r, c, k, seed + i))
    return out


def success_table(results: list[TrialResult], rows: int, cols: int) -> np.ndarray:
    """(rows, cols) success counts."""
    t = np.zeros((rows, cols), dtype=int)
    for res in results:
        t[res.trial.row, res.trial.col] += int(res.success)
    return t


def write_results(out_dir: str | Path, results: list[TrialResult], rows: int, cols: int, trials: int,
                  meta: dict | None = None) -> dict:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    table = success_table(results, rows, cols)
    summary = {"n_trials": len(results), "n_success": int(sum(r.success for r in results)),
               "success_rate": float(np.mean([r.success for r in results])) if results else 0.0,
               "grid": [rows, cols, trials], "per_cell_success": table.tolist(), **(meta or {}),
               "trials": [{**asdict(r.trial), "success": r.success, "collision": r.collision, "steps": r.steps,
                           "duration_s": round(r.duration_s, 3), "note": r.note} for r in results]}
    (out / "grid_results.json").write_text(json.dumps(summary, indent=2))
    with open(out / "grid_results.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["index", "row", "col", "k", "seed", "success", "collision", "steps", "duration_s", "note"])
        for r in results:
            t = r.trial
            w.writerow([t.index, t.row, t.col, t.k, t.seed, int(r.success), int(r.collision), r.steps,
                        f"{r.duration_s:.3f}", r.note])
    _heatmap(out / "grid_heatmap.png", table, trials)
    return summary


def _heatmap(path: Path, table: np.ndarray, trials: int) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(1.2 * table.shape[1] + 1.5, 1.2 * table.shape[0] + 1))
    im = ax.imshow(table / max(trials, 1), vmin=0, vmax=1, cmap="viridis")
    for (r, c), n in np.ndenumerate(table):
        ax.text(c, r, f"{n}/{trials}", ha="center", va="center", color="w" if n < 0.6 * trials else "k")
    ax.set_xlabel("cell column")
    ax.set_ylabel("cell row")
    ax.set_title(f"success {int(table.sum())}/{table.size * trials}")
    fig.colorbar(im, ax=ax, label="success rate")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
