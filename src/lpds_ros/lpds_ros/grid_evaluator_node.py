"""Grid evaluator: the rows x cols x trials protocol through the ROS graph.

mode `auto` (sim robot): per trial — stop the policy, set the sim robot's reset_row/reset_col/reset_seed
parameters, call its ~/reset, start the policy, wait for sim/episode_info to report done/success (or the
timeout), stop the policy, record. mode `operator` (real robot): prompts on stdin to place the cube in the cell,
starts the policy, then asks the operator for the outcome. Trials, seeds and the JSON/CSV/heatmap output are
lpds_sim's GridProtocol/GridResult, so a ROS grid and a direct `lpds eval` grid are the same 40 start states
and the same files. With `record_dir` set, every trial is also recorded from DDS into record_dir/trial_NNN (one
rosbag2 MCAP bag, lpds_ros.episode_recorder_node); grid_results.json's meta lists the bags and the episode_info
each trial was graded on.
"""
from __future__ import annotations

import threading
import time
from typing import Any

from rclpy.node import Node
from rclpy.parameter import Parameter
from sensor_msgs.msg import JointState
from std_srvs.srv import Trigger

from lpds_core.grid_protocol import GridProtocol, GridResult, Trial, TrialResult

from .ros_common import declare_graph_parameters, run_node


class GridEvaluatorNode(Node):
    def __init__(self, input_fn=input, **kwargs: Any):
        super().__init__("grid_evaluator", **kwargs)
        self.p = p = declare_graph_parameters(self, "grid_evaluator_node")
        self.input_fn = input_fn
        self.done, self.exit_code = False, 0
        self.results: list[TrialResult] = []
        self.summary: GridResult | None = None
        self._info_event = threading.Event()
        self._latest: tuple[int, dict[str, float]] = (-1, {})  # (stamp ns, info): read together
        self.trial_info: list[dict[str, Any]] = []
        self.bags: list[str] = []
        self.recorder = None
        if p["record_dir"]:
            from rclpy.callback_groups import MutuallyExclusiveCallbackGroup

            from .episode_recorder_node import TopicRecorder, episode_topics

            # recording (image compression) runs beside the protocol's services and episode_info (main: 2 threads)
            self.recorder = TopicRecorder(self, episode_topics(p["policy_name"]), MutuallyExclusiveCallbackGroup())
        self.timeouts = 0
        self.unanswered_steps = 0  # sim steps taken without a fresh command (policy late / lockstep timeout)
        pol, sim = p["policy_name"], p["sim_robot_name"]
        self.cli_start = self.create_client(Trigger, f"{pol}/start")
        self.cli_stop = self.create_client(Trigger, f"{pol}/stop")
        if p["mode"] == "auto":
            from rclpy.parameter_client import AsyncParameterClient

            self.cli_reset = self.create_client(Trigger, f"{sim}/reset")
            self.sim_params = AsyncParameterClient(self, sim)
            self.create_subscription(JointState, p["episode_info_topic"], self._on_info, 10)
        elif p["mode"] != "operator":
            raise ValueError(f"mode must be auto or operator, got {p['mode']!r}")
        self.protocol = GridProtocol(int(p["rows"]), int(p["cols"]), int(p["trials"]), int(p["seed"]))
        self.trials = self.protocol.trials()
        if int(p["episodes"]) > 0:
            self.trials = self.trials[: int(p["episodes"])]
        self._worker = threading.Thread(target=self._run_protocol, daemon=True)
        self._worker.start()

    def _on_info(self, msg: JointState) -> None:
        self._latest = (msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec,
                        dict(zip(msg.name, msg.position)))
        self._info_event.set()

    # -- blocking helpers for the worker thread (the executor spins in the main thread) ------------------------
    def _wait(self, future, timeout: float, what: str):
        ev = threading.Event()
        future.add_done_callback(lambda _f: ev.set())
        if not ev.wait(timeout):
            raise TimeoutError(f"{what} did not answer within {timeout} s")
        return future.result()

    def _trigger(self, client, what: str, timeout: float = 10.0) -> None:
        if not client.wait_for_service(timeout_sec=timeout):
            raise TimeoutError(f"service {client.srv_name} ({what}) is not available")
        resp = self._wait(client.call_async(Trigger.Request()), timeout, what)
        if not resp.success:
            raise RuntimeError(f"{what} failed: {resp.message}")

    def _set_cell(self, t: Trial) -> None:
        if not self.sim_params.wait_for_services(timeout_sec=10.0):
            raise TimeoutError("sim robot parameter services are not available")
        params = [Parameter("reset_row", value=t.cell[0]), Parameter("reset_col", value=t.cell[1]),
                  Parameter("reset_seed", value=t.seed), Parameter("grid_rows", value=self.protocol.rows),
                  Parameter("grid_cols", value=self.protocol.cols)]
        res = self._wait(self.sim_params.set_parameters(params), 10.0, "set sim robot parameters")
        if not all(r.successful for r in res.results):
            raise RuntimeError(f"sim robot refused the cell parameters: {[r.reason for r in res.results]}")

    # -- the protocol ----------------------------------------------------------------------------------------
    def _run_protocol(self) -> None:
        log = self.get_logger()
        try:
            for t in self.trials:
                res = self._auto_trial(t) if self.p["mode"] == "auto" else self._operator_trial(t)
                self.results.append(res)
                log.info(f"trial {t.index + 1}/{len(self.trials)} cell {t.cell} seed {t.seed}: "
                         f"{'SUCCESS' if res.success else 'failure'} in {res.length} steps")
            pr = self.protocol
            self.summary = GridResult(pr.rows, pr.cols, pr.trials_per_cell, pr.seed, self.results,
                                      {"title": f"ROS graph ({self.p['mode']})", "source": "ros",
                                       "mode": self.p["mode"], "timeouts": self.timeouts,
                                       "unanswered_steps": self.unanswered_steps, "bags": self.bags,
                                       "trial_info": self.trial_info})
            self.summary.write(self.p["out_dir"])
            log.info(f"{self.summary.summary()}\n-> {self.p['out_dir']}")
        except Exception as exc:  # noqa: BLE001 - report and exit non-zero
            log.error(f"grid evaluation aborted: {type(exc).__name__}: {exc}")
            self.exit_code = 1
            if self.recorder is not None:
                self.recorder.end({"aborted": f"{type(exc).__name__}: {exc}", "success": None})
        finally:
            if self.p["shutdown_when_done"]:
                self.done = True

    def close(self) -> None:
        """Shut down mid-trial (Ctrl-C): the bag so far is closed, readable, and says it was not graded."""
        if self.recorder is not None and self.recorder.recording:
            self.recorder.end({"aborted": "grid evaluator shut down during the trial", "success": None})

    def _begin_bag(self, t: Trial) -> None:
        if self.recorder is None:
            return
        from .episode_bag import free_bag_path
        from .policy_core import STOPPED

        # the stop just called publishes the "stopped" hold reason; the bag opens with it once the recorder has it
        if not self.recorder.wait_latched(f"{self.p['policy_name']}/hold_reason", lambda m: m.data == STOPPED):
            self.get_logger().warning(f"trial {t.index}: the recorder has not seen the policy stop; the bag opens "
                                      "with the hold reason it last saw")
        pr = self.protocol
        path = self.recorder.begin(free_bag_path(self.p["record_dir"], f"trial_{t.index:03d}"), {
            "source": "grid_evaluator", "mode": self.p["mode"], "task": self.p["task"],
            "obs_mode": self.p["obs_mode"], "policy": self.p["policy_name"], "trial": t.index,
            "cell": list(t.cell), "seed": t.seed, "grid": [pr.rows, pr.cols, pr.trials_per_cell, pr.seed]})
        self.bags.append(str(path))

    def _end_bag(self, t: Trial, res: TrialResult, info_stamp: int, timed_out: bool) -> None:
        if self.recorder is None:
            return
        if info_stamp >= 0 and not self.recorder.wait_seen(self.p["episode_info_topic"], info_stamp):
            self.get_logger().warning(f"trial {t.index}: the bag missed the episode_info it was graded on")
        self.recorder.end({"trial": t.index, "cell": list(t.cell), "seed": t.seed, "success": res.success,
                           "steps": res.length, "return": res.ret, "collisions": res.collisions,
                           "timeout": timed_out, "info_stamp_ns": info_stamp, "mode": self.p["mode"]})

    def _auto_trial(self, t: Trial) -> TrialResult:
        self._trigger(self.cli_stop, "policy stop")
        self._set_cell(t)
        self._begin_bag(t)
        self._trigger(self.cli_reset, "sim robot reset")
        t_reset = self.get_clock().now().nanoseconds * 1e-9
        self._trigger(self.cli_start, "policy start")
        t0 = time.monotonic()
        info: dict[str, float] = {}
        info_stamp, timed_out = -1, False
        while True:
            self._info_event.clear()
            stamp, latest = self._latest
            if stamp >= t_reset * 1e9:
                info, info_stamp = dict(latest), stamp
                if info.get("success", 0) > 0.5 or info.get("done", 0) > 0.5:
                    break
            if time.monotonic() - t0 > float(self.p["episode_timeout"]):
                self.timeouts += 1
                timed_out = True
                self.get_logger().warning(f"trial {t.index}: no episode end within {self.p['episode_timeout']} s")
                break
            self._info_event.wait(0.2)
        self._trigger(self.cli_stop, "policy stop")
        self.unanswered_steps += int(info.get("unanswered_steps", 0))
        self.trial_info.append({"trial": t.index, "info_stamp_ns": info_stamp, **info})
        res = TrialResult(t.index, t.cell, t.seed, bool(info.get("success", 0) > 0.5),
                          float(info.get("return", 0.0)), int(info.get("steps", 0)),
                          int(info.get("collisions", 0)), [float(info.get("start_x", 0.0)),
                                                           float(info.get("start_y", 0.0))])
        self._end_bag(t, res, info_stamp, timed_out)
        return res

    def _operator_trial(self, t: Trial) -> TrialResult:
        self._trigger(self.cli_stop, "policy stop")
        self.input_fn(f"[trial {t.index + 1}/{len(self.trials)}] move the robot home, place the cube in cell "
                      f"(row {t.cell[0]}, col {t.cell[1]}), then press Enter to start the policy ")
        self._begin_bag(t)
        self._trigger(self.cli_start, "policy start")
        ans = self.input_fn(f"press Enter when the trial is over (policy stops after {self.p['episode_timeout']} s "
                            "of your choosing); type s for success, f for failure: ").strip().lower()
        self._trigger(self.cli_stop, "policy stop")
        while ans not in ("s", "f"):
            ans = self.input_fn("outcome? s = success, f = failure: ").strip().lower()
        res = TrialResult(t.index, t.cell, t.seed, ans == "s", float("nan"), 0, 0, [float("nan"), float("nan")])
        self._end_bag(t, res, -1, False)
        return res


def main(args: list[str] | None = None) -> int:
    return run_node(GridEvaluatorNode, args, multithreaded=True)


if __name__ == "__main__":
    raise SystemExit(main())
