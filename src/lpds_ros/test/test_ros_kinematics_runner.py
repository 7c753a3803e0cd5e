import numpy as np
import pytest

from lpds_ros.kinematics import HOME, fk, ik
from lpds_ros.runner import ScriptedPickPlace, load_runner
from lpds_ros.sim_backends import KinematicBackend


def test_fk_zero_configuration_flange():
    np.testing.assert_allclose(fk(np.zeros(7), tcp=False)[:3, 3], [0.088, 0.0, 0.926], atol=1e-9)


def test_ik_round_trip_from_home():
    T = fk(HOME + np.array([0.1, 0.1, -0.1, 0.1, 0.05, 0.1, 0.0]))
    x, y, z, w = _quat_xyzw(T[:3, :3])
    q, res = ik(T[:3, 3], np.array([x, y, z, w]), HOME)
    assert res < 1e-4
    np.testing.assert_allclose(fk(q)[:3, 3], T[:3, 3], atol=1e-4)


def _quat_xyzw(R):
    w = np.sqrt(max(0.0, 1 + R[0, 0] + R[1, 1] + R[2, 2])) / 2
    return ((R[2, 1] - R[1, 2]) / (4 * w), (R[0, 2] - R[2, 0]) / (4 * w), (R[1, 0] - R[0, 1]) / (4 * w), w)


def test_load_runner_errors_are_clear():
    with pytest.raises(ValueError, match="unknown runner"):
        load_runner("magic")
    with pytest.raises(ValueError, match="cannot import"):
        load_runner("nowhere.module:factory")
    with pytest.raises(ValueError, match="needs state fields"):
        ScriptedPickPlace(["a", "b"])


def test_scripted_operator_solves_kinematic_pick_place_directly():
    """The operator behind the policy interface + the fake hardware, without ROS: the reference for the e2e test."""
    b = KinematicBackend(max_speed=0.03)
    pol = ScriptedPickPlace(b.obs_names, action_scale=0.03)
    wins = 0
    for cell in [(0, 0), (1, 3)]:
        b.reset(*cell, seed=3)
        target = b.ee.copy()
        for _ in range(40):
            for a in pol.act(b.task_obs()):
                target = target + a[:3] * 0.03
                b.command(target, b.quat, 1.0 if a[3] < 0 else 0.0)
                b.step()
            if b.success:
                break
        wins += b.success
    assert wins == 2
