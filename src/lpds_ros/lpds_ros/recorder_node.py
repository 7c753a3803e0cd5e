"""Recorder node: teleoperated demonstrations from the robot's topics into the robomimic HDF5 `lpds train-base` reads.

in   current_pose (PoseStamped), gripper joint_states, joint_states, task_state (sim; state mode), perception's
     obs/rgb + obs/depth (image mode: the policy's own preprocessed images), teleop action (JointState),
     teleop events (String start|save|discard: the Joy buttons), the commanded target_pose (kept as obs/target_pos
     for review), sim/episode_info (sim: success is kept per demo)
services  ~/start, ~/save, ~/discard (std_srvs/Trigger); parameter keyboard: s=start, w=save, d=discard, q=quit
Resampling and the file are lpds_ros.recorder_core (zero-order hold by stamp onto the control grid). The output
file is never overwritten: new episodes are appended to a file this recorder wrote with the same layout, any other
existing file is refused at start-up.
"""
from __future__ import annotations

import sys
import threading
import time
from typing import Any

import numpy as np
from geometry_msgs.msg import PoseStamped
from rclpy.node import Node
from sensor_msgs.msg import Image, JointState
from std_msgs.msg import String
from std_srvs.srv import Trigger

from lpds_core.errors import UserError

from .base_frame import BaseFrame
from .image_codec import depth_metres_from_image, rgb_from_image
from .policy_core import RobotState
from .policy_node import proprio_from_state
from .recorder_core import EpisodeBuffer, check_out_file, layout_for, save_episode, to_episode
from .ros_common import command_qos, declare_graph_parameters, run_node, sensor_qos, stamp_to_sec

KEYS = {"s": "start", "w": "save", "d": "discard", "q": "quit"}


class RecorderNode(Node):
    def __init__(self, **kwargs: Any):
        super().__init__("recorder", **kwargs)
        self.p = p = declare_graph_parameters(self, "recorder_node")
        if p["obs_mode"] not in ("state", "image"):
            raise ValueError(f"obs_mode must be state or image, got {p['obs_mode']!r}")
        for name in ("control_rate", "speedup", "max_episode_seconds"):
            if not float(p[name]) > 0:
                raise ValueError(f"{name} must be a positive number, got {p[name]}")
        self.layout = layout_for(p["task"], p["obs_mode"], float(p["control_rate"]), float(p["action_scale"]))
        self.wall_rate = float(p["control_rate"]) * float(p["speedup"])
        self.max_gap = float(p["max_gap"]) or 3.0 / self.wall_rate
        self.saved = check_out_file(p["out"], self.layout)  # refuses a foreign or other-layout file before recording
        self.base = BaseFrame.from_parameters(p)  # robot base (current_pose, target_pose) -> world (the demos)
        self.lock = threading.Lock()
        self.buffer: EpisodeBuffer | None = None
        self._started = 0.0
        self._info: dict[str, float] = {}
        self.done, self.exit_code, self.last_message = False, 0, ""
        self.episodes_this_session = 0
        sq = sensor_qos()
        self.create_subscription(PoseStamped, p["current_pose_topic"], self._on_pose, sq)
        self.create_subscription(JointState, p["gripper_state_topic"], self._on_gripper, sq)
        self.create_subscription(JointState, p["joint_states_topic"], self._on_joints, 10)
        self.create_subscription(JointState, p["task_state_topic"], self._on_task_state, sq)
        self.create_subscription(JointState, p["episode_info_topic"], self._on_info, 10)
        self.create_subscription(JointState, p["action_topic"], self._on_action, 50)
        self.create_subscription(PoseStamped, p["target_pose_topic"], self._on_target, command_qos())
        self.create_subscription(String, p["events_topic"], lambda m: self.command(m.data), 10)
        if p["obs_mode"] == "image":
            self.create_subscription(Image, p["obs_rgb_topic"], self._on_rgb, sq)
            self.create_subscription(Image, p["obs_depth_topic"], self._on_depth, sq)
        for name in ("start", "save", "discard"):
            self.create_service(Trigger, f"~/{name}", self._service(name))
        self.create_timer(0.5, self._check_length)
        if p["keyboard"]:
            threading.Thread(target=self._keyboard, daemon=True).start()
        self.get_logger().info(f"recorder up: task={p['task']} obs={p['obs_mode']} rate={p['control_rate']} Hz -> "
                               f"{p['out']} ({self.saved} episodes already in it)")

    # -- inputs ---------------------------------------------------------------------------------------------
    def _add(self, name: str, stamp: float, value: Any) -> None:
        with self.lock:
            if self.buffer is not None:
                self.buffer.add(name, stamp, value)

    def _on_pose(self, msg: PoseStamped) -> None:
        p, q = msg.pose.position, msg.pose.orientation
        self._add("ee_pose", stamp_to_sec(msg.header.stamp), self.base.to_world([p.x, p.y, p.z], [q.x, q.y, q.z, q.w]))

    def _on_target(self, msg: PoseStamped) -> None:
        p = msg.pose.position
        self._add("target", stamp_to_sec(msg.header.stamp), self.base.position_to_world([p.x, p.y, p.z]))

    def _on_gripper(self, msg: JointState) -> None:
        if len(msg.position):
            self._add("gripper", stamp_to_sec(msg.header.stamp), float(np.sum(msg.position)))

    def _on_joints(self, msg: JointState) -> None:
        self._add("joints", stamp_to_sec(msg.header.stamp), np.asarray(msg.position, np.float32))

    def _on_task_state(self, msg: JointState) -> None:
        self._add("task_state", stamp_to_sec(msg.header.stamp), np.asarray(msg.position, np.float32))

    def _on_info(self, msg: JointState) -> None:
        self._info = dict(zip(msg.name, msg.position))

    def _on_action(self, msg: JointState) -> None:
        a = np.asarray(msg.position, float)
        if a.shape == (self.layout.act_dim,) and np.all(np.isfinite(a)):
            self._add("action", stamp_to_sec(msg.header.stamp), a)

    def _on_rgb(self, msg: Image) -> None:
        try:
            rgb = np.ascontiguousarray(rgb_from_image(msg).transpose(2, 0, 1))
            self._add("rgb", stamp_to_sec(msg.header.stamp), rgb)
        except ValueError as exc:
            self.get_logger().warning(f"bad rgb image dropped: {exc}", throttle_duration_sec=2.0)

    def _on_depth(self, msg: Image) -> None:
        try:
            self._add("depth", stamp_to_sec(msg.header.stamp), depth_metres_from_image(msg)[None])
        except ValueError as exc:
            self.get_logger().warning(f"bad depth image dropped: {exc}", throttle_duration_sec=2.0)

    # -- episode control ------------------------------------------------------------------------------------
    def command(self, what: str) -> tuple[bool, str]:
        """start | save | discard | quit -> (success, message); the message is also logged."""
        with self.lock:
            ok, msg = self._command(what)
        self.last_message = msg
        if ok:  # two call sites: rclpy ties a call site to one severity
            self.get_logger().info(msg)
        else:
            self.get_logger().warning(msg)
        return ok, msg

    def _command(self, what: str) -> tuple[bool, str]:
        if what == "start":
            if self.buffer is not None:
                return False, "already recording: save (w) or discard (d) this episode first"
            self.buffer, self._started = EpisodeBuffer(), time.monotonic()
            return True, f"recording episode {self.saved + 1}"
        if what == "discard":
            if self.buffer is None:
                return False, "not recording: nothing to discard"
            self.buffer = None
            return True, "episode discarded"
        if what == "save":
            if self.buffer is None:
                return False, "not recording: start (s) an episode first"
            try:
                res = self.buffer.resample(self.layout_wall(), self.max_gap, float(self.p["gripper_open_value"]))
                attrs = {"sim_" + k: float(v) for k, v in self._info.items() if k in ("success", "collision",
                                                                                     "steps", "return")}
                ep = to_episode(res, self.layout, self._proprio, attrs)
                self.saved = save_episode(self.p["out"], ep, self.layout)
            except UserError as exc:
                return False, f"not saved (still recording; discard with d): {exc}"
            except Exception as exc:  # noqa: BLE001 - a bug must not take the recorder (and its episodes) down
                return False, (f"not saved (still recording; discard with d): {type(exc).__name__}: {exc} "
                               f"(a bug in the recorder; please report it)")
            self.buffer = None
            self.episodes_this_session += 1
            cut = f"; cut early: {res.cut}" if res.cut else ""
            if 0 < int(self.p["max_episodes"]) <= self.episodes_this_session:
                self.done = True
            return True, (f"saved episode {self.saved} ({len(ep)} steps, {res.held} held ticks{cut}) to "
                          f"{self.p['out']}")
        if what == "quit":
            self.done = True
            return True, "quitting" + (" (the episode being recorded is discarded)" if self.buffer is not None
                                       else "")
        return False, f"unknown command {what!r}: start, save, discard or quit"

    def layout_wall(self):
        """The layout on the wall clock: the grid runs at control_rate * speedup (speedup 1 on a real robot)."""
        import dataclasses

        return dataclasses.replace(self.layout, rate=self.wall_rate)

    def _proprio(self, pos: np.ndarray, quat_xyzw: np.ndarray, width: float) -> np.ndarray:
        return proprio_from_state(RobotState(0.0, pos, quat_xyzw, width), list(self.p["proprio_layout"]))

    def _check_length(self) -> None:
        with self.lock:
            too_long = self.buffer is not None and time.monotonic() - self._started > float(
                self.p["max_episode_seconds"])
        if too_long:
            self.command("save")

    def _service(self, name: str):
        def handle(_req, resp):
            resp.success, resp.message = self.command(name)
            return resp
        return handle

    def _keyboard(self) -> None:
        """s/w/d/q on stdin (one key, or one line per command where stdin is not a terminal)."""
        print("recorder keys: s = start, w = save, d = discard, q = quit", flush=True)
        fd, old = None, None
        try:
            if sys.stdin.isatty():
                import termios
                import tty

                fd = sys.stdin.fileno()
                old = termios.tcgetattr(fd)
                tty.setcbreak(fd)
            while not self.done:
                ch = sys.stdin.read(1)
                if not ch:
                    break
                if ch.strip().lower() in KEYS:
                    self.command(KEYS[ch.strip().lower()])
        finally:
            if old is not None:
                import termios

                termios.tcsetattr(fd, termios.TCSADRAIN, old)


def main(args: list[str] | None = None) -> int:
    return run_node(RecorderNode, args)


if __name__ == "__main__":
    raise SystemExit(main())
