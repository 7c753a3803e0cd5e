"""The robot PC installs no torch, no RAI (`robotic`) and no simulator package: the robot-side nodes must import,
load an ONNX export and build a policy node without them. Proved in a subprocess where importing any of them
raises ImportError."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
ROBOT_MODULES = ("lpds_ros.policy_node", "lpds_ros.perception_node", "lpds_ros.franka_adapter_node",
                 "lpds_ros.grid_evaluator_node", "lpds_ros.runner", "lpds_ros.safety", "lpds_ros.policy_core",
                 "lpds_ros.graph", "lpds_ros.process_graph", "lpds_ros.episode_recorder_node", "lpds_ros.episode_bag",
                 "lpds_ros.teleop_node", "lpds_ros.recorder_node", "lpds_ros.cli_record")

CHILD = r'''
import importlib, importlib.abc, sys

BLOCKED = ("torch", "robotic", "lpds_sim")


class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ImportError(f"{name} is not installed on the robot PC (blocked by the test)")
        return None


sys.meta_path.insert(0, Block())
for m in [m for m in sys.modules if m.split(".")[0] in BLOCKED]:
    del sys.modules[m]
try:
    import torch  # noqa: F401
    raise SystemExit("the blocker does not work: torch imported")
except ImportError:
    pass

for name in sys.argv[2].split(","):
    importlib.import_module(name)
loaded = sorted(m for m in sys.modules if m.split(".")[0] in BLOCKED)
assert not loaded, loaded

model_dir = sys.argv[1]
if model_dir:
    import numpy as np
    import rclpy
    from rclpy.context import Context
    from rclpy.parameter import Parameter

    from lpds_ros.policy_node import PolicyNode
    from lpds_ros.runner import load_runner

    runner = load_runner("onnx", model_dir)
    chunk = runner.act(np.zeros(6, np.float32))
    assert chunk.shape == (4, 4) and np.all(np.isfinite(chunk)), chunk
    ctx = Context()
    rclpy.init(context=ctx)
    node = PolicyNode(context=ctx, parameter_overrides=[Parameter("runner", value="onnx"),
                                                        Parameter("model_dir", value=model_dir)])
    assert node.controller.spec.obs == {"state": ((6,), "float32")}, node.controller.spec
    node.destroy_node()
    rclpy.try_shutdown(context=ctx)
    print("onnx ok")
assert not sorted(m for m in sys.modules if m.split(".")[0] in BLOCKED)
print("imports ok")
'''


def _tiny_export(out: Path) -> str:
    """A real export (needs torch here, in the parent): 6-d state, 4-d actions, horizon 4."""
    try:
        import torch

        from lpds_core.export import export_onnx
        from lpds_core.flow_matching import FlowMatchingPolicy
    except ImportError:
        return ""
    torch.manual_seed(0)
    export_onnx(FlowMatchingPolicy(6, 4, 4, obs_type="state", hidden=16, n_layers=1).freeze(), None, out)
    return str(out)


def test_robot_side_nodes_import_and_run_onnx_without_torch_robotic_or_lpds_sim(tmp_path):
    pytest.importorskip("rclpy")
    model_dir = _tiny_export(tmp_path / "export")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(REPO / "src" / p) for p in ("lpds_core", "lpds_ros")] + [os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run([sys.executable, "-c", CHILD, model_dir, ",".join(ROBOT_MODULES)], env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "imports ok" in proc.stdout
    if model_dir:
        assert "onnx ok" in proc.stdout
