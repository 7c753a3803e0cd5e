"""Robot base frame <-> policy world frame (lpds_ros.base_frame): the maths, today's scene, and the policy node."""
from __future__ import annotations

import math
import threading
import time

import numpy as np
import pytest
import yaml

from lpds_core.bench_profile import (SIM_BASE_POSITION, SIM_BASE_YAW, matrix_to_quat_xyzw, quat_xyzw_to_matrix,
                                     world_from_base)
from lpds_ros.base_frame import BaseFrame
from ros_test_utils import REPO, wait_for

SCENE = BaseFrame(np.array(SIM_BASE_POSITION), SIM_BASE_YAW)  # today's RAI scene
DOWN = np.array([1.0, 0.0, 0.0, 0.0])  # gripper pointing down in the base frame (180 deg about base x), x y z w


def _same_rotation(q1, q2, atol=1e-12):
    np.testing.assert_allclose(quat_xyzw_to_matrix(q1), quat_xyzw_to_matrix(q2), atol=atol)


def _random_quats(rng, n):
    q = rng.normal(size=(n, 4))
    return q / np.linalg.norm(q, axis=1, keepdims=True)


def test_round_trip_base_world_base_keeps_positions_and_quaternions():
    rng = np.random.default_rng(0)
    frames = [SCENE, BaseFrame(np.array([0.3, -1.2, 0.1]), -2.5), BaseFrame(np.array([0.0, 0.0, 0.0]), 3.0)]
    for frame in frames:
        for p, q in zip(rng.uniform(-1, 1, (20, 3)), _random_quats(rng, 20)):
            pw, qw = frame.to_world(p, q)
            pb, qb = frame.to_base(pw, qw)
            np.testing.assert_allclose(pb, p, atol=1e-12)
            np.testing.assert_allclose(qb, q, atol=1e-12)  # the sign is kept too (no flips between targets)
            pb, qb = frame.to_base(p, q)  # and the other way round
            pw, qw = frame.to_world(pb, qb)
            np.testing.assert_allclose(pw, p, atol=1e-12)
            np.testing.assert_allclose(qw, q, atol=1e-12)


def test_today_scene_axes_base_x_is_world_y():
    """Yaw +90 deg: a point 1 m in front of the robot (base +x) is 1 m along world +y from the base; base +y is
    world -x. A target moved along world +x is sent as a base -y move."""
    np.testing.assert_allclose(SCENE.position_to_world([0, 0, 0]), [0.0, -0.2, 0.65], atol=1e-15)
    np.testing.assert_allclose(SCENE.position_to_world([1, 0, 0]), [0.0, 0.8, 0.65], atol=1e-15)
    np.testing.assert_allclose(SCENE.position_to_world([0, 1, 0]), [-1.0, -0.2, 0.65], atol=1e-15)
    np.testing.assert_allclose(SCENE.position_to_base([0.1, -0.2, 0.65]), [0.0, -0.1, 0.0], atol=1e-15)
    # the gripper pointing down in the base frame also points down in the world, turned 90 deg about z:
    # its x axis (base +x) lies along world +y
    _, qw = SCENE.to_world([0.5, 0, 0.25], DOWN)
    R = quat_xyzw_to_matrix(qw)
    np.testing.assert_allclose(R[:, 2], [0, 0, -1], atol=1e-15)
    np.testing.assert_allclose(R[:, 0], [0, 1, 0], atol=1e-15)


def test_matches_the_scene_base_pose_of_the_bench_profile():
    """The same pose as 4x4 matrices through lpds_core.bench_profile.world_from_base (the calibration's map)."""
    rng = np.random.default_rng(1)
    for p, q in zip(rng.uniform(-1, 1, (10, 3)), _random_quats(rng, 10)):
        T = np.eye(4)
        T[:3, :3], T[:3, 3] = quat_xyzw_to_matrix(q), p
        Tw = world_from_base() @ T
        pw, qw = SCENE.to_world(p, q)
        np.testing.assert_allclose(pw, Tw[:3, 3], atol=1e-12)
        _same_rotation(qw, matrix_to_quat_xyzw(Tw[:3, :3]))


def test_zero_pose_is_exactly_the_identity():
    """base_offset 0, base_yaw 0 (the sim graphs): poses pass bit for bit, as before the base frame existed."""
    rng = np.random.default_rng(2)
    frame = BaseFrame()
    for p, q in zip(rng.uniform(-1, 1, (10, 3)), _random_quats(rng, 10)):
        for f in (frame.to_world, frame.to_base):
            pw, qw = f(p, q)
            assert np.array_equal(pw, p) and np.array_equal(qw, q)


@pytest.mark.parametrize("offset,yaw", [([0.0, 0.0], 0.0), ([0, 0, float("nan")], 0.0), ([0.0, 0.0, 0.0], 90.0),
                                        ([0.0, 0.0, 0.0], float("inf"))])
def test_bad_base_pose_is_refused(offset, yaw):
    with pytest.raises(ValueError, match="base_offset|base_yaw"):
        BaseFrame(np.asarray(offset, float), yaw)


def test_fr3_config_holds_today_scene_base_pose():
    """config/ros/policy_fr3.yaml (the real robot) carries the scene's base pose, not an offset alone."""
    p = yaml.safe_load((REPO / "config" / "ros" / "policy_fr3.yaml").read_text())["/**"]["ros__parameters"]
    np.testing.assert_allclose(p["base_offset"], SIM_BASE_POSITION, atol=1e-12)
    assert p["base_yaw"] == pytest.approx(SIM_BASE_YAW, abs=1e-12)
    assert p["base_frame"] == "fr3_link0"


def test_fk_in_the_base_frame_lands_on_the_rai_end_effector():
    """A pose known in both frames: the FR3's forward kinematics (base frame, lpds_ros.kinematics) mapped to the
    world is where the RAI scene puts its end effector for the same joints. The TCP positions agree (0.1 mm: the
    two hand offsets); the orientations differ by one fixed tool rotation (RAI's l_gripper axes vs Franka's TCP:
    x and y swapped, z flipped), the same for every joint configuration."""
    pytest.importorskip("robotic")
    from lpds_ros.kinematics import HOME, fk
    from lpds_sim.rai import scene

    C = scene.panda_config()
    tool = np.array([[0.0, 1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, -1.0]])  # l_gripper_R_tcp
    rng = np.random.default_rng(3)
    for q in [HOME] + [HOME + rng.uniform(-0.4, 0.4, 7) for _ in range(4)]:
        C.setJointState(q)
        ee = C.getFrame(scene.EE_FRAME)
        T = fk(q)
        pw, qw = SCENE.to_world(T[:3, 3], matrix_to_quat_xyzw(T[:3, :3]))
        np.testing.assert_allclose(pw, ee.getPosition(), atol=2e-4)
        np.testing.assert_allclose(quat_xyzw_to_matrix(qw), ee.getRotationMatrix() @ tool, atol=1e-6)


class ProprioRunner:
    """Image-mode runner that keeps the proprioception it is given and always moves +x (world)."""
    horizon, act_dim = 4, 4
    obs_spec = {"rgb": {"shape": [3, 84, 84], "dtype": "uint8"}, "depth": {"shape": [1, 84, 84], "dtype": "float32"},
                "proprio": {"shape": [8], "dtype": "float32"}}

    def __init__(self):
        self.proprio: list[np.ndarray] = []
        self.lock = threading.Lock()

    def act(self, obs):
        with self.lock:
            self.proprio.append(np.asarray(obs["proprio"], float))
        return np.tile([1.0, 0.0, 0.0, 1.0], (4, 1))


@pytest.mark.ros
def test_policy_node_reads_and_sends_poses_in_the_rotated_base_frame(ros):
    """base_yaw +90 deg: the policy sees the world pose (position and orientation), and its +x (world) step is sent
    to the robot as a base -y step, with the measured base orientation."""
    from rclpy.parameter import Parameter

    from lpds_ros.policy_node import PolicyNode
    from test_ros_policy_node import _robot

    ctx, add = ros
    runner = ProprioRunner()
    params = {"max_input_age": 0.3, "replan_after": 2, "control_rate": 50.0, "obs_mode": "image",
              "base_offset": list(SIM_BASE_POSITION), "base_yaw": SIM_BASE_YAW, "base_frame": "fr3_link0"}
    policy = add(PolicyNode(runner=runner, context=ctx,
                            parameter_overrides=[Parameter(k, value=v) for k, v in params.items()]))
    robot = _robot(ctx, add)
    assert wait_for(lambda: policy.count_subscribers("lpds/target_pose") >= 1
                    and robot.pub_pose.get_subscription_count() >= 1
                    and robot.pub_rgb.get_subscription_count() >= 1, 10)
    start_base = np.array([0.5, 0.0, 0.25])  # 0.5 m in front of the robot: world (0, 0.3, 0.9), inside the box
    image = (np.zeros((84, 84, 3), np.uint8), np.ones((84, 84), np.float32))
    from geometry_msgs.msg import PoseStamped

    sent: list = []
    robot.node.create_subscription(PoseStamped, "lpds/target_pose", sent.append, 10)
    assert wait_for(lambda: policy.count_subscribers("lpds/target_pose") >= 2, 10)
    for _ in range(30):
        if robot.targets:
            break
        robot.publish(pos=start_base, quat=tuple(DOWN), image=image)
        time.sleep(0.03)
    assert wait_for(lambda: len(robot.targets) >= 1, 5), robot.reasons[-3:]
    with runner.lock:
        proprio = runner.proprio[0]
    # proprio layout: ee_x ee_y ee_z qw qx qy qz gripper_width (world frame, w >= 0)
    np.testing.assert_allclose(proprio[:3], [0.0, 0.3, 0.9], atol=1e-6)
    _same_rotation(np.r_[proprio[4:7], proprio[3]], [math.sqrt(0.5), math.sqrt(0.5), 0.0, 0.0], atol=1e-6)
    assert wait_for(lambda: len(sent) >= 1, 5)
    msg = sent[0]
    p, q = msg.pose.position, msg.pose.orientation
    step = 0.03  # action_scale: +1 in x is 3 cm along world +x
    np.testing.assert_allclose([p.x, p.y, p.z], start_base + [0.0, -step, 0.0], atol=1e-9)
    np.testing.assert_allclose([q.x, q.y, q.z, q.w], DOWN, atol=1e-12)  # the measured base orientation, unturned
    assert msg.header.frame_id == "fr3_link0"


@pytest.mark.ros
def test_teleop_and_recorder_map_the_rotated_base_frame(ros, tmp_path):
    """base_yaw +90 deg: the SpaceMouse's +x (world, the policy's action axes) is sent as a base -y step with the
    base orientation; the recorder stores the measured pose and the target in the world frame."""
    from geometry_msgs.msg import PoseStamped
    from rclpy.node import Node
    from rclpy.parameter import Parameter
    from sensor_msgs.msg import Joy

    from lpds_ros.recorder_node import RecorderNode
    from lpds_ros.ros_common import sec_to_stamp, sensor_qos
    from lpds_ros.teleop_node import TeleopNode

    ctx, add = ros
    frame = {"base_offset": list(SIM_BASE_POSITION), "base_yaw": SIM_BASE_YAW, "base_frame": "fr3_link0"}

    def params(**kw):
        return [Parameter(k, value=v) for k, v in {**frame, **kw}.items()]

    add(TeleopNode(context=ctx, parameter_overrides=params(joy_topic="test/joy", tick_source="obs",
                                                              max_input_age=0.5)))
    rec = add(RecorderNode(context=ctx, parameter_overrides=params(out=str(tmp_path / "demos.hdf5"))))
    node = add(Node("fake_franka", context=ctx))
    pub_pose = node.create_publisher(PoseStamped, "franka_robot_state_broadcaster/current_pose", sensor_qos())
    pub_joy = node.create_publisher(Joy, "test/joy", 10)
    sent: list = []
    node.create_subscription(PoseStamped, "lpds/target_pose", sent.append, 10)
    assert wait_for(lambda: pub_pose.get_subscription_count() >= 2 and pub_joy.get_subscription_count() >= 1
                    and node.count_publishers("lpds/target_pose") >= 1, 10)
    assert rec.command("start")[0]
    start_base = np.array([0.5, 0.0, 0.25])
    for _ in range(40):
        if len(sent) >= 3:
            break
        now = node.get_clock().now().nanoseconds * 1e-9
        joy = Joy(axes=[1.0, 0.0, 0.0, 0.0, 0.0, 0.0], buttons=[0, 0, 0, 0])
        joy.header.stamp = sec_to_stamp(now)
        pub_joy.publish(joy)
        m = PoseStamped()
        m.header.stamp = sec_to_stamp(now)
        m.pose.position.x, m.pose.position.y, m.pose.position.z = (float(v) for v in start_base)
        o = m.pose.orientation
        o.x, o.y, o.z, o.w = (float(v) for v in DOWN)
        pub_pose.publish(m)
        time.sleep(0.05)
    assert wait_for(lambda: len(sent) >= 3, 5)
    for msg in sent:
        p, q = msg.pose.position, msg.pose.orientation
        assert msg.header.frame_id == "fr3_link0"
        np.testing.assert_allclose([p.x, p.z], start_base[[0, 2]], atol=1e-9)  # no base x / z motion
        np.testing.assert_allclose([q.x, q.y, q.z, q.w], DOWN, atol=1e-12)
    assert sent[-1].pose.position.y < -0.02  # world +x is base -y
    with rec.lock:
        streams = {k: list(v) for k, v in rec.buffer.streams.items()}
    pos, quat = streams["ee_pose"][0][1]
    np.testing.assert_allclose(pos, [0.0, 0.3, 0.9], atol=1e-12)
    _same_rotation(quat, [math.sqrt(0.5), math.sqrt(0.5), 0.0, 0.0])
    target = streams["target"][-1][1]
    np.testing.assert_allclose(target[1:], [0.3, 0.9], atol=1e-9)
    assert target[0] > 0.02  # moved along world +x
