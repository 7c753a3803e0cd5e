"""`lpds record`: teleoperated demonstrations through ROS 2 into the robomimic HDF5 that `lpds train-base` reads.

Runs the teleop node (SpaceMouse Joy or leader pose -> the policy's topics, through the policy's safety filter) and
the recorder node in one process, with a keyboard reader on stdin (s = start, w = save, d = discard, q = quit);
the robot's drivers (franka_ros2 + franka adapter, realsense + perception) or the sim robot run beside it. Found by
`lpds` through the `lpds.commands` entry point of lpds_ros (dependencies run core <- sim <- ros).
"""
from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

from lpds_core import config as schema
from lpds_core.config import setting

TASKS = ("pick_place", "mug_hang")


@dataclasses.dataclass
class RecordConfig:
    """`lpds record`: what is recorded, at which rate, from which operator device."""

    task: str = setting("pick_place", "task the demos are for (sets the action layout)", choices=TASKS)
    out: str = setting("", "demo file to write; an existing one is only appended to if `lpds record` wrote it "
                           "with the same task and layout")
    obs: str = setting("state", "observation mode: state (the sim's task_state) or image (perception's RGB-D)",
                       choices=("state", "image"))
    rate: float = setting(10.0, "the policy's control rate in Hz (the grid the streams are resampled onto)",
                          above=0)
    n_demos: int = setting(0, "exit after saving this many episodes (0: until q)", min=0)
    input: str = setting("joy", "operator device: joy (sensor_msgs/Joy), leader (PoseStamped), both, or none "
                                "(a teleop node runs elsewhere)", choices=("joy", "leader", "both", "none"))
    max_gap: float = setting(0.0, "seconds a required stream may fall silent before the episode is cut there "
                                  "(0: three control periods)", min=0)
    speedup: float = setting(1.0, "sim only: the sim robot runs this much faster than real time", above=0)
    ros_params: str = setting("", "ROS parameters YAML for the teleop and recorder nodes (topics, Joy mapping, "
                                  "workspace box); see graph.NODE_PARAMETERS")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("record", help="record teleoperated demos through ROS 2 (robomimic HDF5 for train-base)",
                       description="Teleop + recorder nodes; keys s=start, w=save, d=discard, q=quit (or the "
                                   "recorder's ~/start, ~/save, ~/discard services, or the Joy buttons).")
    p.add_argument("--config", metavar="FILE.yaml", help="YAML with any RecordConfig keys; flags win over it")
    schema.add_flags(p, RecordConfig, required=("out",))
    p.set_defaults(func=run)


def node_parameters(cfg: RecordConfig) -> tuple[dict, dict]:
    """(teleop, recorder) parameters: the same action scale and safety limits as the policy node's graph."""
    from lpds_ros.graph import SIM_MAX_LIN_SPEED, SIM_MAX_YAW_RATE
    from lpds_ros.recorder_core import TASK_ACT_DIMS

    step = SIM_MAX_LIN_SPEED / cfg.rate
    teleop = {"input": cfg.input if cfg.input != "none" else "joy", "control_rate": cfg.rate * cfg.speedup,
              "act_dim": TASK_ACT_DIMS[cfg.task], "action_scale": step, "yaw_scale": SIM_MAX_YAW_RATE / cfg.rate,
              "max_step": 2 * step, "max_lead": 2 * step}
    recorder = {"task": cfg.task, "obs_mode": cfg.obs, "out": cfg.out, "control_rate": cfg.rate,
                "speedup": cfg.speedup, "max_gap": cfg.max_gap, "max_episodes": cfg.n_demos, "keyboard": True,
                "action_scale": step}
    return teleop, recorder


DERIVED = {"max_step", "max_lead"}  # teleop limits derived from --rate unless the --ros-params YAML sets them


def yaml_keys(path: str) -> set[str]:
    """Every parameter name a ROS parameters YAML sets (any node section)."""
    if not path:
        return set()
    import yaml

    from lpds_core.errors import ConfigError

    try:
        data = yaml.safe_load(Path(path).read_text()) or {}
        return {k for sec in data.values() for k in (sec.get("ros__parameters") or {})}
    except (yaml.YAMLError, AttributeError, TypeError) as exc:
        raise ConfigError(f"--ros-params {path} is not a ROS parameters YAML (node: {{ros__parameters: ...}}): "
                          f"{' '.join(str(exc).split())[:120]}") from exc


def run(args: argparse.Namespace) -> int:
    from lpds_core.errors import ConfigError

    cfg = schema.resolve(RecordConfig, getattr(args, "config", None), schema.given_flags(RecordConfig, args))
    if not cfg.out:
        raise ConfigError("no output file: pass --out FILE.hdf5")
    if cfg.ros_params and not Path(cfg.ros_params).is_file():
        raise ConfigError(f"--ros-params {cfg.ros_params} does not exist; pass a ROS parameters YAML")
    yaml_keys(cfg.ros_params)  # a broken YAML is one line here, not an rclpy traceback
    from lpds_ros.recorder_core import check_out_file, layout_for

    n = check_out_file(cfg.out, layout_for(cfg.task, cfg.obs, cfg.rate, 0.3 / cfg.rate))  # refuse before ROS starts
    print(f"recording {cfg.task} demos ({cfg.obs}) at {cfg.rate} Hz into {cfg.out} ({n} already there)")
    return spin(cfg)


def spin(cfg: RecordConfig) -> int:
    import rclpy
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.parameter import Parameter

    from lpds_ros.recorder_node import RecorderNode
    from lpds_ros.teleop_node import TeleopNode

    teleop_p, rec_p = node_parameters(cfg)
    for key in yaml_keys(cfg.ros_params) & DERIVED:  # the bench's own limits (e.g. policy_fr3.yaml) win
        teleop_p.pop(key, None)
    rclpy.init(args=["lpds", "--ros-args", "--params-file", cfg.ros_params] if cfg.ros_params else None)
    nodes = []
    try:
        def params(d: dict) -> list:
            return [Parameter(k, value=v) for k, v in d.items()]

        recorder = RecorderNode(parameter_overrides=params(rec_p))
        nodes.append(recorder)
        if cfg.input != "none":
            nodes.append(TeleopNode(parameter_overrides=params(teleop_p)))
        ex = SingleThreadedExecutor()
        for nd in nodes:
            ex.add_node(nd)
        while rclpy.ok() and not recorder.done:
            ex.spin_once(timeout_sec=0.1)
        print(f"{recorder.episodes_this_session} episodes saved this session; {cfg.out} holds {recorder.saved}")
    finally:
        for nd in nodes:
            nd.destroy_node()
        rclpy.try_shutdown()
    return 0
