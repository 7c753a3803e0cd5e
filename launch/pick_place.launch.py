"""Pick and place: perception -> LP-DS policy (ONNX + safety filter) -> franka adapter, on the sim robot or an FR3.

  ros2 launch lpds_ros pick_place.launch.py use_sim:=false model_dir:=/models/pick_place robot_ip:=172.16.0.2
  (record_dir:=/data/episodes also records one MCAP bag per policy episode)
"""
from lpds_ros.launch_support import launch_description

ARGUMENTS = {"use_sim": True, "robot_ip": "172.16.0.2", "model_dir": "", "namespace": "",
             "controller": "cartesian_impedance", "runner": "onnx", "obs_mode": "state", "start_drivers": False,
             "sim_backend": "rai", "control_rate": 10.0, "policy_params": "", "record_dir": "",
             "bench_profile": ""}


def generate_launch_description():
    return launch_description("pick_place", ARGUMENTS)
