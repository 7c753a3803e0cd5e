"""franka_core.AdapterCore without ROS: what the adapter sends, cancels and holds on, with a fake clock."""
from __future__ import annotations

import pytest

from lpds_ros.franka_core import (ROBOT_MODE_REFLEX, ROBOT_MODE_USER_STOPPED, AdapterCore, Cancel, GripperHysteresis,
                                  Log, Send, Timeouts)

MOVE = 2  # FrankaRobotState.ROBOT_MODE_MOVE


def sends(cmds):
    return [c.kind for c in cmds if isinstance(c, Send)]


def cancels(cmds):
    return [c.kind for c in cmds if isinstance(c, Cancel)]


def logs(cmds, level=None):
    return [c.text for c in cmds if isinstance(c, Log) and (level is None or c.level == level)]


def _accept_and_finish(core, cmds, now, success=True, error=""):
    (s,) = [c for c in cmds if isinstance(c, Send)]
    assert core.on_response(s.kind, s.goal_id, True, now) == []
    return core.on_result(s.kind, s.goal_id, success, error, now + 0.5)


def test_hysteresis_sends_one_goal_per_transition():
    h = GripperHysteresis(0.6, 0.4)
    assert [h.update(v) for v in (0.5, 0.7, 0.65, 0.5, 0.3, 0.45, 0.8)] == [None, "close", None, None, "open",
                                                                             None, "close"]
    with pytest.raises(ValueError, match="open_below must be below"):
        GripperHysteresis(0.4, 0.6)


def test_homing_first_then_grasp_and_move_never_overlap():
    core = AdapterCore(home_at_start=True)
    cmds = core.start(0.0)
    assert sends(cmds) == ["homing"]
    assert core.on_gripper_command(0.9, 0.1) == []  # homing in flight: the gripper is busy
    assert logs(_accept_and_finish(core, cmds, 0.2)) == ["gripper homed"]
    c = core.on_gripper_command(0.9, 1.0)
    assert sends(c) == ["grasp"]
    assert core.on_gripper_command(0.1, 1.1) == []  # grasp in flight: no move on top of it
    _accept_and_finish(core, c, 1.2)
    assert sends(core.on_gripper_command(0.1, 2.0)) == ["move"]
    assert AdapterCore(home_at_start=False).start(0.0) == []


def test_missed_grasp_is_a_warning_not_a_hold():
    core = AdapterCore()
    out = _accept_and_finish(core, core.on_gripper_command(0.9, 0.0), 0.1, success=False, error="object not found")
    assert logs(out, "warning") == ["gripper grasp did not succeed: object not found"] and not core.holding


def test_rejected_goal_holds_with_a_line_and_start_resumes():
    core = AdapterCore(names={"grasp": "franka_gripper/grasp"})
    (s,) = core.on_gripper_command(0.9, 0.0)
    out = core.on_response("grasp", s.goal_id, False, 0.1)
    assert core.hold_reason == "franka_gripper/grasp rejected the grasp goal"
    assert logs(out, "error") == ["franka_gripper/grasp rejected the grasp goal: holding; call ~/start to resume"]
    assert core.on_target(0.2, use_action=True) == [] and core.on_gripper_command(0.1, 0.2) == []
    assert core.resume(0.3) == (True, "resumed") and not core.holding
    assert sends(core.on_target(0.4, use_action=True)) == ["trajectory"]


def test_unanswered_goal_times_out_into_a_hold():
    core = AdapterCore(timeouts=Timeouts(response=2.0), names={"move": "franka_gripper/move"})
    core.hyst.closed = True
    (s,) = core.on_gripper_command(0.1, 10.0)
    assert core.tick(11.9) == []
    out = core.tick(12.1)
    assert core.holding and "franka_gripper/move: no answer to the move goal within 2 s" in logs(out, "error")[0]
    assert cancels(out) == ["move"]
    assert core.on_response("move", s.goal_id, True, 12.5) == [Cancel("move", s.goal_id)]  # too late: cancel it
    assert "gripper" not in core.goals


def test_accepted_goal_that_never_finishes_is_cancelled():
    core = AdapterCore(timeouts=Timeouts(gripper=5.0))
    (s,) = core.on_gripper_command(0.9, 0.0)
    core.on_response("grasp", s.goal_id, True, 0.5)
    assert core.tick(5.4) == []
    out = core.tick(5.6)
    assert out[0] == Cancel("grasp", s.goal_id) and core.holding and "not done within 5 s" in logs(out)[0]


def test_trajectory_goals_replace_each_other_and_an_abort_holds():
    core = AdapterCore(trajectory_time=0.6, timeouts=Timeouts(trajectory=1.0))
    (a,) = core.on_target(0.0, use_action=True)
    (b,) = core.on_target(0.1, use_action=True)
    assert core.on_response("trajectory", a.goal_id, False, 0.2) == []  # the replaced goal no longer counts
    assert core.on_response("trajectory", a.goal_id, True, 0.2) == [Cancel("trajectory", a.goal_id)]
    core.on_response("trajectory", b.goal_id, True, 0.2)
    assert core.on_result("trajectory", a.goal_id, False, "preempted", 0.3) == [] and not core.holding
    assert core.tick(1.7) == []  # 0.6 + 1.0 s after acceptance
    out = core.on_result("trajectory", b.goal_id, False, "error_code -4", 1.75)
    assert core.holding and "aborted the trajectory (error_code -4)" in logs(out)[0]
    # topic mode: nothing to track
    assert AdapterCore().on_target(0.0, use_action=False) == [Send("trajectory", 0)]


def test_reflex_cancels_recovers_and_resumes_once_the_robot_left_it():
    core = AdapterCore()
    (g,) = core.on_gripper_command(0.9, 0.0)
    core.on_response("grasp", g.goal_id, True, 0.1)
    (t,) = core.on_target(0.1, use_action=True)
    out = core.on_robot_mode(ROBOT_MODE_REFLEX, 0.2)
    assert sorted(cancels(out)) == ["grasp", "trajectory"] and sends(out) == ["recovery"]
    assert core.hold_reason == "reflex" and core.on_target(0.3, use_action=True) == []
    assert core.on_robot_mode(ROBOT_MODE_REFLEX, 0.3) == []  # the same reflex: one recovery only
    assert core.resume(0.3)[0] is False  # not while the recovery runs
    rec = next(c for c in out if isinstance(c, Send))
    assert core.on_robot_mode(MOVE, 0.35) == [] and core.holding  # result not in yet: wait for it
    out = _accept_and_finish(core, [rec], 0.4)
    assert logs(out) == ["error recovery 1/3 succeeded"] and core.holding
    assert logs(core.on_robot_mode(MOVE, 1.0)) == ["robot recovered from the reflex: resuming"]
    assert not core.holding and sends(core.on_target(1.1, use_action=True)) == ["trajectory"]
    assert core.on_result("trajectory", t.goal_id, False, "cancelled", 1.2) == []  # stale, cancelled goal


def test_recovery_limit_failure_and_auto_recover_off_hold_for_the_operator():
    core = AdapterCore(max_recoveries=1)
    out = core.on_robot_mode(ROBOT_MODE_REFLEX, 0.0)
    _accept_and_finish(core, out, 0.1)
    core.on_robot_mode(MOVE, 1.0)
    out = core.on_robot_mode(ROBOT_MODE_REFLEX, 2.0)
    assert sends(out) == [] and "again after 1 automatic recoveries" in logs(out, "error")[0] and core.holding
    assert core.resume(2.1)[0] is False  # robot still in the reflex
    assert "outside the adapter" in logs(core.on_robot_mode(MOVE, 3.0))[0] and core.holding
    assert core.resume(3.1) == (True, "resumed") and core.recoveries == 0

    core = AdapterCore()
    out = core.on_robot_mode(ROBOT_MODE_REFLEX, 0.0)
    out = _accept_and_finish(core, out, 0.1, success=False, error="status 6")
    assert "error recovery failed (status 6)" in logs(out, "error")[0] and core.holding

    core = AdapterCore(auto_recover=False)
    out = core.on_robot_mode(ROBOT_MODE_REFLEX, 0.0)
    assert sends(out) == [] and "auto_recover off" in logs(out)[0]
    out = AdapterCore().on_robot_mode(ROBOT_MODE_USER_STOPPED, 0.0)
    assert sends(out) == [] and "user stop" in logs(out)[0]


def test_recovery_timeout_and_rejection_hold():
    core = AdapterCore(timeouts=Timeouts(recovery=10.0))
    (rec,) = [c for c in core.on_robot_mode(ROBOT_MODE_REFLEX, 0.0) if isinstance(c, Send)]
    core.on_response("recovery", rec.goal_id, True, 0.1)
    out = core.tick(10.2)
    assert cancels(out) == ["recovery"] and "not done within 10 s" in logs(out)[0]
    core = AdapterCore()
    (rec,) = [c for c in core.on_robot_mode(ROBOT_MODE_REFLEX, 0.0) if isinstance(c, Send)]
    assert "rejected the recovery goal" in logs(core.on_response("recovery", rec.goal_id, False, 0.1))[0]


def test_stop_cancels_goals_in_flight_and_holds_until_start():
    core = AdapterCore()
    (g,) = core.on_gripper_command(0.9, 0.0)
    (t,) = core.on_target(0.0, use_action=True)
    out = core.stop(0.1)
    assert set(c for c in out if isinstance(c, Cancel)) == {Cancel("grasp", g.goal_id), Cancel("trajectory", t.goal_id)}
    assert core.hold_reason == "stopped" and "2 goal(s) cancelled" in logs(out)[0]
    assert core.on_result("grasp", g.goal_id, False, "cancelled", 0.2) == []
    assert core.on_gripper_command(0.1, 0.3) == [] and core.tick(100.0) == []
    assert core.resume(0.4)[0] and sends(core.on_gripper_command(0.1, 0.5)) == ["move"]
