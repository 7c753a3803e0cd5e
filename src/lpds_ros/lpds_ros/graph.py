"""The node graph, described once in plain Python.

The `*.launch.py` files turn these specs into launch_ros Nodes, `lpds ros-sim` and the tests start them as
`python -m lpds_ros.<executable> --ros-args ...` processes, and every node declares its parameters from
`NODE_PARAMETERS` — so launch files, processes and nodes cannot drift apart.
"""
from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, field
from typing import Any

import yaml

PACKAGE = "lpds_ros"

# Topic names (relative names resolve inside the launch namespace). RealSense >= 4.55 layout.
CAMERA_COLOR = "/camera/camera/color/image_raw"
CAMERA_DEPTH = "/camera/camera/aligned_depth_to_color/image_raw"
CURRENT_POSE = "franka_robot_state_broadcaster/current_pose"
GRIPPER_STATES = "franka_gripper/joint_states"
JOINT_STATES = "joint_states"
OBS_RGB = "lpds/obs/rgb"
OBS_DEPTH = "lpds/obs/depth"
TASK_STATE = "sim/task_state"
EPISODE_INFO = "sim/episode_info"
TARGET_POSE = "lpds/target_pose"
GRIPPER_COMMAND = "lpds/gripper_command"
EQUILIBRIUM_POSE = "cartesian_impedance_example_controller/equilibrium_pose"
JOINT_TRAJECTORY = "fr3_arm_controller/joint_trajectory"
FOLLOW_JOINT_TRAJECTORY = "fr3_arm_controller/follow_joint_trajectory"
ROBOT_STATE = "franka_robot_state_broadcaster/robot_state"
ERROR_RECOVERY = "/action_server/error_recovery"
SIM_GRIPPER_COMMAND = "franka_gripper/command"
TRAIN_PROGRESS = "lpds/train/progress"
TELEOP_ACTION = "lpds/teleop/action"  # JointState: the executed action by name (dx, dy, dz[, dyaw], gripper)
TELEOP_EVENTS = "lpds/teleop/events"  # String: start | save | discard (Joy buttons)

# lpds_sim PandaTaskEnv defaults: the action semantics the policies are trained with
SIM_MAX_LIN_SPEED = 0.3  # m/s at |a| = 1
SIM_MAX_YAW_RATE = 1.0  # rad/s at |a| = 1

# Every parameter of every node with its default: nodes declare exactly these.
NODE_PARAMETERS: dict[str, dict[str, Any]] = {
    "perception_node": {
        "source": "topics",  # topics | realsense | sim
        "color_topic": CAMERA_COLOR,
        "depth_topic": CAMERA_DEPTH,
        "obs_rgb_topic": OBS_RGB,
        "obs_depth_topic": OBS_DEPTH,
        "frame_id": "camera_color_optical_frame",
        "out_height": 84,
        "out_width": 84,
        "roi": [0.0, 1.0, 0.0, 1.0],  # top, bottom, left, right fractions; full frame = centre crop to aspect
        "depth_unit": 0.001,  # 16UC1 depth in millimetres (RealSense)
        "depth_min": 0.05,
        "depth_max": 3.0,
        "sync_slop": 0.02,
        "realsense_width": 640,
        "realsense_height": 480,
        "realsense_fps": 30,
        "realsense_serial": "",
        # bench calibration (lpds_core.bench_profile, config/bench/): the camera's pose is published latched on
        # camera_pose_topic (frame: the profile's sim world); empty = the default profile (today's RAI scene)
        "bench_profile": "",
        "bench_camera": "camera",  # camera (pick-and-place) | mug_camera
        "camera_pose_topic": "bench/camera_pose",
    },
    "policy_node": {
        "runner": "onnx",  # onnx | scripted | package.module:factory (factory(model_dir) -> runner)
        "model_dir": "",
        "obs_mode": "state",  # state (named vector on task_state_topic) | image (perception + proprio)
        "task_state_topic": TASK_STATE,
        "obs_rgb_topic": OBS_RGB,
        "obs_depth_topic": OBS_DEPTH,
        "proprio_layout": ["ee_x", "ee_y", "ee_z", "qw", "qx", "qy", "qz", "gripper_width"],  # lpds_sim proprio
        "current_pose_topic": CURRENT_POSE,
        "gripper_state_topic": GRIPPER_STATES,
        "target_pose_topic": TARGET_POSE,
        "gripper_command_topic": GRIPPER_COMMAND,
        "base_frame": "world",
        "control_rate": 10.0,  # must be the rate the policy was trained at (lpds_sim envs: control_hz)
        "tick_source": "obs",  # obs: one tick per matched observation | timer: fixed-rate timer
        "replan_after": 4,
        "action_scale": 0.03,  # metres per unit of position action = env max_lin_speed / control_hz
        "action_clip": 1.0,  # clip actions to [-1, 1] before use, as the env does (0: off)
        "yaw_scale": 0.1,  # radians per unit of yaw action (5-D actions) = env max_yaw_rate / control_hz
        "gripper_open_value": 1.0,  # action value meaning open (lpds_sim: a[-1] >= 0 opens)
        "gripper_closed_value": -1.0,
        "sync_slop": 0.02,
        "max_input_age": 0.2,
        # workspace box in the policy's frame (defaults: lpds_sim PandaTaskEnv ee_low/ee_high, world frame)
        # pose of the robot base in the policy's (sim world) frame (lpds_ros.base_frame): measured poses are mapped
        # world = Rz(base_yaw) base + base_offset, published targets back. 0 in sim (the sim robot publishes in the
        # world frame); on the FR3: config/ros/policy_fr3.yaml (today's scene: [0, -0.2, 0.65], +pi/2)
        "base_offset": [0.0, 0.0, 0.0],
        "base_yaw": 0.0,  # rad about z
        "box_min": [-0.45, -0.05, 0.64],
        "box_max": [0.45, 0.6, 1.25],
        "max_step": 0.06,  # metres per tick (env: one action moves the target <= 0.052 m at 10 Hz)
        "max_lead": 0.06,  # metres a target may lead the measured pose (env: 2 * max_lin_speed / control_hz)
        "autostart": True,
        "seed": 0,
    },
    "franka_adapter_node": {
        "controller": "cartesian_impedance",  # cartesian_impedance | joint_trajectory
        "target_pose_topic": TARGET_POSE,
        "gripper_command_topic": GRIPPER_COMMAND,
        "equilibrium_pose_topic": EQUILIBRIUM_POSE,
        "joint_trajectory_topic": JOINT_TRAJECTORY,
        "joint_states_topic": JOINT_STATES,
        "trajectory_time": 0.1,
        # joint_trajectory: FollowJointTrajectory action (accept/reject + result: holds on faults) or the topic
        "trajectory_interface": "action",  # action | topic
        "follow_joint_trajectory_action": FOLLOW_JOINT_TRAJECTORY,
        "goal_time_tolerance": 0.5,
        "gripper_backend": "franka_actions",  # franka_actions | topic | none
        "gripper_action_ns": "franka_gripper",
        "gripper_topic": SIM_GRIPPER_COMMAND,
        "gripper_close_above": 0.6,  # hysteresis on the 0..1 command
        "gripper_open_below": 0.4,
        "grasp_width": 0.02,
        "grasp_force": 20.0,
        "grasp_epsilon_inner": 0.04,  # Grasp succeeds if the object is within width -inner .. width +outer
        "grasp_epsilon_outer": 0.04,
        "gripper_speed": 0.1,
        "open_width": 0.08,
        "home_gripper_at_start": True,  # franka_gripper Homing once when the node starts (franka_actions)
        # watch franka_msgs/FrankaRobotState.robot_mode; after a reflex call ErrorRecovery, then resume
        "error_recovery": True,
        "robot_state_topic": ROBOT_STATE,
        "error_recovery_action": ERROR_RECOVERY,
        "max_recoveries": 3,  # automatic recoveries before ~/start is needed
        "response_timeout": 2.0,  # s for an action server to accept a goal; then hold
        "gripper_timeout": 5.0,  # s for grasp / move to finish
        "homing_timeout": 15.0,
        "recovery_timeout": 10.0,
        "trajectory_timeout": 1.0,  # s after trajectory_time + goal_time_tolerance
        "robot_ip": "",
    },
    "sim_robot_node": {
        "backend": "rai",  # rai (lpds_sim PhysX env) | kinematic (numpy fake hardware, no physics)
        "task": "pick_place",
        "bench_profile": "",  # rai: bench calibration YAML the scene is built from (empty: the default bench)
        "rate": 10.0,  # env control rate (what the policy was trained at)
        "speedup": 1.0,  # wall-clock ticks per env step period: > 1 runs the sim faster than real time
        # lockstep: step as soon as the period is over AND the command answering the last state has arrived
        # (or lockstep_timeout periods later): a busy machine then slows the sim instead of desynchronising it
        "lockstep": True,
        "lockstep_timeout": 3.0,  # periods after a publish to wait for the command before stepping anyway
        "equilibrium_pose_topic": EQUILIBRIUM_POSE,
        "gripper_topic": SIM_GRIPPER_COMMAND,
        "current_pose_topic": CURRENT_POSE,
        "gripper_state_topic": GRIPPER_STATES,
        "joint_states_topic": JOINT_STATES,
        "color_topic": CAMERA_COLOR,
        "depth_topic": CAMERA_DEPTH,
        "task_state_topic": TASK_STATE,
        "episode_info_topic": EPISODE_INFO,
        "publish_images": True,
        "image_every": 1,  # publish camera frames every N physics ticks
        "base_frame": "world",
        "camera_frame": "camera_color_optical_frame",
        "reset_row": 0,
        "reset_col": 0,
        "reset_seed": 0,
        "grid_rows": 2,
        "grid_cols": 4,
        "max_episode_steps": 0,  # 0: the task env's own limit
        "seed": 0,
    },
    "grid_evaluator_node": {
        "mode": "auto",  # auto (sim robot) | operator (real robot: prompts on stdin)
        "rows": 2,
        "cols": 4,
        "trials": 5,
        "episodes": 0,  # > 0: stop after this many trials (smoke runs)
        "episode_timeout": 120.0,  # wall-clock seconds per trial (a loaded machine slows the lockstep sim)
        "seed": 0,
        "out_dir": "runs/ros_grid",
        "sim_robot_name": "sim_robot",
        "policy_name": "policy",
        "episode_info_topic": EPISODE_INFO,
        "shutdown_when_done": True,
        "record_dir": "",  # one rosbag2 (MCAP) bag per trial in this folder (lpds_ros.episode_recorder_node); "" = off
        "task": "pick_place",  # written into each bag's metadata (lpds replay checks a model against it)
        "obs_mode": "state",
    },
    "episode_recorder_node": {
        "record_dir": "",  # one bag per policy episode (~/start .. ~/stop) in this folder; "" = off
        "policy_name": "policy",
        "task": "pick_place",
        "obs_mode": "state",
    },
    "teleop_node": {
        "input": "joy",  # joy (sensor_msgs/Joy, e.g. spacenav_node) | leader (PoseStamped of a leader arm) | both
        "joy_topic": "spacenav/joy",
        "leader_topic": "leader/pose",
        "current_pose_topic": CURRENT_POSE,
        "gripper_state_topic": GRIPPER_STATES,
        "target_pose_topic": TARGET_POSE,  # the policy node's outputs: run one of the two, never both
        "gripper_command_topic": GRIPPER_COMMAND,
        "action_topic": TELEOP_ACTION,
        "events_topic": TELEOP_EVENTS,
        "base_frame": "world",
        "base_offset": [0.0, 0.0, 0.0],  # as the policy node's (the leader pose is read in this base frame too)
        "base_yaw": 0.0,
        "control_rate": 10.0,  # wall-clock ticks per second (sim: rate * speedup)
        "tick_source": "timer",  # timer | obs (one tick per robot pose message: the lockstep sim)
        "act_dim": 4,  # 4: (dx, dy, dz, gripper) pick_place | 5: (+ dyaw) mug_hang
        "action_scale": 0.03,  # metres per unit of position action = the policy node's
        "yaw_scale": 0.1,
        "gripper_open_value": 1.0,
        "gripper_closed_value": -1.0,
        "box_min": [-0.45, -0.05, 0.64],
        "box_max": [0.45, 0.6, 1.25],
        "max_step": 0.06,
        "max_lead": 0.06,
        "max_input_age": 0.2,  # robot state older than this: hold
        "operator_timeout": 0.5,  # no Joy/leader message for this long: stand still
        "joy_axes": [0, 1, 2],
        "joy_signs": [1.0, 1.0, 1.0],
        "joy_yaw_axis": 5,
        "joy_deadband": 0.1,
        "joy_scale": 1.0,  # action units at full deflection (1: the env's max speed)
        "gripper_button": 0,
        "save_button": 1,
        "start_button": 2,
        "discard_button": 3,
        "leader_scale": 1.0,
    },
    "recorder_node": {
        "task": "pick_place",
        "obs_mode": "state",  # state (needs task_state: the sim's) | image (perception's obs/rgb + obs/depth)
        "out": "demos.hdf5",
        "control_rate": 10.0,  # the policy's control rate: the file's control_hz
        "speedup": 1.0,  # sim only: the grid runs at control_rate * speedup in wall-clock time
        "max_gap": 0.0,  # seconds a required stream may be silent before the episode is cut (0: 3 periods)
        "max_episode_seconds": 600.0,
        "max_episodes": 0,  # > 0: exit after saving this many
        "current_pose_topic": CURRENT_POSE,
        "gripper_state_topic": GRIPPER_STATES,
        "joint_states_topic": JOINT_STATES,
        "task_state_topic": TASK_STATE,
        "episode_info_topic": EPISODE_INFO,
        "obs_rgb_topic": OBS_RGB,
        "obs_depth_topic": OBS_DEPTH,
        "action_topic": TELEOP_ACTION,
        "events_topic": TELEOP_EVENTS,
        "target_pose_topic": TARGET_POSE,
        "base_offset": [0.0, 0.0, 0.0],  # as the policy node's: demos are stored in the world frame
        "base_yaw": 0.0,
        "proprio_layout": ["ee_x", "ee_y", "ee_z", "qw", "qx", "qy", "qz", "gripper_width"],
        "action_scale": 0.03,
        "gripper_open_value": 1.0,
        "keyboard": False,  # read s/w/d/q from stdin (lpds record)
    },
    "trainer_node": {
        "trainer": "lpds_ros.train_hooks:pipeline_train_steer",  # package.module:function (train_hooks contract)
        "task": "pick_place",
        "out_dir": "runs/ros_train",
        "config": "",
        "policy_name": "policy",
        "progress_topic": TRAIN_PROGRESS,
        "reload_policy": True,
    },
}


@dataclass(frozen=True)
class NodeSpec:
    executable: str
    name: str
    namespace: str = ""
    parameters: dict[str, Any] = field(default_factory=dict)
    remappings: tuple[tuple[str, str], ...] = ()
    package: str = PACKAGE
    output: str = "screen"
    params_files: tuple[str, ...] = ()  # extra ROS parameter YAML files, applied after `parameters`

    def __post_init__(self) -> None:
        known = NODE_PARAMETERS.get(self.executable)
        if known is None:
            raise ValueError(f"unknown executable {self.executable!r}; known: {sorted(NODE_PARAMETERS)}")
        unknown = set(self.parameters) - set(known)
        if unknown:
            raise ValueError(f"{self.executable} has no parameter(s) {sorted(unknown)}; see graph.NODE_PARAMETERS")

    @property
    def module(self) -> str:
        return f"{self.package}.{self.executable}"

    def full_parameters(self) -> dict[str, Any]:
        return {**NODE_PARAMETERS[self.executable], **self.parameters}


@dataclass(frozen=True)
class IncludeSpec:
    """A driver launch file from another package (franka_bringup, realsense2_camera): robot PC only."""
    package: str
    launch_file: str
    arguments: dict[str, str] = field(default_factory=dict)


def _bool(v: Any) -> bool:
    return v if isinstance(v, bool) else str(v).strip().lower() in ("1", "true", "yes", "on")


def pick_place_graph(use_sim: Any = True, robot_ip: str = "172.16.0.2", model_dir: str = "", namespace: str = "",
                     controller: str = "cartesian_impedance", runner: str = "onnx", obs_mode: str = "state",
                     start_drivers: Any = False, task: str = "pick_place", sim_backend: str = "rai",
                     control_rate: float = 10.0, speedup: float = 1.0,
                     policy_params: str = "", record_dir: str = "",
                     bench_profile: str = "") -> tuple[list[NodeSpec], list[IncludeSpec]]:
    """Perception -> policy -> franka adapter, against the sim robot (use_sim) or franka_ros2 + realsense2_camera.

    speedup (sim only) runs the sim robot's clock faster than real time; the policy's actions keep the env's
    per-step semantics (action_scale from control_rate), only its tick bookkeeping follows the wall rate.
    record_dir: also start the episode_recorder (one MCAP bag per policy episode in that folder)."""
    use_sim = _bool(use_sim)
    speedup = float(speedup) if use_sim else 1.0
    if controller not in ("cartesian_impedance", "joint_trajectory"):
        raise ValueError(f"controller must be cartesian_impedance or joint_trajectory, got {controller!r}")
    nodes: list[NodeSpec] = []
    includes: list[IncludeSpec] = []
    if use_sim:
        nodes.append(NodeSpec("sim_robot_node", "sim_robot", namespace,
                              {"backend": sim_backend, "task": task, "rate": float(control_rate),
                               "speedup": speedup, "bench_profile": bench_profile}))
    elif _bool(start_drivers):
        includes.append(IncludeSpec("franka_bringup", "franka.launch.py",
                                    {"robot_type": "fr3", "robot_ip": robot_ip, "namespace": namespace,
                                     "load_gripper": "true"}))
        includes.append(IncludeSpec("realsense2_camera", "rs_launch.py",
                                    {"device_type": "d435i", "rgb_camera.color_profile": "640x480x30",
                                     "align_depth.enable": "true", "enable_sync": "true"}))
    nodes.append(NodeSpec("perception_node", "perception", namespace,
                          {"source": "sim" if use_sim else "topics", "bench_profile": bench_profile,
                           "bench_camera": "mug_camera" if task == "mug_hang" else "camera"}))
    nodes.append(NodeSpec("policy_node", "policy", namespace,
                          {"runner": runner, "model_dir": model_dir, "obs_mode": obs_mode,
                           "control_rate": float(control_rate) * speedup,
                           "action_scale": SIM_MAX_LIN_SPEED / float(control_rate),
                           "yaw_scale": SIM_MAX_YAW_RATE / float(control_rate),
                           "max_step": 2.0 * SIM_MAX_LIN_SPEED / float(control_rate),
                           "max_lead": 2.0 * SIM_MAX_LIN_SPEED / float(control_rate)},
                          params_files=(policy_params,) if policy_params else ()))
    nodes.append(NodeSpec("franka_adapter_node", "franka_adapter", namespace,
                          {"controller": controller, "robot_ip": "" if use_sim else robot_ip,
                           "gripper_backend": "topic" if use_sim else "franka_actions",
                           "error_recovery": not use_sim}))
    if record_dir:
        nodes.append(NodeSpec("episode_recorder_node", "episode_recorder", namespace,
                              {"record_dir": str(record_dir), "task": task, "obs_mode": obs_mode}))
    return nodes, includes


def mug_hang_graph(**kw: Any) -> tuple[list[NodeSpec], list[IncludeSpec]]:
    """Same graph, mug-hanging task and model."""
    return pick_place_graph(task="mug_hang", **kw)


def grid_eval_graph(use_sim: Any = True, episodes: int = 0, out_dir: str = "runs/ros_grid", trials: int = 5,
                    episode_timeout: float = 120.0, bags_dir: str = "",
                    **kw: Any) -> tuple[list[NodeSpec], list[IncludeSpec]]:
    """The pick-and-place graph plus the grid evaluator (auto against the sim robot, operator prompts otherwise);
    bags_dir: the evaluator records one MCAP bag per trial there."""
    nodes, includes = pick_place_graph(use_sim=use_sim, **kw)
    ns = kw.get("namespace", "")
    nodes.append(NodeSpec("grid_evaluator_node", "grid_evaluator", ns,
                          {"mode": "auto" if _bool(use_sim) else "operator", "episodes": int(episodes),
                           "out_dir": out_dir, "trials": int(trials),
                           "episode_timeout": float(episode_timeout), "record_dir": str(bags_dir),
                           "task": kw.get("task", "pick_place"), "obs_mode": kw.get("obs_mode", "state")}))
    return nodes, includes


def train_rai_graph(model_dir: str = "", out_dir: str = "runs/ros_train", task: str = "pick_place",
                    namespace: str = "", runner: str = "onnx", config: str = "",
                    **kw: Any) -> tuple[list[NodeSpec], list[IncludeSpec]]:
    """Trainer in the background + the sim graph running the latest exported policy (reloaded on each export;
    with an empty model_dir the policy holds until the first export arrives)."""
    nodes, includes = pick_place_graph(use_sim=True, model_dir=model_dir, namespace=namespace, task=task,
                                       runner=runner, **kw)
    nodes.append(NodeSpec("trainer_node", "trainer", namespace, {"task": task, "out_dir": out_dir,
                                                                 "config": config}))
    return nodes, includes


GRAPHS = {"pick_place": pick_place_graph, "mug_hang": mug_hang_graph, "grid_eval": grid_eval_graph,
          "train_rai": train_rai_graph}


def ros_args(spec: NodeSpec, params_file: str | None = None) -> list[str]:
    """`--ros-args` for running the node as a plain process (no ros2cli needed)."""
    args = ["--ros-args", "-r", f"__node:={spec.name}"]
    if spec.namespace:
        args += ["-r", f"__ns:={spec.namespace if spec.namespace.startswith('/') else '/' + spec.namespace}"]
    for src, dst in spec.remappings:
        args += ["-r", f"{src}:={dst}"]
    for f in ([params_file] if params_file else []) + list(spec.params_files):
        args += ["--params-file", f]
    return args


def write_params_file(spec: NodeSpec, directory: str | None = None) -> str:
    """A ROS parameters YAML for this node (wildcard node name, so namespaces need no care)."""
    fd, path = tempfile.mkstemp(prefix=f"{spec.name}_", suffix=".yaml", dir=directory)
    with os.fdopen(fd, "w") as f:
        yaml.safe_dump({"/**": {"ros__parameters": dict(spec.parameters)}}, f)
    return path


def process_command(spec: NodeSpec, python: str, params_file: str | None = None) -> list[str]:
    return [python, "-m", spec.module, *ros_args(spec, params_file)]
