"""Cost of one gradient update of every steering agent against a minimal SAC update of the same network sizes.

Side by side in one process, round-robin (every variant timed once per round, the per-update median of the
rounds reported), on the shipped Gym base and the gym suite's agent preset, so the ratios hold whatever else the
machine is doing. The minimal SAC is the textbook update (CleanRL's shape) on action chunks with the same actor
(2×256) and twin LayerNorm critics (3×256) as the agents: what the update would cost without a generative
policy in the loop. DPPO is on-policy: its row is one `update_on_policy` over a rollout of `--dppo-chunks` chunks,
compared per env step with the SAC at one update per chunk (the off-policy agents' UTD in the gym suite).

    python bench/update_cost.py --task hopper            # all variants, writes a markdown table to stdout
    python bench/update_cost.py --variants sac,lpds,lpds-fp32 --rounds 3
"""
from __future__ import annotations

import argparse
import statistics
import time
from typing import Any, Callable

import gymnasium as gym
import numpy as np
import torch

from lpds_core.agents import make_agent
from lpds_core.agents.base import cpu_bf16_matmul
from lpds_core.agents.sac_common import EntropyTemperature, TanhNoiseActor
from lpds_core.checkpoint import load_backbone
from lpds_core.critics import TwinQ, td_target
from lpds_core.rollout import Rollout

# name → (algorithm, agent-config overrides, what it is)
VARIANTS: dict[str, tuple[str, dict[str, Any], str]] = {
    "lpds-fp32": ("lpds", {"decoder_precision": "float32", "shared_decode": False},
                  "LP-DS as before: float32 decoder, two decodes per update"),
    "lpds-bf16": ("lpds", {"decoder_precision": "bfloat16", "shared_decode": False}, "LP-DS, bf16 decoder"),
    "lpds": ("lpds", {"decoder_precision": "bfloat16", "shared_decode": True},
             "LP-DS now: bf16 decoder + one shared decode (the default)"),
    "lpds-a": ("lpds-a", {"decoder_precision": "bfloat16"}, "LP-DS-A (default settings)"),
    "dsrl-sac": ("dsrl-sac", {}, "DSRL-SAC (default settings)"),
    "dsrl-na-fp32": ("dsrl-na", {"decoder_precision": "float32"}, "DSRL-NA, float32 decoder"),
    "dsrl-na": ("dsrl-na", {"decoder_precision": "bfloat16"}, "DSRL-NA now (default settings)"),
    "dppo": ("dppo", {}, "DPPO, one PPO update over the rollout"),
}


class MinimalSAC:
    """Textbook SAC on flattened action chunks (the reference each agent's update is divided by)."""

    def __init__(self, obs_dim: int, act_dim: int, hidden: tuple[int, ...], critic_hidden: tuple[int, ...]):
        self.actor = TanhNoiseActor(obs_dim, (1, act_dim), hidden, 1.0)
        self.critic = TwinQ(obs_dim, act_dim, critic_hidden)
        self.alpha = EntropyTemperature(1.0, -float(act_dim))
        self.opt_actor = torch.optim.Adam(self.actor.parameters(), lr=3e-4)
        self.opt_critic = torch.optim.Adam(self.critic.online_parameters(), lr=3e-4)
        self.opt_alpha = torch.optim.Adam(self.alpha.parameters(), lr=3e-4)

    def update(self, b: dict[str, torch.Tensor]) -> None:
        with torch.no_grad():
            a2, logp2 = self.actor(b["next_obs"])
            y = td_target(b["reward"], b["discount"], b["done"], *self.critic.target(b["next_obs"], a2),
                          -self.alpha.alpha * logp2)
        loss = self.critic.loss(b["obs"], b["action"], y)
        self.opt_critic.zero_grad(set_to_none=True)
        loss.backward()
        self.opt_critic.step()
        a, logp = self.actor(b["obs"])
        actor_loss = (self.alpha.alpha * logp - torch.min(*self.critic(b["obs"], a))).mean()
        self.opt_actor.zero_grad(set_to_none=True)
        actor_loss.backward()
        self.opt_actor.step()
        alpha_loss = self.alpha.loss(logp)
        self.opt_alpha.zero_grad(set_to_none=True)
        alpha_loss.backward()
        self.opt_alpha.step()
        self.critic.polyak(0.005)


def replay_batch(obs_dim: int, shape: tuple[int, int], n: int, low: np.ndarray, high: np.ndarray,
                 gen: torch.Generator) -> dict[str, torch.Tensor]:
    """A replay-shaped batch (values do not matter for the cost; shapes and dtypes do)."""
    obs = torch.randn(n, obs_dim, generator=gen)
    lo, hi = torch.tensor(np.array(low), dtype=torch.float32), torch.tensor(np.array(high), dtype=torch.float32)
    return {"obs": obs, "next_obs": obs + 0.01 * torch.randn(n, obs_dim, generator=gen),
            "action": lo + (hi - lo) * torch.rand(n, *shape, generator=gen),
            "noise": torch.randn(n, *shape, generator=gen), "reward": torch.randn(n, generator=gen),
            "discount": torch.full((n,), 0.99 ** shape[0]), "done": torch.zeros(n)}


def dppo_rollout(agent: Any, obs_dim: int, chunks: int, gen: torch.Generator) -> Rollout:
    roll = Rollout(chunks)
    for _ in range(chunks):
        obs = torch.randn(1, obs_dim, generator=gen).numpy()
        _, extras = agent.act_on_policy(obs)
        roll.add(obs, extras, np.zeros(1), np.full(1, 0.99), np.zeros(1), np.zeros(1), obs + 0.01)
    return roll


def timed(fn: Callable[[], Any], reps: int) -> float:
    t0 = time.perf_counter()
    for _ in range(reps):
        fn()
    return (time.perf_counter() - t0) / reps


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--task", default="hopper", help="gym suite task whose shipped base is used")
    ap.add_argument("--kind", default="flow", choices=("flow", "diffusion"), help="base of the off-policy agents")
    ap.add_argument("--batch", type=int, default=256, help="replay minibatch")
    ap.add_argument("--reps", type=int, default=20, help="updates per variant per round")
    ap.add_argument("--rounds", type=int, default=5, help="round-robin rounds (median reported)")
    ap.add_argument("--threads", type=int, default=1, help="torch threads")
    ap.add_argument("--dppo-chunks", type=int, default=500, help="chunks in DPPO's rollout (its rollout_steps)")
    ap.add_argument("--variants", default=",".join(["sac", *VARIANTS]), help="comma list: sac and any of "
                    + ", ".join(VARIANTS))
    args = ap.parse_args()
    from lpds_sim.benchmarks.gym_bases import shipped_base
    from lpds_sim.benchmarks.suites import get_suite

    suite = get_suite("gym")
    names = [v for v in args.variants.split(",") if v]
    unknown = [v for v in names if v != "sac" and v not in VARIANTS]
    if unknown:
        raise SystemExit(f"--variants: unknown {', '.join(unknown)}; choose from sac, {', '.join(VARIANTS)}")
    env = suite.make_env(args.task)
    preset = suite.presets()["agent"]
    gen = torch.Generator().manual_seed(0)
    bases = {k: load_backbone(str(shipped_base(args.task, k))).freeze() for k in ("flow", "diffusion")}
    bb = bases[args.kind]
    h, a = bb.noise_shape
    low, high = np.broadcast_to(env.action_space.low, (h, a)), np.broadcast_to(env.action_space.high, (h, a))
    chunk_space = gym.spaces.Box(low.astype(np.float32), high.astype(np.float32))
    batch = replay_batch(bb.obs_dim, (h, a), args.batch, low, high, gen)
    steps: dict[str, Callable[[], Any]] = {}
    per_env_step: dict[str, float] = {}  # env steps one timed call pays for
    for name in names:
        if name == "sac":
            sac = MinimalSAC(bb.obs_dim, h * a, preset.hidden, preset.critic_hidden)
            flat = {**batch, "action": batch["action"].reshape(args.batch, -1)}
            steps[name], per_env_step[name] = (lambda s=sac, b=flat: s.update(b)), h
            continue
        algo, overrides, _ = VARIANTS[name]
        cfg = preset.__class__.from_dict({**preset.to_dict(), **overrides, "threads": args.threads})
        if algo == "dppo":
            agent = make_agent(algo, bases["diffusion"], env.observation_space, cfg, chunk_space)
            roll = dppo_rollout(agent, bb.obs_dim, args.dppo_chunks, gen)
            steps[name], per_env_step[name] = (lambda ag=agent, r=roll: ag.update_on_policy(r)), args.dppo_chunks * h
        else:
            agent = make_agent(algo, bb, env.observation_space, cfg, chunk_space)
            steps[name], per_env_step[name] = (lambda ag=agent: ag.update(batch)), h
    torch.set_num_threads(args.threads)
    for fn in steps.values():  # warm-up (allocators, lazy init, first-update normaliser fits)
        fn()
    times: dict[str, list[float]] = {n: [] for n in steps}
    for r in range(args.rounds):
        for n, fn in steps.items():
            times[n].append(timed(fn, 1 if n == "dppo" else args.reps))
        print(f"round {r + 1}/{args.rounds}: " + ", ".join(f"{n} {1e3 * times[n][-1]:.1f} ms" for n in steps),
              flush=True)
    med = {n: statistics.median(v) for n, v in times.items()}
    ref = med.get("sac")
    # ratios: the median over rounds of each round's ratio (variants of one round ran back to back, so a load
    # spike on a shared machine moves both sides of a ratio; absolute times are only context)
    ratio = {n: statistics.median(t / s for t, s in zip(times[n], times["sac"])) for n in steps} if ref else {}
    print(f"\n{args.task}, {args.kind} base (decoder {bb.config['n_layers']}×{bb.config['hidden']}, "
          f"{bb.config['num_steps']} steps), batch {args.batch}, {args.threads} thread(s), {args.rounds} rounds "
          f"× {args.reps} updates; bf16 CPU support: {cpu_bf16_matmul()}\n")
    print("| variant | what | ms per call (median) | × minimal SAC per update | × minimal SAC per env step |")
    print("|---|---|---|---|---|")
    for n in steps:
        what = "minimal SAC (the reference)" if n == "sac" else VARIANTS[n][2]
        per_call = f"{1e3 * med[n]:.1f}"
        per_update = "—" if ref is None or n == "dppo" else f"{ratio[n]:.2f}×"
        env_ratio = "—" if ref is None else f"{ratio[n] * per_env_step['sac'] / per_env_step[n]:.2f}×"
        print(f"| {n} | {what} | {per_call} | {per_update} | {env_ratio} |")


if __name__ == "__main__":
    main()
