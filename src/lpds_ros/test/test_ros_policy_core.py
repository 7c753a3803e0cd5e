import numpy as np

from lpds_ros.policy_core import ActionMapping, PolicyController, RobotState, rotate_z
from lpds_ros.safety import SafetyLimits

LIM = SafetyLimits((-0.45, -0.05, 0.64), (0.45, 0.6, 1.25), max_step=0.06)
Q = np.array([1.0, 0.0, 0.0, 0.0])


class WildRunner:
    """Huge, random and sometimes NaN chunks: the safety layer must contain whatever the model emits."""
    horizon, act_dim = 4, 4

    def __init__(self, seed=0, obs_dim=None):
        self.rng = np.random.default_rng(seed)
        self.calls = 0
        if obs_dim is not None:  # a declared spec: observations of another shape are refused
            self.obs_spec = {"state": {"shape": [obs_dim], "dtype": "float32"}}

    def act(self, obs):
        self.calls += 1
        c = self.rng.normal(0, 50, (4, 4))
        if self.rng.random() < 0.2:
            c[self.rng.integers(4), self.rng.integers(4)] = np.nan
        return c


def state(t, p=(0.0, 0.3, 0.9)):
    return RobotState(t, np.array(p, float), Q.copy(), 0.08)


def test_tick_holds_until_inputs_are_good_and_fresh():
    c = PolicyController(WildRunner(obs_dim=5), LIM, max_input_age=0.2)
    assert c.tick(0.0, np.zeros(5), 0.0, state(0.0)).command is None  # not started
    c.start()
    assert c.tick(1.0, np.zeros(5), 0.5, state(0.5)).command is None  # stale
    r = c.tick(1.0, np.full(5, np.nan), 1.0, state(1.0))
    assert r.command is None and "NaN" in r.reasons[0]
    r = c.tick(1.2, np.zeros(4, np.float32), 1.2, state(1.2))
    assert r.command is None and "shape" in r.reasons[0]
    r = c.tick(1.3, np.zeros(5), 1.3, state(1.3, (50.0, 0, 0)))
    assert r.command is None and "outside the workspace" in r.reasons[0]


def test_core_fuzz_targets_stay_in_box_and_step():
    rng = np.random.default_rng(1)
    c = PolicyController(WildRunner(1), LIM, replan_after=2, max_input_age=0.2)
    c.start()
    prev, pos, n_cmd, t = None, np.array([0.0, 0.3, 0.9]), 0, 0.0
    for _ in range(3000):
        t += 0.1
        obs = rng.normal(0, 1, 6).astype(np.float32)
        kind = rng.integers(6)
        if kind == 0:
            obs[0] = np.nan
        elif kind == 1:
            obs *= 1e9
        st = state(t, pos)
        r = c.tick(t, obs, t - (1.0 if kind == 2 else 0.0), st)
        if r.command is None:
            prev = None  # a hold: the next command re-anchors on the measured pose
            continue
        n_cmd += 1
        p = r.command.position
        assert np.all(p >= np.array(LIM.box_min) - 1e-12) and np.all(p <= np.array(LIM.box_max) + 1e-12)
        ref = prev if prev is not None else pos
        assert np.linalg.norm(p - ref) <= LIM.max_step + 1e-9
        prev, pos = p, p  # the robot follows
    assert n_cmd > 500


def test_yaw_actions_rotate_about_world_z_and_gripper_mapping():
    q = rotate_z(np.array([0, 0, 0, 1.0]), np.pi / 2)
    np.testing.assert_allclose(q, [0, 0, np.sin(np.pi / 4), np.cos(np.pi / 4)], atol=1e-12)
    m = ActionMapping(gripper_open_value=1.0, gripper_closed_value=-1.0)
    assert m.gripper_command(1.0) == 0.0 and m.gripper_command(-1.0) == 1.0 and m.gripper_command(0.0) == 0.5


def test_stop_holds_immediately_and_start_reanchors():
    class Const:
        horizon, act_dim = 8, 4

        def act(self, obs):
            return np.tile([1.0, 0, 0, 1.0], (8, 1))

    c = PolicyController(Const(), LIM, replan_after=8, mapping=ActionMapping(action_scale=0.03))
    c.start()
    r = c.tick(0.0, np.zeros(2), 0.0, state(0.0))
    assert np.isclose(r.command.position[0], 0.03)
    c.stop()
    assert c.tick(0.1, np.zeros(2), 0.1, state(0.1)).command is None
    c.start()
    r = c.tick(0.2, np.zeros(2), 0.2, state(0.2, (0.1, 0.3, 0.9)))
    assert np.isclose(r.command.position[0], 0.13)  # from the measured pose, not the old target
