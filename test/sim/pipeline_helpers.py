"""Shared helpers for the pipeline tests (not a conftest, so other test files are unaffected)."""
from __future__ import annotations

from pathlib import Path

import torch

from lpds_sim import runs


def make_base_run(root: Path, task: str = "pick_place", obs: str = "state") -> Path:
    """A finished base run holding an (untrained) flow backbone with fitted normalisers: enough for steering.
    obs="image": an 84×84 RGB-D encoder + the 8 proprio values, as the RAI image envs give them."""
    from lpds_core.checkpoint import save_backbone
    from lpds_core.flow_matching import FlowMatchingPolicy

    from lpds_sim.train_base import BaseConfig, BCConfig, backbone_path

    torch.manual_seed(0)
    if obs == "image":
        pol = FlowMatchingPolicy(8, 4, 4, obs_type="image", image_size=(84, 84), embed_dim=16, hidden=32,
                                 n_layers=1, num_steps=2)
        fit_obs = {"rgb": torch.zeros(64, 3, 84, 84, dtype=torch.uint8), "depth": torch.ones(64, 1, 84, 84),
                   "proprio": torch.randn(64, 8)}
    else:
        pol = FlowMatchingPolicy(18, 4, 4, hidden=64, n_layers=2, num_steps=3)
        fit_obs = torch.randn(64, 18)
    pol.fit_normalizers(fit_obs, torch.rand(64, 4, 4) * 2 - 1)
    run = runs.RunDir.open(root, BaseConfig(task=task, data="none.hdf5", obs=obs, bc=BCConfig(horizon=4)), resume=False,
                           kind="base")
    save_backbone(pol, backbone_path(root), extra={"task": task, "obs": obs})
    run.mark_done(test=True)
    return root


def make_steer_run(root: Path, base: Path, seed: int = 1, algo: str = "lpds") -> Path:
    """A finished steer run folder as train-steer leaves it; for lpds with a perturbation that is clearly not zero."""
    from lpds_core.agents import make_agent
    from lpds_core.checkpoint import load_backbone

    from lpds_sim.evaluation import make_env
    from lpds_sim.train_base import backbone_path
    from lpds_sim.train_steer import SteerConfig

    cfg = runs.config_from_dict(SteerConfig, {"base": str(base), "task": "pick_place", "algo": algo, "delta": 0.5,
                                              "env_steps": 10, "warmup_steps": 0, "hidden": [64, 64],
                                              "critic_hidden": [64, 64]})
    run = runs.RunDir.open(root, cfg, resume=False, kind="steer")
    env = make_env("pick_place", "state")
    agent = make_agent(algo, load_backbone(backbone_path(base)), obs_space=env.observation_space,
                       action_space=env.action_space, config=cfg.agent)
    env.close()
    torch.manual_seed(seed)
    with torch.no_grad():
        for p in (agent.perturbation.parameters() if algo == "lpds" else ()):
            p.normal_(0, 0.3)
    torch.save(agent.state_dict(), run.root / "agent.pt")
    run.mark_done(env_steps=10)
    return run.root


def write_tiny_demos(path: Path, n: int = 2, steps: int = 6, act_dim: int = 4, state_dim: int = 18,
                     task: str = "pick_place", obs_key: str = "state", bad: tuple[int, str] | None = None) -> Path:
    """A small state-observation demo file as `lpds demos` writes it; `bad=(i, key)` puts a NaN into demo i's
    `key` ('actions' or the observation key)."""
    import numpy as np

    from lpds_sim.demos_io import Episode, write_demos

    rng = np.random.default_rng(0)
    eps = []
    for i in range(n):
        obs = {obs_key: rng.normal(size=(steps, state_dim)).astype(np.float32)}
        act = rng.uniform(-1, 1, (steps, act_dim)).astype(np.float32)
        if bad is not None and bad[0] == i:
            (act if bad[1] == "actions" else obs[bad[1]])[steps // 2, 0] = np.nan
        eps.append(Episode(obs, act, np.zeros(steps, np.float32), np.arange(steps) == steps - 1))
    write_demos(path, eps, {"task": task, "env_kwargs": {"obs_mode": "state"}}, {"task": task, "n_demos": n})
    return path
