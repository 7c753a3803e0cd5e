"""The generic steering loop: warm up with the base policy, then act → store → `utd` updates per chunk.

Works with any Gymnasium env: a per-step env is wrapped in `ActionChunkWrapper` automatically.
Budgets are counted in *env* steps (not chunks), so agents with different chunk sizes compare fairly.
"""
from __future__ import annotations

from collections import defaultdict
from typing import Any, Callable

import gymnasium as gym
import numpy as np
import torch

from .agents.base import Agent
from .chunking import ActionChunkWrapper, bootstrap_discount
from .replay import ReplayBuffer

Callback = Callable[[int, Agent, dict[str, Any]], Any]


def as_chunk_env(env: gym.Env, horizon: int, act_dim: int, gamma: float) -> gym.Env:
    """The env itself if it already takes (H, A) chunks, else wrapped in ActionChunkWrapper."""
    shape = tuple(env.action_space.shape or ())
    if shape == (horizon, act_dim):
        return env
    if shape == (act_dim,):
        return ActionChunkWrapper(env, horizon, gamma)
    raise ValueError(f"env action space {shape} matches neither the backbone's chunk ({horizon}, {act_dim}) "
                     f"nor one step ({act_dim},)")


def train_steering(env: gym.Env, agent: Agent, env_steps: int, *, warmup_steps: int | None = None,
                   utd: int | None = None, batch_size: int | None = None, buffer: ReplayBuffer | None = None,
                   seed: int = 0, callback: Callback | None = None, callback_every: int = 1000,
                   log_every: int = 100, progress: bool = True, verbose: bool = True,
                   start_env_steps: int = 0) -> dict[str, list]:
    """Train `agent` for `env_steps` env steps; returns the history (lists keyed by metric).

    history["env_steps"][i] pairs with every other logged list of the same length (update
    metrics averaged over the last `log_every` env steps); episode returns are logged as
    ("episode_env_steps", "episode_return"). `callback(env_steps, agent, history)` runs every
    `callback_every` env steps (and at the end); if it returns True training stops. With `verbose`, the
    agent's description (for LP-DS: the trust-region choice) is printed first, so every run states it.
    To resume, pass the restored agent, `buffer=ReplayBuffer.load(...)` and `start_env_steps` (the count
    already done; `env_steps` stays the total), and warm-up is skipped for the steps already taken.
    """
    c = agent.config
    warmup = c.warmup_steps if warmup_steps is None else int(warmup_steps)
    utd = c.utd if utd is None else int(utd)
    batch_size = c.batch_size if batch_size is None else int(batch_size)
    if env_steps <= start_env_steps or start_env_steps < 0:
        raise ValueError(f"env_steps ({env_steps}) must exceed start_env_steps ({start_env_steps}) >= 0")
    h, a = agent.noise_shape
    if verbose:
        print(f"{agent.describe()}; {env_steps} env steps, warm-up {warmup}, utd {utd}, batch {batch_size}",
              flush=True)
    env = as_chunk_env(env, h, a, c.gamma)
    buffer = buffer if buffer is not None else ReplayBuffer(c.buffer_capacity, agent.noise_shape, seed=seed)
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)

    history: dict[str, list] = defaultdict(list)
    pending: dict[str, list[float]] = defaultdict(list)
    obs, _ = env.reset(seed=seed)
    steps = int(start_env_steps)
    ep_ret, next_log, next_cb = 0.0, steps + log_every, steps + callback_every
    bar = None
    if progress:
        from tqdm import tqdm
        bar = tqdm(total=env_steps, initial=steps, desc=f"steer {agent.name}", unit="step", dynamic_ncols=True,
                   leave=False, mininterval=1.0)
    try:
        while steps < env_steps:
            if steps < warmup:  # warm-up: the base policy, w ~ N(0, I)
                with torch.no_grad():
                    t, _ = agent.obs_to_tensor(obs)
                    feats = agent.features(t)
                    noise = torch.as_tensor(rng.standard_normal((1, h, a)), dtype=torch.float32)
                    chunk = agent.decode(feats, noise)[0].numpy()
                    noise = noise[0].numpy()
            else:
                chunk, noise = agent.act_with_noise(obs)
            next_obs, r, terminated, truncated, info = env.step(chunk)
            n = int(info.get("chunk_steps", h))
            buffer.add(obs, chunk, noise, r, next_obs, info.get("chunk_discount", bootstrap_discount(c.gamma, n)), terminated)
            ep_ret += float(info.get("chunk_return_undiscounted", r))
            steps += n
            if bar is not None:
                bar.update(n)
            if terminated or truncated:
                history["episode_env_steps"].append(steps)
                history["episode_return"].append(ep_ret)
                ep_ret = 0.0
                obs, _ = env.reset()
            else:
                obs = next_obs
            if steps >= warmup:
                agent.train()
                for _ in range(utd):
                    for k, v in agent.update(buffer.sample(batch_size)).items():
                        pending[k].append(v)
            if steps >= next_log or steps >= env_steps:
                next_log += log_every
                if pending:
                    history["env_steps"].append(steps)
                    for k, v in pending.items():
                        history[k].append(float(np.mean(v)))
                    if bar is not None:
                        shown = {k: f"{history[k][-1]:.3g}" for k in ("lambda", "delta_sq", "alpha", "q_pi")
                                 if k in pending}
                        if history["episode_return"]:
                            shown["ret"] = f"{np.mean(history['episode_return'][-10:]):.3g}"
                        bar.set_postfix(shown)
                    pending.clear()
            if callback is not None and (steps >= next_cb or steps >= env_steps):
                next_cb += callback_every
                if callback(steps, agent, history):
                    break
    finally:
        if bar is not None:
            bar.close()
    agent.eval()
    return dict(history)
