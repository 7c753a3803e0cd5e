"""Recorder and teleop logic without ROS: resampling by stamp onto the control grid, the Joy and leader mappings,
the safety filter on teleop targets, and the demo file the recorder writes (read back by lpds_core.demos_io)."""
from __future__ import annotations

import random

import numpy as np
import pytest

from lpds_core.demos_io import load_demos, write_demos
from lpds_core.errors import DataError, RunError
from lpds_ros.policy_core import ActionMapping, RobotState
from lpds_ros.recorder_core import EpisodeBuffer, check_out_file, layout_for, save_episode, to_episode
from lpds_ros.safety import SafetyLimits
from lpds_ros.teleop_core import JoyInput, JoyMapping, TeleopController, apply_deadband

LAYOUT = layout_for("pick_place", "state", 10.0, 0.03)
Q = (1.0, 0.0, 0.0, 0.0)


def _buffer(pose_hz=100.0, state_hz=10.0, act_hz=10.0, t_end=2.0, state_stop=None, t0=5.0):
    """Streams whose values are their own stamps, so the sample picked at each tick can be read off."""
    buf = EpisodeBuffer()
    for t in np.arange(t0, t0 + t_end, 1 / pose_hz):
        buf.add("ee_pose", t, (np.array([t, 0, 0]), np.array(Q)))
        buf.add("gripper", t, 0.08)
    for t in np.arange(t0, t0 + t_end, 1 / state_hz):
        if state_stop is None or t < t0 + state_stop:
            buf.add("task_state", t, np.array([t], np.float32))
    for t in np.arange(t0 + 0.004, t0 + t_end, 1 / act_hz):
        buf.add("action", t, np.array([0.25, 0, 0, 1.0]))
    return buf


def test_every_stream_is_the_latest_sample_at_or_before_each_tick_at_different_rates():
    buf = _buffer(pose_hz=100.0, state_hz=7.0)
    res = buf.resample(LAYOUT, max_gap=0.3)
    state_stamps = np.array([s for s, _ in buf.streams["task_state"]])
    pose_stamps = np.array([s for s, _ in buf.streams["ee_pose"]])
    assert np.allclose(np.diff(res.grid), 0.1)
    assert res.grid[0] == pytest.approx(5.05)  # half a period after the first pose
    for t, st, p in zip(res.grid, res.obs["task_state"][:, 0], res.obs["ee_pos"][:, 0]):
        assert st == pytest.approx(state_stamps[state_stamps <= t + 1e-12].max(), abs=1e-5)
        assert p == pytest.approx(pose_stamps[pose_stamps <= t + 1e-12].max(), abs=1e-5)
    assert res.cut == "" and len(res.actions) == len(res.grid)


def test_out_of_order_arrival_gives_the_same_episode_and_a_repeated_stamp_keeps_the_later_message():
    ordered = _buffer()
    shuffled = EpisodeBuffer()
    items = [(n, s, v) for n, ss in ordered.streams.items() for s, v in ss]
    random.Random(0).shuffle(items)
    for n, s, v in items:
        shuffled.add(n, s, v)
    a, b = ordered.resample(LAYOUT, 0.3), shuffled.resample(LAYOUT, 0.3)
    assert np.array_equal(a.grid, b.grid) and np.array_equal(a.actions, b.actions)
    for k in a.obs:
        assert np.array_equal(a.obs[k], b.obs[k]), k
    t = ordered.streams["task_state"][3][0]
    ordered.add("task_state", t, np.array([-1.0], np.float32))  # same stamp, received later: it wins
    c = ordered.resample(LAYOUT, 0.3)
    assert np.any(c.obs["task_state"][:, 0] == -1.0)
    assert not np.any(np.isclose(c.obs["task_state"][:, 0], t))


def test_a_stream_that_stops_cuts_the_episode_where_its_sample_gets_too_old():
    res = _buffer(state_stop=0.95, t_end=3.0).resample(LAYOUT, max_gap=0.2)
    # task_state's last sample is at 5.9; tick 6.15 is 0.25 s after it (bad), 6.05 still good: it closes the
    # action window of the last step, 5.95
    assert res.grid[-1] == pytest.approx(5.95) and "task_state stopped" in res.cut and "step 11" in res.cut
    assert res.obs["task_state"][-1, 0] == pytest.approx(5.9, abs=1e-5)
    with pytest.raises(DataError, match="no task_state"):
        b = _buffer()
        del b.streams["task_state"]
        b.resample(LAYOUT, 0.3)
    b = _buffer()
    b.add("joints", 5.0, np.zeros(9, np.float32))
    b.add("joints", 5.5, np.zeros(7, np.float32))  # an optional stream of changing size is left out
    assert "joints" not in b.resample(LAYOUT, 0.3).obs
    b.add("task_state", 5.55, np.zeros(3, np.float32))  # a required one is one clear error
    with pytest.raises(DataError, match="task_state messages of the episode change shape"):
        b.resample(LAYOUT, 0.3)


def test_actions_are_summed_over_each_pose_interval_and_the_gripper_is_held():
    buf = _buffer(pose_hz=10.0, act_hz=20.0)  # two operator ticks per control tick
    res = buf.resample(LAYOUT, 0.3)
    assert np.allclose(res.actions[:, 0], 0.5) and np.allclose(res.actions[:, -1], 1.0)
    # a lockstep-like robot: pose k at k/10 s, the command answering it a few ms later; step k gets command k
    buf = EpisodeBuffer()
    for k in range(20):
        buf.add("ee_pose", 0.1 * k, (np.zeros(3), np.array(Q)))
        buf.add("gripper", 0.1 * k, 0.08)
        buf.add("task_state", 0.1 * k, np.zeros(1, np.float32))
        buf.add("action", 0.1 * k + 0.003, np.array([k / 100, 0, 0, -1.0 if k >= 10 else 1.0]))
    res = buf.resample(LAYOUT, 0.3)
    assert np.allclose(res.actions[:, 0], np.arange(len(res.actions)) / 100)
    assert list(res.actions[:, -1]) == [1.0] * 10 + [-1.0] * (len(res.actions) - 10)


def test_deadband_is_continuous_and_symmetric():
    assert apply_deadband(0.05, 0.1) == 0.0 and apply_deadband(-0.1, 0.1) == 0.0
    assert apply_deadband(0.55, 0.1) == pytest.approx(0.5) and apply_deadband(-0.55, 0.1) == pytest.approx(-0.5)
    assert apply_deadband(0.1001, 0.1) == pytest.approx(0.0, abs=1e-3) and apply_deadband(1.5, 0.1) == 1.0
    assert apply_deadband(float("nan"), 0.1) == 0.0


def test_gripper_toggles_once_per_press_edge_and_events_fire_on_press_only():
    joy = JoyInput(JoyMapping())
    seq = [[0, 0, 0, 0], [1, 0, 0, 0], [1, 0, 0, 0], [1, 0, 0, 0], [0, 0, 0, 0], [1, 0, 1, 0], [1, 0, 1, 0]]
    states, events = [], []
    for b in seq:
        events.append(joy.update([0.0] * 6, b))
        states.append(joy.closed)
    assert states == [False, True, True, True, True, False, False]
    assert events[1] == ["gripper"] and events[2] == [] and events[5] == ["gripper", "start"] and events[6] == []
    assert joy.update([0.0] * 6, [0, 1]) == ["save"]  # a short message (SpaceMouse: 2 buttons) is fine


def _controller(**kw):
    m = ActionMapping(0.03, 1.0, -1.0, 0.1, 1.0)
    return TeleopController(SafetyLimits((-0.45, -0.05, 0.64), (0.45, 0.6, 1.25), 0.06, 0.06), m, **kw)


def _state(t, pos, width=0.08):
    return RobotState(t, np.asarray(pos, float), np.array([1.0, 0, 0, 0]), width)


def test_joy_axes_become_policy_actions_through_the_safety_filter():
    c = _controller(joy=JoyMapping(signs=(1.0, -1.0, 1.0)))
    c.on_joy(0.0, [0.55, 1.0, 0.05, 0, 0, 0], [0, 0, 0, 0])
    r = c.tick(0.01, _state(0.0, [0.0, 0.3, 0.9]))
    assert np.allclose(r.action, [0.5, -1.0, 0.0, 1.0])  # gripper open = +1 (lpds_sim convention)
    assert np.allclose(r.command.position, [0.015, 0.27, 0.9]) and r.command.gripper == 0.0
    c.on_joy(0.05, [0, 0, 0, 0, 0, 0], [1, 0, 0, 0])  # toggle: close
    r = c.tick(0.06, _state(0.05, [0.015, 0.27, 0.9]))
    assert r.action[-1] == -1.0 and r.command.gripper == 1.0
    # at the workspace edge the executed (recorded) action is the step the filter let through
    c = _controller()
    c.on_joy(0.0, [1.0, 0, 0, 0, 0, 0], [])
    r = c.tick(0.01, _state(0.0, [0.44, 0.3, 0.9]))
    assert r.command.position[0] == pytest.approx(0.45) and r.action[0] == pytest.approx(0.01 / 0.03)
    # the robot was moved away (homing between episodes): start from where it is, never pull it back
    c2 = _controller()
    c2.on_joy(0.0, [0, 0, 0, 0, 0, 0], [])
    c2.tick(0.01, _state(0.0, [0.2, 0.3, 0.9]))
    r2 = c2.tick(0.02, _state(0.01, [0.0, 0.3, 1.0]))
    assert np.allclose(r2.command.position, [0.0, 0.3, 1.0]) and np.allclose(r2.action[:3], 0)
    # a silent device: stand still (never keep moving on the last axes)
    r = c.tick(2.0, _state(1.99, [0.45, 0.3, 0.9]))
    assert np.allclose(r.action[:3], 0) and "no operator input" in r.reasons[-1]


def test_leader_motion_is_spread_over_ticks_without_drift():
    c = _controller()
    pos = np.array([0.0, 0.3, 0.9])
    c.on_leader(0.0, [1.0, 1.0, 1.0])
    c.tick(0.0, _state(0.0, pos))
    c.on_leader(0.01, [1.08, 1.0, 1.0])  # 8 cm in one message: 3 cm + 3 cm + 2 cm
    xs = []
    for i in range(4):  # the robot follows its target
        r = c.tick(0.02 + 0.01 * i, _state(0.02 + 0.01 * i, pos))
        xs.append(r.action[0])
        pos = r.command.position
    assert np.allclose(xs, [1.0, 1.0, 2 / 3, 0.0]) and pos[0] == pytest.approx(0.08)


def test_recorded_file_is_what_train_base_reads_and_appends_refuse_other_layouts(tmp_path):
    res = _buffer().resample(LAYOUT, 0.3)
    ep = to_episode(res, LAYOUT)
    out = tmp_path / "demos.hdf5"
    assert save_episode(out, ep, LAYOUT) == 1 and save_episode(out, ep, LAYOUT) == 2
    demos = load_demos(out)
    assert len(demos) == 2 and demos.meta["task"] == "pick_place"
    assert demos.meta["env_args"]["env_kwargs"]["obs_mode"] == "state"
    assert demos[1].obs["state"].dtype == np.float32 and demos[1].actions.shape == (len(res.grid), 4)
    assert demos[1].dones[-1] and not demos[1].dones[:-1].any()
    with pytest.raises(DataError, match="obs_keys"):
        check_out_file(out, layout_for("pick_place", "image", 10.0, 0.03))
    with pytest.raises(DataError, match="control_hz"):
        check_out_file(out, layout_for("pick_place", "state", 20.0, 0.03))
    other = tmp_path / "scripted.hdf5"
    write_demos(other, [ep], {"task": "pick_place"})
    with pytest.raises(RunError, match="not written by `lpds record`"):
        save_episode(other, ep, LAYOUT)
    assert len(load_demos(other)) == 1


def test_image_recording_has_the_policy_nodes_proprio_and_train_base_image_keys():
    from lpds_ros.policy_node import proprio_from_state

    layout = layout_for("pick_place", "image", 10.0, 0.03)
    buf = _buffer()
    for t in np.arange(5.0, 7.0, 1 / 30):  # the camera at 30 Hz
        buf.add("rgb", t, np.full((3, 84, 84), int(t * 10) % 255, np.uint8))
        buf.add("depth", t, np.full((1, 84, 84), t, np.float32))
    res = buf.resample(layout, 0.3)
    layout_names = ["ee_x", "ee_y", "ee_z", "qw", "qx", "qy", "qz", "gripper_width"]

    def proprio(p, q, w):
        return proprio_from_state(RobotState(0.0, p, q, w), layout_names)

    ep = to_episode(res, layout, proprio)
    T = len(ep)
    assert ep.obs["rgb"].shape == (T, 3, 84, 84) and ep.obs["rgb"].dtype == np.uint8
    assert ep.obs["depth"].shape == (T, 1, 84, 84) and ep.obs["depth"].dtype == np.float32
    assert np.all(ep.obs["depth"][:, 0, 0, 0] <= res.grid + 1e-6)  # the frame at or before each tick
    assert ep.obs["proprio"].shape == (T, 8)
    assert np.allclose(ep.obs["proprio"][:, 3:7], [0, 1, 0, 0])  # x y z w (1, 0, 0, 0) -> w x y z (0, 1, 0, 0)
    assert layout.env_args()["obs_keys"] == ["depth", "proprio", "rgb"]


def test_the_recorder_names_match_lpds_sim_and_lpds_core():
    """The recorder cannot import lpds_sim or torch on the robot PC, so it names the env ids and image keys itself."""
    pytest.importorskip("torch")
    from lpds_core.encoders import IMAGE_KEYS
    from lpds_sim import ENV_IDS

    from lpds_ros.recorder_core import IMAGE_KEYS as REC_KEYS, TASK_ENV_IDS

    assert tuple(REC_KEYS) == tuple(IMAGE_KEYS)
    assert all(ENV_IDS[k] == v for k, v in TASK_ENV_IDS.items())


def test_a_sample_stamped_exactly_on_a_tick_is_used_at_that_tick():
    layout = layout_for("pick_place", "state", 8.0, 0.03)  # period 0.125 s: ticks at exact binary fractions
    buf = EpisodeBuffer()
    for k in range(12):
        buf.add("ee_pose", 0.125 * k, (np.zeros(3), np.array(Q)))
        buf.add("gripper", 0.125 * k, 0.08)
        buf.add("action", 0.125 * k + 0.01, np.array([0, 0, 0, 1.0]))
        buf.add("task_state", 0.125 * k + 0.0625, np.array([k], np.float32))  # exactly on tick k
        buf.add("task_state", 0.125 * k + 0.03, np.array([-1], np.float32))  # earlier in the same period
    res = buf.resample(layout, 0.3)
    assert res.grid[1] == 0.1875
    assert list(res.obs["task_state"][:, 0]) == list(range(len(res.grid)))
