"""The franka adapter against fake franka_ros2 / ros2_control action servers of the real types.

Not collected by `pytest` itself (the name has no test_ prefix): test_ros_franka_actions.py runs this file in a
subprocess whose environment sourced the test-built franka_msgs / control_msgs (PYTHONPATH alone is not enough).
"""
from __future__ import annotations

import threading
import time

import numpy as np
import pytest
from control_msgs.action import FollowJointTrajectory
from franka_msgs.action import ErrorRecovery, Grasp, Homing, Move
from franka_msgs.msg import FrankaRobotState

from ros_test_utils import call_trigger, wait_for

pytestmark = pytest.mark.ros


class FakeFranka:
    """franka_gripper's grasp/move/homing, franka_hardware's error_recovery, the JTC's follow_joint_trajectory and
    the robot_state broadcaster, with switches for rejecting, never answering, never finishing, and a reflex."""

    def __init__(self, ctx, ns: str = ""):
        from rclpy.action import ActionServer, CancelResponse, GoalResponse
        from rclpy.callback_groups import ReentrantCallbackGroup
        from rclpy.node import Node

        self.node = Node("fake_franka", namespace=ns, context=ctx)
        self.goals: dict[str, list] = {k: [] for k in ("grasp", "move", "homing", "recovery", "trajectory")}
        self.cancelled: list[str] = []
        self.requested: list[str] = []  # goal requests received (answered or not)
        self.finished: list[tuple[str, str]] = []  # (kind, succeeded | aborted | canceled | preempted)
        self.timeline: list[tuple[str, str]] = []  # (kind, start) and the finished entries, in order
        self.reject: set[str] = set()
        self.no_answer: set[str] = set()  # goal request never answered (until teardown)
        self.duration: dict[str, float] = {}  # seconds an accepted goal runs (polling for cancel)
        self.robot_mode = 2  # ROBOT_MODE_MOVE
        self.object_width = 0.03  # what the fake gripper closes on
        self.active_trajectory = None  # a new FollowJointTrajectory goal preempts the running one (as the JTC)
        self.closing = threading.Event()
        group = ReentrantCallbackGroup()

        def goal_cb(kind):
            def cb(_goal):
                self.requested.append(kind)
                while kind in self.no_answer and not self.closing.is_set():
                    time.sleep(0.01)
                return GoalResponse.REJECT if kind in self.reject else GoalResponse.ACCEPT
            return cb

        def execute(kind, T):
            def cb(handle):
                self.goals[kind].append(handle.request)
                self.timeline.append((kind, "start"))
                if kind == "trajectory":
                    self.active_trajectory = handle
                t_end = time.monotonic() + self.duration.get(kind, 0.05)
                while time.monotonic() < t_end and not self.closing.is_set():
                    if kind == "trajectory" and self.active_trajectory is not handle:
                        handle.abort()
                        self.finished.append((kind, "preempted"))
                        return T.Result(error_code=T.Result.SUCCESSFUL)
                    if handle.is_cancel_requested:
                        self.cancelled.append(kind)
                        handle.canceled()
                        self.finished.append((kind, "canceled"))
                        return self._result(kind, T, handle.request, False)
                    time.sleep(0.01)
                if kind == "recovery":
                    self.robot_mode = 2  # automaticErrorRecovery(): out of the reflex
                res = self._result(kind, T, handle.request, True)
                ok = getattr(res, "success", True) and getattr(res, "error_code", 0) == 0
                handle.succeed() if ok else handle.abort()
                self.finished.append((kind, "succeeded" if ok else "aborted"))
                self.timeline.append(self.finished[-1])
                return res
            return cb

        ns_g = "franka_gripper"
        self.servers = [ActionServer(self.node, T, name, execute(kind, T), callback_group=group,
                                     goal_callback=goal_cb(kind), cancel_callback=lambda _h: CancelResponse.ACCEPT)
                        for kind, T, name in (("grasp", Grasp, f"{ns_g}/grasp"), ("move", Move, f"{ns_g}/move"),
                                              ("homing", Homing, f"{ns_g}/homing"),
                                              ("recovery", ErrorRecovery, "/action_server/error_recovery"),
                                              ("trajectory", FollowJointTrajectory,
                                               "fr3_arm_controller/follow_joint_trajectory"))]
        self.pub_state = self.node.create_publisher(FrankaRobotState, "franka_robot_state_broadcaster/robot_state",
                                                    10)
        self.node.create_timer(0.02, lambda: self.pub_state.publish(FrankaRobotState(robot_mode=self.robot_mode)),
                               callback_group=group)

    def _result(self, kind, T, goal, ok):
        r = T.Result()
        if kind == "grasp":  # franka_gripper: success iff the object is within width -inner .. width +outer
            w = self.object_width
            r.success = ok and goal.width - goal.epsilon.inner <= w <= goal.width + goal.epsilon.outer
            r.error = "" if r.success else "object width outside epsilon"
        elif kind in ("move", "homing"):
            r.success = ok
        return r

    def close(self):
        self.closing.set()


@pytest.fixture
def robot():
    """One context, a multi-threaded executor (the fake servers block in their execute callbacks); yields
    start(**adapter params) -> (adapter node, fake robot, tester node)."""
    import rclpy
    from rclpy.context import Context
    from rclpy.executors import MultiThreadedExecutor
    from rclpy.node import Node
    from rclpy.parameter import Parameter

    from lpds_ros.franka_adapter_node import FrankaAdapterNode

    ctx = Context()
    rclpy.init(context=ctx)
    ex = MultiThreadedExecutor(num_threads=6, context=ctx)
    stop = threading.Event()
    nodes, fakes = [], []
    th = threading.Thread(target=lambda: [ex.spin_once(timeout_sec=0.02) for _ in iter(stop.is_set, True)],
                          daemon=True)

    def start(fake_setup=lambda f: None, **params):
        fake = FakeFranka(ctx)
        fake_setup(fake)
        tester = Node("tester", context=ctx)
        defaults = {"response_timeout": 2.0, "gripper_timeout": 2.0, "recovery_timeout": 2.0,
                    "home_gripper_at_start": False}
        adapter = FrankaAdapterNode(context=ctx, parameter_overrides=[
            Parameter(k, value=v) for k, v in {**defaults, **params}.items()])
        for n in (fake.node, tester, adapter):
            nodes.append(n)
            ex.add_node(n)
        fakes.append(fake)
        if not th.is_alive():
            th.start()
        return adapter, fake, tester

    try:
        yield start
    finally:
        for f in fakes:
            f.close()
        stop.set()
        th.join(timeout=5)
        for n in nodes:
            n.destroy_node()
        ex.shutdown()
        rclpy.try_shutdown(context=ctx)


def _pubs(tester):
    from geometry_msgs.msg import PoseStamped
    from std_msgs.msg import Float64

    return (tester.create_publisher(PoseStamped, "lpds/target_pose", 10),
            tester.create_publisher(Float64, "lpds/gripper_command", 10))


def _grip(pub, value, until, timeout=5.0):
    from std_msgs.msg import Float64

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not until():
        pub.publish(Float64(data=value))
        time.sleep(0.05)
    return until()


def _publish_once(adapter, pub, msg):
    """One target -> exactly one trajectory goal (reliable, once the adapter listens and its action server is up)."""
    client = adapter._action_clients["trajectory"]
    assert wait_for(lambda: pub.get_subscription_count() > 0 and client.server_is_ready(), 10)
    pub.publish(msg)


def _pose(T=None):
    from geometry_msgs.msg import PoseStamped

    from lpds_ros.kinematics import HOME, fk

    T = fk(HOME + 0.05) if T is None else T
    w = np.sqrt(1 + np.trace(T[:3, :3])) / 2
    m = PoseStamped()
    m.pose.position.x, m.pose.position.y, m.pose.position.z = (float(v) for v in T[:3, 3])
    o = m.pose.orientation
    o.x, o.y, o.z, o.w = ((T[2, 1] - T[1, 2]) / (4 * w), (T[0, 2] - T[2, 0]) / (4 * w),
                          (T[1, 0] - T[0, 1]) / (4 * w), w)
    return m, T


def test_homing_at_start_then_grasp_with_width_force_epsilon_then_move(robot):
    adapter, fake, tester = robot(home_gripper_at_start=True, grasp_width=0.02, grasp_force=35.0, gripper_speed=0.05,
                                  grasp_epsilon_inner=0.005, grasp_epsilon_outer=0.015, open_width=0.079)
    fake.duration["homing"] = 0.8
    _, pub_g = _pubs(tester)
    assert wait_for(lambda: fake.goals["homing"], 10)
    assert _grip(pub_g, 0.9, lambda: ("grasp", "succeeded") in fake.finished)  # "close" from during the homing on
    assert fake.timeline.index(("homing", "succeeded")) < fake.timeline.index(("grasp", "start"))
    (g,) = fake.goals["grasp"]  # one goal although the command was repeated (hysteresis, goal in flight)
    assert (g.width, g.speed, g.force, g.epsilon.inner, g.epsilon.outer) == (0.02, 0.05, 35.0, 0.005, 0.015)
    assert _grip(pub_g, 0.1, lambda: ("move", "succeeded") in fake.finished)
    time.sleep(0.2)
    assert [(m.width, m.speed) for m in fake.goals["move"]] == [(0.079, 0.05)] and len(fake.goals["grasp"]) == 1
    assert len(fake.goals["homing"]) == 1 and not adapter.core.holding
    # a grasp whose object is outside epsilon fails on the gripper: a warning, no hold
    fake.object_width = 0.05  # wider than width + outer
    assert _grip(pub_g, 0.9, lambda: ("grasp", "aborted") in fake.finished)
    time.sleep(0.1)
    assert not adapter.core.holding


def test_rejected_goal_holds_until_start(robot):
    adapter, fake, tester = robot(fake_setup=lambda f: f.reject.add("grasp"))
    from geometry_msgs.msg import PoseStamped

    pub_t, pub_g = _pubs(tester)
    poses = []
    tester.create_subscription(PoseStamped, "cartesian_impedance_example_controller/equilibrium_pose", poses.append,
                               10)
    assert _grip(pub_g, 0.9, lambda: adapter.core.holding)
    assert adapter.core.hold_reason == "franka_gripper/grasp rejected the grasp goal" and fake.goals["grasp"] == []
    m, _ = _pose()
    for _ in range(5):
        pub_t.publish(m)
        time.sleep(0.05)
    assert poses == []  # holding: the impedance controller keeps its last target
    res = call_trigger(tester, "/franka_adapter/start")
    assert res.success and not adapter.core.holding
    assert wait_for(lambda: pub_t.publish(m) or poses, 5)


def test_unanswered_goal_and_unfinished_goal_time_out_into_holds(robot):
    def setup(f):
        f.no_answer.add("homing")
        f.duration["homing"] = 5.0  # once answered it would run long enough for the adapter's cancel to land

    adapter, fake, tester = robot(fake_setup=setup, home_gripper_at_start=True,
                                  response_timeout=1.5)
    assert wait_for(lambda: adapter.core.holding, 5)
    assert adapter.core.hold_reason == ("franka_gripper/homing: no answer to the homing goal within 1.5 s "
                                        "(is the server running?)")
    assert fake.requested == ["homing"]  # the server got the request and sat on it
    fake.no_answer.clear()  # the late answer (accepted) is cancelled: the homing must not run now
    assert wait_for(lambda: fake.cancelled == ["homing"], 5)
    assert call_trigger(tester, "/franka_adapter/start").success
    fake.duration["grasp"] = 30.0  # accepted, never done -> cancelled after gripper_timeout
    _, pub_g = _pubs(tester)
    assert _grip(pub_g, 0.9, lambda: adapter.core.holding, timeout=10)
    assert adapter.core.hold_reason == "franka_gripper/grasp: grasp goal not done within 2 s, cancelled"
    assert wait_for(lambda: fake.cancelled == ["homing", "grasp"], 5)


def test_trajectory_goals_via_follow_joint_trajectory_and_rejection(robot):
    from lpds_ros.kinematics import fk

    adapter, fake, tester = robot(controller="joint_trajectory", gripper_backend="none", trajectory_time=0.3,
                                  goal_time_tolerance=0.2)
    pub_t, _ = _pubs(tester)
    m, T = _pose()
    assert wait_for(lambda: pub_t.publish(m) or ("trajectory", "succeeded") in fake.finished, 10)
    g = fake.goals["trajectory"][0]
    assert g.trajectory.joint_names == [f"fr3_joint{i}" for i in range(1, 8)] and len(g.trajectory.points) == 1
    pt = g.trajectory.points[0]
    assert (pt.time_from_start.sec, pt.time_from_start.nanosec) == (0, 300_000_000)
    assert (g.goal_time_tolerance.sec, g.goal_time_tolerance.nanosec) == (0, 200_000_000)
    np.testing.assert_allclose(fk(np.array(pt.positions))[:3, 3], T[:3, 3], atol=1e-3)
    assert not adapter.core.holding
    fake.reject.add("trajectory")
    assert wait_for(lambda: pub_t.publish(m) or adapter.core.holding, 5)
    assert adapter.core.hold_reason == "fr3_arm_controller/follow_joint_trajectory rejected the trajectory goal"


def test_reflex_cancels_calls_error_recovery_and_resumes(robot):
    adapter, fake, tester = robot(controller="joint_trajectory", gripper_backend="none", trajectory_time=0.5,
                                  trajectory_timeout=20.0)
    pub_t, _ = _pubs(tester)
    m, _ = _pose()
    fake.duration["trajectory"] = 5.0  # a long motion in flight when the reflex comes
    fake.duration["recovery"] = 0.3
    _publish_once(adapter, pub_t, m)
    assert wait_for(lambda: fake.goals["trajectory"], 10)
    fake.robot_mode = 4  # ROBOT_MODE_REFLEX
    assert wait_for(lambda: adapter.core.hold_reason == "reflex", 5)
    assert wait_for(lambda: "trajectory" in fake.cancelled, 5)
    n = len(fake.goals["trajectory"])
    for _ in range(4):  # held: no new goals while in the reflex
        pub_t.publish(m)
        time.sleep(0.05)
    assert wait_for(lambda: ("recovery", "succeeded") in fake.finished, 5) and len(fake.goals["recovery"]) == 1
    assert wait_for(lambda: not adapter.core.holding, 5)  # robot_state left the reflex -> resume
    assert len(fake.goals["trajectory"]) == n
    fake.duration["trajectory"] = 0.05
    assert wait_for(lambda: pub_t.publish(m) or len(fake.goals["trajectory"]) > n, 5)
    assert adapter.core.recoveries == 1


def test_stop_cancels_the_goals_in_flight(robot):
    adapter, fake, tester = robot(controller="joint_trajectory", trajectory_time=0.5, gripper_timeout=20.0,
                                  trajectory_timeout=20.0)
    pub_t, pub_g = _pubs(tester)
    fake.duration.update(grasp=10.0, trajectory=10.0)
    m, _ = _pose()
    assert _grip(pub_g, 0.9, lambda: fake.goals["grasp"])
    _publish_once(adapter, pub_t, m)
    assert wait_for(lambda: fake.goals["trajectory"], 10)
    res = call_trigger(tester, "/franka_adapter/stop")
    assert res.success and adapter.core.hold_reason == "stopped"
    assert wait_for(lambda: sorted(fake.cancelled) == ["grasp", "trajectory"], 5)
    assert ("grasp", "canceled") in fake.finished and ("trajectory", "canceled") in fake.finished
    assert call_trigger(tester, "/franka_adapter/start").success and not adapter.core.holding
