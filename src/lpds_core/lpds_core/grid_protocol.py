"""The grid evaluation protocol, shared by the simulator and the robot-side grid evaluator (numpy only).

`GridProtocol(rows=2, cols=4, trials=5, seed)` splits the task's reachable object-start region into rows x cols
cells (rows along y away from the robot, cols along x) and runs `trials` episodes per cell. Each trial has its own
seed, derived from `seed`, which fixes the jitter of the start position inside its cell, so two runs with the same
seed see exactly the same 40 start states. `run(env, policy)` evaluates any policy — a callable obs -> action, with
an optional `reset()` called after every `env.reset()` — and returns a `GridResult` that writes per-trial/per-cell
JSON, CSV and a heatmap PNG.

A grid can be partial (a trial limit, or an evaluation interrupted with Ctrl-C): its files say so ("partial": true,
"planned" trials), and a cell that never ran is "not run" (null rates, a grey cell), never a 0/5 failure.
"""
from __future__ import annotations

import csv
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from .chunking import render_skipper
from .jsonio import dumps


@dataclass(frozen=True)
class Trial:
    index: int
    cell: tuple[int, int]
    seed: int


@dataclass
class TrialResult:
    index: int
    cell: tuple[int, int]
    seed: int
    success: bool
    ret: float
    length: int
    collisions: int
    start_xy: list[float]


@dataclass
class GridResult:
    rows: int
    cols: int
    trials_per_cell: int
    seed: int
    trials: list[TrialResult]
    meta: dict[str, Any] = field(default_factory=dict)
    stopped: str | None = None  # why a partial grid stopped early ("interrupted", "trial limit"); None: complete

    @property
    def planned(self) -> int:
        return self.rows * self.cols * self.trials_per_cell

    @property
    def partial(self) -> bool:
        return len(self.trials) < self.planned

    @property
    def trials_table(self) -> np.ndarray:
        """(rows, cols) trials that ran per cell (0: the cell was not run)."""
        t = np.zeros((self.rows, self.cols), dtype=int)
        for r in self.trials:
            t[r.cell] += 1
        return t

    @property
    def success_table(self) -> np.ndarray:
        """(rows, cols) successes per cell."""
        t = np.zeros((self.rows, self.cols), dtype=int)
        for r in self.trials:
            t[r.cell] += int(r.success)
        return t

    @property
    def successes(self) -> int:
        return int(sum(r.success for r in self.trials))

    @property
    def success_rate(self) -> float:
        return self.successes / max(len(self.trials), 1)

    def per_cell(self) -> list[dict[str, Any]]:
        out = []
        for row in range(self.rows):
            for col in range(self.cols):
                rs = [r for r in self.trials if r.cell == (row, col)]
                out.append({"row": row, "col": col, "trials": len(rs), "successes": sum(r.success for r in rs),
                            "success_rate": sum(r.success for r in rs) / len(rs) if rs else None,
                            "mean_return": float(np.mean([r.ret for r in rs])) if rs else None,
                            "mean_length": float(np.mean([r.length for r in rs])) if rs else None})
        return out

    def summary(self) -> str:
        lines = [f"grid {self.rows}x{self.cols}x{self.trials_per_cell}: {self.successes}/{len(self.trials)} "
                 f"= {100 * self.success_rate:.1f}%  (rows along y away from the robot, cols along x)"]
        if self.partial:
            lines[0] += (f"  PARTIAL: {len(self.trials)} of {self.planned} trials ran"
                         f"{f' ({self.stopped})' if self.stopped else ''}")
        for row in range(self.rows):
            lines.append("  row %d: " % row + " ".join(self._cell_label(row, c) for c in range(self.cols)))
        return "\n".join(lines)

    def _cell_label(self, row: int, col: int) -> str:
        """'3/5'; a cell cut short '2/3 (of 5)'; a cell that never ran 'not run'."""
        n = int(self.trials_table[row, col])
        if n == 0:
            return "not run"
        label = f"{self.success_table[row, col]}/{n}"
        return label if n == self.trials_per_cell else f"{label} (of {self.trials_per_cell})"

    def write(self, out_dir: str | os.PathLike, heatmap: bool = True) -> dict[str, Path]:
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        paths = {"json": out / "grid_results.json", "cells_csv": out / "grid_cells.csv",
                 "trials_csv": out / "grid_trials.csv"}
        doc = {"rows": self.rows, "cols": self.cols, "trials_per_cell": self.trials_per_cell, "seed": self.seed,
               "successes": self.successes, "total": len(self.trials), "planned": self.planned,
               "partial": self.partial, "stopped": self.stopped,
               "success_rate": self.success_rate if self.trials else None,
               "success_table": self.success_table.tolist(), "trials_table": self.trials_table.tolist(),
               "cells": self.per_cell(), "trials": [asdict(r) for r in self.trials], "meta": self.meta}
        paths["json"].write_text(dumps(doc, indent=2))
        with open(paths["cells_csv"], "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=list(self.per_cell()[0]))
            w.writeheader()
            w.writerows(self.per_cell())
        with open(paths["trials_csv"], "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["index", "row", "col", "seed", "success", "return", "length", "collisions", "start_x",
                        "start_y"])
            for r in self.trials:
                w.writerow([r.index, r.cell[0], r.cell[1], r.seed, int(r.success), f"{r.ret:.4f}", r.length,
                            r.collisions, f"{r.start_xy[0]:.4f}", f"{r.start_xy[1]:.4f}"])
        if heatmap:
            paths["heatmap"] = self.plot(out / "grid_heatmap.png")
        return paths

    def plot(self, path: str | os.PathLike) -> Path:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        n = self.trials_table
        rate = np.ma.masked_where(n == 0, self.success_table / np.maximum(n, 1))  # never-run cells: masked (grey)
        cmap = matplotlib.colormaps["RdYlGn"].with_extremes(bad="lightgrey")
        fig, ax = plt.subplots(figsize=(1.4 * self.cols + 1.5, 1.4 * self.rows + 1.2))
        im = ax.imshow(rate, vmin=0, vmax=1, cmap=cmap, origin="lower")
        for row in range(self.rows):
            for col in range(self.cols):
                ax.text(col, row, self._cell_label(row, col).replace(" (", "\n("), ha="center", va="center",
                        fontsize=10)
        ax.set_xticks(range(self.cols))
        ax.set_yticks(range(self.rows))
        ax.set_xlabel("col (x)")
        ax.set_ylabel("row (y, away from robot)")
        title = self.meta.get("title", "grid protocol")
        partial = f" (partial: {len(self.trials)} of {self.planned} run)" if self.partial else ""
        ax.set_title(f"{title}: {self.successes}/{len(self.trials)}{partial}")
        fig.colorbar(im, ax=ax, label="success rate")
        fig.tight_layout()
        fig.savefig(path, dpi=100)
        plt.close(fig)
        return Path(path)


def run_episode(env: Any, policy: Callable, seed: int | None = None, options: dict | None = None,
                record: bool = False) -> dict:
    """Roll out one episode; returns success, return, length and (if `record`) obs/actions/rewards/dones.

    A policy with a false `reads_next_obs` (a chunk executor in the middle of its chunk) lets the env skip
    rendering the next observation (`lpds_core.chunking.render_skipper`), unless every observation is recorded."""
    obs, info = env.reset(seed=seed, options=options)
    if hasattr(policy, "reset"):
        policy.reset()
    skip = None if record else render_skipper(env)
    obs_l, act_l, rew_l, done_l = [], [], [], []
    ret, success, steps, collisions = 0.0, False, 0, 0
    while True:
        a = np.asarray(policy(obs), dtype=np.float32)
        if skip is not None:
            skip(not getattr(policy, "reads_next_obs", True))
        try:
            nobs, r, term, trunc, info = env.step(a)
        finally:
            if skip is not None:
                skip(False)
        if record:
            obs_l.append(obs)
            act_l.append(a)
            rew_l.append(r)
            done_l.append(term or trunc)
        ret += r
        steps += 1
        collisions += int(info["collision"])
        success = success or info["success"]
        obs = nobs
        if term or trunc:
            break
    out = {"success": bool(success), "return": ret, "length": steps, "collisions": collisions}
    if record:
        out.update(obs=obs_l, actions=np.array(act_l), rewards=np.array(rew_l, dtype=np.float32),
                   dones=np.array(done_l, dtype=bool))
    return out


class GridProtocol:
    def __init__(self, rows: int = 2, cols: int = 4, trials: int = 5, seed: int = 0) -> None:
        if min(rows, cols, trials) < 1:
            raise ValueError(f"rows, cols and trials must be >= 1, got {rows}, {cols}, {trials}")
        self.rows, self.cols, self.trials_per_cell, self.seed = rows, cols, trials, seed

    @property
    def n_trials(self) -> int:
        return self.rows * self.cols * self.trials_per_cell

    def trials(self) -> list[Trial]:
        """Trials in cell-major order; per-trial seeds from a SeedSequence of `seed` (stable across runs)."""
        seeds = np.random.SeedSequence(self.seed).generate_state(self.n_trials, dtype=np.uint32)
        out, i = [], 0
        for row in range(self.rows):
            for col in range(self.cols):
                for _ in range(self.trials_per_cell):
                    out.append(Trial(i, (row, col), int(seeds[i])))
                    i += 1
        return out

    def reset_options(self, trial: Trial) -> dict[str, Any]:
        return {"cell": trial.cell, "grid": (self.rows, self.cols)}

    def run(self, env, policy: Callable, progress: bool = True, meta: dict[str, Any] | None = None,
            max_trials: int | None = None, keep_on_interrupt: bool = False) -> GridResult:
        """Run the grid (cell-major). `max_trials`: stop after that many (a partial grid); `keep_on_interrupt`:
        Ctrl-C returns the trials done so far as a partial grid (stopped="interrupted") instead of raising."""
        from tqdm import tqdm

        results: list[TrialResult] = []
        stopped = None
        plan = self.trials()
        if max_trials is not None and max_trials < len(plan):
            plan, stopped = plan[:max(0, int(max_trials))], "trial limit"
        bar = tqdm(plan, desc="grid", unit="trial", disable=not progress)
        ok = 0
        try:
            for tr in bar:
                self._run_trial(env, policy, tr, results)
                ok += int(results[-1].success)
                bar.set_postfix(success=f"{ok}/{len(results)}")
        except KeyboardInterrupt:
            if not keep_on_interrupt:
                raise
            stopped = "interrupted"
        finally:
            bar.close()
        return GridResult(self.rows, self.cols, self.trials_per_cell, self.seed, results, dict(meta or {}),
                          stopped=stopped)

    def _run_trial(self, env, policy: Callable, tr: Trial, results: list[TrialResult]) -> None:
        r = run_episode(env, policy, seed=tr.seed, options=self.reset_options(tr))
        start = getattr(env.unwrapped, "start_xy", None)
        results.append(TrialResult(tr.index, tr.cell, tr.seed, r["success"], float(r["return"]), r["length"],
                                   r["collisions"], [float(v) for v in (start if start is not None else (0, 0))]))
