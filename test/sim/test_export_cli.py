"""`lpds export` through the CLI: ONNX files with metadata, parity ≤ 1e-4 checked and recorded at export time."""
from __future__ import annotations

import json

import pytest
import torch

from lpds_sim import runs

pytest.importorskip("robotic")
pytest.importorskip("onnxruntime")


def _finished_steer_run(tmp_path, base):
    """A steer run folder as train-steer leaves it, with a perturbation that is clearly not zero."""
    from lpds_core.agents import make_agent
    from lpds_core.checkpoint import load_backbone

    from lpds_sim.evaluation import make_env
    from lpds_sim.train_base import backbone_path
    from lpds_sim.train_steer import SteerConfig

    cfg = runs.config_from_dict(SteerConfig, {"base": str(base), "task": "pick_place", "algo": "lpds", "delta": 0.5,
                                              "env_steps": 10, "warmup_steps": 0, "hidden": [64, 64],
                                              "critic_hidden": [64, 64]})
    run = runs.RunDir.open(tmp_path / "steer", cfg, resume=False, kind="steer")
    env = make_env("pick_place", "state")
    agent = make_agent("lpds", load_backbone(backbone_path(base)), obs_space=env.observation_space,
                       action_space=env.action_space, config=cfg.agent_config())
    env.close()
    torch.manual_seed(1)
    with torch.no_grad():
        for p in agent.perturbation.parameters():
            p.normal_(0, 0.3)
    torch.save(agent.state_dict(), run.root / "agent.pt")
    run.mark_done(env_steps=10)
    return run.root


def test_export_cli_parity_and_metadata(tmp_path, capsys):
    import onnx

    from lpds_sim.cli import main
    from lpds_sim.export_run import export_valid
    from pipeline_helpers import make_base_run

    base = make_base_run(tmp_path / "base")
    steer = _finished_steer_run(tmp_path, base)
    out = tmp_path / "onnx"
    assert main(["export", "--run", str(steer), "--out", str(out)]) == 0
    assert "max |torch − onnxruntime|" in capsys.readouterr().out
    parity = json.loads((out / "parity.json").read_text())
    assert parity["passed"] and parity["max_abs_diff"] <= 1e-4
    assert sorted(parity["files"]) == ["decoder.onnx", "perturbation.onnx"]
    assert export_valid(out)
    meta = json.loads({p.key: p.value for p in onnx.load(str(out / "decoder.onnx")).metadata_props}["lpds"])
    assert meta["task"] == "pick_place" and meta["algo"] == "lpds" and meta["delta"] == 0.5
    assert meta["horizon"] == 4 and meta["num_steps"] == 3 and "obs_spec" in meta

    # the exported policy is steered: it differs from the bare decoder on the same noise
    import numpy as np
    from lpds_core.onnx_policy import OnnxPolicy

    pol = OnnxPolicy(out)
    obs = np.zeros((1, 18), np.float32)
    eps = np.zeros((1, 4, 4), np.float32)
    assert np.abs(pol.act(obs, eps=eps) - pol.decode(obs, eps)).max() > 1e-3


def test_export_refuses_unfinished_run(tmp_path, capsys):
    from lpds_sim.cli import main
    from lpds_sim.train_steer import SteerConfig
    from pipeline_helpers import make_base_run

    base = make_base_run(tmp_path / "base")
    runs.RunDir.open(tmp_path / "steer", SteerConfig(base=str(base), task="pick_place"), resume=False, kind="steer")
    assert main(["export", "--run", str(tmp_path / "steer"), "--out", str(tmp_path / "o")]) == 2
    assert "not finished" in capsys.readouterr().err
