"""Franka adapter: the policy's safe targets -> franka_ros2.

controller `cartesian_impedance`: PoseStamped relayed to the Cartesian impedance controller's ~/equilibrium_pose
(franka_ros2 jazzy >= 3.3; the controller interpolates at 1 kHz and holds the last target).
controller `joint_trajectory`: IK from the measured joints -> a one-point JointTrajectory for a
JointTrajectoryController (~/joint_trajectory).
gripper `franka_actions`: 0..1 command with hysteresis -> franka_gripper Grasp/Move actions (franka_msgs, imported
lazily; a clear error when missing); `topic`: relayed as Float64 (sim robot); `none`: ignored.
"""
from __future__ import annotations

from typing import Any

import numpy as np
from builtin_interfaces.msg import Duration
from geometry_msgs.msg import PoseStamped
from rclpy.node import Node
from sensor_msgs.msg import JointState
from std_msgs.msg import Float64
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

from .kinematics import HOME, JOINT_NAMES, ik
from .ros_common import command_qos, declare_graph_parameters, run_node


class GripperHysteresis:
    """0..1 command -> 'close' / 'open' transitions only (franka_gripper actions take ~1 s; never spam them)."""

    def __init__(self, close_above: float = 0.6, open_below: float = 0.4):
        if not open_below < close_above:
            raise ValueError("gripper_open_below must be below gripper_close_above")
        self.close_above, self.open_below, self.closed = close_above, open_below, False

    def update(self, cmd: float) -> str | None:
        if not self.closed and cmd > self.close_above:
            self.closed = True
            return "close"
        if self.closed and cmd < self.open_below:
            self.closed = False
            return "open"
        return None


def import_franka_actions():
    try:
        from franka_msgs.action import Grasp, Move
    except ImportError as exc:
        raise RuntimeError("gripper_backend 'franka_actions' needs franka_msgs (build franka_ros2 in the workspace, "
                           "see docker/ and docs/robot_bringup.md), or set gripper_backend:=topic|none") from exc
    return Grasp, Move


class FrankaAdapterNode(Node):
    def __init__(self, **kwargs: Any):
        super().__init__("franka_adapter", **kwargs)
        self.p = p = declare_graph_parameters(self, "franka_adapter_node")
        self.hyst = GripperHysteresis(float(p["gripper_close_above"]), float(p["gripper_open_below"]))
        self._q = HOME.copy()
        if p["controller"] == "cartesian_impedance":
            self.pub_pose = self.create_publisher(PoseStamped, p["equilibrium_pose_topic"], command_qos())
        elif p["controller"] == "joint_trajectory":
            self.pub_traj = self.create_publisher(JointTrajectory, p["joint_trajectory_topic"], command_qos())
            self.create_subscription(JointState, p["joint_states_topic"], self._on_joints, 10)
        else:
            raise ValueError(f"controller must be cartesian_impedance or joint_trajectory, got {p['controller']!r}")
        self.create_subscription(PoseStamped, p["target_pose_topic"], self._on_target, command_qos())
        self.create_subscription(Float64, p["gripper_command_topic"], self._on_gripper, command_qos())
        backend = p["gripper_backend"]
        if backend == "franka_actions":
            from rclpy.action import ActionClient

            Grasp, Move = import_franka_actions()
            ns = p["gripper_action_ns"]
            self._Grasp, self._Move = Grasp, Move
            self.grasp_client = ActionClient(self, Grasp, f"{ns}/grasp")
            self.move_client = ActionClient(self, Move, f"{ns}/move")
            self._goal_active = False
        elif backend == "topic":
            self.pub_gripper = self.create_publisher(Float64, p["gripper_topic"], command_qos())
        elif backend != "none":
            raise ValueError(f"gripper_backend must be franka_actions, topic or none, got {backend!r}")
        self.get_logger().info(f"franka adapter up: controller={p['controller']} gripper={backend}")

    def _on_joints(self, msg: JointState) -> None:
        idx = {n: i for i, n in enumerate(msg.name)}
        if all(n in idx for n in JOINT_NAMES) and len(msg.position) == len(msg.name):
            q = np.array([msg.position[idx[n]] for n in JOINT_NAMES], float)
            if np.all(np.isfinite(q)):  # a malformed joint state must not seed the IK
                self._q = q

    def _on_target(self, msg: PoseStamped) -> None:
        p, o = msg.pose.position, msg.pose.orientation
        if not np.all(np.isfinite([p.x, p.y, p.z, o.x, o.y, o.z, o.w])):  # never forward NaN to the controller
            self.get_logger().error("non-finite target pose dropped", throttle_duration_sec=1.0)
            return
        if self.p["controller"] == "cartesian_impedance":
            self.pub_pose.publish(msg)
            return
        q, residual = ik(np.array([p.x, p.y, p.z]), np.array([o.x, o.y, o.z, o.w]), self._q)
        if not (np.isfinite(residual) and residual <= 1e-2) or not np.all(np.isfinite(q)):
            self.get_logger().warning(f"IK residual {residual:.3g}: target not reachable, holding",
                                      throttle_duration_sec=1.0)
            return
        t = float(self.p["trajectory_time"])
        traj = JointTrajectory(joint_names=JOINT_NAMES)
        traj.points = [JointTrajectoryPoint(positions=[float(x) for x in q],
                                            time_from_start=Duration(sec=int(t), nanosec=int((t % 1) * 1e9)))]
        self.pub_traj.publish(traj)

    def _on_gripper(self, msg: Float64) -> None:
        backend = self.p["gripper_backend"]
        if backend == "topic":
            self.pub_gripper.publish(msg)
            return
        if backend == "none" or not np.isfinite(msg.data):
            return
        if self._goal_active:
            return  # decide again on the next command once the running goal is done
        action = self.hyst.update(float(msg.data))
        if action is None:
            return
        p = self.p
        if action == "close":
            goal = self._Grasp.Goal(width=float(p["grasp_width"]), speed=float(p["gripper_speed"]),
                                    force=float(p["grasp_force"]))
            goal.epsilon.inner = goal.epsilon.outer = 0.04  # accept any object width
            fut = self.grasp_client.send_goal_async(goal)
        else:
            fut = self.move_client.send_goal_async(self._Move.Goal(width=float(p["open_width"]),
                                                                   speed=float(p["gripper_speed"])))
        self._goal_active = True
        fut.add_done_callback(self._on_goal_response)

    def _on_goal_response(self, fut) -> None:
        handle = fut.result()
        if handle is None or not handle.accepted:
            self.get_logger().error("gripper goal rejected")
            self._goal_active = False
            return
        handle.get_result_async().add_done_callback(lambda _f: setattr(self, "_goal_active", False))


def main(args: list[str] | None = None) -> int:
    return run_node(FrankaAdapterNode, args)


if __name__ == "__main__":
    raise SystemExit(main())
