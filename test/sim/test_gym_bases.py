"""Gym benchmark bases: BC on a (tiny) medium dataset, matched flow/diffusion sizes, the gym suite's glue."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from lpds_core.agents.sac_common import TanhNoiseActor
from lpds_core.checkpoint import load_backbone
from lpds_core.errors import ConfigError, RunError
from lpds_sim.benchmarks.datasets import make_dataset
from lpds_sim.benchmarks.experts import save_policy
from lpds_sim.benchmarks.gym_bases import GymBaseConfig, build_model, train_gym_base
from lpds_sim.benchmarks.suites import get_suite


@pytest.fixture()
def tiny_dataset(tmp_path, monkeypatch):
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path / "minari"))
    torch.manual_seed(3)
    policy = save_policy(TanhNoiseActor(11, (1, 3), (32, 32), 1.0), tmp_path / "p.safetensors",
                         {"task": "hopper", "hidden": [32, 32], "eval_return": 1.0, "steps": 1})
    make_dataset("hopper-medium", n_steps=400, seed=0, policy_path=str(policy))
    return tmp_path


def test_flow_and_diffusion_bases_have_the_same_parameter_count():
    sizes = {kind: sum(p.numel() for p in build_model(17, 6, GymBaseConfig(kind=kind)).parameters())
             for kind in ("flow", "diffusion")}
    assert sizes["flow"] == sizes["diffusion"] > 500_000  # 3×512: DPPO's Gym pretraining width


@pytest.mark.parametrize("kind", ["flow", "diffusion"])
def test_base_trains_on_the_dataset_saves_and_reloads(tiny_dataset, kind):
    out = tiny_dataset / f"hopper_{kind}.safetensors"
    cfg = GymBaseConfig(kind=kind, hidden=64, bc_steps=30, batch_size=32, eval_episodes=2)
    meta = train_gym_base("hopper", cfg, out, progress=False)
    assert meta["dataset"] == "lpds/hopper/medium-v0" and meta["transitions"] == 400
    assert json.loads(out.with_suffix(".json").read_text())["eval_return"] == meta["eval_return"]
    model = load_backbone(out)
    assert model.kind == kind and model.noise_shape == (4, 3)
    with pytest.raises(RunError, match="already exists"):
        train_gym_base("hopper", cfg, out, progress=False)


def test_gym_suite_evaluates_a_base_and_normalises_like_d4rl(tiny_dataset):
    out = tiny_dataset / "b.safetensors"
    train_gym_base("hopper", GymBaseConfig(hidden=32, bc_steps=5, eval_episodes=1), out, progress=False)
    suite = get_suite("gym")
    base = suite.load_base(str(out))
    act = lambda o: base.decode(torch.as_tensor(o, dtype=torch.float32), torch.zeros(len(o), 4, 3)).numpy()
    a = suite.evaluate("hopper", act, 2, seed=7)
    b = suite.evaluate("hopper", act, 2, seed=7)
    assert a["return"] == b["return"] and a["length"] > 0  # seeded episodes, deterministic policy
    assert suite.normalised("hopper", 3234.3) == pytest.approx(100.0)
    assert suite.entropy_observations("hopper", 3, seed=0).shape == (3, 11)


def test_gym_suite_without_a_shipped_base_says_how_to_make_it(monkeypatch, tmp_path):
    from lpds_sim.benchmarks import gym_bases

    monkeypatch.setattr(gym_bases, "WEIGHTS_DIR", tmp_path)
    with pytest.raises(ConfigError, match="lpds datasets base walker2d --kind diffusion"):
        get_suite("gym").prepare("walker2d", None, "diffusion")
