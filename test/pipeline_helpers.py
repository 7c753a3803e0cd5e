"""Shared helpers for the pipeline tests (not a conftest, so other test files are unaffected)."""
from __future__ import annotations

from pathlib import Path

import torch

from lpds_sim import runs


def make_base_run(root: Path, task: str = "pick_place") -> Path:
    """A finished base run holding an (untrained) flow backbone with fitted normalisers: enough for steering."""
    from lpds_core.checkpoint import save_backbone
    from lpds_core.flow_matching import FlowMatchingPolicy

    from lpds_sim.train_base import BaseConfig, backbone_path

    torch.manual_seed(0)
    pol = FlowMatchingPolicy(18, 4, 4, hidden=64, n_layers=2, num_steps=3)
    pol.fit_normalizers(torch.randn(64, 18), torch.rand(64, 4, 4) * 2 - 1)
    run = runs.RunDir.open(root, BaseConfig(task=task, data="none.hdf5", horizon=4), resume=False, kind="base")
    save_backbone(pol, backbone_path(root), extra={"task": task, "obs": "state"})
    run.mark_done(test=True)
    return root
