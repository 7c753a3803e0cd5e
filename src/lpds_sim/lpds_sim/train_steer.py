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
from lpds_core.training import LoopConfig, LoopState, run_steering

from lpds_sim import runs
from lpds_sim.rai.world import EMULATION, draws_physics, resolve_world
from lpds_sim.train_base import TASKS, backbone_path

ALGOS = ("lpds", "dsrl-na", "dsrl-sac", "lpds-a", "dppo")
PRIVILEGED_KEY = "state"  # the key `privileged_state=True` envs add to image observations (the critic's input)


@dataclasses.dataclass
class SteerConfig:
    """`lpds train-steer`: the run's own settings; the agent's (`agent:`) and the loop's (`train:`) are sections,
    each setting declared once (lpds_core.agents.AgentConfig, lpds_core.training.LoopConfig)."""

    base: str = setting("", "finished `lpds train-base` run folder")
    task: str | None = setting(None, "task; taken from the base run (given, it must match)", choices=TASKS)
    algo: str = setting("lpds", "steering algorithm", choices=ALGOS)
    world: str = setting(EMULATION, "world of the training envs and of the periodic grid evaluation (the best "
                         "checkpoint): emulation, randomised (domain randomisation: config/worlds/randomised.yaml) "
                         "or a world YAML file")
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
        if self.train.exec_steps is not None:
            raise runs.ConfigError(f"train.exec_steps={self.train.exec_steps}: the RAI grid protocol and the robot "
                                   f"execute whole chunks; leave it unset for train-steer (re-planning after k "
                                   f"steps is for `lpds bench` suites)")
        noise_steer = self.algo in ("lpds", "lpds-a")
        if self.train.explore_eps_scale is not None and not noise_steer:
            raise runs.ConfigError(f"explore_eps_scale applies to lpds/lpds-a (they decode ε + Δ); {self.algo} "
                                   f"samples its own noise: remove the key")
        if self.agent.critic_obs not in (None, PRIVILEGED_KEY):
            raise runs.ConfigError(f"critic_obs={self.agent.critic_obs!r}: train-steer's critic can read only "
                                   f"'{PRIVILEGED_KEY}' (the simulator state), or none")
        if self.agent.critic_obs and not noise_steer:
            raise runs.ConfigError(f"critic_obs applies to lpds/lpds-a; {self.algo} has no asymmetric critic")
        world = resolve_world(self.world)  # one line if it is neither a preset nor a readable world file
        if world is not None and self.train.vector != "async" and draws_physics(world):
            raise runs.ConfigError(f"world {self.world}: it draws new object/controller physics per episode, which "
                                   f"needs one env per process: use train.vector=async (--vector async)")
        if self.agent.actor_avg_rate and not noise_steer:
            raise runs.ConfigError(f"actor_avg_rate applies to lpds/lpds-a; {self.algo} has no perturbation")
        return self

    @property
    def critic_state(self) -> bool:
        """The critic reads the simulator state (image bases): the training envs must return it."""
        return self.agent.critic_obs == PRIVILEGED_KEY


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
class _RunSink:
    """The run folder as the loop's sink: scalars to TensorBoard + scalars.jsonl, checkpoints with the agent, the
    replay buffer and the RNG states beside the loop's counters."""

    def __init__(self, log: Any, ck: Any, agent: Any, replay: Any, delta: float):
        self.log_, self.ck, self.agent, self.replay, self.delta = log, ck, agent, replay, delta

    def log(self, step: int, group: str, values: dict[str, float]) -> None:
        if group == "train":
            self.log_.log(step, "train", **{_tb_name(k): v for k, v in values.items()}, delta=self.delta)
        elif group == "eval":
            self.log_.log(step, "eval", **values)

    def checkpoint(self, st: Any) -> None:
        self.log_.flush()
        self.ck.save(st.env_steps, {"agent": self.agent.state_dict(), "replay": replay_state(self.replay),
                                    "rng": runs.rng_state(), "episodes": st.episodes, "chunks": st.chunks,
                                    "updates": st.updates, "wall_s": st.wall_s})


def restore_checkpoint(state: dict[str, Any], agent: Any, replay: Any) -> LoopState:
    """Agent, replay buffer and RNG states from a `_RunSink` checkpoint; returns the loop's counters to go on from."""
    agent.load_state_dict(state["agent"])
    load_replay_state(replay, state["replay"])
    runs.set_rng_state(state["rng"])
    return LoopState(int(state["step"]), int(state["episodes"]), int(state["chunks"]), int(state["updates"]),
                     float(state.get("wall_s", 0.0)))


def train_steer(cfg: SteerConfig, out: str | Path, resume: bool = False, progress: bool = True) -> dict[str, Any]:
    """Steer (or resume steering) the base run `cfg.base` into run folder `out`; returns the done.json summary."""
    import torch
    from lpds_core.agents import make_agent
    from lpds_core.metrics import wilson_ci95
    from lpds_core.replay import ReplayBuffer

    from lpds_sim.curves import plot_steer_curves
    from lpds_sim.evaluation import check_policy_fits, evaluate_grid, make_env, make_train_envs

    validate(cfg)
    torch.set_num_threads(cfg.agent.threads)
    backbone, base_cfg = load_base(cfg.base, cfg.task or None)
    cfg.task = base_cfg["task"]
    image = base_cfg["obs"] == "image"
    if cfg.critic_state and not image:
        raise runs.ConfigError("critic_obs=state is for image bases; with state observations the critic already "
                               "reads the state: remove --critic-obs")
    run = runs.RunDir.open(out, cfg, resume=resume, kind="steer",
                           must_match=("task", "algo", "world", "delta", "base", "n_envs", "tr_norm", "use_eps", "eps_form",
                                       "hidden", "critic_hidden", "critic_obs", "actor_avg_rate",
                                       "seed", "gamma", "ckpt_every", "explore_eps_scale"))
    if run.is_done():
        done = run.summary()
        if int(done["env_steps"]) >= cfg.train.env_steps:
            print(f"steer run {out} already finished; nothing to do")
            return done
        # a larger budget on --resume extends the finished run from its last checkpoint (done.json is rewritten at
        # the end): no setting of the loop depends on the budget
        print(f"steer run {out} finished at {done['env_steps']} env steps; extending it to {cfg.train.env_steps}")

    torch.manual_seed(cfg.train.seed)
    np.random.seed(cfg.train.seed)
    train_world = resolve_world(cfg.world)
    world_kwargs = {"world": train_world} if train_world is not None else {}  # {}: today's emulation code path
    env_kwargs = {**({"privileged_state": True} if cfg.critic_state else {}), **world_kwargs}
    # one for the whole run, reused by every evaluation: the grid of the world the run trains in (its seeded trials
    # see the same draws at every evaluation), so the best checkpoint is chosen where it trains, never in reality
    eval_env = make_env(cfg.task, base_cfg["obs"], **world_kwargs)
    try:  # before any worker process starts
        check_policy_fits(eval_env, backbone.act_dim, None, f"base run {cfg.base}", cfg.task)
    except runs.UserError:
        eval_env.close()
        raise
    envs, obs_space, act_space = make_train_envs(cfg.task, base_cfg["obs"], cfg.train.n_envs, backbone.horizon,
                                                 cfg.agent.gamma, cfg.train.seed, vector=cfg.train.vector,
                                                 **env_kwargs)
    agent = make_agent(cfg.algo, backbone, obs_space=obs_space, action_space=act_space, config=cfg.agent)
    replay = ReplayBuffer(min(cfg.train.buffer_capacity, cfg.train.env_steps), backbone.noise_shape,
                          seed=cfg.train.seed)
    # image observations go into the replay as the frozen encoder's features (exact: the encoder never changes),
    # plus the privileged state for the critic: ≈ 100 kB less per transition and no CNN pass per update
    keep = (PRIVILEGED_KEY,) if cfg.critic_state else ()
    encode = (lambda o: agent.encoded(o, keep)) if image else None  # a batch of observations
    print(f"steering {cfg.task} with {agent.describe()}; δ={cfg.agent.delta} ({cfg.agent.tr_norm} norm), "
          f"{cfg.train.env_steps} env steps on {cfg.train.n_envs} envs"
          + (f" in world {train_world.world_name}" if train_world is not None else ""))

    ck = run.checkpointer()
    loop_state = LoopState()
    state = ck.load_latest() if resume else None
    if state is not None:
        loop_state = restore_checkpoint(state, agent, replay)
        print(f"resumed {out} at env step {loop_state.env_steps} ({len(replay)} transitions in replay) "
              f"from {ck.latest()}")
    log = runs.ScalarLog(out, resume_step=loop_state.env_steps if state is not None else None)
    sink = _RunSink(log, ck, agent, replay, cfg.agent.delta)
    final: dict[str, Any] = {}

    def evaluate(env_steps: int) -> dict[str, float]:
        """The task's grid with the current policy (eval_trials per cell), with the 95 % binomial interval."""
        agent.eval()
        res = evaluate_grid(cfg.task, base_cfg["obs"], lambda o: agent.act(o), backbone.horizon,
                            trials_per_cell=cfg.train.eval_trials, seed=10_000 + cfg.train.seed, env=eval_env)
        agent.train()
        final.update(res)
        ck.save_best(env_steps, res["success_rate"], {"agent": agent.state_dict()})  # RUN/checkpoints/best.pt
        lo, hi = wilson_ci95(res["n_success"], res["n_trials"])
        return {"success": res["success_rate"], "return": res["mean_return"], "successes": res["n_success"],
                "trials": res["n_trials"], "success_lo": lo, "success_hi": hi}

    t0 = time.perf_counter()
    loop_state = run_steering(envs, agent, cfg.train, replay, evaluate=evaluate, sink=sink, encode=encode,
                              state=loop_state, progress=progress, desc=f"{cfg.algo} δ={cfg.agent.delta}")
    res = final
    envs.close()
    eval_env.close()
    torch.save(agent.state_dict(), Path(out) / "agent.pt")
    log.close()
    plot_steer_curves(out)
    summary = {"task": cfg.task, "algo": cfg.algo, "delta": cfg.agent.delta, "env_steps": loop_state.env_steps,
               "episodes": loop_state.episodes, "updates": loop_state.updates,
               "final_success_periodic_eval": res["success_rate"], "final_return_periodic_eval": res["mean_return"],
               "train_seconds_this_session": time.perf_counter() - t0, "train_seconds": loop_state.wall_s,
               "base": runs.relative_to_run(out, cfg.base)}
    run.mark_done(**summary)
    return summary


def _tb_name(k: str) -> str:
    """Agent stat names → the names the curves read (λ and ‖Δ‖² have fixed names)."""
    return {"lam": "lambda", "lambda": "lambda", "constraint": "delta_sq", "delta_sq": "delta_sq",
            "delta_norm_sq": "delta_sq"}.get(k, k)
