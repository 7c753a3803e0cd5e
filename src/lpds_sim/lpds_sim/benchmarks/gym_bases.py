"""The frozen base policies of the Gym benchmark: a flow-matching and a DDIM diffusion base per task.

Like DPPO's released checkpoints, every benchmark run of a task starts from the same shipped base, trained once
with the project's BC on that task's medium dataset. Both kinds share the chunk backbone (`ChunkPolicy`: the same
conditional MLP, 3×512), so their parameter counts are equal by construction (a test checks it); DPPO's Gym
pretraining uses the same width, chunk 4 and T = 20 denoising steps, and DSRL samples those bases with 5 DDIM
steps. Shipped files: `weights/<task>_<kind>_base.safetensors` beside a JSON with their evaluation.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from lpds_core.config import setting
from lpds_core.errors import ConfigError

KINDS = ("flow", "diffusion")
WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"


@dataclass
class GymBaseConfig:
    """BC of one Gym base policy (`lpds datasets base`); the defaults made the shipped files."""

    kind: str = setting("flow", "backbone: flow matching or DDIM diffusion", choices=KINDS)
    horizon: int = setting(4, "action chunk length H (DPPO's and DSRL's Gym chunk)", min=1)
    num_steps: int = setting(5, "sampler steps K of the decoder (DSRL: 5 DDIM steps for Gym)", min=1)
    num_train_steps: int = setting(20, "diffusion training steps T (DPPO's Gym bases: 20; diffusion only)", min=1)
    hidden: int = setting(512, "width of the conditional MLP (DPPO's Gym bases: 3×512)", min=1)
    n_layers: int = setting(3, "hidden layers of the conditional MLP", min=1)
    bc_steps: int = setting(30_000, "BC gradient steps", min=1)
    batch_size: int = setting(256, "BC minibatch size", min=1)
    lr: float = setting(1e-3, "BC Adam step size (DPPO's Gym pretraining: 1e-3)", above=0)
    seed: int = setting(0, "seed of the BC minibatches and the network's initialisation", min=0)
    eval_episodes: int = setting(20, "episodes of the base's evaluation written beside it", min=1)


def base_name(task: str, kind: str) -> str:
    return f"{task}_{kind}_base"


def shipped_base(task: str, kind: str) -> Path:
    """Where the shipped base of (task, kind) lives in the package (it may not exist yet)."""
    if kind not in KINDS:
        raise ConfigError(f"unknown base kind {kind!r}; choose one of {', '.join(KINDS)}")
    return WEIGHTS_DIR / f"{base_name(task, kind)}.safetensors"


def build_model(obs_dim: int, act_dim: int, cfg: GymBaseConfig) -> Any:
    from lpds_core.diffusion import DiffusionPolicy
    from lpds_core.flow_matching import FlowMatchingPolicy

    common = dict(hidden=cfg.hidden, n_layers=cfg.n_layers, num_steps=cfg.num_steps)
    if cfg.kind == "flow":
        return FlowMatchingPolicy(obs_dim, act_dim, cfg.horizon, **common)
    return DiffusionPolicy(obs_dim, act_dim, cfg.horizon, num_train_steps=cfg.num_train_steps, **common)


def train_gym_base(task_name: str, cfg: GymBaseConfig, out: str | Path, dataset: str | None = None,
                   overwrite: bool = False, progress: bool = True) -> dict[str, Any]:
    """Train (task, cfg.kind) on the medium dataset (or `dataset`), save it to `out` with an evaluation JSON."""
    import torch
    from lpds_core.bc import make_chunks, train_bc
    from lpds_core.checkpoint import save_backbone
    from lpds_core.errors import RunError

    from .datasets import dataset_id, load_episodes
    from .gym_tasks import get_task

    task = get_task(task_name)
    out = Path(out)
    if out.exists() and not overwrite:
        raise RunError(f"{out} already exists; pass --overwrite to replace it, or choose another --out")
    did = dataset or dataset_id(task, "medium")
    episodes = load_episodes(did)
    obs, chunks = make_chunks([{"obs": ep["observations"], "actions": ep["actions"]} for ep in episodes],
                              cfg.horizon, where=did)
    torch.manual_seed(cfg.seed)
    model = build_model(obs.shape[1], chunks.shape[2], cfg)
    losses = train_bc(model, obs, chunks, steps=cfg.bc_steps, batch_size=cfg.batch_size, lr=cfg.lr,
                      progress=progress, seed=cfg.seed, threads=None)
    model.freeze()
    ev = evaluate_base(task.name, model, cfg.eval_episodes, seed=20_000)
    meta = {"task": f"gym_{task.name}", "dataset": did, "transitions": int(len(obs)),
            "n_params": int(sum(p.numel() for p in model.parameters())), "bc": cfg.__dict__,
            "final_bc_loss": float(np.mean(losses[-100:])), "eval_return": ev["return"],
            "eval_return_std": ev["return_std"], "eval_normalized": task.normalized(ev["return"]),
            "eval_episodes": cfg.eval_episodes}
    out.parent.mkdir(parents=True, exist_ok=True)
    save_backbone(model, out, extra={"task": f"gym_{task.name}", "dataset": did, "kind": cfg.kind})
    out.with_suffix(".json").write_text(json.dumps(meta, indent=2) + "\n")
    return meta


def evaluate_base(task_name: str, model: Any, n_episodes: int, seed: int, exec_steps: int | None = None
                  ) -> dict[str, Any]:
    """Return of the base as sampled (w ~ N(0, I)) over seeded episodes."""
    import torch
    from lpds_core.evaluation import evaluate_chunks

    from .experts import make_env
    from .gym_tasks import get_task

    task = get_task(task_name)
    h, a = model.noise_shape

    @torch.no_grad()
    def act(obs: np.ndarray) -> np.ndarray:
        o = torch.as_tensor(obs, dtype=torch.float32)
        return np.clip(model.decode(o, torch.randn(len(o), h, a)).numpy(), -1.0, 1.0)

    torch.manual_seed(seed)
    return evaluate_chunks(lambda: make_env(task), act, n_episodes, seed, exec_steps=exec_steps)
