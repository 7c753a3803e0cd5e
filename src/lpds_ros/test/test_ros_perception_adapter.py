"""Perception and franka adapter nodes over rclpy: 640x480 camera frames -> 84x84 observation with the camera's
stamp; targets -> equilibrium_pose / IK JointTrajectory; a missing franka_msgs / control_msgs gives a clear error.
The typed franka_msgs / control_msgs paths: test_ros_franka_actions.py."""
from __future__ import annotations

import time

import numpy as np
import pytest

from ros_test_utils import wait_for

pytestmark = pytest.mark.ros


def _node(ctx, add, cls, **params):
    from rclpy.parameter import Parameter

    return add(cls(context=ctx, parameter_overrides=[Parameter(k, value=v) for k, v in params.items()]))


def test_perception_turns_camera_frames_into_policy_observations(ros):
    from rclpy.node import Node
    from sensor_msgs.msg import Image

    from lpds_ros.image_codec import image_to_numpy, numpy_to_image
    from lpds_ros.perception_node import PerceptionNode
    from lpds_ros.ros_common import sec_to_stamp, sensor_qos

    ctx, add = ros
    _node(ctx, add, PerceptionNode)
    cam = add(Node("camera", context=ctx))
    got = []
    cam.create_subscription(Image, "lpds/obs/depth", lambda m: got.append(("depth", m)), sensor_qos())
    cam.create_subscription(Image, "lpds/obs/rgb", lambda m: got.append(("rgb", m)), sensor_qos())
    pub_c = cam.create_publisher(Image, "/camera/camera/color/image_raw", sensor_qos())
    pub_d = cam.create_publisher(Image, "/camera/camera/aligned_depth_to_color/image_raw", sensor_qos())
    assert wait_for(lambda: pub_c.get_subscription_count() and pub_d.get_subscription_count(), 10)
    rgb = np.zeros((480, 640, 3), np.uint8)
    rgb[:, 320:] = (200, 10, 10)
    depth_mm = np.full((480, 640), 800, np.uint16)
    stamp = sec_to_stamp(1234.5)
    for _ in range(20):
        pub_c.publish(numpy_to_image(rgb, "rgb8", stamp))
        pub_d.publish(numpy_to_image(depth_mm, "16UC1", stamp))
        if wait_for(lambda: {k for k, _ in got} == {"rgb", "depth"}, 0.3):
            break
    out = dict(got)
    assert (out["rgb"].height, out["rgb"].width, out["rgb"].encoding) == (84, 84, "rgb8")
    assert out["rgb"].header.stamp.sec == 1234 and out["depth"].encoding == "32FC1"
    r = image_to_numpy(out["rgb"])
    assert r[:, :40].max() == 0 and np.all(r[:, 44:, 0] == 200)  # left half black, right half red
    np.testing.assert_allclose(image_to_numpy(out["depth"]), 0.8, rtol=1e-6)


def _target(x, y, z, q=(1.0, 0.0, 0.0, 0.0)):
    from geometry_msgs.msg import PoseStamped

    m = PoseStamped()
    m.pose.position.x, m.pose.position.y, m.pose.position.z = x, y, z
    m.pose.orientation.x, m.pose.orientation.y, m.pose.orientation.z, m.pose.orientation.w = q
    return m


def test_adapter_relays_cartesian_targets_and_solves_ik_for_joint_trajectories(ros):
    from geometry_msgs.msg import PoseStamped
    from rclpy.node import Node
    from std_msgs.msg import Float64
    from trajectory_msgs.msg import JointTrajectory

    from lpds_ros.franka_adapter_node import FrankaAdapterNode
    from lpds_ros.kinematics import HOME, fk

    ctx, add = ros
    _node(ctx, add, FrankaAdapterNode, gripper_backend="topic", error_recovery=False)
    from rclpy.parameter import Parameter

    ik_node = add(FrankaAdapterNode(context=ctx, namespace="ik", parameter_overrides=[
        Parameter("controller", value="joint_trajectory"), Parameter("trajectory_interface", value="topic"),
        Parameter("gripper_backend", value="none"), Parameter("error_recovery", value=False)]))
    t = add(Node("tester", context=ctx))
    poses, trajs, grips = [], [], []
    t.create_subscription(PoseStamped, "cartesian_impedance_example_controller/equilibrium_pose", poses.append, 10)
    t.create_subscription(JointTrajectory, "/ik/fr3_arm_controller/joint_trajectory", trajs.append, 10)
    t.create_subscription(Float64, "franka_gripper/command", grips.append, 10)
    pub = t.create_publisher(PoseStamped, "lpds/target_pose", 10)
    pub_ik = t.create_publisher(PoseStamped, "/ik/lpds/target_pose", 10)
    pub_g = t.create_publisher(Float64, "lpds/gripper_command", 10)
    assert wait_for(lambda: pub.get_subscription_count() and pub_ik.get_subscription_count()
                    and pub_g.get_subscription_count(), 10)
    T = fk(HOME + 0.05)
    w = np.sqrt(1 + np.trace(T[:3, :3])) / 2
    q = ((T[2, 1] - T[1, 2]) / (4 * w), (T[0, 2] - T[2, 0]) / (4 * w), (T[1, 0] - T[0, 1]) / (4 * w), w)
    for _ in range(10):
        pub.publish(_target(0.4, 0.1, 0.3))
        pub_g.publish(Float64(data=0.9))
        pub_ik.publish(_target(*T[:3, 3], q))
        if wait_for(lambda: poses and trajs and grips, 0.3):
            break
    assert poses[0].pose.position.x == pytest.approx(0.4) and grips[0].data == pytest.approx(0.9)
    tr = trajs[0]
    assert tr.joint_names == [f"fr3_joint{i}" for i in range(1, 8)] and len(tr.points) == 1
    np.testing.assert_allclose(fk(np.array(tr.points[0].positions))[:3, 3], T[:3, 3], atol=1e-3)
    assert ik_node.p["controller"] == "joint_trajectory"
    # non-finite targets are dropped by both controllers, never forwarded
    n_poses, n_trajs = len(poses), len(trajs)
    for bad in ((np.nan, 0.1, 0.3), (0.4, np.inf, 0.3)):
        pub.publish(_target(*bad))
        pub_ik.publish(_target(*bad))
    time.sleep(0.3)
    assert len(poses) == n_poses and len(trajs) == n_trajs


def test_robot_paths_without_franka_msgs_or_control_msgs_say_what_to_do(ros, monkeypatch):
    """The lazy imports fail with the fix in one line (sys.modules[name] = None makes the import fail even where
    the packages, or the test-built stand-ins, are installed: this never skips)."""
    from rclpy.parameter import Parameter

    from lpds_ros.franka_adapter_node import FrankaAdapterNode

    for name in ("franka_msgs", "franka_msgs.action", "franka_msgs.msg", "control_msgs", "control_msgs.action"):
        monkeypatch.setitem(__import__("sys").modules, name, None)
    ctx, _ = ros
    for params, match in (({"gripper_backend": "franka_actions", "error_recovery": False},
                           "franka_msgs.*gripper_backend:=topic"),
                          ({"gripper_backend": "none", "error_recovery": True}, "franka_msgs.*error_recovery:=false"),
                          ({"gripper_backend": "none", "error_recovery": False, "controller": "joint_trajectory"},
                           "control_msgs.*trajectory_interface:=topic")):
        with pytest.raises(RuntimeError, match=match):
            FrankaAdapterNode(context=ctx, parameter_overrides=[Parameter(k, value=v) for k, v in params.items()])
