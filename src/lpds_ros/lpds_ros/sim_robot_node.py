"""Simulated robot: a sim backend behind franka_ros2's and realsense-ros's topic names.

in  equilibrium_pose (PoseStamped, like the Cartesian impedance controller), franka_gripper/command (Float64 0..1)
out current_pose, joint_states, franka_gripper/joint_states, RealSense colour (rgb8) + aligned depth (16UC1 mm),
    sim/task_state (the env's state observation as a named vector), sim/episode_info (success, collision, steps,
    object pose).  Service ~/reset (std_srvs/Trigger): new episode with the object in cell (reset_row, reset_col),
    jitter seed reset_seed — set those parameters first (the evaluator does).
Everything published in one tick carries the same stamp.
"""
from __future__ import annotations

import time
from typing import Any

import numpy as np
from geometry_msgs.msg import PoseStamped
from rclpy.node import Node
from sensor_msgs.msg import Image, JointState
from std_msgs.msg import Float64
from std_srvs.srv import Trigger

from lpds_core.image_preprocess import metres_to_depth_units

from .image_codec import numpy_to_image
from .ros_common import command_qos, declare_graph_parameters, run_node, sensor_qos
from .sim_backends import make_backend


class SimRobotNode(Node):
    def __init__(self, backend: Any = None, **kwargs: Any):
        super().__init__("sim_robot", **kwargs)
        self.p = p = declare_graph_parameters(self, "sim_robot_node")
        self.backend = backend if backend is not None else make_backend(
            p["backend"], p["task"], int(p["seed"]), float(p["rate"]), bool(p["publish_images"]),
            int(p["max_episode_steps"]) or None, bench_profile=str(p["bench_profile"]))
        self._reset_backend()
        sq = sensor_qos()
        self.pub_pose = self.create_publisher(PoseStamped, p["current_pose_topic"], sq)
        self.pub_gripper = self.create_publisher(JointState, p["gripper_state_topic"], sq)
        self.pub_joints = self.create_publisher(JointState, p["joint_states_topic"], 10)
        self.pub_task = self.create_publisher(JointState, p["task_state_topic"], sq)
        self.pub_info = self.create_publisher(JointState, p["episode_info_topic"], 10)
        self.pub_color = self.create_publisher(Image, p["color_topic"], sq)
        self.pub_depth = self.create_publisher(Image, p["depth_topic"], sq)
        self.create_subscription(PoseStamped, p["equilibrium_pose_topic"], self._on_target, command_qos())
        self.create_subscription(Float64, p["gripper_topic"], self._on_gripper, command_qos())
        self.create_service(Trigger, "~/reset", self._srv_reset)
        self._tick_count = 0
        self.period = 1.0 / (float(p["rate"]) * float(p["speedup"]))
        self._fresh = {"target": False, "gripper": False}
        self._last_step = self._published_at = time.monotonic()
        self.create_timer(self.period / 4 if p["lockstep"] else self.period, self._tick)
        self.get_logger().info(f"sim robot up: backend={p['backend']} task={p['task']} rate={p['rate']} Hz")

    def _reset_backend(self) -> None:
        row, col, seed, rows, cols = (int(self.get_parameter(n).value)
                                      for n in ("reset_row", "reset_col", "reset_seed", "grid_rows", "grid_cols"))
        self.backend.reset(row, col, seed, (rows, cols))
        self._gripper = 0.0
        self._target = None
        self._unanswered = 0  # steps taken without a fresh command (policy stopped, late, or lockstep timeout)
        self._targets = 0  # targets received since the reset (reported in episode_info with the last one)

    def _on_target(self, msg: PoseStamped) -> None:
        p, q = msg.pose.position, msg.pose.orientation
        pos, quat = np.array([p.x, p.y, p.z]), np.array([q.x, q.y, q.z, q.w])
        if not (np.all(np.isfinite(pos)) and np.all(np.isfinite(quat)) and np.linalg.norm(quat) > 1e-6):
            self.get_logger().error("ignoring a non-finite target pose", throttle_duration_sec=1.0)
            return
        self._target = (pos, quat)
        self._targets += 1
        self._fresh["target"] = True
        self.backend.command(pos, quat, self._gripper)

    def _on_gripper(self, msg: Float64) -> None:
        if not np.isfinite(msg.data):
            return
        self._gripper = float(np.clip(msg.data, 0.0, 1.0))
        self._fresh["gripper"] = True
        pos, quat = self._target if self._target is not None else self.backend.ee_pose()
        self.backend.command(pos, quat, self._gripper)

    def _srv_reset(self, _req, resp):
        try:
            self._reset_backend()
        except Exception as exc:  # noqa: BLE001 - report to the caller
            resp.success, resp.message = False, f"reset failed: {exc}"
            return resp
        self._publish(self.get_clock().now().to_msg(), images=True)
        resp.success, resp.message = True, "reset"
        return resp

    def _tick(self) -> None:
        if self.p["lockstep"]:
            now = time.monotonic()
            answered = all(self._fresh.values())
            # the timeout runs from the publish (a slow step or render must not eat the policy's time)
            if now - self._last_step < self.period or (
                    not answered and now - self._published_at < self.period * float(self.p["lockstep_timeout"])):
                return
        self._last_step = time.monotonic()
        if not all(self._fresh.values()):
            self._unanswered += 1
        self._fresh = {"target": False, "gripper": False}
        self.backend.step()
        self._tick_count += 1
        every = max(1, int(self.p["image_every"]))
        self._publish(self.get_clock().now().to_msg(), images=self._tick_count % every == 0)
        self._published_at = time.monotonic()

    def _publish(self, stamp, images: bool) -> None:
        b = self.backend
        pos, quat = b.ee_pose()
        pose = PoseStamped()
        pose.header.stamp, pose.header.frame_id = stamp, self.p["base_frame"]
        pose.pose.position.x, pose.pose.position.y, pose.pose.position.z = map(float, pos)
        (pose.pose.orientation.x, pose.pose.orientation.y, pose.pose.orientation.z,
         pose.pose.orientation.w) = map(float, quat)
        width = float(b.gripper_width())
        fingers = JointState(name=["fr3_finger_joint1", "fr3_finger_joint2"], position=[width / 2, width / 2])
        fingers.header.stamp = stamp
        joints = JointState(name=list(b.joint_names), position=[float(x) for x in b.joint_positions()])
        joints.header.stamp = stamp
        task = JointState(name=list(b.obs_names), position=[float(x) for x in b.task_obs()])
        task.header.stamp = stamp
        last = self._target[0] if self._target is not None else (np.nan, np.nan, np.nan)
        info_d = {**b.episode_info(), "unanswered_steps": float(self._unanswered), "targets": float(self._targets),
                  "target_x": float(last[0]), "target_y": float(last[1]), "target_z": float(last[2])}
        info = JointState(name=list(info_d), position=[float(v) for v in info_d.values()])
        info.header.stamp = stamp
        if images and self.p["publish_images"]:
            frame = b.render()
            if frame is not None:
                rgb, depth_m = frame
                depth_mm = metres_to_depth_units(depth_m, 0.001)  # 16UC1 in mm, as realsense2_camera
                self.pub_color.publish(numpy_to_image(rgb, "rgb8", stamp, self.p["camera_frame"]))
                self.pub_depth.publish(numpy_to_image(depth_mm, "16UC1", stamp, self.p["camera_frame"]))
        self.pub_gripper.publish(fingers)
        self.pub_joints.publish(joints)
        self.pub_info.publish(info)
        # the policy ticks on (task_state, current_pose): publish those last so a tick sees fresh images and info
        self.pub_task.publish(task)
        self.pub_pose.publish(pose)


def main(args: list[str] | None = None) -> int:
    return run_node(SimRobotNode, args)


if __name__ == "__main__":
    raise SystemExit(main())
