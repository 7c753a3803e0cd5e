"""Teleop node: a SpaceMouse (`sensor_msgs/Joy`) or a leader arm (`PoseStamped`) drives the robot like a policy.

in   joy_topic (Joy) and/or leader_topic (PoseStamped), current_pose (PoseStamped), gripper joint_states
out  target_pose (PoseStamped) + gripper_command (Float64 0 open .. 1 closed): the policy node's topics, so the
     franka adapter (or the sim robot behind it) follows; action_topic (JointState: the executed action by name,
     stamped with the tick time, what the recorder stores); events_topic (String: start | save | discard, the
     Joy buttons).  Service ~/restart (std_srvs/Trigger): start again from the measured pose (after a reset).
The logic is lpds_ros.teleop_core (the policy's action layout and safety filter); this node moves messages.
"""
from __future__ import annotations

from typing import Any

import numpy as np
from geometry_msgs.msg import PoseStamped
from rclpy.node import Node
from sensor_msgs.msg import Joy, JointState
from std_msgs.msg import Float64, String
from std_srvs.srv import Trigger

from .base_frame import BaseFrame
from .policy_core import ActionMapping, RobotState
from .ros_common import base_pose_msg, command_qos, declare_graph_parameters, now_sec, run_node, sensor_qos, stamp_to_sec
from .safety import SafetyLimits
from .teleop_core import JoyMapping, TeleopController


def action_names(act_dim: int) -> list[str]:
    return ["dx", "dy", "dz", "gripper"] if act_dim == 4 else ["dx", "dy", "dz", "dyaw", "gripper"]


class TeleopNode(Node):
    def __init__(self, **kwargs: Any):
        super().__init__("teleop", **kwargs)
        self.p = p = declare_graph_parameters(self, "teleop_node")
        if p["input"] not in ("joy", "leader", "both"):
            raise ValueError(f"input must be joy, leader or both, got {p['input']!r}")
        if p["tick_source"] not in ("timer", "obs"):
            raise ValueError(f"tick_source must be timer or obs, got {p['tick_source']!r}")
        if not float(p["control_rate"]) > 0:
            raise ValueError(f"control_rate must be a positive number, got {p['control_rate']}")
        joy = JoyMapping(tuple(int(i) for i in p["joy_axes"]), tuple(float(s) for s in p["joy_signs"]),
                         int(p["joy_yaw_axis"]), 1.0, float(p["joy_deadband"]), float(p["joy_scale"]),
                         int(p["gripper_button"]), int(p["save_button"]), int(p["start_button"]),
                         int(p["discard_button"]))
        limits = SafetyLimits(tuple(float(x) for x in p["box_min"]), tuple(float(x) for x in p["box_max"]),
                              float(p["max_step"]), float(p["max_lead"]))
        mapping = ActionMapping(float(p["action_scale"]), float(p["gripper_open_value"]),
                                float(p["gripper_closed_value"]), float(p["yaw_scale"]), 1.0)
        self.core = TeleopController(limits, mapping, int(p["act_dim"]), joy, float(p["leader_scale"]),
                                     float(p["operator_timeout"]), float(p["max_input_age"]))
        self.base = BaseFrame.from_parameters(p)  # robot base (poses, targets, leader) <-> policy world frame
        self.names = action_names(int(p["act_dim"]))
        self._state: RobotState | None = None
        self._width = 0.08
        sq = sensor_qos()
        if p["input"] in ("joy", "both"):
            self.create_subscription(Joy, p["joy_topic"], self._on_joy, 10)
        if p["input"] in ("leader", "both"):
            self.create_subscription(PoseStamped, p["leader_topic"], self._on_leader, sq)
        self.create_subscription(PoseStamped, p["current_pose_topic"], self._on_pose, sq)
        self.create_subscription(JointState, p["gripper_state_topic"], self._on_gripper, sq)
        self.pub_target = self.create_publisher(PoseStamped, p["target_pose_topic"], command_qos())
        self.pub_gripper = self.create_publisher(Float64, p["gripper_command_topic"], command_qos())
        self.pub_action = self.create_publisher(JointState, p["action_topic"], 50)
        self.pub_events = self.create_publisher(String, p["events_topic"], 10)
        self.create_service(Trigger, "~/restart", self._srv_restart)
        if p["tick_source"] == "timer":
            self.create_timer(1.0 / float(p["control_rate"]), self._tick)
        self._last_reason = ""
        self.get_logger().info(f"teleop up: input={p['input']} rate={p['control_rate']} Hz, act_dim {p['act_dim']},"
                               f" publishing {p['target_pose_topic']} + {p['gripper_command_topic']}")

    def _on_joy(self, msg: Joy) -> None:
        stamp = stamp_to_sec(msg.header.stamp) or now_sec(self)  # spacenav may leave the stamp empty
        for ev in self.core.on_joy(stamp, list(msg.axes), list(msg.buttons)):
            if ev != "gripper":
                if ev == "start":
                    self.core.restart()
                self.pub_events.publish(String(data=ev))

    def _on_leader(self, msg: PoseStamped) -> None:
        p = msg.pose.position  # a leader arm mounted like the follower: its motion in the same base frame
        self.core.on_leader(stamp_to_sec(msg.header.stamp) or now_sec(self),
                            self.base.position_to_world([p.x, p.y, p.z]))

    def _on_pose(self, msg: PoseStamped) -> None:
        pos, q = msg.pose.position, msg.pose.orientation
        self._state = RobotState(stamp_to_sec(msg.header.stamp),
                                 *self.base.to_world([pos.x, pos.y, pos.z], [q.x, q.y, q.z, q.w]), self._width)
        if self.p["tick_source"] == "obs":
            self._tick()

    def _on_gripper(self, msg: JointState) -> None:
        self._width = float(np.sum(msg.position)) if len(msg.position) else float("nan")

    def _srv_restart(self, _req, resp):
        self.core.restart()
        resp.success, resp.message = True, "teleop restarts from the measured pose"
        return resp

    def _tick(self) -> None:
        st = self._state
        if st is not None and st.gripper_width != self._width:
            st = RobotState(st.stamp, st.position, st.quaternion, self._width)
        res = self.core.tick(now_sec(self), st)
        reason = "; ".join(res.reasons)
        if reason != self._last_reason and reason:
            self.get_logger().warning(f"teleop: {reason}", throttle_duration_sec=1.0)
        self._last_reason = reason
        if res.command is None:
            return
        stamp = self.get_clock().now().to_msg()
        cmd = res.command
        self.pub_target.publish(base_pose_msg(self.base, cmd.position, cmd.quaternion, self.p["base_frame"], stamp))
        self.pub_gripper.publish(Float64(data=float(cmd.gripper)))
        act = JointState(name=list(self.names), position=[float(x) for x in res.action])
        act.header.stamp = stamp
        self.pub_action.publish(act)


def main(args: list[str] | None = None) -> int:
    return run_node(TeleopNode, args)


if __name__ == "__main__":
    raise SystemExit(main())
