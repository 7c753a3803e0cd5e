"""`lpds train-base`: behaviour cloning of a frozen backbone on teleoperated demos, as a resumable run.

Training is `lpds_core.bc.train_bc`; this module owns the run around it: the demo file, the run folder, periodic
checkpoints of model + optimiser + RNG through train_bc's callback, and `--resume`.
"""
from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Any

import numpy as np

from lpds_core.config import nested, setting, validate

from lpds_sim import runs

TASKS = ("pick_place", "mug_hang")
BACKBONES = ("flow", "diffusion")
OBS_MODES = ("state", "image")


def obs_keys(obs_mode: str) -> tuple[str, ...]:
    """The observation keys BC reads from each demo's obs/ group (the image encoder's own list for images)."""
    from lpds_core.encoders import IMAGE_KEYS

    return tuple(IMAGE_KEYS) if obs_mode == "image" else ("state",)


@dataclasses.dataclass
class BCConfig:
    """The base policy and its behaviour cloning (shared by `lpds train-base` and `lpds pipeline`)."""

    backbone: str = setting("flow", "generative backbone: flow matching or diffusion (DDIM)", choices=BACKBONES)
    horizon: int = setting(8, "H: action-chunk length", min=1)
    num_steps: int = setting(10, "K: Euler (flow) / DDIM (diffusion) decoding steps", min=1)
    bc_hidden: int = setting(256, "width of the backbone's MLP", min=1)
    n_layers: int = setting(3, "layers of the backbone's MLP", min=1)
    embed_dim: int = setting(64, "image embedding size (image observations only)", min=1)
    image_shift: int = setting(4, "image obs: random shift of ±N pixels per BC minibatch (0 = off)", min=0)
    bc_steps: int = setting(4000, "behaviour-cloning gradient steps", min=1)
    bc_batch_size: int = setting(256, "behaviour-cloning minibatch size", min=1)
    bc_lr: float = setting(3e-4, "behaviour-cloning AdamW step size", above=0)
    weight_decay: float = setting(1e-6, "behaviour-cloning AdamW weight decay", min=0)


@dataclasses.dataclass
class BaseConfig:
    """`lpds train-base`: the run's own settings; the backbone and BC settings are the `bc:` section."""

    task: str = setting("pick_place", "task the demos were recorded on", choices=TASKS)
    data: str = setting("", "demo file from `lpds demos` (robomimic-style HDF5)")
    obs: str = setting("state", "observation mode", choices=OBS_MODES)
    seed: int = setting(0, "seed of the networks and minibatches", min=0)
    ckpt_every: int = setting(500, "gradient steps between checkpoints", min=1)
    log_every: int = setting(50, "gradient steps between logged losses", min=1)
    threads: int = setting(1, "torch CPU threads (the machine is shared)", min=1)
    bc: BCConfig = nested(BCConfig)

    @classmethod
    def legacy_keys(cls, data: dict[str, Any]) -> dict[str, Any]:
        """Base-run configs written before the schema (grad_steps, batch_size, lr, hidden) read as today's."""
        data = dict(data)
        for old, new in (("grad_steps", "bc_steps"), ("batch_size", "bc_batch_size"), ("lr", "bc_lr"),
                         ("hidden", "bc_hidden")):
            if old in data:
                data.setdefault(new, data.pop(old))
        return data

    def check(self) -> "BaseConfig":
        if not self.data:
            raise runs.ConfigError("no demonstration file: pass --data FILE.hdf5 (make one with `lpds demos`)")
        if not Path(self.data).is_file():
            raise runs.DataError(f"demonstration file {self.data} does not exist; check --data, or make one with "
                                 f"`lpds demos --task {self.task} --out {self.data}`")
        return self


# ----------------------------------------------------------------------------------------------------------------
def load_dataset(cfg: BaseConfig) -> tuple[Any, Any, dict[str, Any]]:
    """Demos → (observations, action chunks (N, H, A), demo-file metadata) as torch tensors."""
    import torch
    from lpds_core.bc import make_chunks

    from lpds_sim.demos_io import load_demos

    demos = load_demos(cfg.data)
    meta = dict(demos.meta)
    env_args = meta.get("env_args") or {}
    file_task = meta.get("task", env_args.get("task"))
    if file_task is not None and file_task != cfg.task:
        raise runs.ConfigError(f"{cfg.data} holds demos for task '{file_task}', but --task is '{cfg.task}'")
    file_obs = (env_args.get("env_kwargs") or {}).get("obs_mode")
    if file_obs is not None and file_obs != cfg.obs:
        raise runs.ConfigError(f"{cfg.data} holds '{file_obs}' observations, but --obs is '{cfg.obs}'; "
                               f"record demos with `lpds demos --obs {cfg.obs}`")
    check_layout(cfg, demos)
    keys = obs_keys(cfg.obs)
    episodes = [((ep.obs["state"] if cfg.obs == "state" else {k: ep.obs[k] for k in keys}), ep.actions)
                for ep in demos]
    obs, chunks = make_chunks(episodes, cfg.bc.horizon, names=[ep.name for ep in demos],
                              where=f"demo file {cfg.data}", obs_name="state")
    if isinstance(obs, dict):
        obs_t: Any = {k: torch.as_tensor(v) for k, v in obs.items()}
        obs_t = {k: (v if v.dtype == torch.uint8 else v.float()) for k, v in obs_t.items()}
    else:
        obs_t = torch.as_tensor(obs).float()
    return obs_t, torch.as_tensor(chunks, dtype=torch.float32), meta


def task_spaces(task: str) -> tuple[int, int]:
    """(action size, state size) of the task's env (a state env: cheap, no camera)."""
    from lpds_sim.evaluation import make_env

    env = make_env(task, "state")
    try:
        return int(env.action_space.shape[0]), int(env.observation_space.shape[0])
    finally:
        env.close()


def check_layout(cfg: BaseConfig, demos: Any) -> None:
    """The demos' observation keys and sizes and action size against --obs and the task (DataError naming the
    keys found and expected), before any training time is spent."""
    want = obs_keys(cfg.obs)
    act_dim, state_dim = task_spaces(cfg.task)
    for ep in demos:
        missing = [k for k in want if k not in ep.obs]
        if missing:
            raise runs.DataError(f"demo file {cfg.data}: {ep.name} has observation keys {sorted(ep.obs)}, but --obs "
                                 f"{cfg.obs} needs {list(want)}; record demos with `lpds demos --obs {cfg.obs}` or "
                                 f"pass the --obs they were recorded with")
        a = np.shape(ep.actions)
        if len(a) != 2 or a[1] != act_dim:
            raise runs.DataError(f"demo file {cfg.data}: {ep.name} has actions of shape {a}, but task '{cfg.task}' "
                                 f"takes actions of size {act_dim}; record demos for this task with "
                                 f"`lpds demos --task {cfg.task}`")
        if cfg.obs == "state" and np.shape(ep.obs["state"])[1:] != (state_dim,):
            raise runs.DataError(f"demo file {cfg.data}: {ep.name} has 'state' of shape "
                                 f"{np.shape(ep.obs['state'])}, but task '{cfg.task}' gives states of size "
                                 f"{state_dim}; record demos for this task with `lpds demos --task {cfg.task}`")


def build_backbone(cfg: BaseConfig, obs_dim: int, act_dim: int, image_size: tuple[int, int] = (84, 84)):
    if cfg.bc.backbone == "flow":
        from lpds_core.flow_matching import FlowMatchingPolicy as cls
    else:
        from lpds_core.diffusion import DiffusionPolicy as cls  # type: ignore[no-redef]
    return cls(obs_dim, act_dim, cfg.bc.horizon, obs_type=cfg.obs, image_size=image_size, embed_dim=cfg.bc.embed_dim,
               hidden=cfg.bc.bc_hidden, n_layers=cfg.bc.n_layers, num_steps=cfg.bc.num_steps)


def backbone_path(run: str | Path) -> Path:
    return Path(run) / "backbone.safetensors"


def train_base(cfg: BaseConfig, out: str | Path, resume: bool = False, progress: bool = True) -> dict[str, Any]:
    """Train (or resume) a base run in `out`; returns the summary written to done.json."""
    import torch
    from lpds_core.checkpoint import save_backbone
    from lpds_core.bc import train_bc

    from lpds_sim.curves import plot_base_curve

    validate(cfg)
    torch.set_num_threads(cfg.threads)
    must_match = ("task", "backbone", "obs", "horizon", "num_steps", "bc_hidden", "n_layers", "seed", "ckpt_every")
    if resume and runs.RunDir(out).is_done() and backbone_path(out).is_file():
        run = runs.RunDir.open(out, cfg, resume=True, kind="base", must_match=must_match)
        print(f"base run {out} already finished; nothing to do")
        return run.summary()
    obs, chunks, demo_meta = load_dataset(cfg)  # bad data fails here, before the run folder is touched
    run = runs.RunDir.open(out, cfg, resume=resume, kind="base", must_match=must_match)
    n = chunks.shape[0]
    act_dim = chunks.shape[-1]
    if isinstance(obs, dict):
        obs_dim = int(obs["proprio"].shape[-1])
        image_size = tuple(int(s) for s in obs["rgb"].shape[-2:])
    else:
        obs_dim, image_size = int(obs.shape[-1]), (84, 84)
    torch.manual_seed(cfg.seed)
    np.random.seed(cfg.seed)
    policy = build_backbone(cfg, obs_dim, act_dim, image_size)  # type: ignore[arg-type]
    policy.fit_normalizers(obs, chunks)
    opt = torch.optim.AdamW(policy.parameters(), lr=cfg.bc.bc_lr, weight_decay=cfg.bc.weight_decay)

    ck = run.checkpointer()
    step = 0
    state = ck.load_latest() if resume else None
    if state is not None:
        policy.load_state_dict(state["model"])
        opt.load_state_dict(state["optim"])
        runs.set_rng_state(state["rng"])
        step = int(state["step"])
        print(f"resumed {out} at gradient step {step} from {ck.latest()}")
    log = runs.ScalarLog(out, resume_step=step if state is not None else None)

    def checkpoint() -> None:
        ck.save(step, {"model": policy.state_dict(), "optim": opt.state_dict(), "rng": runs.rng_state()})

    t0 = time.perf_counter()
    window: list[float] = []

    def on_step(i: int, loss: float) -> None:  # i: index of the step just taken
        nonlocal step
        step = i + 1
        window.append(loss)
        if step % cfg.log_every == 0:
            log.log(step, "train", loss=float(np.mean(window)))
            window.clear()
        if step % cfg.ckpt_every == 0 and step < cfg.bc.bc_steps:
            log.flush()
            checkpoint()

    losses = train_bc(policy, obs, chunks, cfg.bc.bc_steps, batch_size=cfg.bc.bc_batch_size, lr=cfg.bc.bc_lr,
                      progress=progress, callback=on_step, optimizer=opt, fit_normalizers=False,
                      start_step=step, seed=cfg.seed, threads=cfg.threads,
                      image_shift=cfg.bc.image_shift if cfg.obs == "image" else 0)
    policy.eval()
    meta = {"task": cfg.task, "obs": cfg.obs, "backbone": cfg.bc.backbone, "demos": runs.relative_to_run(out, cfg.data),
            "env_kwargs": (demo_meta.get("env_args") or {}).get("env_kwargs"), "n_chunks": int(n),
            "n_demos": int(demo_meta.get("n_demos", 0)) or None}
    save_backbone(policy, backbone_path(out), extra=meta)
    checkpoint()
    log.close()
    plot_base_curve(out)
    summary = {"task": cfg.task, "backbone": cfg.bc.backbone, "obs": cfg.obs, "grad_steps": step,
               "final_loss": float(np.mean(losses[-cfg.log_every:])) if losses else None,
               "train_seconds_this_session": time.perf_counter() - t0, "n_chunks": int(n),
               "backbone_file": backbone_path(out).name}
    run.mark_done(**summary)
    return summary
