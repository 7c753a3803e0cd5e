"""Policy node: latest observation + robot state (matched by stamp) -> ONNX chunk -> safe EE targets at the control rate.

Topics (all names are parameters): in  task_state (state obs, JointState as a named vector) or obs/rgb + obs/depth
(perception), current_pose (PoseStamped), gripper joint_states;  out  target_pose (PoseStamped), gripper_command
(Float64, 0 open .. 1 closed), ~/tick_stats (Float64MultiArray [obs->cmd ms, stamp->cmd ms, compute ms,
missed ticks so far, commands so far, input gaps so far]),
~/hold_reason (String, on change).  Services: ~/start, ~/stop, ~/reload (std_srvs/Trigger).
"""
from __future__ import annotations

import time
from typing import Any

import numpy as np
from geometry_msgs.msg import PoseStamped
from rclpy.node import Node
from sensor_msgs.msg import Image, JointState
from std_msgs.msg import Float64, Float64MultiArray, String
from std_srvs.srv import Trigger

from .image_codec import depth_metres_from_image, image_to_numpy
from .policy_core import ActionMapping, PolicyController, RobotState
from .ros_common import command_qos, declare_graph_parameters, now_sec, run_node, sensor_qos, stamp_to_sec
from .runner import PolicyRunner, load_runner
from .safety import SafetyLimits
from .timesync import ApproxTimePairBuffer

PROPRIO_FIELDS = ("ee_x", "ee_y", "ee_z", "qx", "qy", "qz", "qw", "gripper_width")


def proprio_from_state(state: RobotState, layout: list[str]) -> np.ndarray:
    """Proprioception in the sim env's layout; the quaternion sign is canonical (w >= 0) like lpds_sim's."""
    q = np.asarray(state.quaternion, float)
    q = -q if q[3] < 0 else q
    values = dict(zip(PROPRIO_FIELDS, [*state.position, *q, state.gripper_width]))
    unknown = [n for n in layout if n not in values]
    if unknown:
        raise ValueError(f"proprio_layout has unknown fields {unknown}; known: {PROPRIO_FIELDS}")
    return np.array([values[n] for n in layout], dtype=np.float32)


class PolicyNode(Node):
    def __init__(self, runner: PolicyRunner | None = None, **kwargs: Any):
        super().__init__("policy", **kwargs)
        self.p = declare_graph_parameters(self, "policy_node")
        p = self.p
        self.controller = PolicyController(
            runner=runner, limits=SafetyLimits(tuple(p["box_min"]), tuple(p["box_max"]), float(p["max_step"]),
                                float(p["max_lead"])),
            replan_after=int(p["replan_after"]), max_input_age=float(p["max_input_age"]),
            mapping=ActionMapping(float(p["action_scale"]), float(p["gripper_open_value"]),
                                  float(p["gripper_closed_value"]), float(p["yaw_scale"]),
                                  float(p["action_clip"])))
        self._injected_runner = runner is not None
        self._obs_names: list[str] | None = None
        waits_for_names = p["runner"] == "scripted" and p["obs_mode"] == "state"
        waits_for_model = p["runner"] == "onnx" and not p["model_dir"]  # e.g. the trainer exports it later
        if runner is None and not waits_for_names and not waits_for_model:
            self.controller.runner = self._load()
        self.pairs: ApproxTimePairBuffer = ApproxTimePairBuffer(float(p["sync_slop"]), 30)
        self._gripper_width: float | None = None
        self.base_offset = np.asarray(p["base_offset"], dtype=float)
        if self.base_offset.shape != (3,):
            raise ValueError(f"base_offset must be [x, y, z], got {p['base_offset']}")
        self._rgb: tuple[float, np.ndarray] | None = None
        self._last_used_obs = -np.inf
        self._last_reason = ""
        self._recv_time: dict[float, float] = {}
        self.period = 1.0 / float(p["control_rate"])
        # missed: observations that got no command within one period (late or skipped by a backed-up executor);
        # input_gaps: periods in which no observation arrived at all (the sensor/sim side was late)
        self.stats = {"ticks": 0, "commands": 0, "missed": 0, "holds": 0, "input_gaps": 0}
        self._last_recv: float | None = None
        self.latencies_ms: list[float] = []

        unknown = [n for n in p["proprio_layout"] if n not in PROPRIO_FIELDS]
        if unknown:
            raise ValueError(f"proprio_layout has unknown fields {unknown}; known: {PROPRIO_FIELDS}")
        sq = sensor_qos()
        if p["obs_mode"] == "state":
            self.create_subscription(JointState, p["task_state_topic"], self._on_task_state, sq)
        elif p["obs_mode"] == "image":
            self.create_subscription(Image, p["obs_rgb_topic"], self._on_rgb, sq)
            self.create_subscription(Image, p["obs_depth_topic"], self._on_depth, sq)
        else:
            raise ValueError(f"obs_mode must be state or image, got {p['obs_mode']!r}")
        self.create_subscription(PoseStamped, p["current_pose_topic"], self._on_pose, sq)
        self.create_subscription(JointState, p["gripper_state_topic"], self._on_gripper, sq)
        self.pub_target = self.create_publisher(PoseStamped, p["target_pose_topic"], command_qos())
        self.pub_gripper = self.create_publisher(Float64, p["gripper_command_topic"], command_qos())
        self.pub_stats = self.create_publisher(Float64MultiArray, "~/tick_stats", 10)
        self.pub_reason = self.create_publisher(String, "~/hold_reason", 10)
        self.create_service(Trigger, "~/start", self._srv_start)
        self.create_service(Trigger, "~/stop", self._srv_stop)
        self.create_service(Trigger, "~/reload", self._srv_reload)
        if p["tick_source"] == "timer":
            self.create_timer(self.period, self._tick)
        elif p["tick_source"] != "obs":
            raise ValueError(f"tick_source must be obs or timer, got {p['tick_source']!r}")
        if p["autostart"]:
            self.controller.start()
        self.get_logger().info(f"policy node up: runner={p['runner']} obs_mode={p['obs_mode']} "
                               f"rate={p['control_rate']} Hz, box {p['box_min']}..{p['box_max']}, "
                               f"max_step {p['max_step']} m")

    # -- model -----------------------------------------------------------------------------------------------
    def _load(self) -> PolicyRunner:
        p = self.p
        model_dir = self.get_parameter("model_dir").value
        kw = {"obs_names": self._obs_names, "action_scale": float(p["action_scale"]),
              "gripper_open_value": float(p["gripper_open_value"]),
              "gripper_closed_value": float(p["gripper_closed_value"])} if p["runner"] == "scripted" else {}
        return load_runner(p["runner"], model_dir, seed=int(p["seed"]), **kw)

    # -- inputs ----------------------------------------------------------------------------------------------
    def _from_future(self, what: str, stamp: float) -> bool:
        """A stamp ahead of our clock would block every later message as out of order: refuse it."""
        ahead = stamp - now_sec(self)
        if ahead > self.controller.watchdog.max_age:
            self._hold_reason(f"{what} stamp is {ahead:.3f} s in the future (dropped)")
            return True
        return False

    def _add_obs(self, stamp: float, obs: Any) -> None:
        if self._from_future("observation", stamp):
            return
        if self.pairs.add_a(stamp, obs):
            now = time.perf_counter()
            self._recv_time[stamp] = now
            if self._last_recv is not None and now - self._last_recv > 1.5 * self.period and self.controller.streaming:
                self.stats["input_gaps"] += int(round((now - self._last_recv) / self.period)) - 1
            self._last_recv = now
            if len(self._recv_time) > 64:
                for k in sorted(self._recv_time)[:-32]:
                    del self._recv_time[k]
        else:
            self._hold_reason(f"observation stamp {stamp:.3f} is not newer than the last one (dropped)")
        self._maybe_tick()

    def _on_task_state(self, msg: JointState) -> None:
        if self._obs_names is None:
            self._obs_names = list(msg.name)
            if self.controller.runner is None and not self._injected_runner:
                try:
                    self.controller.runner = self._load()
                except Exception as exc:  # noqa: BLE001 - report and keep holding
                    self._hold_reason(f"cannot load runner: {exc}")
                    return
        self._add_obs(stamp_to_sec(msg.header.stamp), np.asarray(msg.position, dtype=np.float32))

    def _on_rgb(self, msg: Image) -> None:
        try:
            rgb = image_to_numpy(msg)
        except ValueError as exc:
            self._hold_reason(f"bad rgb image: {exc}")
            return
        self._rgb = (stamp_to_sec(msg.header.stamp), np.ascontiguousarray(rgb.transpose(2, 0, 1)))

    def _on_depth(self, msg: Image) -> None:
        try:
            depth = depth_metres_from_image(msg)[None]
        except ValueError as exc:
            self._hold_reason(f"bad depth image: {exc}")
            return
        stamp = stamp_to_sec(msg.header.stamp)
        if self._rgb is None or abs(self._rgb[0] - stamp) > 1e-6:
            return  # perception publishes rgb then depth with one stamp; wait for the matching rgb
        self._add_obs(stamp, {"rgb": self._rgb[1], "depth": depth})  # proprio joins at tick time

    def _on_pose(self, msg: PoseStamped) -> None:
        if self._gripper_width is None:
            self._gripper_width = 0.08  # no gripper state yet: assume open (only affects the initial anchor)
        pos, q = msg.pose.position, msg.pose.orientation
        st = RobotState(stamp_to_sec(msg.header.stamp), np.array([pos.x, pos.y, pos.z]) + self.base_offset,
                        np.array([q.x, q.y, q.z, q.w]), float(self._gripper_width))
        if self._from_future("robot state", st.stamp):
            return
        if not self.pairs.add_b(st.stamp, st):
            self._hold_reason(f"robot state stamp {st.stamp:.3f} is not newer than the last one (dropped)")
        self._maybe_tick()

    def _on_gripper(self, msg: JointState) -> None:
        if len(msg.position):
            self._gripper_width = float(np.sum(msg.position))

    # -- ticking ---------------------------------------------------------------------------------------------
    def _maybe_tick(self) -> None:
        if self.p["tick_source"] != "obs":
            return
        pair = self.pairs.latest_pair()
        if pair is None or pair[0] <= self._last_used_obs:
            return
        self._tick()

    def _tick(self) -> None:
        t0 = time.perf_counter()
        pair = self.pairs.latest_pair()
        now = now_sec(self)
        if pair is None:
            obs, obs_stamp, state = None, 0.0, None
        else:
            obs_stamp, obs, _, state = pair
            if self.p["obs_mode"] == "image":
                obs = {**obs, "proprio": proprio_from_state(state, list(self.p["proprio_layout"]))}
        if self.controller.runner is None:
            self._hold_reason("no policy loaded yet: set model_dir and call ~/reload")
            return
        self.stats["ticks"] += 1
        try:
            res = self.controller.tick(now, obs, obs_stamp, state)
        except Exception as exc:  # noqa: BLE001 - a failing model must never take the safety layer down
            self.controller.stop()
            self.controller.start()
            self._hold_reason(f"policy step failed: {type(exc).__name__}: {exc}")
            return
        if pair is not None:
            if self.controller.streaming and np.isfinite(self._last_used_obs):
                self.stats["missed"] += sum(1 for s in self._recv_time if self._last_used_obs < s < obs_stamp)
            self._last_used_obs = obs_stamp
        if res.command is None:
            self.stats["holds"] += 1
            self._hold_reason("; ".join(res.reasons))
            return
        if res.reasons:
            self.get_logger().warning("safety: " + "; ".join(res.reasons), throttle_duration_sec=1.0)
        cmd = res.command
        msg = PoseStamped()
        msg.header.stamp = self.get_clock().now().to_msg()
        msg.header.frame_id = self.p["base_frame"]
        msg.pose.position.x, msg.pose.position.y, msg.pose.position.z = map(float, cmd.position - self.base_offset)
        (msg.pose.orientation.x, msg.pose.orientation.y, msg.pose.orientation.z,
         msg.pose.orientation.w) = map(float, cmd.quaternion)
        self.pub_target.publish(msg)
        self.pub_gripper.publish(Float64(data=float(cmd.gripper)))
        t1 = time.perf_counter()
        self.stats["commands"] += 1
        recv = self._recv_time.get(obs_stamp, t0)
        if t1 - recv > self.period:
            self.stats["missed"] += 1
        lat = [1e3 * (t1 - recv), 1e3 * (self.get_clock().now().nanoseconds * 1e-9 - obs_stamp), 1e3 * (t1 - t0),
               float(self.stats["missed"]), float(self.stats["commands"]), float(self.stats["input_gaps"])]
        self.latencies_ms.append(lat[0])
        self.pub_stats.publish(Float64MultiArray(data=lat))
        if self._last_reason:
            self._last_reason = ""
            self.get_logger().info("streaming resumed")

    def _hold_reason(self, reason: str) -> None:
        if reason != self._last_reason:
            self._last_reason = reason
            self.get_logger().warning(f"holding: {reason}", throttle_duration_sec=0.5)
            self.pub_reason.publish(String(data=reason))

    # -- services --------------------------------------------------------------------------------------------
    def _srv_start(self, _req, resp):
        self.controller.start()
        resp.success, resp.message = True, "streaming"
        return resp

    def _srv_stop(self, _req, resp):
        self.controller.stop()
        self._hold_reason("stopped by ~/stop")
        resp.success, resp.message = True, "stopped; the controller holds the last target"
        return resp

    def _srv_reload(self, _req, resp):
        try:
            runner = self._load()
        except Exception as exc:  # noqa: BLE001 - keep the old model on failure
            resp.success, resp.message = False, f"reload failed, keeping the old model: {exc}"
            self.get_logger().error(resp.message)
            return resp
        self.controller.set_runner(runner)
        resp.success, resp.message = True, f"reloaded {self.get_parameter('model_dir').value}"
        self.get_logger().info(resp.message)
        return resp

    def close(self) -> None:
        if self.latencies_ms:
            lat = np.array(self.latencies_ms)
            print(f"[policy] ticks {self.stats}, obs->cmd p50 {np.percentile(lat, 50):.2f} ms "
                  f"p99 {np.percentile(lat, 99):.2f} ms", flush=True)


def main(args: list[str] | None = None) -> int:
    return run_node(PolicyNode, args)


if __name__ == "__main__":
    raise SystemExit(main())
