"""One steering experiment on the toy task: base eval → steer → eval, with metrics.json and figures.

Shared by `lpds toy` and `bench/toy.py`, so both measure exactly the same way.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from lpds_core import jsonio
from lpds_core.agents import make_agent
from lpds_core.backbone import FrozenDecoder
from lpds_core.training import train_steering

from .evaluate import evaluate
from .multigoal import MultiGoalEnv

# toy-task hyper-parameters (the library defaults follow DSRL's larger-scale settings)
TOY_AGENT_CONFIG: dict[str, Any] = dict(hidden=(128, 128), critic_hidden=(128, 128), gamma=0.95, tau=0.02,
                                        utd=4, batch_size=256, warmup_steps=600, eta_lambda=1.0)
ALGOS = ("lpds", "dsrl-na", "dsrl-sac", "lpds-a")


def _weights_digest(model: torch.nn.Module) -> list[float]:
    return [float(p.detach().double().sum()) for p in model.parameters()]


def run_toy(algo: str, backbone: FrozenDecoder, *, delta: float = 0.05, steps: int = 3000, seed: int = 0,
            out: str | Path | None = None, eval_episodes: int = 1000, eval_every: int = 600,
            coverage_episodes: int = 100, config: dict[str, Any] | None = None, progress: bool = True,
            base_eval: dict[str, Any] | None = None, plots: bool = True) -> dict[str, Any]:
    """Steer `backbone` with `algo` for `steps` env steps; returns (and writes to out/metrics.json) the metrics."""
    if algo not in ALGOS and algo != "base":
        raise ValueError(f"unknown algo {algo!r}; choose one of {ALGOS}")
    env = MultiGoalEnv()
    cfg = dict(TOY_AGENT_CONFIG, delta=delta, **(config or {}))
    torch.manual_seed(seed)
    np.random.seed(seed)
    if base_eval is None:
        base_eval = evaluate(make_agent("base", backbone, env.observation_space, cfg, env.action_space),
                             eval_episodes, seed=10_000 + seed)
    agent = make_agent(algo, backbone, env.observation_space, cfg, env.action_space)
    before = _weights_digest(backbone)
    coverage_steps: list[int] = [0]
    coverage: list[list[float]] = [list(base_eval["mode_fractions"])]

    def on_eval(step: int, ag: Any, hist: dict) -> None:
        e = evaluate(ag, coverage_episodes, seed=20_000 + seed + step)
        coverage_steps.append(step)
        coverage.append(e["mode_fractions"])

    t0 = time.perf_counter()
    history: dict[str, list] = {}
    if algo != "base":
        history = train_steering(env, agent, steps, seed=seed, callback=on_eval, callback_every=eval_every,
                                 progress=progress, verbose=True)
    train_s = time.perf_counter() - t0
    if _weights_digest(backbone) != before:
        raise RuntimeError("the frozen backbone's weights changed during steering; this is a bug")
    final = evaluate(agent, eval_episodes, seed=10_000 + seed)
    metrics: dict[str, Any] = {
        "algo": algo, "delta": delta, "steps": steps, "seed": seed,
        "trust_region": agent.trust_region.describe() if hasattr(agent, "trust_region") else None,
        "return_base": base_eval["return"], "return_final": final["return"],
        "return_std_base": base_eval["return_std"], "return_std_final": final["return_std"],
        "success_base": base_eval["success"], "success_final": final["success"],
        "mode_fractions_base": base_eval["mode_fractions"], "mode_fractions": final["mode_fractions"],
        "modes_reached_base": base_eval["modes_reached"], "modes_reached": final["modes_reached"],
        "entropy_base": base_eval["entropy"], "entropy_final": final["entropy"],
        "entropy_note": "Kozachenko-Leonenko (k=3, Euclidean, nats) of final 2-D positions",
        "eval_episodes": eval_episodes, "train_seconds": train_s,
        "coverage_steps": coverage_steps, "coverage_fractions": coverage,
        "history": {k: history.get(k, []) for k in ("env_steps", "lambda", "delta_sq", "gap", "alpha", "q_pi",
                                                     "critic_loss", "episode_env_steps", "episode_return")},
        "config": agent.config.to_dict(),
    }
    if out is not None:
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "metrics.json").write_text(jsonio.dumps(metrics, indent=1))
        if plots:
            from .plots import plot_mode_coverage, plot_rollouts, plot_training
            plot_rollouts(env, {f"base (return {base_eval['return']:.1f})": base_eval["paths"],
                                f"{algo} δ={delta:g} (return {final['return']:.1f})": final["paths"]},
                          out / "rollouts.png")
            plot_mode_coverage(coverage_steps, coverage, base_eval["mode_fractions"], out / "mode_coverage.png",
                               title=f"{algo}, δ={delta:g}, seed {seed}")
            if history:
                plot_training(history, out / "training.png", delta if algo.startswith("lpds") else None)
    metrics["_paths"] = final["paths"]
    return metrics
