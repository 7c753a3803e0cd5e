"""`colcon build` of the ament_python package: console scripts in lib/lpds_ros (what `ros2 run` finds), launch
and config files in share/, the ament index marker, and importable node modules from the install space."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    colcon = shutil.which("colcon") or str(Path(sys.executable).with_name("colcon"))
    if not Path(colcon).exists():
        pytest.skip("colcon is not installed")
    ws = tmp_path_factory.mktemp("ws")
    shutil.copytree(REPO / "src" / "lpds_ros", ws / "src" / "lpds_ros",
                    ignore=shutil.ignore_patterns("__pycache__", "build", "*.egg-info"))
    for top in ("launch", "config"):  # the top-level folders setup.py installs into share/lpds_ros/
        shutil.copytree(REPO / top, ws / top)
    shutil.copy(REPO / "colcon.meta", ws / "colcon.meta")
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    out = subprocess.run([colcon, "build", "--base-paths", "src"], cwd=ws, env=env, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    return ws / "install" / "lpds_ros"


def test_colcon_install_layout(installed):
    from lpds_ros.graph import NODE_PARAMETERS

    for exe in NODE_PARAMETERS:
        assert (installed / "lib" / "lpds_ros" / exe).exists(), exe
    launch = sorted(p.name for p in (installed / "share" / "lpds_ros" / "launch").iterdir())
    assert launch == ["grid_eval.launch.py", "mug_hang.launch.py", "pick_place.launch.py", "train_rai.launch.py"]
    assert (installed / "share" / "lpds_ros" / "config" / "policy_fr3.yaml").exists()
    assert (installed / "share" / "lpds_ros" / "package.xml").exists()
    assert (installed / "share" / "ament_index" / "resource_index" / "packages" / "lpds_ros").exists()
    # the test-only franka_msgs / control_msgs stand-ins (test/interfaces, COLCON_IGNORE) never enter a workspace
    assert sorted(p.name for p in installed.parent.iterdir() if p.is_dir()) == ["lpds_ros"]


def test_installed_package_imports(installed):
    site = next(installed.glob("lib/python3*/site-packages"))
    code = "import lpds_ros.graph, lpds_ros.safety; print(lpds_ros.graph.__file__)"
    out = subprocess.run([sys.executable, "-c", code], env={**os.environ, "PYTHONPATH": str(site)},
                         capture_output=True, text=True, cwd=str(installed))
    assert out.returncode == 0, out.stderr
    assert str(installed) in out.stdout
