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
