"""Policy node: latest observation + robot state (matched by stamp) -> ONNX chunk -> safe EE targets at the control rate.

Topics (all names are parameters): in  task_state (state obs, JointState as a named vector) or obs/rgb + obs/depth
(perception), current_pose (PoseStamped), gripper joint_states;  out  target_pose (PoseStamped), gripper_command
(Float64, 0 open .. 1 closed), ~/tick_stats (Float64MultiArray [obs->cmd ms, stamp->cmd ms, compute ms,
missed ticks so far, commands so far, input gaps so far]),
~/hold_reason (String, on every change of reason; "" while streaming; latched), and for the episode record the
model's output before the safety filter: ~/plan (JointState: each planned chunk, stamped with its observation) and
~/raw_target (PoseStamped: each tick's target before the filter).  Services: ~/start, ~/stop,
~/reload (std_srvs/Trigger: validated against the running model's observation/action spec, the old model is kept
on any mismatch or load error).

Run-time parameters: the safety ones (box_min, box_max, max_step, max_lead, max_input_age, control_rate) are
validated and applied at once, or refused with the reason; model_dir is taken on the next ~/reload; every other
parameter is refused while the node runs (restart the node to change it). The logic lives in PolicyController
(policy_core), the safety filter, the pair buffer and HoldReasons; this node only moves messages in and out.
"""
from __future__ import annotations

import time
from collections import deque
from typing import Any

import numpy as np
from geometry_msgs.msg import PoseStamped
from rcl_interfaces.msg import SetParametersResult
from rclpy.node import Node
from rclpy.parameter import Parameter
from sensor_msgs.msg import Image, JointState
from std_msgs.msg import Float64, Float64MultiArray, String
from std_srvs.srv import Trigger

from .base_frame import BaseFrame
from .hold_reasons import HoldReasons
from .image_codec import depth_metres_from_image, rgb_from_image
from .policy_core import STOPPED, ActionMapping, PolicyController, RobotState
from .ros_common import (base_pose_msg, command_qos, declare_graph_parameters, latched_qos, now_sec, run_node,
                         sec_to_stamp, sensor_qos, stamp_to_sec)
from .runner import PolicyRunner, load_runner
from .safety import SafetyLimits
from .timesync import ApproxTimePairBuffer

LIVE_PARAMETERS = ("box_min", "box_max", "max_step", "max_lead", "max_input_age", "control_rate")
RELOAD_PARAMETERS = ("model_dir",)  # taken by the next ~/reload
MAX_LATENCIES = 10_000  # obs->cmd latencies kept for the summary at shutdown (a day at 10 Hz would be 864k)
MAX_RECV_TIMES = 64

ACTION_NAMES = {4: ["dx", "dy", "dz", "gripper"], 5: ["dx", "dy", "dz", "dyaw", "gripper"]}
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
        for name in ("max_input_age", "control_rate"):
            if not (np.isfinite(float(p[name])) and float(p[name]) > 0):
                raise ValueError(f"{name} must be a positive number, got {p[name]}")
        self.controller = PolicyController(
            runner=runner, limits=self._limits(p), replan_after=int(p["replan_after"]),
            max_input_age=float(p["max_input_age"]),
            mapping=ActionMapping(float(p["action_scale"]), float(p["gripper_open_value"]),
                                  float(p["gripper_closed_value"]), float(p["yaw_scale"]),
                                  float(p["action_clip"])))
        self._injected_runner = runner is not None
        self._obs_names: list[str] | None = None
        self._waits_for_names = p["runner"] == "scripted" and p["obs_mode"] == "state"
        waits_for_model = p["runner"] == "onnx" and not p["model_dir"]  # e.g. the trainer exports it later
        if runner is None and not self._waits_for_names and not waits_for_model:
            self.controller.set_runner(self._load())
        self.pairs: ApproxTimePairBuffer = ApproxTimePairBuffer(float(p["sync_slop"]), 30)
        self.images: ApproxTimePairBuffer = ApproxTimePairBuffer(1e-6, 4)  # rgb + depth of one frame, any order
        self._gripper_width: float | None = None
        self.base = BaseFrame.from_parameters(p)  # robot base (current_pose, targets) <-> policy world frame
        self._last_used_obs = -np.inf
        self._last_image = -np.inf
        self.reasons = HoldReasons(0.5)
        self._recv_time: dict[float, float] = {}
        self.period = 1.0 / float(p["control_rate"])
        # missed: observations that got no command within one period (late or skipped by a backed-up executor);
        # input_gaps: periods in which no observation arrived at all (the sensor/sim side was late)
        self.stats = {"ticks": 0, "commands": 0, "missed": 0, "holds": 0, "input_gaps": 0}
        self._last_recv: float | None = None
        self.latencies_ms: deque[float] = deque(maxlen=MAX_LATENCIES)

        unknown = [n for n in p["proprio_layout"] if n not in PROPRIO_FIELDS]
        if unknown:
            raise ValueError(f"proprio_layout has unknown fields {unknown}; known: {PROPRIO_FIELDS}")
        if p["tick_source"] not in ("obs", "timer"):
            raise ValueError(f"tick_source must be obs or timer, got {p['tick_source']!r}")
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
        self.pub_reason = self.create_publisher(String, "~/hold_reason", latched_qos())
        # the model's output before the safety filter, for the episode record (lpds_ros.episode_recorder_node)
        self.pub_plan = self.create_publisher(JointState, "~/plan", 10)
        self.pub_raw_target = self.create_publisher(PoseStamped, "~/raw_target", 10)
        self.create_service(Trigger, "~/start", self._srv_start)
        self.create_service(Trigger, "~/stop", self._srv_stop)
        self.create_service(Trigger, "~/reload", self._srv_reload)
        self._timers: list[Any] = []
        self._make_timers()
        self.add_on_set_parameters_callback(self._on_set_parameters)
        if p["autostart"]:
            self.controller.start()
        self._hold_reason("; ".join(self.controller.status(now_sec(self))))
        self.get_logger().info(f"policy node up: runner={p['runner']} obs_mode={p['obs_mode']} "
                               f"rate={p['control_rate']} Hz, box {p['box_min']}..{p['box_max']}, "
                               f"max_step {p['max_step']} m")

    @staticmethod
    def _limits(p: dict[str, Any]) -> SafetyLimits:
        return SafetyLimits(tuple(float(x) for x in p["box_min"]), tuple(float(x) for x in p["box_max"]),
                            float(p["max_step"]), float(p["max_lead"]))

    def _make_timers(self) -> None:
        """timer mode: the control tick; obs mode: a supervisor at twice the rate that ticks a pair still waiting
        for its robot state, names the reason when inputs stop, and lets the log catch up."""
        for t in self._timers:
            self.destroy_timer(t)
        self._timers = [self.create_timer(self.period, self._tick)] if self.p["tick_source"] == "timer" else []
        self._timers.append(self.create_timer(self.period / 2, self._supervise))

    # -- model -----------------------------------------------------------------------------------------------
    def _load(self) -> PolicyRunner:
        p = self.p
        model_dir = self.get_parameter("model_dir").value
        kw = {"obs_names": self._obs_names, "action_scale": float(p["action_scale"]),
              "gripper_open_value": float(p["gripper_open_value"]),
              "gripper_closed_value": float(p["gripper_closed_value"])} if p["runner"] == "scripted" else {}
        return load_runner(p["runner"], model_dir, seed=int(p["seed"]), **kw)

    # -- run-time parameters ---------------------------------------------------------------------------------
    def _on_set_parameters(self, params: list[Parameter]) -> SetParametersResult:
        """Validate and apply at once, or refuse with the reason: a parameter is never accepted and ignored."""
        new = {prm.name: prm.value for prm in params}
        fixed = sorted(n for n in new if n not in LIVE_PARAMETERS + RELOAD_PARAMETERS)
        if fixed:
            return SetParametersResult(successful=False, reason=f"{', '.join(fixed)} cannot change while the "
                                       f"policy node runs (live: {', '.join(LIVE_PARAMETERS)}; model_dir + "
                                       "~/reload): restart the node with the new value")
        merged = {**self.p, **new}
        try:
            limits = self._limits(merged)
            for name in ("max_input_age", "control_rate"):
                if not (np.isfinite(float(merged[name])) and float(merged[name]) > 0):
                    raise ValueError(f"{name} must be a positive number, got {merged[name]}")
        except (ValueError, TypeError) as exc:
            self.get_logger().warning(f"parameter change refused: {exc}")
            return SetParametersResult(successful=False, reason=str(exc))
        changed = {k: v for k, v in new.items() if k in LIVE_PARAMETERS}
        self.p.update(new)
        if changed.keys() & {"box_min", "box_max", "max_step", "max_lead"}:
            self.controller.set_limits(limits)
        if "max_input_age" in changed:
            self.controller.set_max_input_age(float(merged["max_input_age"]))
        if "control_rate" in changed:
            self.period = 1.0 / float(merged["control_rate"])
            self._make_timers()
        if changed:
            self.get_logger().info("applied " + ", ".join(f"{k}={list(v) if isinstance(v, (list, tuple)) else v}"
                                                          for k, v in changed.items()))
        return SetParametersResult(successful=True)

    # -- inputs ----------------------------------------------------------------------------------------------
    def _from_future(self, what: str, stamp: float, now: float) -> bool:
        """A stamp further ahead of our clock than max_input_age is not believed (and would block the stream)."""
        ahead = stamp - now
        if ahead > self.controller.watchdog.max_age:
            self._hold_reason(f"{what} stamp is {ahead:.3f} s in the future (dropped)")
            return True
        return False

    def _add_obs(self, stamp: float, obs: Any) -> None:
        now = now_sec(self)
        if self._from_future("observation", stamp, now):
            return
        if self.pairs.add_a(stamp, obs, now=now):
            # accepted although not newer than one already used: that one was stamped ahead of our clock and was
            # dropped; everything older than this message counts as used, this one does not
            self._last_used_obs = min(self._last_used_obs, float(np.nextafter(stamp, -np.inf)))
            t = time.perf_counter()
            self._recv_time[stamp] = t
            if self._last_recv is not None and t - self._last_recv > 1.5 * self.period and self.controller.streaming:
                self.stats["input_gaps"] += int(round((t - self._last_recv) / self.period)) - 1
            self._last_recv = t
            if len(self._recv_time) > MAX_RECV_TIMES:
                for k in sorted(self._recv_time)[:-MAX_RECV_TIMES // 2]:
                    del self._recv_time[k]
        else:
            self._hold_reason(f"observation stamp {stamp:.3f} is not newer than the last one (dropped)")
        self._maybe_tick()

    def _on_task_state(self, msg: JointState) -> None:
        names, values = list(msg.name), msg.position
        if names and len(names) != len(values):
            self._hold_reason(f"task_state has {len(names)} names but {len(values)} values (dropped)")
            return
        if self._waits_for_names and not self._injected_runner and names != self._obs_names:
            try:  # the scripted operator reads fields by name: (re)built for the names the sim sends
                self._obs_names = names
                self.controller.set_runner(self._load(), check_running=False)
            except Exception as exc:  # noqa: BLE001 - report and keep holding; the next message tries again
                self._obs_names = None
                self._hold_reason(f"cannot load runner: {exc}")
                return
        self._add_obs(stamp_to_sec(msg.header.stamp), np.asarray(values, dtype=np.float32))

    def _on_rgb(self, msg: Image) -> None:
        try:
            rgb = np.ascontiguousarray(rgb_from_image(msg).transpose(2, 0, 1))
        except ValueError as exc:
            self._hold_reason(f"bad rgb image: {exc} (dropped)")
            return
        self._add_image(0, stamp_to_sec(msg.header.stamp), rgb)

    def _on_depth(self, msg: Image) -> None:
        try:
            depth = depth_metres_from_image(msg)[None]
        except ValueError as exc:
            self._hold_reason(f"bad depth image: {exc} (dropped)")
            return
        self._add_image(1, stamp_to_sec(msg.header.stamp), depth)

    def _add_image(self, i: int, stamp: float, arr: np.ndarray) -> None:
        """rgb and depth of one frame share a stamp (perception publishes both); they may arrive in either order."""
        now = now_sec(self)
        if self._from_future("image", stamp, now):
            return
        (self.images.add_a if i == 0 else self.images.add_b)(stamp, arr, now=now)
        pair = self.images.latest_pair()
        if pair is None or pair[0] == self._last_image:
            return
        if pair[0] < self._last_image and self._last_image <= now:
            return
        self._last_image = pair[0]
        self._add_obs(pair[0], {"rgb": pair[1], "depth": pair[3]})  # proprio joins at tick time

    def _on_pose(self, msg: PoseStamped) -> None:
        if self._gripper_width is None:
            self._gripper_width = 0.08  # no gripper state yet: assume open (only affects the initial anchor)
        pos, q = msg.pose.position, msg.pose.orientation
        st = RobotState(stamp_to_sec(msg.header.stamp),
                        *self.base.to_world([pos.x, pos.y, pos.z], [q.x, q.y, q.z, q.w]), float(self._gripper_width))
        now = now_sec(self)
        if self._from_future("robot state", st.stamp, now):
            return
        if not self.pairs.add_b(st.stamp, st, now=now):
            self._hold_reason(f"robot state stamp {st.stamp:.3f} is not newer than the last one (dropped)")
        self._maybe_tick()

    def _on_gripper(self, msg: JointState) -> None:
        # malformed gripper state is not believed: NaN makes the next ticks hold until a good one arrives
        self._gripper_width = float(np.sum(msg.position)) if len(msg.position) else float("nan")

    # -- ticking ---------------------------------------------------------------------------------------------
    def _fresh_pair(self, waited: bool) -> bool:
        pair = self.pairs.latest_pair()
        if pair is None:
            return False
        if pair[0] <= self._last_used_obs:
            return False
        # a robot state at or after the observation's stamp may still come and match it better: wait for it,
        # up to half a period (the supervisor ticks it then)
        if self.pairs.reached(1, pair[0]):
            return True
        return waited and time.perf_counter() - self._recv_time.get(pair[0], -np.inf) >= self.period / 2

    def _maybe_tick(self) -> None:
        if self.p["tick_source"] == "obs" and self._fresh_pair(waited=False):
            self._tick()

    def _supervise(self) -> None:
        now = now_sec(self)
        if self.p["tick_source"] == "obs" and self._fresh_pair(waited=True):
            self._tick()
        reasons = self.controller.status(now)
        lone = self.pairs.unmatched_a()
        if not reasons and lone is not None and lone[0] > self._last_used_obs \
                and time.perf_counter() - self._recv_time.get(lone[0], np.inf) > self.period:
            nearest = "none yet" if lone[1] is None else f"nearest {lone[1]:.3f}"
            reasons = [f"observation stamped {lone[0]:.3f} has no robot state within sync_slop "
                       f"{self.pairs.slop} s ({nearest})"]
        if reasons and (self.p["tick_source"] == "obs" or self.controller.runner is None):
            self._hold_reason("; ".join(reasons))
        line = self.reasons.flush(time.monotonic())
        if line:
            self._log(line)

    def _tick(self) -> None:
        t0 = time.perf_counter()
        pair = self.pairs.latest_pair()
        now = now_sec(self)
        obs, obs_stamp, state = None, 0.0, None
        if pair is not None:
            obs_stamp, obs, _, state = pair
            if self.p["obs_mode"] == "image":
                obs = {**obs, "proprio": proprio_from_state(state, list(self.p["proprio_layout"]))}
            if self._gripper_width is not None and state.gripper_width != self._gripper_width:
                state = RobotState(state.stamp, state.position, state.quaternion, float(self._gripper_width))
        self.stats["ticks"] += 1
        try:
            res = self.controller.tick(now, obs, obs_stamp, state)
        except Exception as exc:  # noqa: BLE001 - a bug must never take the safety layer down: hold, re-anchor
            self.controller.stop()
            self.controller.start()
            self._hold_reason(f"policy tick failed: {type(exc).__name__}: {exc}")
            return
        self._publish_raw(res, obs_stamp)
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
        self.pub_target.publish(base_pose_msg(self.base, cmd.position, cmd.quaternion, self.p["base_frame"],
                                              self.get_clock().now().to_msg()))
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
        self._hold_reason("")

    def _publish_raw(self, res: Any, obs_stamp: float) -> None:
        """~/plan on a planning tick: the chunk flattened (name "k/component"), stamped with the observation it was
        planned from, effort = the noise ε the runner drew when it reports it (so a replay can reproduce it);
        ~/raw_target each tick an action was taken: the target before the safety filter."""
        if res.chunk is not None:
            c = np.asarray(res.chunk, float)
            comps = ACTION_NAMES.get(c.shape[1], [f"a{j}" for j in range(c.shape[1])])
            msg = JointState(name=[f"{k}/{n}" for k in range(c.shape[0]) for n in comps],
                             position=[float(x) for x in c.reshape(-1)])
            eps = getattr(self.controller.runner, "last_eps", None)
            if eps is not None and np.size(eps) == c.size:
                msg.effort = [float(x) for x in np.asarray(eps).reshape(-1)]
            msg.header.stamp = sec_to_stamp(obs_stamp)
            msg.header.frame_id = self.p["base_frame"]
            self.pub_plan.publish(msg)
        if res.raw_target is not None:
            pos, quat, _ = res.raw_target
            self.pub_raw_target.publish(base_pose_msg(self.base, pos, quat, self.p["base_frame"],
                                                      self.get_clock().now().to_msg()))

    def _hold_reason(self, reason: str) -> None:
        """Record why the node holds now ("" = streaming): the topic hears every change, the log within 0.5 s."""
        publish, line = self.reasons.update(reason, time.monotonic())
        if publish:
            self.pub_reason.publish(String(data=reason))
        if line:
            self._log(line)

    def _log(self, line: str) -> None:
        if line == "streaming resumed":  # two call sites: rclpy ties a call site to one severity
            self.get_logger().info(line)
        else:
            self.get_logger().warning(line)

    def sizes(self) -> dict[str, int]:
        """Lengths of everything the node keeps between messages (all capped; checked by the flood test)."""
        return {"pairs_obs": self.pairs.sizes()[0], "pairs_state": self.pairs.sizes()[1],
                "images": sum(self.images.sizes()), "recv_time": len(self._recv_time),
                "latencies": len(self.latencies_ms), "reason_history": len(self.reasons.history)}

    # -- services --------------------------------------------------------------------------------------------
    def _srv_start(self, _req, resp):
        self.controller.start()
        resp.success, resp.message = True, "streaming"
        return resp

    def _srv_stop(self, _req, resp):
        self.controller.stop()
        self._hold_reason(STOPPED)
        resp.success, resp.message = True, "stopped; the controller holds the last target"
        return resp

    def _srv_reload(self, _req, resp):
        model_dir = self.get_parameter("model_dir").value
        try:
            runner = self._load()
            self.controller.set_runner(runner)
        except Exception as exc:  # noqa: BLE001 - keep the old model on any failure
            keep = "keeping the old model" if self.controller.runner is not None else "no model loaded"
            resp.success, resp.message = False, f"reload of {model_dir!r} refused, {keep}: {exc}"
            self.get_logger().error(resp.message)
            return resp
        resp.success, resp.message = True, f"reloaded {model_dir}"
        self.get_logger().info(resp.message)
        return resp

    def close(self) -> None:
        if self.latencies_ms:
            lat = np.array(self.latencies_ms)
            print(f"[policy] ticks {self.stats}, obs->cmd p50 {np.percentile(lat, 50):.2f} ms "
                  f"p99 {np.percentile(lat, 99):.2f} ms (last {len(lat)} commands)", flush=True)


def main(args: list[str] | None = None) -> int:
    return run_node(PolicyNode, args)


if __name__ == "__main__":
    raise SystemExit(main())
