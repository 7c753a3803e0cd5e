"""ament_python package: `colcon build` installs it into a ROS workspace, `pip install -e` into a venv.

The launch files and the ROS parameter YAMLs live at the repository's top level (`launch/`, `config/ros/`), so
every YAML the project ships is in one `config/` tree; they are installed into share/lpds_ros/ from there.
"""
import os
from glob import glob

from setuptools import find_packages, setup

PACKAGE = "lpds_ros"
NODES = {
    "perception_node": "perception_node",
    "policy_node": "policy_node",
    "franka_adapter_node": "franka_adapter_node",
    "sim_robot_node": "sim_robot_node",
    "trainer_node": "trainer_node",
    "grid_evaluator_node": "grid_evaluator_node",
    "episode_recorder_node": "episode_recorder_node",
    "teleop_node": "teleop_node",
    "recorder_node": "recorder_node",
}

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.relpath(os.path.join(HERE, "..", ".."), HERE)  # the repository root, as setuptools wants: relative


def top_level(pattern: str) -> list[str]:
    """Files under the repository root, relative to this folder (setuptools refuses absolute data paths)."""
    found = sorted(glob(os.path.join(HERE, TOP, pattern)))
    if not found:
        raise SystemExit(f"lpds_ros: no {pattern} under {os.path.join(HERE, TOP)}; build from a full checkout")
    return [os.path.relpath(f, HERE) for f in found]


setup(
    name=PACKAGE,
    version="0.1.0",
    packages=find_packages(exclude=["test"]),
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml"]),
        (f"share/{PACKAGE}/launch", top_level("launch/*.launch.py")),
        (f"share/{PACKAGE}/config", top_level("config/ros/*.yaml")),
    ],
    install_requires=["setuptools", "numpy", "PyYAML"],
    zip_safe=True,
    maintainer="LP-DS maintainers",
    maintainer_email="lpds@example.org",
    description="LP-DS deployment on ROS 2 (perception, ONNX policy + safety filter, Franka adapter, sim robot).",
    license="Apache-2.0",
    entry_points={
        "console_scripts": [f"{exe} = {PACKAGE}.{mod}:main" for exe, mod in NODES.items()],
        # `lpds ros-sim`: a subcommand of the `lpds` CLI (lpds_sim) that lives here, found by this entry point
        "lpds.commands": ["ros-sim = lpds_ros.cli_ros_sim", "replay = lpds_ros.cli_replay",
                          "record = lpds_ros.cli_record"],
    },
)
