"""The ROS trainer node's default hook drives the real pipeline API (train_steer → export_run)."""
from __future__ import annotations

import numpy as np

from lpds_core.onnx_policy import OnnxPolicy
from lpds_ros.train_hooks import pipeline_train_steer

from pipeline_helpers import make_base_run


def test_pipeline_hook_trains_exports_and_announces_the_model(tmp_path):
    base = make_base_run(tmp_path / "base")
    config = {"base": str(base), "env_steps": 120, "warmup_steps": 40, "eval_every": 120, "ckpt_every": 60,
              "eval_trials": 1, "batch_size": 16}
    progress = list(pipeline_train_steer("pick_place", str(tmp_path / "trainer"), config))

    assert [p["stage"] for p in progress] == ["training", "exported"]
    assert progress[0]["algo"] == "lpds" and progress[0]["env_steps"] == 120
    done = progress[-1]
    assert done["export_max_abs_diff"] <= 1e-4
    policy = OnnxPolicy(done["onnx_dir"])  # what the policy node loads on ~/reload
    chunk = policy.act({"state": np.zeros(18, np.float32)})
    assert chunk.shape == (4, 4) and np.isfinite(chunk).all()
