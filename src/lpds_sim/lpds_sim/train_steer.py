"""`lpds train-steer`: steer a frozen base run with LP-DS (or a baseline) in the RAI env, as a resumable run.

The agents, critics, trust region and replay buffer are `lpds_core`'s; this module owns the run around them:
vector envs with the dense reward, the collect/update schedule, periodic grid evaluation, curves and checkpoints
that restore networks, optimisers, λ, the replay buffer, RNG states and step counters.
"""
from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Any

import numpy as np

from lpds_core.agents.base import AgentConfig
from lpds_core.config import nested, setting, validate
from lpds_core.training import LoopConfig

from lpds_sim import runs
from lpds_sim.train_base import TASKS, backbone_path

ALGOS = ("lpds", "dsrl-na", "dsrl-sac", "lpds-a")
PRIVILEGED_KEY = "state"  # the key `privileged_state=True` envs add to image observations (the critic's input)


@dataclasses.dataclass
class SteerConfig:
    """`lpds train-steer`: the run's own settings; the agent's (`agent:`) and the loop's (`train:`) are sections,
    each setting declared once (lpds_core.agents.AgentConfig, lpds_core.training.LoopConfig)."""

    base: str = setting("", "finished `lpds train-base` run folder")
    task: str | None = setting(None, "task; taken from the base run (given, it must match)", choices=TASKS)
    algo: str = setting("lpds", "steering algorithm", choices=ALGOS)
    agent: AgentConfig = nested(AgentConfig)
    train: LoopConfig = nested(LoopConfig)

    @classmethod
    def legacy_keys(cls, data: dict[str, Any]) -> dict[str, Any]:
        """Run configs written before the schema (flat, `hidden: 256`, `critic_state`, `threads`) read as today's,
        so older run folders still resume, export and evaluate."""
        data = dict(data)
        if data.get("task") == "":
            data["task"] = None
        if isinstance(data.get("hidden"), int):
            h = data.pop("hidden")
            data.setdefault("critic_hidden", [h, h])
            data["hidden"] = [h, h]
        if "critic_state" in data:
            data.setdefault("critic_obs", PRIVILEGED_KEY if data.pop("critic_state") is True else None)
        if "eval_trials_per_cell" in data:
            data.setdefault("eval_trials", data.pop("eval_trials_per_cell"))
        data.pop("final_trials_per_cell", None)  # was never read
        return data

    def check(self) -> "SteerConfig":
        if not self.base:
            raise runs.ConfigError("no base run: pass --base RUN (a finished `lpds train-base` run folder)")
        noise_steer = self.algo in ("lpds", "lpds-a")
        if self.train.explore_eps_scale is not None and not noise_steer:
            raise runs.ConfigError(f"explore_eps_scale applies to lpds/lpds-a (they decode ε + Δ); {self.algo} "
                                   f"samples its own noise: remove the key")
        if self.agent.critic_obs not in (None, PRIVILEGED_KEY):
            raise runs.ConfigError(f"critic_obs={self.agent.critic_obs!r}: train-steer's critic can read only "
                                   f"'{PRIVILEGED_KEY}' (the simulator state), or none")
        if self.agent.critic_obs and not noise_steer:
            raise runs.ConfigError(f"critic_obs applies to lpds/lpds-a; {self.algo} has no asymmetric critic")
        if self.agent.actor_avg_rate and not noise_steer:
            raise runs.ConfigError(f"actor_avg_rate applies to lpds/lpds-a; {self.algo} has no perturbation")
        return self

    @property
    def critic_state(self) -> bool:
        """The critic reads the simulator state (image bases): the training envs must return it."""
        return self.agent.critic_obs == PRIVILEGED_KEY

    def agent_config(self) -> AgentConfig:
        return self.agent


def steering_obs_space(cfg: SteerConfig, env: Any) -> Any:
    """The observation space an agent of this run is built with: the env's, plus the simulator state the critic
    reads with `critic_state`, so an env made without `privileged_state` (evaluation, export) rebuilds the agent."""
    import gymnasium as gym

    space = env.observation_space
    if not cfg.critic_state or PRIVILEGED_KEY in space.spaces:
        return space
    dim = max(sl.stop for sl in env.unwrapped.state_layout.values())
    return gym.spaces.Dict({**space.spaces, PRIVILEGED_KEY: gym.spaces.Box(-np.inf, np.inf, (dim,), np.float32)})


def load_base(base: str | Path, task: str | None = None):
    """The frozen backbone of a finished base run and its run config; a clear error for another task."""
    from lpds_core.checkpoint import load_backbone

    cfg = runs.require_run(base, "base", task or None)
    expect = {"task": cfg["task"]}
    return load_backbone(backbone_path(base), expect=expect), cfg


# ---------------------------------------------------------------------------------------------------------------
# replay buffer (de)serialisation: the buffer is lpds_core's, its state goes into our run checkpoint
# ---------------------------------------------------------------------------------------------------------------
_REPLAY_ARRAYS = ("action", "noise", "reward", "discount", "done")


def replay_state(buf: Any) -> dict[str, Any]:
    if hasattr(buf, "state_dict"):
        return {"native": buf.state_dict()}
    n = buf.size
    st: dict[str, Any] = {"size": n, "pos": buf.pos, "dict_obs": buf._dict_obs, "rng": runs.generator_state(buf.rng)}
    for k in _REPLAY_ARRAYS:
        st[k] = getattr(buf, k)[:n].copy()
    if buf._obs is not None:
        st["obs"] = {k: v[:n].copy() for k, v in buf._obs.items()}
        st["next_obs"] = {k: v[:n].copy() for k, v in buf._next_obs.items()}
    return st


def load_replay_state(buf: Any, st: dict[str, Any]) -> None:
    if "native" in st:
        buf.load_state_dict(st["native"])
        return
    n = int(st["size"])
    if n > buf.capacity:
        raise runs.RunCheckpointError(f"checkpoint replay holds {n} transitions, buffer capacity is {buf.capacity}")
    if "obs" in st:
        obs = {k: v.numpy() for k, v in st["obs"].items()}
        buf._alloc({k: v[0] for k, v in obs.items()})
        for k in obs:
            buf._obs[k][:n] = obs[k]
            buf._next_obs[k][:n] = st["next_obs"][k].numpy()
    for k in _REPLAY_ARRAYS:
        getattr(buf, k)[:n] = st[k].numpy()
    buf.size, buf.pos, buf._dict_obs = n, int(st["pos"]), bool(st["dict_obs"])
    runs.set_generator_state(buf.rng, st["rng"])


# ---------------------------------------------------------------------------------------------------------------
def _stack_obs(obs_list: list[Any]) -> Any:
    if isinstance(obs_list[0], dict):
        return {k: np.stack([o[k] for o in obs_list]) for k in obs_list[0]}
    return np.stack(obs_list)


def _row(obs: Any, i: int) -> Any:
    return {k: v[i] for k, v in obs.items()} if isinstance(obs, dict) else obs[i]


def train_steer(cfg: SteerConfig, out: str | Path, resume: bool = False, progress: bool = True) -> dict[str, Any]:
    """Steer (or resume steering) the base run `cfg.base` into run folder `out`; returns the done.json summary."""
    import torch
    from lpds_core.agents import make_agent
    from lpds_core.replay import ReplayBuffer
    from tqdm import tqdm

    from lpds_sim.curves import plot_steer_curves
    from lpds_sim.evaluation import evaluate_grid, info_at, make_env, make_train_envs

    validate(cfg)
    torch.set_num_threads(cfg.agent.threads)
    backbone, base_cfg = load_base(cfg.base, cfg.task or None)
    cfg.task = base_cfg["task"]
    image = base_cfg["obs"] == "image"
    if cfg.critic_state and not image:
        raise runs.ConfigError("critic_obs=state is for image bases; with state observations the critic already "
                               "reads the state: remove --critic-obs")
    run = runs.RunDir.open(out, cfg, resume=resume, kind="steer",
                           must_match=("task", "algo", "delta", "base", "n_envs", "tr_norm", "use_eps", "eps_form",
                                       "hidden", "critic_hidden", "critic_obs", "actor_avg_rate",
                                       "seed", "gamma", "ckpt_every", "explore_eps_scale"))
    if run.is_done():
        print(f"steer run {out} already finished; nothing to do")
        return run.summary()

    torch.manual_seed(cfg.train.seed)
    np.random.seed(cfg.train.seed)
    env_kwargs = {"privileged_state": True} if cfg.critic_state else {}
    envs, obs_space, act_space = make_train_envs(cfg.task, base_cfg["obs"], cfg.train.n_envs, backbone.horizon,
                                                 cfg.agent.gamma, cfg.train.seed, vector=cfg.train.vector, **env_kwargs)
    eval_env = make_env(cfg.task, base_cfg["obs"])  # one for the whole run, reused by every evaluation
    agent = make_agent(cfg.algo, backbone, obs_space=obs_space, action_space=act_space, config=cfg.agent_config())
    replay = ReplayBuffer(min(cfg.train.buffer_capacity, cfg.train.env_steps), backbone.noise_shape,
                          seed=cfg.train.seed)
    # image observations go into the replay as the frozen encoder's features (exact: the encoder never changes),
    # plus the privileged state for the critic: ≈ 100 kB less per transition and no CNN pass per update
    keep = (PRIVILEGED_KEY,) if cfg.critic_state else ()
    encode = (lambda o: agent.encoded(o, keep)) if image else (lambda o: o)  # a batch of observations
    encode_one = (lambda o: _row(encode(_stack_obs([o])), 0)) if image else (lambda o: o)
    print(f"steering {cfg.task} with {agent.describe()}; δ={cfg.agent.delta} ({cfg.agent.tr_norm} norm), "
          f"{cfg.train.env_steps} env steps on {cfg.train.n_envs} envs")

    ck = run.checkpointer()
    env_steps, episodes, chunks_seen, updates = 0, 0, 0, 0
    wall_before = 0.0  # wall time of earlier sessions of this run (restored on resume)
    state = ck.load_latest() if resume else None
    if state is not None:
        agent.load_state_dict(state["agent"])
        load_replay_state(replay, state["replay"])
        runs.set_rng_state(state["rng"])
        env_steps, episodes = int(state["step"]), int(state["episodes"])
        chunks_seen, updates = int(state["chunks"]), int(state["updates"])
        wall_before = float(state.get("wall_s", 0.0))
        print(f"resumed {out} at env step {env_steps} ({len(replay)} transitions in replay) from {ck.latest()}")
    log = runs.ScalarLog(out, resume_step=env_steps if state is not None else None)

    def checkpoint() -> None:
        ck.save(env_steps, {"agent": agent.state_dict(), "replay": replay_state(replay), "rng": runs.rng_state(),
                            "episodes": episodes, "chunks": chunks_seen, "updates": updates,
                            "wall_s": wall_before + time.perf_counter() - t0})

    def evaluate(trials_per_cell: int, out_dir: Path | None = None) -> dict[str, Any]:
        agent.eval()
        res = evaluate_grid(cfg.task, base_cfg["obs"], lambda o: agent.act(o), backbone.horizon,
                            trials_per_cell=trials_per_cell, seed=10_000 + cfg.train.seed, out=out_dir, env=eval_env)
        agent.train()
        return res

    # the env is reset on resume: a half-finished episode is the only thing a kill loses besides the interval
    obs, _ = envs.reset(seed=cfg.train.seed + 7919 * (env_steps // max(cfg.train.ckpt_every, 1)))
    obs = encode(obs)
    ep_ret = np.zeros(cfg.train.n_envs)
    recent_returns: list[float] = []
    recent_success: list[float] = []
    next_eval = (env_steps // cfg.train.eval_every + 1) * cfg.train.eval_every if env_steps else 0
    next_ckpt = (env_steps // cfg.train.ckpt_every + 1) * cfg.train.ckpt_every
    t0 = time.perf_counter()
    bar = tqdm(total=cfg.train.env_steps, initial=env_steps, desc=f"{cfg.algo} δ={cfg.agent.delta}",
               unit="step",
               disable=not progress, dynamic_ncols=True)
    stats: dict[str, float] = {}
    while env_steps < cfg.train.env_steps:
        if env_steps >= next_eval:
            res = evaluate(cfg.train.eval_trials)
            log.log(env_steps, "eval", success=res["success_rate"], **{"return": res["mean_return"]})
            bar.set_postfix(success=f"{res['success_rate']:.2f}")
            next_eval += cfg.train.eval_every
        eps_scale = (None if cfg.train.explore_eps_scale is None
                     else np.random.uniform(*cfg.train.explore_eps_scale, cfg.train.n_envs))
        if env_steps < cfg.train.warmup_steps:  # warm-up: the base policy itself, w ~ N(0, I)
            with torch.no_grad():
                t, _ = agent.obs_to_tensor(obs)
                feats = agent.features(t)
                noise_t = agent.sample_eps(feats.shape[0], False, eps_scale)
                chunk, noise = agent.decode(feats, noise_t).numpy(), noise_t.numpy()
        else:
            chunk, noise = agent.act_with_noise(obs, eps_scale=eps_scale)
        next_obs, reward, term, trunc, info = envs.step(chunk)
        next_obs = encode(next_obs)
        step_inc = 0
        for i in range(cfg.train.n_envs):
            done = bool(term[i] or trunc[i])
            nxt = encode_one(info["final_obs"][i]) if done else _row(next_obs, i)
            n_i = int(info_at(info, "chunk_steps", i, done, backbone.horizon))
            replay.add(_row(obs, i), chunk[i], noise[i], float(reward[i]), nxt,
                       float(info_at(info, "chunk_discount", i, done, cfg.agent.gamma ** n_i)), bool(term[i]))
            ep_ret[i] += float(info_at(info, "chunk_return_undiscounted", i, done, reward[i]))
            step_inc += n_i
            if done:
                episodes += 1
                recent_returns.append(float(ep_ret[i]))
                recent_success.append(float(bool(info_at(info, "success", i, done, False))))
                ep_ret[i] = 0.0
        obs = next_obs
        env_steps += step_inc
        chunks_seen += cfg.train.n_envs
        bar.update(step_inc)
        if env_steps >= cfg.train.warmup_steps and len(replay) >= cfg.train.batch_size:
            for _ in range(cfg.train.utd * cfg.train.n_envs):
                stats = agent.update(replay.sample(cfg.train.batch_size))
                updates += 1
            if chunks_seen % (10 * cfg.train.n_envs) == 0 and stats:
                extra = {}
                if recent_returns:
                    extra["episode_return"] = float(np.mean(recent_returns[-20:]))
                    extra["episode_success"] = float(np.nanmean(recent_success[-20:]))
                log.log(env_steps, "train", **{_tb_name(k): v for k, v in stats.items()},
                        delta=cfg.agent.delta, **extra)
        if env_steps >= next_ckpt:
            log.flush()
            checkpoint()
            next_ckpt += cfg.train.ckpt_every
    bar.close()
    res = evaluate(cfg.train.eval_trials)
    log.log(env_steps, "eval", success=res["success_rate"], **{"return": res["mean_return"]})
    checkpoint()
    envs.close()
    eval_env.close()
    torch.save(agent.state_dict(), Path(out) / "agent.pt")
    log.close()
    plot_steer_curves(out)
    summary = {"task": cfg.task, "algo": cfg.algo, "delta": cfg.agent.delta, "env_steps": env_steps,
               "episodes": episodes,
               "updates": updates, "final_success_periodic_eval": res["success_rate"],
               "final_return_periodic_eval": res["mean_return"],
               "train_seconds_this_session": time.perf_counter() - t0,
               "train_seconds": wall_before + time.perf_counter() - t0, "base": str(cfg.base)}
    run.mark_done(**summary)
    return summary


def _tb_name(k: str) -> str:
    """Agent stat names → the names the curves read (λ and ‖Δ‖² have fixed names)."""
    return {"lam": "lambda", "lambda": "lambda", "constraint": "delta_sq", "delta_sq": "delta_sq",
            "delta_norm_sq": "delta_sq"}.get(k, k)
