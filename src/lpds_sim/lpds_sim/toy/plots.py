"""Figures for the toy task (matplotlib, Agg): rollouts over the reward map, mode coverage, dual variables."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from lpds_sim.curves import env_steps_axis

from .multigoal import MultiGoalEnv, reward_map


def _plt() -> Any:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def plot_rollouts(env: MultiGoalEnv, panels: dict[str, np.ndarray], path: Path, max_paths: int = 100) -> Path:
    """One panel per policy: its paths (N, T+1, 2) over the reward map, end points marked."""
    plt = _plt()
    lim = env.goal_distance * 1.6
    xs = np.linspace(-lim, lim, 200)
    grid = np.stack(np.meshgrid(xs, xs), -1)
    rmap = reward_map(grid, env.goals, env.reward_sigma)
    fig, axes = plt.subplots(1, len(panels), figsize=(4.6 * len(panels), 4.4), squeeze=False)
    for ax, (title, paths) in zip(axes[0], panels.items()):
        ax.contourf(xs, xs, rmap, levels=20, cmap="Greys")
        for p in paths[:max_paths]:
            ax.plot(p[:, 0], p[:, 1], lw=0.7, alpha=0.5, color="tab:blue")
        ax.scatter(paths[:, -1, 0], paths[:, -1, 1], s=6, color="tab:red", zorder=3)
        ax.scatter(env.goals[:, 0], env.goals[:, 1], marker="*", s=150, color="gold", edgecolor="k", zorder=4)
        ax.set_title(title)
        ax.set_xlim(-lim, lim)
        ax.set_ylim(-lim, lim)
        ax.set_aspect("equal")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_mode_coverage(steps: list[int], fractions: list[list[float]], base_fractions: list[float],
                       path: Path, title: str = "") -> Path:
    """Four panels, one per goal: fraction of evaluation rollouts ending at that goal over training."""
    plt = _plt()
    f = np.asarray(fractions, dtype=float).reshape(len(steps), -1)
    names = ["(+g, 0)", "(0, +g)", "(-g, 0)", "(0, -g)"]
    fig, axes = plt.subplots(1, 4, figsize=(14, 3.2), sharey=True)
    for g, ax in enumerate(axes):
        ax.plot(steps, f[:, g], marker="o", label="steered")
        ax.axhline(base_fractions[g], color="gray", ls="--", label="base")
        ax.axhline(0.10, color="tab:red", ls=":", lw=0.8, label="10 %")
        ax.set_title(f"goal {g} {names[g]}")
        env_steps_axis(ax)
        ax.set_ylim(0, 1)
    axes[0].set_ylabel("fraction of rollouts")
    axes[0].legend(fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_training(history: dict[str, list], path: Path, delta: float | None = None) -> Path:
    """λ, ‖Δ‖² (with δ), SAC's α or DPPO's approximate KL, and episode returns over env steps."""
    plt = _plt()
    keys = [k for k in ("lambda", "delta_sq", "alpha", "noise_sq", "approx_kl") if history.get(k)]
    fig, axes = plt.subplots(1, len(keys) + 1, figsize=(4.2 * (len(keys) + 1), 3.2), squeeze=False)
    for ax, k in zip(axes[0], keys):
        ax.plot(history["env_steps"][: len(history[k])], history[k])
        if k == "delta_sq" and delta is not None:
            ax.axhline(delta, color="tab:red", ls="--", label="δ")
            ax.legend()
        ax.set_title(k)
        env_steps_axis(ax)
    ax = axes[0][-1]
    if history.get("episode_return"):
        ax.plot(history["episode_env_steps"], history["episode_return"], ".", ms=2, alpha=0.5)
    ax.set_title("training episode return")
    env_steps_axis(ax)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
