"""SAC experts for the Gym locomotion tasks, trained with the project's own SAC pieces.

The maths is not repeated here: the actor and the entropy temperature are `lpds_core.agents.sac_common`'s, the
twin critic, its TD target and the Polyak average are `lpds_core.critics`'. This module only wires them into the
plain (one action per step) SAC loop that D4RL used to make its datasets.

A training run lives in one folder: checkpoints/ (resumable: replay buffer, optimisers and every RNG), evals.jsonl
(one line per deterministic evaluation), snapshots/ (the actor at each evaluation) and, once an evaluation lands
within ±15 % of the task's medium target, medium.safetensors + medium.json (D4RL's "medium" policy).
Episodes are cut (truncated, so they still bootstrap) at every checkpoint, and the env is re-seeded there; that
makes a killed run restarted with the same command continue exactly as if it had never stopped.
"""
from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import save_file

from lpds_core import jsonio
from lpds_core.agents.sac_common import EntropyTemperature, TanhNoiseActor
from lpds_core.critics import TwinQ, td_target
from lpds_core.errors import CheckpointError, RunError
from lpds_core.replay import ReplayBuffer

from .. import runs
from .gym_tasks import MEDIUM_TOLERANCE, GymTask, get_task

POLICY_META_KEY = "lpds_gym_policy"


@dataclass
class SACConfig:
    """Standard SAC settings for MuJoCo locomotion (Haarnoja et al. 2018), UTD 1."""
    total_steps: int = 1_000_000
    replay_size: int = 1_000_000
    warmup_steps: int = 5_000  # uniform random actions before the first update
    batch_size: int = 256
    gamma: float = 0.99
    tau: float = 0.005
    lr: float = 3e-4
    hidden: tuple[int, ...] = (256, 256)
    alpha_init: float = 1.0
    eval_every: int = 5_000
    eval_episodes: int = 10
    checkpoint_every: int = 10_000
    seed: int = 0
    stop_at_medium: bool = True


class SACExpert:
    """Actor, twin critic and temperature of one plain SAC agent on (obs, action) vectors in [−1, 1]^A."""

    def __init__(self, obs_dim: int, act_dim: int, cfg: SACConfig):
        self.cfg = cfg
        self.actor = TanhNoiseActor(obs_dim, (1, act_dim), cfg.hidden, 1.0)
        self.critic = TwinQ(obs_dim, act_dim, cfg.hidden)
        self.temperature = EntropyTemperature(cfg.alpha_init, -float(act_dim))
        self.optimizers = {
            "actor": torch.optim.Adam(self.actor.parameters(), lr=cfg.lr),
            "critic": torch.optim.Adam(self.critic.online_parameters(), lr=cfg.lr),
            "alpha": torch.optim.Adam(self.temperature.parameters(), lr=cfg.lr),
        }

    @torch.no_grad()
    def act(self, obs: np.ndarray, deterministic: bool) -> np.ndarray:
        w, _ = self.actor(torch.as_tensor(obs, dtype=torch.float32).unsqueeze(0), deterministic)
        return w.reshape(-1).numpy()

    def update(self, batch: dict[str, torch.Tensor]) -> dict[str, float]:
        """One SAC step: soft TD for the critic, then the actor and α on the updated critic, then Polyak."""
        obs, nobs, action = batch["obs"], batch["next_obs"], batch["action"]
        alpha = self.temperature.alpha
        with torch.no_grad():
            a_next, logp_next = self.actor(nobs)
            y = td_target(batch["reward"], batch["discount"], batch["done"], *self.critic.target(nobs, a_next),
                          -alpha * logp_next)
        critic_loss = self.critic.loss(obs, action, y)
        self._step("critic", critic_loss)
        a, logp = self.actor(obs)
        q = torch.min(*self.critic(obs, a))
        actor_loss = (alpha * logp - q).mean()
        self._step("actor", actor_loss, list(self.actor.parameters()))  # no critic weight grads: ~15 % faster
        self._step("alpha", self.temperature.loss(logp))
        self.critic.polyak(self.cfg.tau)
        return {"critic_loss": float(critic_loss.detach()), "actor_loss": float(actor_loss.detach()),
                "alpha": float(alpha)}

    def _step(self, name: str, loss: torch.Tensor, inputs: list[torch.Tensor] | None = None) -> None:
        opt = self.optimizers[name]
        opt.zero_grad(set_to_none=True)
        loss.backward(inputs=inputs)
        opt.step()

    def state_dict(self) -> dict[str, Any]:
        return {"actor": self.actor.state_dict(), "critic": self.critic.state_dict(),
                "temperature": self.temperature.state_dict(),
                "optimizers": {k: o.state_dict() for k, o in self.optimizers.items()}}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.actor.load_state_dict(state["actor"])
        self.critic.load_state_dict(state["critic"])
        self.temperature.load_state_dict(state["temperature"])
        for k, o in self.optimizers.items():
            o.load_state_dict(state["optimizers"][k])


# ---------------------------------------------------------------------------------------------------------------
# the actor as a policy file (the shipped medium weights)
# ---------------------------------------------------------------------------------------------------------------
def save_policy(actor: TanhNoiseActor, path: str | os.PathLike, meta: dict[str, Any]) -> Path:
    """The actor's weights + a JSON header (task, dims, hidden sizes, eval return, steps), atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    header = {"obs_dim": actor.net[0].in_features, "act_dim": actor.dim, **meta}
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    save_file({k: v.detach().contiguous() for k, v in actor.state_dict().items()}, str(tmp),
              metadata={POLICY_META_KEY: jsonio.dumps(header)})
    os.replace(tmp, path)
    return path


def load_policy(path: str | os.PathLike) -> tuple[TanhNoiseActor, dict[str, Any]]:
    """(actor in eval mode, its header) from `save_policy`'s file."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"no policy file at '{path}': check the path, or train one (lpds datasets train-expert)")
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = json.loads((f.metadata() or {})[POLICY_META_KEY])
            state = {k: f.get_tensor(k) for k in f.keys()}
    except Exception as e:  # noqa: BLE001 - safetensors/json errors all mean a damaged or foreign file
        raise CheckpointError(f"'{path}' is not a readable LP-DS gym policy ({type(e).__name__}: {e}); "
                              f"re-copy it or retrain") from e
    actor = TanhNoiseActor(int(meta["obs_dim"]), (1, int(meta["act_dim"])), tuple(meta["hidden"]), 1.0)
    actor.load_state_dict(state)
    return actor.eval(), meta


# ---------------------------------------------------------------------------------------------------------------
# evaluation and training
# ---------------------------------------------------------------------------------------------------------------
EVAL_SEED = 1_000_000


def make_env(task: GymTask) -> Any:
    import gymnasium as gym

    env = gym.make(task.env_id)
    low, high = env.action_space.low, env.action_space.high
    if not (np.allclose(low, -1.0) and np.allclose(high, 1.0)):  # true for the three tasks; keeps the actor simple
        raise RunError(f"{task.env_id} has action bounds {low}..{high}; the SAC expert expects [-1, 1]")
    return env


def evaluate(act: Callable[[np.ndarray], np.ndarray], env: Any, episodes: int, seed: int = EVAL_SEED
             ) -> list[float]:
    """Returns of `episodes` episodes of `act`, episode i reset with seed + i (same start states every call)."""
    returns = []
    for i in range(episodes):
        obs, _ = env.reset(seed=seed + i)
        total, done = 0.0, False
        while not done:
            obs, r, term, trunc, _ = env.step(act(obs))
            total += float(r)
            done = term or trunc
        returns.append(total)
    return returns


def _segment_seed(seed: int, step: int) -> int:
    return int(seed) * 1_000_003 + int(step)


def train_expert(task_name: str, out: str | os.PathLike, cfg: SACConfig,
                 log: Callable[[str], None] = print) -> dict[str, Any]:
    """Train (or resume) a SAC expert in `out`; returns a summary. Same command on the same folder resumes."""
    task = get_task(task_name)
    out = Path(out)
    settings = {"task": task.name, **asdict(cfg)}
    ckpts = runs.Checkpointer(out / "checkpoints", keep=1)
    state = ckpts.load_latest()
    if state is None and out.exists() and any(out.iterdir()) and not (out / "settings.json").is_file():
        raise RunError(f"{out} exists and is not an expert training folder; pass an empty or new --out folder")
    out.mkdir(parents=True, exist_ok=True)
    if state is not None:
        saved = json.loads((out / "settings.json").read_text())
        changed = {k: (saved.get(k), v) for k, v in jsonio.to_jsonable(settings).items()
                   if k not in ("total_steps", "stop_at_medium") and saved.get(k) != v}
        if changed:
            raise RunError(f"{out} was trained with other settings {changed} (saved, given); use the same flags "
                           f"or a new --out folder")
    runs.atomic_write_json(out / "settings.json", settings)

    torch.manual_seed(cfg.seed)
    env, eval_env = make_env(task), make_env(task)
    obs_dim, act_dim = env.observation_space.shape[0], env.action_space.shape[0]
    agent = SACExpert(obs_dim, act_dim, cfg)
    rng = np.random.default_rng(cfg.seed)
    step, wall, medium = 0, 0.0, None
    if state is None:
        buf = ReplayBuffer(cfg.replay_size, (1, act_dim), seed=cfg.seed)
    else:
        step, wall, medium = int(state["step"]), float(state["wall_s"]), state.get("medium") or None
        agent.load_state_dict(state["agent"])
        buf = ReplayBuffer.load(str(out / "checkpoints" / f"replay_{step:010d}.npz"))
        runs.set_generator_state(buf.rng, state["replay_rng"])
        runs.set_generator_state(rng, state["rng"])
        runs.set_rng_state(state["global_rng"])
        _drop_evals_after(out / "evals.jsonl", step)  # a killed run re-does the evals after its checkpoint
        log(f"resumed {out} at step {step}")
    if medium is not None and cfg.stop_at_medium:
        log(f"{out}: medium snapshot already kept at step {medium['steps']} (return {medium['eval_return']:.1f})")
        return {"task": task.name, "steps": step, "wall_s": wall, "medium": medium}

    if state is None:  # a run killed before its first checkpoint starts again: its evals go too
        (out / "evals.jsonl").unlink(missing_ok=True)
    obs, _ = env.reset(seed=_segment_seed(cfg.seed, step))
    ep_ret, ep_rets = 0.0, []
    t0 = time.perf_counter()
    target, tol = task.medium_target, MEDIUM_TOLERANCE * task.medium_target
    while step < cfg.total_steps:
        if step < cfg.warmup_steps:
            action = rng.uniform(-1.0, 1.0, act_dim).astype(np.float32)
        else:
            action = agent.act(obs, deterministic=False)
        next_obs, r, term, trunc, _ = env.step(action)
        buf.add(obs, action[None], action[None], float(r), next_obs, cfg.gamma, bool(term))
        ep_ret += float(r)
        obs = next_obs
        if term or trunc:
            ep_rets.append(ep_ret)
            ep_ret = 0.0
            obs, _ = env.reset()
        if step >= cfg.warmup_steps:
            agent.update(buf.sample(cfg.batch_size))
        step += 1

        if step % cfg.eval_every == 0:
            agent.actor.eval()
            rets = evaluate(lambda o: agent.act(o, deterministic=True), eval_env, cfg.eval_episodes)
            elapsed = wall + time.perf_counter() - t0
            ev = {"steps": step, "eval_return": float(np.mean(rets)), "eval_std": float(np.std(rets)),
                  "train_return": float(np.mean(ep_rets[-10:])) if ep_rets else None,
                  "normalized": task.normalized(float(np.mean(rets))), "wall_s": elapsed,
                  "alpha": float(agent.temperature.alpha)}
            with open(out / "evals.jsonl", "a") as fh:
                fh.write(jsonio.dumps(ev) + "\n")
            meta = {"task": task.name, "env_id": task.env_id, "hidden": list(cfg.hidden), "seed": cfg.seed,
                    "eval_return": ev["eval_return"], "eval_std": ev["eval_std"],
                    "eval_episodes": cfg.eval_episodes, "steps": step, "wall_s": elapsed}
            save_policy(agent.actor, out / "snapshots" / f"actor_{step:010d}.safetensors", meta)
            log(f"{task.name} step {step}: eval {ev['eval_return']:.1f} ± {ev['eval_std']:.1f} "
                f"(target {target:.0f}), {step / max(elapsed, 1e-9):.0f} steps/s overall")
            if medium is None and abs(ev["eval_return"] - target) <= tol:
                medium = {**meta, "target": target, "tolerance": MEDIUM_TOLERANCE}
                save_policy(agent.actor, out / "medium.safetensors", medium)
                runs.atomic_write_json(out / "medium.json", medium)
                log(f"{task.name}: kept the medium snapshot at step {step} (return {ev['eval_return']:.1f})")
        if step % cfg.checkpoint_every == 0 or step == cfg.total_steps or (
                medium is not None and cfg.stop_at_medium and step % cfg.eval_every == 0):
            wall += time.perf_counter() - t0
            t0 = time.perf_counter()
            _save(ckpts, out, step, agent, buf, rng, wall, medium)
            obs, _ = env.reset(seed=_segment_seed(cfg.seed, step))  # cut the episode: resume == no stop
            ep_ret = 0.0
            if medium is not None and cfg.stop_at_medium:
                break
    wall += time.perf_counter() - t0
    return {"task": task.name, "steps": step, "wall_s": wall, "medium": medium}


def _drop_evals_after(path: Path, step: int) -> None:
    if path.is_file():
        lines = [ln for ln in path.read_text().splitlines() if ln and json.loads(ln)["steps"] <= step]
        runs.atomic_write_bytes(path, "".join(ln + "\n" for ln in lines).encode())


def _save(ckpts: runs.Checkpointer, out: Path, step: int, agent: SACExpert, buf: ReplayBuffer,
          rng: np.random.Generator, wall: float, medium: dict[str, Any] | None) -> None:
    folder = out / "checkpoints"
    folder.mkdir(parents=True, exist_ok=True)
    replay = folder / f"replay_{step:010d}.npz"
    buf.save(str(folder / f".replay_{step:010d}.tmp.npz"))
    os.replace(folder / f".replay_{step:010d}.tmp.npz", replay)
    ckpts.save(step, {"agent": agent.state_dict(), "replay_rng": runs.generator_state(buf.rng),
                      "rng": runs.generator_state(rng), "global_rng": runs.rng_state(), "wall_s": wall,
                      "medium": medium or {}})
    for old in folder.glob("replay_*.npz"):
        if old != replay:
            old.unlink(missing_ok=True)
