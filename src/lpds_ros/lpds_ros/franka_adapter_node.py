"""Franka adapter: the policy's safe targets -> franka_ros2. A thin shell around franka_core.AdapterCore.

controller `cartesian_impedance`: PoseStamped relayed to the Cartesian impedance controller's ~/equilibrium_pose
(franka_ros2 jazzy >= 3.3; the controller interpolates at 1 kHz and holds the last target).
controller `joint_trajectory`: IK from the measured joints -> a one-point trajectory for the JointTrajectoryController,
as a control_msgs FollowJointTrajectory goal (`trajectory_interface: action`, default: a rejected, aborted or
unanswered goal holds the adapter with a log line) or on its ~/joint_trajectory topic (`topic`: fire and forget).
gripper `franka_actions`: franka_gripper Homing at start, then the 0..1 command with hysteresis -> Grasp (width,
speed, force, epsilon) / Move (open); `topic`: relayed as Float64 (sim robot); `none`: ignored.
error_recovery: FrankaRobotState.robot_mode REFLEX -> cancel goals, hold, call ErrorRecovery, resume once the robot
leaves the reflex. ~/stop cancels the goals in flight and holds; ~/start resumes. franka_msgs and control_msgs are
imported lazily (robot PC only) with a one-line error naming the fix.
"""
from __future__ import annotations

from typing import Any

import numpy as np
from builtin_interfaces.msg import Duration
from geometry_msgs.msg import PoseStamped
from rclpy.node import Node
from sensor_msgs.msg import JointState
from std_msgs.msg import Float64
from std_srvs.srv import Trigger
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

from .franka_core import AdapterCore, Cancel, GripperHysteresis, Log, Send, Timeouts
from .kinematics import HOME, JOINT_NAMES, ik
from .ros_common import command_qos, declare_graph_parameters, now_sec, run_node

__all__ = ["FrankaAdapterNode", "GripperHysteresis", "import_franka_actions", "import_follow_joint_trajectory"]


def import_franka_actions():
    try:
        from franka_msgs.action import ErrorRecovery, Grasp, Homing, Move
        from franka_msgs.msg import FrankaRobotState
    except ImportError as exc:
        raise RuntimeError("gripper_backend 'franka_actions' and error_recovery need franka_msgs (build franka_ros2 in "
                           "the workspace, see docker/ and docs/robot_bringup.md), or set gripper_backend:=topic|none "
                           "error_recovery:=false") from exc
    return {"grasp": Grasp, "move": Move, "homing": Homing, "recovery": ErrorRecovery, "state": FrankaRobotState}


def import_follow_joint_trajectory():
    try:
        from control_msgs.action import FollowJointTrajectory
    except ImportError as exc:
        raise RuntimeError("controller joint_trajectory with trajectory_interface 'action' needs control_msgs "
                           "(apt install ros-$ROS_DISTRO-control-msgs), or set trajectory_interface:=topic") from exc
    return FollowJointTrajectory


def _duration(t: float) -> Duration:
    return Duration(sec=int(t), nanosec=int(round((t % 1) * 1e9)) % 1_000_000_000)


class FrankaAdapterNode(Node):
    def __init__(self, **kwargs: Any):
        super().__init__("franka_adapter", **kwargs)
        self.p = p = declare_graph_parameters(self, "franka_adapter_node")
        self._q = HOME.copy()
        self._action_clients: dict[str, Any] = {}  # kind -> ActionClient
        self._action_types: dict[str, Any] = {}
        self._goal_handles: dict[int, Any] = {}  # goal id -> ClientGoalHandle (to cancel)
        self._cancel_on_accept: set[int] = set()  # cancelled before the server answered: cancel on acceptance
        self._pending_goals: dict[int, tuple[str, Any]] = {}  # goal id -> (kind, goal) waiting for the server
        self._traj: JointTrajectory | None = None  # the newest IK trajectory (topic message or goal content)
        if p["controller"] not in ("cartesian_impedance", "joint_trajectory"):
            raise ValueError(f"controller must be cartesian_impedance or joint_trajectory, got {p['controller']!r}")
        if p["trajectory_interface"] not in ("action", "topic"):
            raise ValueError(f"trajectory_interface must be action or topic, got {p['trajectory_interface']!r}")
        backend = p["gripper_backend"]
        if backend not in ("franka_actions", "topic", "none"):
            raise ValueError(f"gripper_backend must be franka_actions, topic or none, got {backend!r}")
        self._use_fjt = p["controller"] == "joint_trajectory" and p["trajectory_interface"] == "action"
        ns = p["gripper_action_ns"]
        names = {"grasp": f"{ns}/grasp", "move": f"{ns}/move", "homing": f"{ns}/homing",
                 "recovery": p["error_recovery_action"], "trajectory": p["follow_joint_trajectory_action"]}
        self.core = AdapterCore(
            close_above=float(p["gripper_close_above"]), open_below=float(p["gripper_open_below"]),
            home_at_start=backend == "franka_actions" and bool(p["home_gripper_at_start"]),
            auto_recover=bool(p["error_recovery"]), max_recoveries=int(p["max_recoveries"]),
            trajectory_time=float(p["trajectory_time"]) + float(p["goal_time_tolerance"]),
            timeouts=Timeouts(response=float(p["response_timeout"]), gripper=float(p["gripper_timeout"]),
                              homing=float(p["homing_timeout"]), recovery=float(p["recovery_timeout"]),
                              trajectory=float(p["trajectory_timeout"])), names=names)
        self.hyst = self.core.hyst

        from rclpy.action import ActionClient

        franka = import_franka_actions() if backend == "franka_actions" or p["error_recovery"] else {}
        kinds = (["grasp", "move", "homing"] if backend == "franka_actions" else []) + \
            (["recovery"] if p["error_recovery"] else [])
        if self._use_fjt:
            self._action_types["trajectory"] = import_follow_joint_trajectory()
            kinds.append("trajectory")
        self._action_types.update({k: franka[k] for k in kinds if k in franka})
        for kind in kinds:
            self._action_clients[kind] = ActionClient(self, self._action_types[kind], names[kind])

        if p["controller"] == "cartesian_impedance":
            self.pub_pose = self.create_publisher(PoseStamped, p["equilibrium_pose_topic"], command_qos())
        else:
            if not self._use_fjt:
                self.pub_traj = self.create_publisher(JointTrajectory, p["joint_trajectory_topic"], command_qos())
            self.create_subscription(JointState, p["joint_states_topic"], self._on_joints, 10)
        if p["error_recovery"]:
            self.create_subscription(franka["state"], p["robot_state_topic"], self._on_robot_state, command_qos())
        if backend == "topic":
            self.pub_gripper = self.create_publisher(Float64, p["gripper_topic"], command_qos())
        self.create_subscription(PoseStamped, p["target_pose_topic"], self._on_target, command_qos())
        self.create_subscription(Float64, p["gripper_command_topic"], self._on_gripper, command_qos())
        self.create_service(Trigger, "~/stop", self._srv_stop)
        self.create_service(Trigger, "~/start", self._srv_start)
        self.create_timer(0.05, self._tick)
        self._run(self.core.start(now_sec(self)))
        self.get_logger().info(f"franka adapter up: controller={p['controller']} gripper={backend} "
                               f"trajectory={'action' if self._use_fjt else 'topic'} "
                               f"error_recovery={bool(p['error_recovery'])}")

    # ------------------------------------------------------------------ executing the core's commands
    def _run(self, cmds: list) -> None:
        for c in cmds:
            if isinstance(c, Log):
                self._log(c)
            elif isinstance(c, Cancel):
                self._pending_goals.pop(c.goal_id, None)
                handle = self._goal_handles.pop(c.goal_id, None)
                if handle is not None:
                    handle.cancel_goal_async()
                else:
                    self._cancel_on_accept.add(c.goal_id)
            elif isinstance(c, Send) and c.kind == "trajectory" and not self._use_fjt:
                self.pub_traj.publish(self._traj)
            elif isinstance(c, Send):
                self._pending_goals[c.goal_id] = (c.kind, self._make_goal(c.kind))
        self._flush()

    def _log(self, c: Log) -> None:
        # one call site per severity: rclpy refuses a call site whose severity changes between calls
        if c.level == "error":
            self.get_logger().error(c.text)
        elif c.level == "warning":
            self.get_logger().warning(c.text)
        else:
            self.get_logger().info(c.text)

    def _flush(self) -> None:
        """Send goals whose server is discovered (a goal sent before discovery would be lost; the core times out)."""
        for gid, (kind, goal) in list(self._pending_goals.items()):
            if self._action_clients[kind].server_is_ready():
                del self._pending_goals[gid]
                fut = self._action_clients[kind].send_goal_async(goal)
                fut.add_done_callback(lambda f, k=kind, g=gid: self._on_goal_response(k, g, f))

    def _make_goal(self, kind: str) -> Any:
        p, T = self.p, self._action_types[kind]
        if kind == "grasp":
            goal = T.Goal(width=float(p["grasp_width"]), speed=float(p["gripper_speed"]), force=float(p["grasp_force"]))
            goal.epsilon.inner, goal.epsilon.outer = float(p["grasp_epsilon_inner"]), float(p["grasp_epsilon_outer"])
            return goal
        if kind == "move":
            return T.Goal(width=float(p["open_width"]), speed=float(p["gripper_speed"]))
        if kind == "trajectory":
            return T.Goal(trajectory=self._traj, goal_time_tolerance=_duration(float(p["goal_time_tolerance"])))
        return T.Goal()  # homing, recovery: empty goals

    def _on_goal_response(self, kind: str, gid: int, fut) -> None:
        handle = fut.result()
        accepted = handle is not None and handle.accepted
        if gid in self._cancel_on_accept:  # cancelled (stop, reflex, timeout) before the server answered
            self._cancel_on_accept.discard(gid)
            if accepted:
                handle.cancel_goal_async()
            return
        if accepted:
            self._goal_handles[gid] = handle
            handle.get_result_async().add_done_callback(lambda f: self._on_goal_result(kind, gid, f))
        self._run(self.core.on_response(kind, gid, accepted, now_sec(self)))

    def _on_goal_result(self, kind: str, gid: int, fut) -> None:
        from action_msgs.msg import GoalStatus

        self._goal_handles.pop(gid, None)
        res = fut.result()
        status, result = (res.status, res.result) if res is not None else (GoalStatus.STATUS_UNKNOWN, None)
        if kind == "trajectory":
            code = getattr(result, "error_code", -99)
            ok = status == GoalStatus.STATUS_SUCCEEDED and code == 0
            err = f"status {status}, error_code {code}: {getattr(result, 'error_string', '')}".rstrip(": ")
        elif kind == "recovery":
            ok, err = status == GoalStatus.STATUS_SUCCEEDED, f"status {status}"
        else:
            ok = status == GoalStatus.STATUS_SUCCEEDED and bool(getattr(result, "success", False))
            err = getattr(result, "error", "") or f"status {status}"
        self._run(self.core.on_result(kind, gid, ok, err, now_sec(self)))

    def _tick(self) -> None:
        self._run(self.core.tick(now_sec(self)))

    # ------------------------------------------------------------------ ROS inputs
    def _srv_stop(self, _req, res):
        self._run(self.core.stop(now_sec(self)))
        res.success, res.message = True, "stopped: goals cancelled, holding"
        return res

    def _srv_start(self, _req, res):
        res.success, res.message = self.core.resume(now_sec(self))
        if res.success:
            self.get_logger().info("resumed by ~/start")
        return res

    def _on_robot_state(self, msg: Any) -> None:
        self._run(self.core.on_robot_mode(int(msg.robot_mode), now_sec(self)))

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
        if self.core.holding:
            self.get_logger().warning(f"holding ({self.core.hold_reason}): target not forwarded",
                                      throttle_duration_sec=2.0)
            return
        if self.p["controller"] == "cartesian_impedance":
            self.pub_pose.publish(msg)
            return
        q, residual = ik(np.array([p.x, p.y, p.z]), np.array([o.x, o.y, o.z, o.w]), self._q)
        if not (np.isfinite(residual) and residual <= 1e-2) or not np.all(np.isfinite(q)):
            self.get_logger().warning(f"IK residual {residual:.3g}: target not reachable, holding",
                                      throttle_duration_sec=1.0)
            return
        traj = JointTrajectory(joint_names=JOINT_NAMES)
        traj.points = [JointTrajectoryPoint(positions=[float(x) for x in q],
                                            time_from_start=_duration(float(self.p["trajectory_time"])))]
        self._traj = traj
        self._run(self.core.on_target(now_sec(self), self._use_fjt))

    def _on_gripper(self, msg: Float64) -> None:
        backend = self.p["gripper_backend"]
        if backend == "topic":
            if not self.core.holding:
                self.pub_gripper.publish(msg)
            return
        if backend == "none" or not np.isfinite(msg.data):
            return
        self._run(self.core.on_gripper_command(float(msg.data), now_sec(self)))


def main(args: list[str] | None = None) -> int:
    return run_node(FrankaAdapterNode, args)


if __name__ == "__main__":
    raise SystemExit(main())
