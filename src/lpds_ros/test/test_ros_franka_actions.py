"""The adapter against typed fake action servers (franka_msgs Grasp/Move/Homing/ErrorRecovery, control_msgs
FollowJointTrajectory, FrankaRobotState): franka_action_cases.py, run in a subprocess that sourced the interface
packages built for the tests (conftest.franka_interfaces_env). Never skipped: the build is part of the test."""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.ros
HERE = Path(__file__).resolve().parent


def test_adapter_against_typed_fake_franka_servers(franka_interfaces_env):
    out = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-o", "addopts=",
                          "--timeout=120", str(HERE / "franka_action_cases.py")],
                         cwd=HERE.parents[2], env=franka_interfaces_env, capture_output=True, text=True, timeout=400)
    assert out.returncode == 0, out.stdout[-6000:] + out.stderr[-3000:]
    assert re.search(r"^6 passed", out.stdout, re.M), out.stdout[-2000:]
