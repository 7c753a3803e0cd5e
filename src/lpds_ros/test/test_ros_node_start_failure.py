"""A node that fails to start is reported by the graph runner with its own error, in one line — not as a service
timeout of the node waiting for it."""
from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lpds_ros.process_graph import last_error_line

REPO = Path(__file__).resolve().parents[3]


def test_last_error_line_prefers_the_start_failure_then_the_exception():
    tb = ("[INFO] [policy]: loading\nTraceback (most recent call last):\n  File \"x.py\", line 1, in <module>\n"
          "FileNotFoundError: no decoder.onnx in '/m'\n")
    assert last_error_line(tb) == "FileNotFoundError: no decoder.onnx in '/m'"
    assert last_error_line(tb + "[PolicyNode] failed to start: FileNotFoundError: no decoder.onnx in '/m'\n"
                           "[INFO] shutting down\n") == "FileNotFoundError: no decoder.onnx in '/m'"
    assert last_error_line("just a line\nthe last one\n") == "the last one"
    assert last_error_line("") == "(no output)"


@pytest.mark.ros
def test_ros_sim_reports_a_policy_node_that_failed_to_start(tmp_path):
    pytest.importorskip("rclpy")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(REPO / "src" / p) for p in ("lpds_core", "lpds_sim", "lpds_ros")] + [os.environ.get("PYTHONPATH", "")])}
    missing = tmp_path / "no_such_export"
    cmd = [sys.executable, "-m", "lpds_sim.cli", "ros-sim", "--backend", "kinematic", "--max-trials", "1",
           "--runner", "onnx", "--model-dir", str(missing), "--out", str(tmp_path / "rs")]
    t0 = time.monotonic()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    elapsed = time.monotonic() - t0
    assert proc.returncode == 2, proc.stdout + proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert re.match(r"error: node policy exited with code 1: \w+: no decoder\.onnx in ", lines[0]), lines[0]
    assert str(missing) in lines[0] and "policy.log" in lines[0]
    assert "did not answer" not in proc.stderr and "timeout" not in proc.stderr.lower()
    assert elapsed < 60, f"took {elapsed:.0f} s: the runner waited for a timeout instead of noticing the exit"


@pytest.mark.parametrize("flags, needle", [(["--rate", "0"], "--rate 0.0 is invalid"),
                                           (["--speedup", "-1"], "--speedup -1.0 is invalid"),
                                           (["--trials", "0"], "--trials 0 is invalid"),
                                           (["--max-trials", "-1"], "--max-trials -1 is invalid"),
                                           (["--episode-timeout", "0"], "--episode-timeout 0.0 is invalid"),
                                           (["--runner", "onnx"], "--runner onnx needs --model-dir")])
def test_ros_sim_refuses_bad_flags_before_starting_any_node(flags, needle, tmp_path):
    import argparse

    from lpds_core.errors import ConfigError
    from lpds_ros import cli_ros_sim

    parser = argparse.ArgumentParser()
    cli_ros_sim.register(parser.add_subparsers())
    args = parser.parse_args(["ros-sim", "--out", str(tmp_path / "rs"), *flags])
    with pytest.raises(ConfigError, match=needle):
        args.func(args)
    assert not (tmp_path / "rs").exists()  # nothing was started or written
