"""Grid evaluation (2x4 cells x trials) through the ROS graph: automatic on the sim robot, operator prompts on the
real robot (run this launch in a terminal: the evaluator reads the operator's answers on stdin)."""
from lpds_ros.launch_support import launch_description

ARGUMENTS = {"use_sim": True, "robot_ip": "172.16.0.2", "model_dir": "", "namespace": "",
             "controller": "cartesian_impedance", "runner": "onnx", "obs_mode": "state", "start_drivers": False,
             "sim_backend": "rai", "control_rate": 10.0, "policy_params": "", "speedup": 1.0, "episodes": 0, "trials": 5, "out_dir": "runs/ros_grid", "bags_dir": "",
             "bench_profile": ""}


def generate_launch_description():
    return launch_description("grid_eval", ARGUMENTS)
