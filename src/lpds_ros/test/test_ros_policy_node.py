"""The policy node over real rclpy/DDS (in one process): fuzzed inputs, ~/stop, image mode, ~/reload, trainer."""
from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from ros_test_utils import call_trigger, wait_for

pytestmark = pytest.mark.ros

BOX_MIN, BOX_MAX, MAX_STEP = np.array([-0.45, -0.05, 0.64]), np.array([0.45, 0.6, 1.25]), 0.06


class WildRunner:
    horizon, act_dim = 4, 4
    obs_spec = {"state": {"shape": [6], "dtype": "float32"}}

    def __init__(self, seed=0):
        self.rng = np.random.default_rng(seed)

    def act(self, obs):
        c = self.rng.normal(0, 20, (4, 4))
        if self.rng.random() < 0.2:
            c[0, self.rng.integers(4)] = np.nan
        return c


class StepRunner:
    horizon, act_dim = 4, 4

    def __init__(self, model_dir="", obs_spec=None):
        self.model_dir = model_dir
        if obs_spec is not None:
            self.obs_spec = obs_spec

    def act(self, obs):
        return np.tile([0.2, 0.0, 0.0, 1.0], (4, 1))


def make_runner(model_dir):  # runner factory for `runner:=test_ros_policy_node:make_runner`
    return StepRunner(model_dir)


class FakeRobot:
    """Publishes task_state + current_pose (+ gripper) with one stamp; its pose follows the policy's targets."""

    def __init__(self, node):
        from geometry_msgs.msg import PoseStamped
        from sensor_msgs.msg import Image, JointState
        from std_msgs.msg import String

        from lpds_ros.ros_common import sensor_qos

        self.node = node
        self.pos = np.array([0.0, 0.3, 0.9])
        self.sent_poses: list[np.ndarray] = [self.pos.copy()]  # measured poses the policy may anchor on
        self.targets: list[tuple[float, np.ndarray]] = []
        self.reasons: list[str] = []
        self.lock = threading.Lock()
        q = sensor_qos()
        self.pub_task = node.create_publisher(JointState, "sim/task_state", q)
        self.pub_pose = node.create_publisher(PoseStamped, "franka_robot_state_broadcaster/current_pose", q)
        self.pub_grip = node.create_publisher(JointState, "franka_gripper/joint_states", q)
        self.pub_rgb = node.create_publisher(Image, "lpds/obs/rgb", q)
        self.pub_depth = node.create_publisher(Image, "lpds/obs/depth", q)
        node.create_subscription(PoseStamped, "lpds/target_pose", self._on_target, 10)
        node.create_subscription(String, "policy/hold_reason", lambda m: self.reasons.append(m.data), 10)

    def _on_target(self, msg):
        p = msg.pose.position
        with self.lock:
            self.pos = np.array([p.x, p.y, p.z])
            self.targets.append((time.monotonic(), self.pos.copy()))

    def now(self):
        return self.node.get_clock().now().nanoseconds * 1e-9

    def publish(self, obs=None, pos=None, quat=(1.0, 0.0, 0.0, 0.0), stamp=None, obs_stamp=None, image=None):
        from geometry_msgs.msg import PoseStamped
        from sensor_msgs.msg import JointState

        from lpds_ros.image_codec import numpy_to_image
        from lpds_ros.ros_common import sec_to_stamp

        stamp = self.now() if stamp is None else stamp
        st = sec_to_stamp(stamp)
        ost = sec_to_stamp(stamp if obs_stamp is None else obs_stamp)
        with self.lock:
            p = self.pos.copy() if pos is None else np.asarray(pos, float)
            self.sent_poses.append(p.copy())
        g = JointState(name=["f1", "f2"], position=[0.04, 0.04])
        g.header.stamp = st
        self.pub_grip.publish(g)
        if image is not None:
            rgb, depth = image
            self.pub_rgb.publish(numpy_to_image(rgb, "rgb8", ost))
            self.pub_depth.publish(numpy_to_image(depth, "32FC1", ost))
        elif obs is not None:
            js = JointState(name=[f"o{i}" for i in range(len(obs))], position=[float(x) for x in obs])
            js.header.stamp = ost
            self.pub_task.publish(js)
        m = PoseStamped()
        m.header.stamp = st
        m.pose.position.x, m.pose.position.y, m.pose.position.z = (float(x) for x in p)
        (m.pose.orientation.x, m.pose.orientation.y, m.pose.orientation.z, m.pose.orientation.w) = quat
        self.pub_pose.publish(m)


def _pump(robot, n, dt=0.02, **kw):
    """Publish n observations (same kwargs each time) at 1/dt Hz."""
    for _ in range(n):
        robot.publish(**kw)
        time.sleep(dt)


def _policy(ctx, runner_obj, **params):
    from rclpy.parameter import Parameter

    from lpds_ros.policy_node import PolicyNode

    base = {"max_input_age": 0.3, "replan_after": 2, "control_rate": 50.0}
    base.update(params)
    return PolicyNode(runner=runner_obj, context=ctx, parameter_overrides=[Parameter(k, value=v) for k, v in base.items()])


def _robot(ctx, add):
    from rclpy.node import Node

    node = add(Node("fake_robot", context=ctx))
    return FakeRobot(node)


def _assert_safe(targets, measured):
    """Inside the box, and within the step limit of the previous target — or, after a hold, of a measured pose
    (the filter restarts from where the robot is when it has moved away from the last target)."""
    measured = [m for m in measured if np.all(np.isfinite(m)) and np.all(m >= BOX_MIN) and np.all(m <= BOX_MAX)]
    prev = None
    for _, p in targets:
        assert np.all(p >= BOX_MIN - 1e-9) and np.all(p <= BOX_MAX + 1e-9), p
        if prev is not None and np.linalg.norm(p - prev) > MAX_STEP + 1e-6:
            near = min(np.linalg.norm(p - m) for m in measured)
            assert near <= MAX_STEP + 1e-6, (prev, p, near)
        prev = p


def _connected(robot, policy):
    return wait_for(lambda: policy.count_subscribers("lpds/target_pose") >= 1
                    and robot.pub_pose.get_subscription_count() >= 1, 10)


def test_fuzzed_inputs_never_produce_unsafe_targets_and_streaming_resumes(ros):
    ctx, add = ros
    policy = add(_policy(ctx, WildRunner(0)))
    robot = _robot(ctx, add)
    assert _connected(robot, policy)
    rng = np.random.default_rng(0)
    good = lambda: rng.normal(0, 1, 6)  # noqa: E731
    for _ in range(10):
        robot.publish(good())
        time.sleep(0.02)
    assert wait_for(lambda: len(robot.targets) > 3, 5)
    kinds = ["nan", "inf", "huge", "stale", "future", "out_of_order", "wrong_size", "state_nan", "state_huge",
             "quat_zero", "good"]
    for i in range(150):
        kind = kinds[i % len(kinds)] if rng.random() < 0.8 else "good"
        obs, now = good(), robot.now()
        if kind == "nan":
            obs[2] = np.nan
            robot.publish(obs)
        elif kind == "inf":
            obs[0] = -np.inf
            robot.publish(obs)
        elif kind == "huge":
            robot.publish(obs * 1e12)
        elif kind == "stale":
            robot.publish(obs, stamp=now - 2.0)
        elif kind == "future":
            robot.publish(obs, stamp=now + 100.0)
        elif kind == "out_of_order":
            robot.publish(obs, stamp=now - 0.15)
        elif kind == "wrong_size":
            robot.publish(rng.normal(0, 1, 9))
        elif kind == "state_nan":
            robot.publish(obs, pos=[np.nan, 0.3, 0.9])
        elif kind == "state_huge":
            robot.publish(obs, pos=[1e6, -1e6, 1e6])
        elif kind == "quat_zero":
            robot.publish(obs, quat=(0.0, 0.0, 0.0, 0.0))
        else:
            robot.publish(obs)
        time.sleep(0.015)
    time.sleep(0.6)  # a lagging sensor: stamps newer than the last ones, but older than max_input_age
    for k in range(3):
        robot.publish(good(), stamp=robot.now() - 0.5)
        time.sleep(0.02)
    n_fuzz = len(robot.targets)
    for _ in range(30):  # good input returns
        robot.publish(good())
        time.sleep(0.02)
    assert wait_for(lambda: len(robot.targets) >= n_fuzz + 10, 5), "streaming did not resume on good input"
    _assert_safe(list(robot.targets), robot.sent_poses)
    text = " | ".join(robot.reasons)
    for needle in ("NaN/Inf", "implausible magnitude", "future", "not newer", "differs from the expected",
                   "robot state has", "old"):
        assert needle in text, f"no hold reason mentioning {needle!r}: {text[:2000]}"


def test_stop_halts_within_one_tick_and_start_resumes(ros):
    ctx, add = ros
    policy = add(_policy(ctx, StepRunner()))
    robot = _robot(ctx, add)
    assert _connected(robot, policy)
    _pump(robot, 15, 0.02, obs=np.zeros(4))
    assert wait_for(lambda: len(robot.targets) > 5, 5)
    resp = call_trigger(robot.node, "policy/stop")
    t_stop = time.monotonic()
    assert resp.success
    _pump(robot, 15, 0.02, obs=np.zeros(4))
    after = [t for t, _ in robot.targets if t > t_stop]
    assert len(after) <= 1, f"{len(after)} targets after ~/stop"
    assert call_trigger(robot.node, "policy/start").success
    n = len(robot.targets)
    _pump(robot, 10, 0.02, obs=np.zeros(4))
    assert wait_for(lambda: len(robot.targets) > n + 3, 5)
    _assert_safe(robot.targets, robot.sent_poses)


def test_timer_mode_stops_streaming_when_inputs_go_stale(ros):
    ctx, add = ros
    policy = add(_policy(ctx, StepRunner(), tick_source="timer", control_rate=30.0))
    robot = _robot(ctx, add)
    assert _connected(robot, policy)
    _pump(robot, 15, 0.03, obs=np.zeros(4))
    assert wait_for(lambda: len(robot.targets) > 5, 5)
    t_last_input = time.monotonic()
    time.sleep(1.0)  # inputs stop: the watchdog must stop streaming after max_input_age (+ one tick)
    late = [t for t, _ in robot.targets if t > t_last_input + 0.3 + 1 / 30 + 0.05]
    assert not late, f"{len(late)} targets published from stale inputs"
    assert any("old" in r for r in robot.reasons)
    _assert_safe(robot.targets, robot.sent_poses)


def test_image_mode_holds_on_wrong_image_size_and_resumes(ros):
    ctx, add = ros
    spec = {"rgb": {"shape": [3, 84, 84], "dtype": "uint8"}, "depth": {"shape": [1, 84, 84], "dtype": "float32"},
            "proprio": {"shape": [8], "dtype": "float32"}}
    policy = add(_policy(ctx, StepRunner(obs_spec=spec), obs_mode="image"))
    robot = _robot(ctx, add)
    assert _connected(robot, policy)
    assert wait_for(lambda: robot.pub_rgb.get_subscription_count() >= 1, 5)
    good = (np.zeros((84, 84, 3), np.uint8), np.ones((84, 84), np.float32))
    bad = (np.zeros((64, 80, 3), np.uint8), np.ones((64, 80), np.float32))
    _pump(robot, 10, 0.03, image=good)
    assert wait_for(lambda: len(robot.targets) >= 3, 5)
    _pump(robot, 10, 0.03, image=bad)
    n = len(robot.targets)
    assert any("differs from the expected" in r for r in robot.reasons)
    _pump(robot, 10, 0.03, image=good)
    assert wait_for(lambda: len(robot.targets) >= n + 3, 5)
    _assert_safe(robot.targets, robot.sent_poses)


def test_trainer_export_reloads_the_policy(ros, tmp_path):
    from rclpy.parameter import Parameter

    from lpds_ros.trainer_node import TrainerNode

    ctx, add = ros
    policy = add(_policy(ctx, None, runner="test_ros_policy_node:make_runner", model_dir=str(tmp_path / "v0")))
    assert policy.controller.runner.model_dir.endswith("v0")
    global EXPORT_DIR
    EXPORT_DIR = str(tmp_path / "v1")
    trainer = add(TrainerNode(context=ctx, parameter_overrides=[
        Parameter("trainer", value="test_ros_policy_node:fake_training"), Parameter("out_dir", value=str(tmp_path))]))
    assert wait_for(lambda: trainer.done, 20)
    assert trainer.exit_code == 0 and trainer.reloads == 1
    assert policy.controller.runner.model_dir == EXPORT_DIR
    assert policy.get_parameter("model_dir").value == EXPORT_DIR


EXPORT_DIR = ""


def fake_training(task, out_dir, config):
    """A train hook that 'exports' one model (the contract of lpds_ros.train_hooks)."""
    yield {"round": 1, "env_steps": 10}
    yield {"round": 2, "env_steps": 20, "onnx_dir": EXPORT_DIR}
