"""The Avoiding figure (matplotlib, Agg): evaluation trajectories over the obstacle field, one panel per policy,
successes and failures in different colours (the paper's and D3IL's trajectory plots)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from .geometry import EE_RADIUS, FINISH_Y, OBSTACLES, START_XY, mode_entropy

SUCCESS_COLOUR, FAILURE_COLOUR = "tab:blue", "tab:red"


def _plt() -> Any:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def draw_field(ax: Any) -> None:
    """Cylinders (grey, with the rod's radius as a dashed margin), finish line and start point on `ax`."""
    plt = _plt()
    for x, y, r in OBSTACLES:
        ax.add_patch(plt.Circle((x, y), r, color="0.4", zorder=2))
        ax.add_patch(plt.Circle((x, y), r + EE_RADIUS, fill=False, ls="--", lw=0.6, color="0.4", zorder=2))
    ax.axhline(FINISH_Y, color="tab:green", lw=1.2, ls="-", zorder=1)
    ax.scatter([START_XY[0]], [START_XY[1]], marker="o", s=30, color="k", zorder=4)
    ax.set_xlim(0.15, 0.85)
    ax.set_ylim(-0.32, 0.42)
    ax.set_aspect("equal")
    ax.set_xlabel("x (m)")


def plot_trajectories(panels: dict[str, list[dict[str, Any]]], path: str | Path, max_paths: int = 100) -> Path:
    """One panel per policy: `panels[title]` is a list of episodes {"path" (T, 2), "success", "mode"} (as
    `evaluate_avoiding` returns them); successes in blue, failures (collision or time-out) in red; the panel's
    title adds the success rate and the normalised mode entropy."""
    plt = _plt()
    fig, axes = plt.subplots(1, max(len(panels), 1), figsize=(4.2 * max(len(panels), 1), 4.6), squeeze=False)
    for ax, (title, episodes) in zip(axes[0], panels.items()):
        draw_field(ax)
        for e in episodes[:max_paths]:
            p = np.asarray(e["path"])
            ax.plot(p[:, 0], p[:, 1], lw=0.8, alpha=0.6, zorder=3,
                    color=SUCCESS_COLOUR if e["success"] else FAILURE_COLOUR)
        ok = [e["mode"] for e in episodes if e["success"]]
        rate = len(ok) / max(len(episodes), 1)
        ax.set_title(f"{title}\nsuccess {rate:.2f}, mode entropy {mode_entropy(ok):.2f}", fontsize=9)
    axes[0][0].set_ylabel("y (m)")
    axes[0][0].plot([], [], color=SUCCESS_COLOUR, label="success")
    axes[0][0].plot([], [], color=FAILURE_COLOUR, label="failure")
    axes[0][0].legend(fontsize=7, loc="lower left")
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def save_episodes(episodes: list[dict[str, Any]], path: str | Path) -> Path:
    """Evaluation episodes (paths of different lengths) as one .npz: `path_i`, `success`, `collided`, `mode`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp.npz")
    np.savez_compressed(tmp, success=np.array([e["success"] for e in episodes], bool),
                        collided=np.array([e["collided"] for e in episodes], bool),
                        mode=np.array([e["mode"] for e in episodes], np.int64),
                        **{f"path_{i}": np.asarray(e["path"], np.float32) for i, e in enumerate(episodes)})
    tmp.replace(path)
    return path


def load_episodes(path: str | Path) -> list[dict[str, Any]]:
    with np.load(path) as z:
        return [{"path": z[f"path_{i}"], "success": bool(s), "collided": bool(c), "mode": int(m)}
                for i, (s, c, m) in enumerate(zip(z["success"], z["collided"], z["mode"]))]


def _temperature(f: Path) -> float:
    """c of a temperature run's trajectories_c<c>.npz (−1 for a run's single trajectories.npz): panel order."""
    return float(f.stem[len("trajectories_c"):]) if f.stem.startswith("trajectories_c") else -1.0


def bench_trajectories(jobs: list[dict[str, Any]], path: str | Path) -> Path | None:
    """The bench's trajectory figure: one panel per task and method (the temperature run: one per c), drawn from
    the final evaluation of the lowest finished seed of each; None when no run has kept its trajectories."""
    panels: dict[str, list[dict[str, Any]]] = {}
    seen: set[str] = set()
    for job in sorted(jobs, key=lambda j: (j["config"]["task"], j["config"]["label"], j["config"]["seed"])):
        root, c = Path(job["root"]), job["config"]
        if not (root / "done.json").is_file():
            continue
        for f in sorted(root.glob("trajectories*.npz"), key=_temperature):
            name = f"{c['label']} {f.stem[len('trajectories_'):].replace('c', 'c=', 1)}".strip()
            if len({j["config"]["task"] for j in jobs}) > 1:
                name = f"{c['task']}: {name}"
            if name not in seen:
                seen.add(name)
                panels[f"{name} (seed {c['seed']})"] = load_episodes(f)
    return plot_trajectories(panels, path) if panels else None


def plot_diversity(rows: list[dict[str, Any]], path: str | Path) -> Path | None:
    """The paper's Avoiding figure: LP-DS's final success and mode entropy against δ (one point per δ of the
    ablation, 95 % error bars over seeds), with the base and the other methods (DSRL, DPPO, ...) as horizontal
    lines of the same two quantities; both lie in [0, 1], so they share one axis. None without LP-DS rows."""
    tasks = list(dict.fromkeys(r["task"] for r in rows))
    lp = {t: sorted((r for r in rows if r["task"] == t and r["method"].split(" ")[0] == "lpds"
                     and r.get("delta") is not None and r["success"]["mean"] is not None), key=lambda r: r["delta"])
          for t in tasks}
    tasks = [t for t in tasks if lp[t]]
    if not tasks:
        return None
    plt = _plt()
    fig, axes = plt.subplots(1, len(tasks), figsize=(5.2 * len(tasks), 3.9), squeeze=False)
    for ax, task in zip(axes[0], tasks):
        d = [r["delta"] for r in lp[task]]
        for key, lab, fmt, colour in (("success", "LP-DS success", "-o", "tab:blue"),
                                      ("mode_entropy", "LP-DS mode entropy", "--s", "tab:orange")):
            m = [r[key]["mean"] for r in lp[task]]
            err = [[0 if r[key]["lo"] is None else r[key]["mean"] - r[key]["lo"] for r in lp[task]],
                   [0 if r[key]["hi"] is None else r[key]["hi"] - r[key]["mean"] for r in lp[task]]]
            ax.errorbar(d, m, yerr=err, fmt=fmt, ms=4, capsize=2, color=colour, label=lab)
        others = [r for r in rows if r["task"] == task and r["c"] is None and r["method"].split(" ")[0] != "lpds"
                  and r["success"]["mean"] is not None]
        for i, r in enumerate(others):
            colour = "gray" if r["method"] == "base" else f"C{i + 2}"
            ax.axhline(r["success"]["mean"], color=colour, ls="-", lw=1, alpha=0.8, label=f"{r['method']} success")
            if r["mode_entropy"]["mean"] is not None:
                ax.axhline(r["mode_entropy"]["mean"], color=colour, ls=":", lw=1.2,
                           label=f"{r['method']} mode entropy")
        if len(set(d)) > 1:
            ax.set_xscale("log")
        ax.set_ylim(-0.02, 1.02)
        ax.set_title(f"{task}: success and diversity vs δ")
        ax.set_xlabel("trust-region δ")
        ax.set_ylabel("final success / mode entropy (log 24)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=6, loc="best")
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
