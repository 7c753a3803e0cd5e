"""LP-DS training in RAI in the background, with the sim graph running (and reloading) the latest export."""
from lpds_ros.launch_support import launch_description

ARGUMENTS = {"model_dir": "", "out_dir": "runs/ros_train", "task": "pick_place", "namespace": "", "config": "",
             "runner": "onnx", "obs_mode": "state", "sim_backend": "rai", "control_rate": 10.0, "speedup": 1.0}


def generate_launch_description():
    return launch_description("train_rai", ARGUMENTS)
