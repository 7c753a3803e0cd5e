"""Turns a graph description into a `launch` LaunchDescription (used by every launch/*.launch.py).

`launch`/`launch_ros` are imported inside the functions: they exist on the robot PC (ROS install), not as wheels.
Launch arguments arrive as strings and are converted to the type of their declared default.
"""
from __future__ import annotations

from typing import Any

from .graph import GRAPHS, IncludeSpec, NodeSpec

ARGUMENT_HELP = {
    "use_sim": "true: RAI sim robot as fake hardware; false: franka_ros2 + realsense2_camera",
    "robot_ip": "FR3 control box IP (only when start_drivers:=true)",
    "model_dir": "folder with decoder.onnx + perturbation.onnx from `lpds export`",
    "namespace": "namespace for every node (franka examples use NS_1)",
    "controller": "cartesian_impedance (equilibrium_pose) or joint_trajectory (IK -> JointTrajectory)",
    "runner": "onnx, scripted, or package.module:factory",
    "obs_mode": "state or image (image: perception + proprio)",
    "start_drivers": "also include franka_bringup/franka.launch.py and realsense2_camera/rs_launch.py",
    "sim_backend": "rai (PhysX) or kinematic (no physics, plumbing only)",
    "control_rate": "policy rate in Hz: the rate the policy was trained at",
    "speedup": "sim only: run the sim robot's clock this many times faster than real time",
    "policy_params": "extra ROS parameter YAML for the policy node (robot: config/ros/policy_fr3.yaml)",
    "episodes": "stop after this many grid trials (0: the whole grid)",
    "trials": "trials per grid cell",
    "out_dir": "where results / runs are written",
    "task": "pick_place or mug_hang",
    "config": "YAML file of trainer hook options (see config/ros/train_rai.yaml)",
    "bench_profile": "bench calibration YAML (config/bench/, `lpds calibrate`) the perception node reads",
}


def coerce(value: str, default: Any) -> Any:
    if isinstance(default, bool):
        return value.strip().lower() in ("1", "true", "yes", "on")
    if isinstance(default, int):
        return int(value)
    if isinstance(default, float):
        return float(value)
    return value


def graph_from_arguments(graph: str, arguments: dict[str, Any], values: dict[str, str]):
    kw = {k: coerce(values[k], d) if k in values else d for k, d in arguments.items()}
    return GRAPHS[graph](**kw)


def node_action(spec: NodeSpec):
    from launch_ros.actions import Node

    return Node(package=spec.package, executable=spec.executable, name=spec.name, namespace=spec.namespace,
                parameters=[dict(spec.parameters), *spec.params_files], remappings=list(spec.remappings), output=spec.output)


def include_action(inc: IncludeSpec):
    from launch.actions import IncludeLaunchDescription
    from launch.launch_description_sources import PythonLaunchDescriptionSource
    from launch.substitutions import PathJoinSubstitution
    from launch_ros.substitutions import FindPackageShare

    return IncludeLaunchDescription(
        PythonLaunchDescriptionSource(PathJoinSubstitution([FindPackageShare(inc.package), "launch",
                                                            inc.launch_file])),
        launch_arguments=list(inc.arguments.items()))


def launch_description(graph: str, arguments: dict[str, Any]):
    from launch import LaunchDescription
    from launch.actions import DeclareLaunchArgument, OpaqueFunction
    from launch.substitutions import LaunchConfiguration

    def setup(context, *_args, **_kw):
        values = {k: LaunchConfiguration(k).perform(context) for k in arguments}
        nodes, includes = graph_from_arguments(graph, arguments, values)
        return [include_action(i) for i in includes] + [node_action(n) for n in nodes]

    declared = [DeclareLaunchArgument(k, default_value=str(v).lower() if isinstance(v, bool) else str(v),
                                      description=ARGUMENT_HELP.get(k, k)) for k, v in arguments.items()]
    return LaunchDescription([*declared, OpaqueFunction(function=setup)])
