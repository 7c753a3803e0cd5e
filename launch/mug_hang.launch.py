"""Mug hanging: the pick-and-place graph with the mug task (5-D actions with yaw) and its model."""
from lpds_ros.launch_support import launch_description

ARGUMENTS = {"use_sim": True, "robot_ip": "172.16.0.2", "model_dir": "", "namespace": "",
             "controller": "cartesian_impedance", "runner": "onnx", "obs_mode": "state", "start_drivers": False,
             "sim_backend": "rai", "control_rate": 10.0, "policy_params": "",
             "bench_profile": ""}


def generate_launch_description():
    return launch_description("mug_hang", ARGUMENTS)
