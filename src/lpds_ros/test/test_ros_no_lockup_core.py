"""The ROS-free pieces that keep the policy node from locking up: stamps from the future cannot block a stream,
the log always names the reason of now at a bounded rate, the first step after anchoring stays within max_step of
the robot, and a model is only swapped in when it fits the running observation/action spec."""
import numpy as np
import pytest

from lpds_ros.hold_reasons import HoldReasons, reason_kind
from lpds_ros.policy_core import PolicyController, RobotState, RunnerSpec, spec_mismatch
from lpds_ros.safety import SafetyFilter, SafetyLimits
from lpds_ros.timesync import ApproxTimePairBuffer

LIM = SafetyLimits((0.0, -0.5, 0.1), (1.0, 0.5, 0.9), max_step=0.05)
Q = np.array([0.0, 0.0, 0.0, 1.0])


class Runner:
    def __init__(self, obs_dim=3, act_dim=4, horizon=2, step=1.0):
        self.obs_spec = {"state": {"shape": [obs_dim], "dtype": "float32"}}
        self.act_dim, self.horizon, self.step = act_dim, horizon, step

    def act(self, obs):
        c = np.zeros((self.horizon, self.act_dim))
        c[:, 0] = self.step
        return c


def _state(t, p=(0.5, 0.0, 0.5)):
    return RobotState(t, np.array(p, float), Q.copy(), 0.08)


def test_future_stamps_are_purged_when_a_message_stamped_now_arrives():
    b = ApproxTimePairBuffer(slop=0.01)
    assert b.add_a(10.0, "ok", now=10.0)
    assert b.add_a(10.15, "ahead", now=10.0)  # a clock 0.15 s ahead
    assert b.add_a(10.06, "now", now=10.06)  # older than 10.15, but 10.15 lies after now: dropped, this accepted
    assert b.latest_pair() is None and b.sizes() == (2, 0)
    assert not b.add_a(10.06, "dup", now=10.07)  # a true duplicate still is out of order
    assert not b.add_a(9.0, "old", now=10.07)


def test_reached_and_unmatched():
    b = ApproxTimePairBuffer(slop=0.01)
    b.add_a(1.0, "a")
    assert b.unmatched_a() == (1.0, None) and not b.reached(1, 1.0)
    b.add_b(0.95, "b")
    assert b.unmatched_a() == (1.0, 0.95) and not b.reached(1, 1.0)
    b.add_b(1.0, "b2")
    assert b.unmatched_a() is None and b.reached(1, 1.0)


def test_hold_reasons_change_by_kind_and_the_log_catches_up():
    assert reason_kind("observation is 0.532 s old") == reason_kind("observation is 12.1 s old")
    h = HoldReasons(min_interval=0.5)
    assert h.update("observation is 0.3 s old", 0.0) == (True, "holding: observation is 0.3 s old")
    assert h.update("observation is 0.4 s old", 0.1) == (False, None)  # same kind: nothing new
    assert h.update("robot state has NaN/Inf", 0.2) == (True, None)  # new, but the log spoke 0.2 s ago
    assert h.flush(0.3) is None
    assert h.flush(0.6) == "holding: robot state has NaN/Inf"  # the log names the reason of now
    assert h.update("", 0.7) == (True, None) and h.flush(1.2) == "streaming resumed"
    for i in range(1000):
        h.update(f"reason kind {'ab'[i % 2]}", 2.0 + i * 1e-3)
    assert len(h.history) == 32 and h.changes > 1000


def test_anchor_outside_the_box_shortens_the_first_step_and_refuses_beyond_one_step():
    f = SafetyFilter(LIM)
    f.anchor([1.03, 0.0, 0.5], Q)  # 0.03 m outside: anchored on the wall, first step only 0.02 m
    out = f.filter([0.0, 0.0, 0.5], Q, 0.0)
    assert np.linalg.norm(out.position - [1.03, 0.0, 0.5]) <= LIM.max_step + 1e-12
    out2 = f.filter([0.0, 0.0, 0.5], Q, 0.0)  # then full steps again
    assert np.isclose(np.linalg.norm(out2.position - out.position), LIM.max_step)
    with pytest.raises(ValueError, match="outside the workspace box"):
        f.anchor([1.2, 0.0, 0.5], Q)
    with pytest.raises(ValueError, match="max_lead"):
        SafetyLimits(max_lead=-0.1)


def test_controller_refuses_a_model_that_does_not_fit_and_keeps_serving_the_old_one():
    c = PolicyController(Runner(), LIM, replan_after=1, max_input_age=0.2)
    old = c.runner
    for new, why in ((Runner(obs_dim=4), "observation spec"), (Runner(act_dim=5), "act_dim 5 differs"),
                     (Runner(act_dim=3), "4 or 5")):
        with pytest.raises(ValueError, match=why):
            c.set_runner(new)
        assert c.runner is old
    c.set_runner(Runner(horizon=7))  # another horizon is fine
    assert spec_mismatch(RunnerSpec(None, 4, 1), RunnerSpec({"state": ((3,), "float32")}, 4, 2)) == []


def test_controller_new_limits_apply_on_the_next_tick():
    c = PolicyController(Runner(step=1.0), LIM, replan_after=1, max_input_age=0.2)
    c.mapping = type(c.mapping)(action_scale=1.0)
    c.start()
    r = c.tick(1.0, np.zeros(3, np.float32), 1.0, _state(1.0))
    assert np.isclose(r.command.position[0], 0.55)
    c.set_limits(SafetyLimits((0.0, -0.5, 0.1), (0.56, 0.5, 0.9), max_step=0.01))
    r = c.tick(1.1, np.zeros(3, np.float32), 1.1, _state(1.1, r.command.position))
    assert np.isclose(r.command.position[0], 0.56)  # from the measured pose: 0.01 m step, inside the new box
    c.set_max_input_age(0.05)
    r = c.tick(1.3, np.zeros(3, np.float32), 1.2, _state(1.2, r.command.position))
    assert r.command is None and "old" in r.reasons[0]


def test_controller_holds_on_a_raising_or_misshapen_model_and_recovers():
    class Flaky(Runner):
        calls = 0

        def act(self, obs):
            self.calls += 1
            if self.calls == 1:
                raise RuntimeError("onnxruntime exploded")
            if self.calls == 2:
                return np.zeros((2, 6))
            return super().act(obs)

    c = PolicyController(Flaky(), LIM, replan_after=1)
    c.start()
    r = c.tick(1.0, np.zeros(3, np.float32), 1.0, _state(1.0))
    assert r.command is None and "policy step failed: RuntimeError" in r.reasons[0]
    r = c.tick(1.1, np.zeros(3, np.float32), 1.1, _state(1.1))
    assert r.command is None and "need (H, 4)" in r.reasons[0]
    assert c.tick(1.2, np.zeros(3, np.float32), 1.2, _state(1.2)).command is not None
