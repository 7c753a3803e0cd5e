"""The one steering loop: collect → store → update → evaluate → checkpoint, for every env and every agent.

`run_steering` takes a Gymnasium vector env whose step takes action chunks (SAME_STEP autoreset: the final
observation of a finished episode is in `info["final_obs"]`), an agent, the loop's settings (`LoopConfig`), a replay
buffer, an `evaluate(env_steps)` callback and a sink for scalars and checkpoints. It owns nothing env-specific: the
toy (`train_steering`, any single Gymnasium env) and the RAI runs (`lpds_sim.train_steer`) are thin glue around it.
Budgets are counted in *env* steps (not chunks), so agents with different chunk sizes compare fairly; warm-up acts
with the base policy (w ~ N(0, I)); once warm-up is over, every collected chunk of every env brings `utd`
updates. Those updates run while the envs execute the chunks just chosen (an `AsyncVectorEnv` steps in its worker
processes meanwhile; a synchronous one runs the same schedule, so both give the same numbers): they sample the
replay as it was before that vector step, and the env time hides behind the update time. An on-policy agent (`agent.on_policy`, DPPO) goes through the same loop, evaluation and checkpoints, but
collects `agent.rollout_steps` chunks per env into a `Rollout` (with what `act_on_policy` returned beside each
chunk) and then calls `agent.update_on_policy(rollout)`; it has no warm-up, no replay and no `utd`, and its
checkpoints are written at rollout boundaries (the first one after each `ckpt_every`), so a resume loses at most
the unfinished rollout.
"""
from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any, Callable, Protocol

import gymnasium as gym
import numpy as np
import torch

from .agents.base import Agent
from .chunking import ActionChunkWrapper, bootstrap_discount
from .config import setting
from .errors import ConfigError
from .replay import ReplayBuffer
from .rollout import Rollout

Callback = Callable[[int, Agent, dict[str, Any]], Any]


@dataclass
class LoopConfig:
    """The steering loop's settings (collect / update / evaluate / checkpoint), the same for every env and agent."""

    env_steps: int = setting(100_000, "env-step budget of steering, warm-up included", min=1)
    warmup_steps: int = setting(2_000, "env steps of the base policy (w ~ N(0, I)) before any update (0 = none)",
                                min=0)
    utd: int = setting(1, "gradient updates per collected chunk and env (update-to-data ratio)", min=1)
    batch_size: int = setting(128, "minibatch size of every update", min=1)
    buffer_capacity: int = setting(200_000, "replay capacity in chunks (capped at env_steps)", min=1)
    n_envs: int = setting(2, "parallel envs of the vector env", min=1)
    seed: int = setting(0, "seed of envs, networks and replay sampling", min=0)
    eval_every: int = setting(10_000, "env steps between periodic evaluations", min=1)
    eval_trials: int = setting(1, "trials of every periodic evaluation (per grid cell on the RAI tasks: 1 = 8 "
                                  "trials on the 2×4 grid)", min=1)
    ckpt_every: int = setting(5_000, "env steps between checkpoints", min=1)
    exec_steps: int | None = setting(None, "actions of each chunk executed before the policy re-plans (none: the "
                                     "whole chunk H)", min=1)
    vector: str = setting("async", "vector env: async (one process per env; RAI PhysX needs it) or sync",
                          choices=("sync", "async"))
    # exploration over the noise temperature (agents that decode ε + Δ): each collected chunk decodes c·ε with
    # c ~ U(lo, hi), so the replay holds the same kinds of states at several noise levels and the critic sees
    # what the noise level does; the actor still optimises E over ε ~ N(0, I), which is what is deployed.
    explore_eps_scale: list[float] | None = setting(
        None, "collect each chunk with c·ε, c ~ U(LO, HI) (lpds, lpds-a; none: plain ε)", min=0)

    def check(self) -> "LoopConfig":
        if self.explore_eps_scale is not None:
            lo_hi = [float(v) for v in self.explore_eps_scale]
            if len(lo_hi) != 2 or not 0 <= lo_hi[0] <= lo_hi[1]:
                raise ConfigError(f"explore_eps_scale must be [lo, hi] with 0 <= lo <= hi, got {lo_hi}")
            self.explore_eps_scale = lo_hi
        if self.warmup_steps >= self.env_steps:
            raise ConfigError(f"warmup_steps={self.warmup_steps} is at or above the budget env_steps="
                              f"{self.env_steps}: no update would ever run; lower --warmup-steps (dppo, on-policy, "
                              f"uses none: 0 is fine) or raise --env-steps")
        return self


def as_chunk_env(env: gym.Env, horizon: int, act_dim: int, gamma: float, exec_steps: int | None = None
                 ) -> gym.Env:
    """The env itself if it already takes (H, A) chunks, else wrapped in ActionChunkWrapper (executing the first
    `exec_steps` actions of each chunk)."""
    shape = tuple(env.action_space.shape or ())
    if shape == (horizon, act_dim):
        if exec_steps not in (None, horizon):
            raise ValueError(f"exec_steps={exec_steps}: this env takes whole ({horizon}, {act_dim}) chunks itself, "
                             f"so it cannot re-plan after fewer steps; leave exec_steps unset")
        return env
    if shape == (act_dim,):
        return ActionChunkWrapper(env, horizon, gamma, exec_steps)
    raise ValueError(f"env action space {shape} matches neither the backbone's chunk ({horizon}, {act_dim}) "
                     f"nor one step ({act_dim},)")


@dataclass
class LoopState:
    """The loop's counters: what a checkpoint stores besides the agent, the replay and the RNG states."""

    env_steps: int = 0
    episodes: int = 0
    chunks: int = 0
    updates: int = 0
    wall_s: float = 0.0  # wall time of earlier sessions (restored on resume)
    recent_returns: list[float] = field(default_factory=list)
    recent_success: list[float] = field(default_factory=list)


class LoopSink(Protocol):
    """Where the loop's results go: scalars (`group` "train" / "eval"), episode ends, checkpoints."""

    def log(self, step: int, group: str, values: dict[str, float]) -> None: ...

    def checkpoint(self, state: LoopState) -> None: ...


def info_at(info: dict[str, Any], key: str, i: int, done: bool, default: Any = None) -> Any:
    """Env i's value of `key` in a vector-env info (for a finished env, from its final step, not its reset)."""
    src = info.get("final_info", info) if done else info
    if key not in src:
        return default
    mask = src.get(f"_{key}")
    if mask is not None and not mask[i]:
        return default
    return src[key][i]


def stack_obs(obs_list: list[Any]) -> Any:
    if isinstance(obs_list[0], dict):
        return {k: np.stack([o[k] for o in obs_list]) for k in obs_list[0]}
    return np.stack(obs_list)


def obs_row(obs: Any, i: int) -> Any:
    return {k: v[i] for k, v in obs.items()} if isinstance(obs, dict) else obs[i]


def run_steering(envs: Any, agent: Agent, loop: LoopConfig, replay: ReplayBuffer, *,
                 evaluate: Callable[[int], dict[str, float] | None] | None = None, sink: LoopSink | None = None,
                 encode: Callable[[Any], Any] | None = None, state: LoopState | None = None,
                 evaluate_first: bool = True, log_every: int = 10, progress: bool = True,
                 desc: str = "steer") -> LoopState:
    """Steer `agent` on the vector env `envs` until `loop.env_steps` env steps; returns the final counters.

    `state`: counters of a resumed run (agent, replay and RNG states restored by the caller); the env is reset on
    resume with a seed that depends on the step, so a half-finished episode is all a kill loses besides the
    checkpoint interval. `evaluate(env_steps)` runs every `loop.eval_every` env steps (at step 0 too with
    `evaluate_first`) and at the end; its scalars are logged as group "eval". `encode` maps a batch of
    observations to what the replay stores (e.g. frozen image features). Train scalars (the agent's update stats,
    averaged since the last row, plus recent episode return/success) are logged every `log_every` vector steps."""
    st = state or LoopState()
    n_envs = int(getattr(envs, "num_envs", 1))
    horizon = agent.noise_shape[0]
    gamma = agent.config.gamma
    encode = encode or (lambda o: o)
    on_policy = bool(agent.on_policy)
    if on_policy and loop.explore_eps_scale is not None:
        raise ConfigError(f"explore_eps_scale applies to agents that decode c·ε (lpds, lpds-a); {agent.name} "
                          f"samples its own chain: remove it")
    rollout = Rollout(agent.rollout_steps) if on_policy else None
    overlap = isinstance(envs, gym.vector.AsyncVectorEnv)  # its workers step while this process updates
    t0 = time.perf_counter()

    def emit(group: str, values: dict[str, float] | None) -> None:
        if sink is not None and values:
            sink.log(st.env_steps, group, values)

    def checkpoint() -> None:
        if sink is not None:
            sink.checkpoint(LoopState(st.env_steps, st.episodes, st.chunks, st.updates,
                                      st.wall_s + time.perf_counter() - t0, st.recent_returns, st.recent_success))

    def emit_train() -> None:
        """The agent's update stats averaged since the last row, with the recent episodes' return/success."""
        row = {k: float(np.mean(v)) for k, v in pending.items()}
        if st.recent_returns:
            row["episode_return"] = float(np.mean(st.recent_returns))
            row["episode_success"] = float(np.nanmean(st.recent_success))
        emit("train", row)
        pending.clear()

    obs, _ = envs.reset(seed=loop.seed + 7919 * (st.env_steps // loop.ckpt_every))
    obs = encode(obs)
    ep_ret = np.zeros(n_envs)
    fresh = st.env_steps == 0
    next_eval = 0 if fresh and evaluate_first else (st.env_steps // loop.eval_every + 1) * loop.eval_every
    next_ckpt = (st.env_steps // loop.ckpt_every + 1) * loop.ckpt_every
    pending: dict[str, list[float]] = defaultdict(list)
    vec_steps = 0
    bar = None
    if progress:
        from tqdm import tqdm
        bar = tqdm(total=loop.env_steps, initial=st.env_steps, desc=desc, unit="step", dynamic_ncols=True)
    try:
        while st.env_steps < loop.env_steps:
            if evaluate is not None and st.env_steps >= next_eval:
                res = evaluate(st.env_steps)
                emit("eval", res)
                if bar is not None and res and "success" in res:
                    bar.set_postfix(success=f"{res['success']:.2f}")
                next_eval += loop.eval_every
            eps_scale = (None if loop.explore_eps_scale is None
                         else np.random.uniform(*loop.explore_eps_scale, n_envs))
            extras: dict[str, np.ndarray] = {}
            if on_policy:
                chunk, extras = agent.act_on_policy(obs)
                noise = None
            elif st.env_steps < loop.warmup_steps:  # warm-up: the base policy itself, w ~ N(0, I)
                with torch.no_grad():
                    t, _ = agent.obs_to_tensor(obs)
                    feats = agent.features(t)
                    noise_t = agent.sample_eps(feats.shape[0], False, eps_scale)
                    chunk, noise = agent.decode(feats, noise_t).numpy(), noise_t.numpy()
            else:
                chunk, noise = agent.act_with_noise(obs, eps_scale=eps_scale)
            if overlap:
                envs.step_async(chunk)
            # off-policy updates, on the replay before this vector step (it samples with replacement: any size
            # but empty works) while the envs execute it
            if not on_policy and st.env_steps >= loop.warmup_steps and len(replay):
                agent.train()
                for _ in range(loop.utd * n_envs):
                    for k, v in agent.update(replay.sample(loop.batch_size)).items():
                        pending[k].append(float(v))
                    st.updates += 1
            next_obs, reward, term, trunc, info = envs.step_wait() if overlap else envs.step(chunk)
            next_obs = encode(next_obs)
            step_inc = 0
            finished: list[dict[str, float]] = []
            nxts, discs = [], []
            for i in range(n_envs):
                done = bool(term[i] or trunc[i])
                nxt = obs_row(encode(stack_obs([info["final_obs"][i]])), 0) if done else obs_row(next_obs, i)
                n_i = int(info_at(info, "chunk_steps", i, done, horizon))
                disc = float(info_at(info, "chunk_discount", i, done, bootstrap_discount(gamma, n_i)))
                if on_policy:
                    nxts.append(nxt)
                    discs.append(disc)
                else:
                    replay.add(obs_row(obs, i), chunk[i], noise[i], float(reward[i]), nxt, disc, bool(term[i]))
                ep_ret[i] += float(info_at(info, "chunk_return_undiscounted", i, done, reward[i]))
                step_inc += n_i
                if done:
                    st.episodes += 1
                    st.recent_returns = (st.recent_returns + [float(ep_ret[i])])[-20:]
                    st.recent_success = (st.recent_success +
                                         [float(bool(info_at(info, "success", i, done, False)))])[-20:]
                    finished.append({"return": float(ep_ret[i]), "success": st.recent_success[-1]})
                    ep_ret[i] = 0.0
            if rollout is not None:
                rollout.add(obs, extras, np.asarray(reward, np.float64), discs, np.asarray(term, bool),
                            np.asarray(term, bool) | np.asarray(trunc, bool), stack_obs(nxts))
            obs = next_obs
            st.env_steps += step_inc
            for ep in finished:
                emit("episode", ep)
            st.chunks += n_envs
            vec_steps += 1
            if bar is not None:
                bar.update(step_inc)
            updated = False
            if rollout is not None:
                if rollout.full or st.env_steps >= loop.env_steps:  # the budget's last, shorter rollout too
                    agent.train()
                    for k, v in agent.update_on_policy(rollout).items():
                        pending[k].append(float(v))
                    rollout.clear()
                    st.updates += 1
                    updated = True
                    emit_train()
            elif pending and (st.chunks % (log_every * n_envs) == 0 or st.env_steps >= loop.env_steps):
                emit_train()
            if st.env_steps >= next_ckpt and not on_policy:
                checkpoint()
                next_ckpt += loop.ckpt_every
            elif st.env_steps >= next_ckpt and updated:  # on-policy: at a rollout boundary
                checkpoint()
                next_ckpt = (st.env_steps // loop.ckpt_every + 1) * loop.ckpt_every
    finally:
        if bar is not None:
            bar.close()
    if evaluate is not None:
        emit("eval", evaluate(st.env_steps))
    checkpoint()
    agent.eval()
    st.wall_s += time.perf_counter() - t0
    return st


class _HistorySink:
    """train_steering's history: update stats per logged row, episode returns per episode."""

    def __init__(self) -> None:
        self.history: dict[str, list] = defaultdict(list)

    def log(self, step: int, group: str, values: dict[str, float]) -> None:
        if group == "train":
            self.history["env_steps"].append(step)
            for k, v in values.items():
                if not k.startswith("episode_"):
                    self.history[k].append(v)
        elif group == "episode":
            self.history["episode_env_steps"].append(step)
            self.history["episode_return"].append(values["return"])

    def checkpoint(self, state: LoopState) -> None:
        pass


def train_steering(env: gym.Env, agent: Agent, env_steps: int, *, warmup_steps: int | None = None,
                   utd: int | None = None, batch_size: int | None = None, buffer: ReplayBuffer | None = None,
                   seed: int = 0, buffer_capacity: int | None = None, callback: Callback | None = None,
                   callback_every: int = 1000, log_every: int = 100, progress: bool = True, verbose: bool = True,
                   start_env_steps: int = 0) -> dict[str, list]:
    """`run_steering` on one Gymnasium env (a per-step env is chunked for you); returns the history.

    history["env_steps"][i] pairs with every other logged list of the same length (update metrics averaged since
    the previous row, a row about every `log_every` env steps); episode returns are logged as
    ("episode_env_steps", "episode_return"). `callback(env_steps, agent, history)` runs every `callback_every` env
    steps and at the end. With `verbose`, the agent's description (for LP-DS: the trust-region choice) is printed
    first, so every run states it. To resume, pass the restored agent, `buffer=ReplayBuffer.load(...)` and
    `start_env_steps` (the count already done; `env_steps` stays the total); warm-up is skipped for the steps
    already taken. Loop settings not given come from `LoopConfig` (their one home)."""
    d = LoopConfig()
    loop = LoopConfig(env_steps=int(env_steps), warmup_steps=d.warmup_steps if warmup_steps is None else
                      int(warmup_steps), utd=d.utd if utd is None else int(utd),
                      batch_size=d.batch_size if batch_size is None else int(batch_size),
                      buffer_capacity=d.buffer_capacity if buffer_capacity is None else int(buffer_capacity),
                      n_envs=1, seed=int(seed), eval_every=int(callback_every), ckpt_every=max(int(env_steps), 1))
    if env_steps <= start_env_steps or start_env_steps < 0:
        raise ValueError(f"env_steps ({env_steps}) must exceed start_env_steps ({start_env_steps}) >= 0")
    h, a = agent.noise_shape
    if verbose:
        how = ("" if agent.on_policy else
               f", warm-up {loop.warmup_steps}, utd {loop.utd}, batch {loop.batch_size}")
        print(f"{agent.describe()}; {env_steps} env steps{how}", flush=True)
    chunk_env = as_chunk_env(env, h, a, agent.config.gamma)
    envs = gym.vector.SyncVectorEnv([lambda: chunk_env], autoreset_mode=gym.vector.AutoresetMode.SAME_STEP)
    buffer = buffer if buffer is not None else ReplayBuffer(loop.buffer_capacity, agent.noise_shape, seed=seed)
    torch.manual_seed(seed)
    sink = _HistorySink()
    evaluate = None
    if callback is not None:
        def evaluate(step: int) -> None:
            callback(step, agent, sink.history)
    run_steering(envs, agent, loop, buffer, evaluate=evaluate, sink=sink, state=LoopState(int(start_env_steps)),
                 evaluate_first=False, log_every=max(1, log_every // h), progress=progress,
                 desc=f"steer {agent.name}")
    return dict(sink.history)
