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

from lpds_sim import runs
from lpds_sim.train_base import TASKS, backbone_path

ALGOS = ("lpds", "dsrl-na", "dsrl-sac", "lpds-a")
PRIVILEGED_KEY = "state"  # the key `privileged_state=True` envs add to image observations (the critic's input)


@dataclasses.dataclass
class SteerConfig:
    base: str = ""
    task: str = ""  # taken from the base run; given explicitly it must match
    algo: str = "lpds"
    delta: float = 0.05
    env_steps: int = 100_000
    n_envs: int = 2
    seed: int = 0
    eval_every: int = 10_000  # env steps between grid evaluations
    eval_trials_per_cell: int = 1  # periodic evaluation: 8 trials on the 2×4 grid (the final one uses 5)
    final_trials_per_cell: int = 5
    ckpt_every: int = 5_000  # env steps between checkpoints
    warmup_steps: int = 2_000
    utd: int = 1  # updates per collected chunk (×n_envs per vector step); sized for a shared 2-core CPU
    batch_size: int = 128
    gamma: float = 0.99
    lr_actor: float = 3e-4
    lr_critic: float = 3e-4
    tau: float = 0.005  # Polyak rate of the target critics (higher propagates values faster on small budgets)
    eta_lambda: float = 1.0
    tr_norm: str = "sum"
    use_eps: bool = False  # Δθ(s, ε) instead of Δθ(s)
    eps_form: str = "mlp"  # with use_eps: "mlp" (free MLP of s, ε) or "shrink" (h(s) − g(s)⊙ε, a noise gain)
    # exploration over the noise temperature (lpds/lpds-a): each collected chunk decodes ε·c with c ~ U(lo, hi),
    # so the replay holds the same kinds of states at several noise levels and the critic sees what the noise
    # level does; the actor still optimises E over ε ~ N(0, I), which is what is deployed. None: plain ε.
    explore_eps_scale: list[float] | None = None
    # image bases (lpds/lpds-a): the critic reads the simulator's state vector instead of the image features (an
    # asymmetric actor-critic: the deployed perturbation still sees only what the robot's camera and joints give)
    critic_state: bool = False
    actor_avg_rate: float = 0.0  # lpds/lpds-a: evaluate/export a Polyak average of Δθ's weights (rate per update)
    action_magnitude: float = 1.5
    hidden: int = 256
    buffer_capacity: int = 200_000
    vector: str = "async"  # async: one process per env (RAI PhysX crashes with several envs in one process)
    threads: int = 1

    def check(self) -> "SteerConfig":
        if self.algo not in ALGOS:
            raise runs.ConfigError(f"algo={self.algo!r} is not valid; choose one of {', '.join(ALGOS)}")
        if not self.base:
            raise runs.ConfigError("no base run: pass --base RUN (a finished `lpds train-base` run folder)")
        if self.task and self.task not in TASKS:
            raise runs.ConfigError(f"task={self.task!r} is not valid; choose one of {', '.join(TASKS)}")
        if self.vector not in ("sync", "async"):
            raise runs.ConfigError(f"vector={self.vector!r} is not valid; choose sync or async")
        if self.explore_eps_scale is not None:
            lo_hi = list(self.explore_eps_scale)
            if len(lo_hi) != 2 or not 0 <= float(lo_hi[0]) <= float(lo_hi[1]):
                raise runs.ConfigError(f"explore_eps_scale must be [lo, hi] with 0 <= lo <= hi, got {lo_hi}")
            if self.algo not in ("lpds", "lpds-a"):
                raise runs.ConfigError(f"explore_eps_scale applies to lpds/lpds-a (they decode ε + Δ); {self.algo} "
                                       f"samples its own noise: remove the key")
            self.explore_eps_scale = [float(v) for v in lo_hi]
        if self.critic_state and self.algo not in ("lpds", "lpds-a"):
            raise runs.ConfigError(f"critic_state applies to lpds/lpds-a; {self.algo} has no asymmetric critic")
        if not 0 <= self.actor_avg_rate <= 1:
            raise runs.ConfigError(f"actor_avg_rate must be in [0, 1] (0 = off), got {self.actor_avg_rate}")
        if self.actor_avg_rate and self.algo not in ("lpds", "lpds-a"):
            raise runs.ConfigError(f"actor_avg_rate applies to lpds/lpds-a; {self.algo} has no perturbation")
        if self.eps_form not in ("mlp", "shrink"):
            raise runs.ConfigError(f"eps_form={self.eps_form!r} is not valid; choose mlp or shrink")
        if not self.delta > 0:
            raise runs.ConfigError(f"delta must be > 0, got {self.delta}")
        for name in ("env_steps", "n_envs", "eval_every", "ckpt_every", "batch_size", "utd", "threads",
                     "eval_trials_per_cell", "final_trials_per_cell"):
            if int(getattr(self, name)) < 1:
                raise runs.ConfigError(f"{name} must be >= 1, got {getattr(self, name)}")
        return self

    def agent_config(self) -> dict[str, Any]:
        return {"hidden": (self.hidden, self.hidden), "critic_hidden": (self.hidden, self.hidden),
                "lr_actor": self.lr_actor, "lr_critic": self.lr_critic, "tau": self.tau, "gamma": self.gamma,
                "batch_size": self.batch_size, "utd": self.utd, "warmup_steps": self.warmup_steps,
                "buffer_capacity": self.buffer_capacity, "delta": self.delta, "eta_lambda": self.eta_lambda,
                "tr_norm": self.tr_norm, "use_eps": self.use_eps, "eps_form": self.eps_form,
                "action_magnitude": self.action_magnitude, "critic_obs": PRIVILEGED_KEY if self.critic_state else None,
                "actor_avg_rate": self.actor_avg_rate,
                "num_threads": self.threads}


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
    from lpds_core.chunking import bootstrap_discount
    from tqdm import tqdm

    from lpds_sim.curves import plot_steer_curves
    from lpds_sim.evaluation import evaluate_grid, info_at, make_env, make_train_envs

    cfg.check()
    torch.set_num_threads(cfg.threads)
    backbone, base_cfg = load_base(cfg.base, cfg.task or None)
    cfg.task = base_cfg["task"]
    image = base_cfg["obs"] == "image"
    if cfg.critic_state and not image:
        raise runs.ConfigError("critic_state is for image bases; with state observations the critic already reads "
                               "the state: remove --critic-state")
    run = runs.RunDir.open(out, cfg, resume=resume, kind="steer",
                           must_match=("task", "algo", "delta", "base", "n_envs", "tr_norm", "use_eps", "eps_form",
                                       "hidden", "critic_state", "actor_avg_rate"))
    if run.is_done():
        print(f"steer run {out} already finished; nothing to do")
        return run.summary()

    torch.manual_seed(cfg.seed)
    np.random.seed(cfg.seed)
    env_kwargs = {"privileged_state": True} if cfg.critic_state else {}
    envs, obs_space, act_space = make_train_envs(cfg.task, base_cfg["obs"], cfg.n_envs, backbone.horizon,
                                                 cfg.gamma, cfg.seed, vector=cfg.vector, **env_kwargs)
    eval_env = make_env(cfg.task, base_cfg["obs"])  # one for the whole run, reused by every evaluation
    agent = make_agent(cfg.algo, backbone, obs_space=obs_space, action_space=act_space, config=cfg.agent_config())
    replay = ReplayBuffer(min(cfg.buffer_capacity, cfg.env_steps), backbone.noise_shape, seed=cfg.seed)
    # image observations go into the replay as the frozen encoder's features (exact: the encoder never changes),
    # plus the privileged state for the critic: ≈ 100 kB less per transition and no CNN pass per update
    keep = (PRIVILEGED_KEY,) if cfg.critic_state else ()
    encode = (lambda o: agent.encoded(o, keep)) if image else (lambda o: o)  # a batch of observations
    encode_one = (lambda o: _row(encode(_stack_obs([o])), 0)) if image else (lambda o: o)
    print(f"steering {cfg.task} with {agent.describe()}; δ={cfg.delta} ({cfg.tr_norm} norm), "
          f"{cfg.env_steps} env steps on {cfg.n_envs} envs")

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
                            trials_per_cell=trials_per_cell, seed=10_000 + cfg.seed, out=out_dir, env=eval_env)
        agent.train()
        return res

    # the env is reset on resume: a half-finished episode is the only thing a kill loses besides the interval
    obs, _ = envs.reset(seed=cfg.seed + 7919 * (env_steps // max(cfg.ckpt_every, 1)))
    obs = encode(obs)
    ep_ret = np.zeros(cfg.n_envs)
    recent_returns: list[float] = []
    recent_success: list[float] = []
    next_eval = (env_steps // cfg.eval_every + 1) * cfg.eval_every if env_steps else 0
    next_ckpt = (env_steps // cfg.ckpt_every + 1) * cfg.ckpt_every
    t0 = time.perf_counter()
    bar = tqdm(total=cfg.env_steps, initial=env_steps, desc=f"{cfg.algo} δ={cfg.delta}", unit="step",
               disable=not progress, dynamic_ncols=True)
    stats: dict[str, float] = {}
    while env_steps < cfg.env_steps:
        if env_steps >= next_eval:
            res = evaluate(cfg.eval_trials_per_cell)
            log.log(env_steps, "eval", success=res["success_rate"], **{"return": res["mean_return"]})
            bar.set_postfix(success=f"{res['success_rate']:.2f}")
            next_eval += cfg.eval_every
        eps_scale = None if cfg.explore_eps_scale is None else np.random.uniform(*cfg.explore_eps_scale, cfg.n_envs)
        if env_steps < cfg.warmup_steps:  # warm-up: the base policy itself, w ~ N(0, I)
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
        for i in range(cfg.n_envs):
            done = bool(term[i] or trunc[i])
            nxt = encode_one(info["final_obs"][i]) if done else _row(next_obs, i)
            n_i = int(info_at(info, "chunk_steps", i, done, backbone.horizon))
            replay.add(_row(obs, i), chunk[i], noise[i], float(reward[i]), nxt,
                       float(info_at(info, "chunk_discount", i, done, bootstrap_discount(cfg.gamma, n_i))), bool(term[i]))
            ep_ret[i] += float(info_at(info, "chunk_return_undiscounted", i, done, reward[i]))
            step_inc += n_i
            if done:
                episodes += 1
                recent_returns.append(float(ep_ret[i]))
                recent_success.append(float(bool(info_at(info, "success", i, done, False))))
                ep_ret[i] = 0.0
        obs = next_obs
        env_steps += step_inc
        chunks_seen += cfg.n_envs
        bar.update(step_inc)
        if env_steps >= cfg.warmup_steps and len(replay) >= cfg.batch_size:
            for _ in range(cfg.utd * cfg.n_envs):
                stats = agent.update(replay.sample(cfg.batch_size))
                updates += 1
            if chunks_seen % (10 * cfg.n_envs) == 0 and stats:
                extra = {}
                if recent_returns:
                    extra["episode_return"] = float(np.mean(recent_returns[-20:]))
                    extra["episode_success"] = float(np.nanmean(recent_success[-20:]))
                log.log(env_steps, "train", **{_tb_name(k): v for k, v in stats.items()},
                        delta=cfg.delta, **extra)
        if env_steps >= next_ckpt:
            log.flush()
            checkpoint()
            next_ckpt += cfg.ckpt_every
    bar.close()
    res = evaluate(cfg.eval_trials_per_cell)
    log.log(env_steps, "eval", success=res["success_rate"], **{"return": res["mean_return"]})
    checkpoint()
    envs.close()
    eval_env.close()
    torch.save(agent.state_dict(), Path(out) / "agent.pt")
    log.close()
    plot_steer_curves(out)
    summary = {"task": cfg.task, "algo": cfg.algo, "delta": cfg.delta, "env_steps": env_steps, "episodes": episodes,
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
