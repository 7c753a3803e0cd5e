"""ament_python package: `colcon build` installs it into a ROS workspace, `pip install -e` into a venv."""
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
}

setup(
    name=PACKAGE,
    version="0.1.0",
    packages=find_packages(exclude=["test"]),
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml"]),
        (f"share/{PACKAGE}/launch", glob("launch/*.launch.py")),
        (f"share/{PACKAGE}/config", glob("config/*.yaml")),
    ],
    install_requires=["setuptools", "numpy", "PyYAML"],
    zip_safe=True,
    maintainer="LP-DS maintainers",
    maintainer_email="lpds@example.org",
    description="LP-DS deployment on ROS 2 (perception, ONNX policy + safety filter, Franka adapter, sim robot).",
    license="Apache-2.0",
    entry_points={
        "console_scripts": [f"{exe} = {PACKAGE}.{mod}:main" for exe, mod in NODES.items()],
    },
)
