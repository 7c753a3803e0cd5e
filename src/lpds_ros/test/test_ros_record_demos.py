"""Demonstrations recorded through ROS, end to end over real rclpy: a scripted operator publishes `sensor_msgs/Joy`
(computed from the sim's object pose, like a person watching the scene) -> teleop node (the policy's action layout
and safety filter) -> franka adapter -> RAI sim robot (PhysX); the recorder node writes the episodes to the
robomimic HDF5 file, `lpds train-base` trains on it and the base is evaluated. Find it with `-k record`."""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from ros_test_utils import call_trigger, wait_for

pytestmark = pytest.mark.ros
REPO = Path(__file__).resolve().parents[3]
RATE, SPEEDUP = 10.0, 2.0  # the env's control rate; the sim, teleop and recorder run 2x faster than real time
# the sim steps on the wall clock: on a loaded machine its pose stream can pause; the cut is tested in the unit tests
MAX_GAP = 0.6


class JoyOperator:
    """A pick-and-place operator on a SpaceMouse: pushes the stick towards the next waypoint (harder than the
    deadband), presses the gripper button to grasp and release, and says when the task looks done."""

    def __init__(self, deadband: float = 0.1):
        self.deadband = deadband
        self.phase, self.wait, self.press = 0, 0, False
        self.trace: list[tuple] = []

    def reset(self) -> None:
        self.phase, self.wait, self.press = 0, 0, False
        self.trace = []

    def __call__(self, s: dict[str, float]) -> tuple[list[float], list[int]]:
        ee = np.array([s["ee_x"], s["ee_y"], s["ee_z"]])
        obj = np.array([s["obj_x"], s["obj_y"], s["obj_z"]])
        tgt = np.array([s["target_x"], s["target_y"], s["target_z"]])
        if self.phase == 0:  # carry height from the cube on the table (it rises with the cube once held)
            self._carry_z = max(obj[2], tgt[2]) + 0.14
        carry_z = self._carry_z
        goals = {0: obj + [0, 0, 0.08], 1: obj, 3: None, 4: np.r_[tgt[:2], carry_z], 5: tgt + [0, 0, 0.03],
                 7: np.r_[ee[:2], carry_z]}
        tols = {0: (0.005, 0.02), 1: (0.006, 0.008), 3: (0.02, 0.02), 4: (0.012, 0.02), 5: (0.01, 0.01),
                7: (0.02, 0.02)}  # (xy, z) distance at which a waypoint counts as reached
        button = 0
        u = np.zeros(3)
        if not self.trace or self.trace[-1][0] != self.phase:
            self.trace.append((self.phase, np.round(ee, 3).tolist(), np.round(obj, 3).tolist(),
                               round(s["gripper_width"], 3)))
        if self.phase in (2, 6):  # grasp / release: one press, then let the fingers move
            if self.wait == 0:
                button = 1
            self.wait += 1
            if self.wait > 12:
                self.phase, self.wait = self.phase + 1, 0
        elif self.phase in goals:
            if self.phase == 1:
                self._grasp_xy = obj[:2].copy()
            if self.phase == 3:  # lift straight up
                goals[3] = np.r_[self._grasp_xy, carry_z]
            d = goals[self.phase] - ee
            u = np.clip(0.5 * d / 0.03, -1.0, 1.0)
            if self.phase == 1 and np.linalg.norm(d[:2]) > 0.004:
                u[2] = 0.0  # centre over the cube before going lower
            txy, tz = tols[self.phase]
            if np.linalg.norm(d[:2]) < txy and abs(d[2]) < tz:
                self.phase += 1
                u = np.zeros(3)
        axes = [float(np.sign(x) * (self.deadband + (1 - self.deadband) * abs(x))) if abs(x) > 1e-3 else 0.0
                for x in u]
        return axes + [0.0, 0.0, 0.0], [button, 0, 0, 0]


def _params(**kw):
    from rclpy.parameter import Parameter

    return [Parameter(k, value=v) for k, v in kw.items()]


def _lpds(*args, timeout=240):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(REPO / "src" / p) for p in ("lpds_core", "lpds_sim", "lpds_ros")] + [os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run([sys.executable, "-m", "lpds_sim.cli", *args], env=env, capture_output=True, text=True,
                          timeout=timeout)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    return proc.stdout


class Bench:
    """Sim robot + franka adapter + teleop + recorder (+ perception for images) in one executor, and the operator."""

    def __init__(self, ros, out: Path, backend: str, obs_mode: str, max_episodes: int):
        from rclpy.node import Node
        from sensor_msgs.msg import Joy, JointState

        from lpds_ros.franka_adapter_node import FrankaAdapterNode
        from lpds_ros.perception_node import PerceptionNode
        from lpds_ros.recorder_node import RecorderNode
        from lpds_ros.ros_common import sensor_qos
        from lpds_ros.sim_robot_node import SimRobotNode
        from lpds_ros.teleop_node import TeleopNode

        ctx, add = ros
        wall = RATE * SPEEDUP
        images = obs_mode == "image"
        self.sim = add(SimRobotNode(context=ctx, parameter_overrides=_params(
            backend=backend, task="pick_place", rate=RATE, speedup=SPEEDUP, lockstep=False, publish_images=images)))
        add(FrankaAdapterNode(context=ctx, parameter_overrides=_params(gripper_backend="topic", error_recovery=False)))
        if images:
            add(PerceptionNode(context=ctx, parameter_overrides=_params(source="sim")))
        add(TeleopNode(context=ctx, parameter_overrides=_params(
            joy_topic="test/joy", tick_source="obs", control_rate=wall, action_scale=0.3 / RATE, max_step=0.06,
            max_lead=0.06, max_input_age=0.5)))
        self.rec = add(RecorderNode(context=ctx, parameter_overrides=_params(
            task="pick_place", obs_mode=obs_mode, out=str(out), control_rate=RATE, speedup=SPEEDUP,
            max_episodes=max_episodes, max_gap=MAX_GAP)))
        self.op = JoyOperator()
        self.client = client = add(Node("operator", context=ctx))
        self.state: dict[str, float] = {}
        client.create_subscription(JointState, "sim/task_state",
                                   lambda m: self.state.update(zip(m.name, m.position)), sensor_qos())
        self.info: dict[str, float] = {}
        client.create_subscription(JointState, "sim/episode_info",
                                   lambda m: self.info.update(zip(m.name, m.position)), 10)
        self.pub = client.create_publisher(Joy, "test/joy", 10)
        self.extra = [0, 0, 0, 0]
        self._Joy = Joy
        client.create_timer(1.0 / (2 * wall), self.drive)
        assert wait_for(lambda: bool(self.state), 20), "no task_state from the sim robot"

    def drive(self) -> None:
        if self.state:
            axes, buttons = self.op(dict(self.state))
            msg = self._Joy(axes=axes, buttons=[max(a, b) for a, b in zip(buttons, self.extra)])
            msg.header.stamp = self.client.get_clock().now().to_msg()
            self.pub.publish(msg)
            self.extra = [0, 0, 0, 0]

    def press(self, i: int) -> None:
        """A Joy button (start = 2, save = 1) on the next operator message."""
        b = [0, 0, 0, 0]
        b[i] = 1
        self.extra = b
        assert wait_for(lambda: self.extra == [0, 0, 0, 0], 5)

    def trigger(self, service: str) -> Any:
        return call_trigger(self.client, service)

    def episode(self, cell: tuple[int, int], via_joy: bool) -> None:
        self.sim.set_parameters(_params(reset_row=cell[0], reset_col=cell[1], reset_seed=cell[0] * 10 + cell[1]))
        assert self.trigger("sim_robot/reset").success
        assert self.trigger("teleop/restart").success
        time.sleep(0.2)
        self.op.reset()
        if via_joy:
            self.press(2)
        else:
            assert self.trigger("recorder/start").success
        assert wait_for(lambda: self.rec.buffer is not None, 5)
        # released in the tray (the kinematic fake hardware freezes at success, so no retreat there)
        ok = wait_for(lambda: self.op.phase >= 7 and self.info.get("success") == 1.0, 45)
        assert ok, f"operator trace (phase, ee, cube, width): {self.op.trace}; sim: {self.info}"
        time.sleep(0.3)
        if via_joy:
            self.press(1)
            assert wait_for(lambda: self.rec.buffer is None, 5), self.rec.last_message
        else:
            r = self.trigger("recorder/save")
            assert r.success, r.message


def test_record_demos_through_ros_train_base_and_evaluate(ros, tmp_path):
    pytest.importorskip("robotic")
    from lpds_core.demos_io import load_demos

    out = tmp_path / "demos.hdf5"
    bench = Bench(ros, out, "rai", "state", max_episodes=2)
    rec, state = bench.rec, bench.state
    # a false start, discarded: nothing may reach the file
    assert bench.trigger("recorder/start").success
    time.sleep(0.3)
    assert not bench.trigger("recorder/start").success  # already recording
    assert bench.trigger("recorder/discard").success
    assert not out.exists()
    t0 = time.monotonic()
    bench.episode((0, 1), via_joy=True)
    bench.episode((1, 2), via_joy=False)
    record_s = time.monotonic() - t0
    assert rec.done and "saved episode 2" in rec.last_message

    demos = load_demos(out)
    assert len(demos) == 2 and demos.meta["task"] == "pick_place"
    assert demos.meta["env_args"]["env_kwargs"] == {"obs_mode": "state", "control_hz": RATE}
    for ep in demos:
        T = len(ep)
        assert 30 < T < 150, (T, ep.attrs)
        assert ep.obs["state"].shape == (T, len(state)) and ep.actions.shape == (T, 4)
        assert ep.attrs["sim_success"] == 1.0
        assert np.all(np.abs(ep.actions) <= 1.0) and set(np.unique(ep.actions[:, -1])) == {-1.0, 1.0}
        # the recorded actions replay the commands: their position deltas add up to where the target went (to
        # within one step: a teleop reply later than half a tick lands in the next tick's window)
        moved = ep.obs["target_pos"][-1] - ep.obs["target_pos"][0]
        assert np.allclose(ep.actions[1:, :3].sum(0) * 0.03, moved, atol=0.031), (ep.actions[1:, :3].sum(0), moved)
        assert ep.attrs["held_ticks"] <= T // 3, ep.attrs["held_ticks"]  # a busy machine delays some sim ticks

    base = tmp_path / "base"
    _lpds("train-base", "--task", "pick_place", "--data", str(out), "--obs", "state", "--out", str(base),
          "--bc-steps", "30", "--bc-batch-size", "32", "--bc-hidden", "32", "--no-progress")
    assert (base / "backbone.safetensors").is_file()
    stdout = _lpds("eval", "--task", "pick_place", "--policy", str(base), "--max-trials", "1", "--out",
                   str(tmp_path / "eval"), "--no-progress")
    assert (tmp_path / "eval" / "grid_results.json").is_file(), stdout
    print(f"recorded 2 demos in {record_s:.1f} s")


def test_record_image_demos_from_perception_and_train_base_on_them(ros, tmp_path):
    """Image mode: the recorder stores perception's preprocessed RGB-D (what the policy node sees) and the policy
    node's proprio; the kinematic fake hardware renders the frames (no physics: fast), train-base --obs image."""
    from lpds_core.demos_io import load_demos

    out = tmp_path / "img.hdf5"
    bench = Bench(ros, out, "kinematic", "image", max_episodes=1)
    bench.episode((0, 2), via_joy=True)
    assert bench.rec.done, bench.rec.last_message
    (ep,) = load_demos(out)
    T = len(ep)
    assert T > 20 and ep.obs["rgb"].shape == (T, 3, 84, 84) and ep.obs["rgb"].dtype == np.uint8
    assert ep.obs["depth"].shape == (T, 1, 84, 84) and ep.obs["depth"].dtype == np.float32
    assert np.all((ep.obs["depth"] > 0.5) & (ep.obs["depth"] <= 1.0))  # the fake camera is 1 m above the table
    assert ep.obs["proprio"].shape == (T, 8) and np.allclose(ep.obs["proprio"][:, :3], ep.obs["ee_pos"])
    assert len({ep.obs["rgb"][k].tobytes() for k in range(T)}) > T // 4  # the cube moves in the frames
    _lpds("train-base", "--task", "pick_place", "--data", str(out), "--obs", "image", "--out", str(tmp_path / "b"),
          "--bc-steps", "3", "--bc-batch-size", "8", "--bc-hidden", "32", "--embed-dim", "16", "--no-progress")
    assert (tmp_path / "b" / "backbone.safetensors").is_file()
