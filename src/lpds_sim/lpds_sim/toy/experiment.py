"""One steering experiment on the toy task: base eval → steer → eval, with metrics.json and figures.

Shared by `lpds toy` and `bench/toy.py`, so both measure exactly the same way.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from lpds_core import jsonio
from lpds_core.agents import AgentConfig, make_agent
from lpds_core.backbone import FrozenDecoder
from lpds_core.config import build, nested, setting, to_dict
from lpds_core.errors import ConfigError
from lpds_core.training import LoopConfig, train_steering

from .evaluate import evaluate
from .multigoal import MultiGoalEnv

ALGOS = ("lpds", "dsrl-na", "dsrl-sac", "lpds-a", "dppo")
BASE_KIND = {"dppo": "diffusion"}  # the base each algorithm steers (default: flow); DPPO needs a denoising chain


def base_kind(algo: str) -> str:
    """"flow" or "diffusion": the kind of toy base `algo` runs on."""
    return BASE_KIND.get(algo, "flow")


@dataclass
class ToyConfig:
    """`lpds toy`: one steering run on the 2-D four-goal task (the toy's choices override a few library defaults:
    the library's follow DSRL's larger-scale settings)."""

    algo: str = setting("lpds", "steering algorithm", choices=ALGOS + ("base",))
    out: str = setting("runs/toy", "output folder for metrics.json and PNGs")
    trials: int = setting(1000, "evaluation episodes of the base and of the final policy", min=1)
    bc_steps: int | None = setting(None, "behaviour-cloning steps of the toy base (none: the cached default, 6000)",
                                   min=1)
    cache_dir: str | None = setting(None, "where the toy base policy is cached (none: ~/.cache/lpds)")
    retrain_base: bool = setting(False, "ignore the cached base policy and train it again")
    # dppo on the toy: 1 env, 10 chunks per episode, so a rollout of 50 chunks (5 episodes) and minibatches of 250
    # (chunk, denoising step) pairs instead of DPPO's 40 envs × 500 chunks and 5000
    agent: AgentConfig = nested(AgentConfig, hidden=(128, 128), critic_hidden=(128, 128), gamma=0.95, tau=0.02,
                                rollout_steps=50, ppo_batch_size=250)
    train: LoopConfig = nested(LoopConfig, env_steps=3000, warmup_steps=600, utd=4, batch_size=256,
                               eval_every=600, eval_trials=100, n_envs=1)

    def check(self) -> "ToyConfig":
        if self.train.n_envs != 1:
            raise ConfigError(f"n_envs={self.train.n_envs}: the toy task runs one env; use --n-envs 1")
        return self


def _weights_digest(model: torch.nn.Module) -> list[float]:
    return [float(p.detach().double().sum()) for p in model.parameters()]


def run_toy(algo: str, backbone: FrozenDecoder, *, delta: float | None = None, steps: int | None = None,
            seed: int | None = None, out: str | Path | None = None, eval_episodes: int | None = None,
            eval_every: int | None = None, coverage_episodes: int | None = None, config: dict[str, Any] | None = None,
            progress: bool = True, base_eval: dict[str, Any] | None = None, plots: bool = True) -> dict[str, Any]:
    """`toy_experiment` with a few settings by keyword (bench/toy.py); `config` holds any other ToyConfig keys."""
    given = {"algo": algo, "delta": delta, "env_steps": steps, "seed": seed, "trials": eval_episodes,
             "eval_every": eval_every, "eval_trials": coverage_episodes}
    cfg = build(ToyConfig, {**(config or {}), **{k: v for k, v in given.items() if v is not None}}, "run_toy")
    return toy_experiment(cfg, backbone, out=out, progress=progress, base_eval=base_eval, plots=plots)


def toy_experiment(cfg: ToyConfig, backbone: FrozenDecoder, *, out: str | Path | None = None,
                   progress: bool = True, base_eval: dict[str, Any] | None = None,
                   plots: bool = True) -> dict[str, Any]:
    """Steer `backbone` with `cfg.algo` for `cfg.train.env_steps` env steps; returns (and writes to
    out/metrics.json) the metrics."""
    algo, delta, steps, seed = cfg.algo, cfg.agent.delta, cfg.train.env_steps, cfg.train.seed
    eval_episodes, loop = cfg.trials, cfg.train
    env = MultiGoalEnv()
    torch.manual_seed(seed)
    np.random.seed(seed)
    if base_eval is None:
        base_eval = evaluate(make_agent("base", backbone, env.observation_space, cfg.agent, env.action_space),
                             eval_episodes, seed=10_000 + seed)
    agent = make_agent(algo, backbone, env.observation_space, cfg.agent, env.action_space)
    before = _weights_digest(backbone)
    # an agent that acts with its own sampler from the start (dppo: the stochastic DDPM chain with its exploration
    # floor) is not the base's decode: its return before training is reported beside the base's
    start_eval = evaluate(agent, eval_episodes, seed=10_000 + seed) if agent.on_policy else None
    coverage_steps: list[int] = [0]
    coverage: list[list[float]] = [list(base_eval["mode_fractions"])]

    def on_eval(step: int, ag: Any, hist: dict) -> None:
        e = evaluate(ag, loop.eval_trials, seed=20_000 + seed + step)
        coverage_steps.append(step)
        coverage.append(e["mode_fractions"])

    t0 = time.perf_counter()
    history: dict[str, list] = {}
    if algo != "base":
        history = train_steering(env, agent, steps, seed=seed, callback=on_eval, callback_every=loop.eval_every,
                                 warmup_steps=loop.warmup_steps, utd=loop.utd, batch_size=loop.batch_size,
                                 buffer_capacity=loop.buffer_capacity, progress=progress, verbose=True)
    train_s = time.perf_counter() - t0
    if _weights_digest(backbone) != before:
        raise RuntimeError("the frozen backbone's weights changed during steering; this is a bug")
    final = evaluate(agent, eval_episodes, seed=10_000 + seed)
    metrics: dict[str, Any] = {
        "algo": algo, "delta": delta, "steps": steps, "seed": seed,
        "trust_region": agent.trust_region.describe() if hasattr(agent, "trust_region") else None,
        "return_base": base_eval["return"], "return_final": final["return"],
        "return_start": None if start_eval is None else start_eval["return"],
        "return_std_base": base_eval["return_std"], "return_std_final": final["return_std"],
        "success_base": base_eval["success"], "success_final": final["success"],
        "mode_fractions_base": base_eval["mode_fractions"], "mode_fractions": final["mode_fractions"],
        "modes_reached_base": base_eval["modes_reached"], "modes_reached": final["modes_reached"],
        "entropy_base": base_eval["entropy"], "entropy_final": final["entropy"],
        "entropy_note": "Kozachenko-Leonenko (k=3, Euclidean, nats) of final 2-D positions",
        "eval_episodes": eval_episodes, "train_seconds": train_s,
        "coverage_steps": coverage_steps, "coverage_fractions": coverage,
        "history": {k: history.get(k, []) for k in ("env_steps", "lambda", "delta_sq", "gap", "alpha", "q_pi",
                                                     "critic_loss", "pg_loss", "v_loss", "approx_kl", "clipfrac",
                                                     "episode_env_steps", "episode_return")},
        "config": agent.config.to_dict(), "loop": to_dict(loop),
    }
    if out is not None:
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "metrics.json").write_text(jsonio.dumps(metrics, indent=1))
        if plots:
            from .plots import plot_mode_coverage, plot_rollouts, plot_training
            label = f"{algo} δ={delta:g}" if algo.startswith("lpds") else algo
            base_label = f"{base_kind(algo)} base"
            plot_rollouts(env, {f"{base_label} (return {base_eval['return']:.1f})": base_eval["paths"],
                                f"{label} (return {final['return']:.1f})": final["paths"]},
                          out / "rollouts.png")
            plot_mode_coverage(coverage_steps, coverage, base_eval["mode_fractions"], out / "mode_coverage.png",
                               title=f"{label}, seed {seed}")
            if history:
                plot_training(history, out / "training.png", delta if algo.startswith("lpds") else None)
    metrics["_paths"] = final["paths"]
    return metrics
