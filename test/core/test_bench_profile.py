"""lpds_core.bench_profile: the profile schema (one-line refusals), exact YAML round trip, rotations and frame conversion."""
from __future__ import annotations

import math

import numpy as np
import pytest

from lpds_core.bench_profile import (QUAT_NORM_TOL, BenchProfile, base_to_world, calibrated_profile, check_pose_matrix,
                             load_profile, matrix_to_quat_xyzw, pose_matrix, profile_yaml, quat_xyzw_to_matrix,
                             read_pose_matrix, unit_quaternion, world_from_base)
from lpds_core.config import build, to_dict
from lpds_core.errors import ConfigError


def _random_rotation(rng) -> np.ndarray:
    q = rng.normal(size=4)
    return quat_xyzw_to_matrix(q / np.linalg.norm(q))


def _write(tmp_path, text: str):
    p = tmp_path / "bench.yaml"
    p.write_text(text)
    return p


def test_yaml_round_trip_is_exact(tmp_path):
    """Every number written by profile_yaml loads back bit for bit (repr floats), including awkward ones."""
    rng = np.random.default_rng(0)
    q = rng.normal(size=4)
    prof = calibrated_profile(BenchProfile(), [0.1 + 1e-17, 1 / 3, 1.2345678901234567], q / np.linalg.norm(q),
                              table_height=0.7 + 1e-12, name="lab: A # 2")
    data = to_dict(prof)
    data["tray"]["tray_xy"] = [-1e-5, 0.3]
    prof = build(BenchProfile, data)
    back = load_profile(_write(tmp_path, profile_yaml(prof, "header\nline two")))
    assert back == prof
    assert profile_yaml(back) == profile_yaml(prof)


@pytest.mark.parametrize("text,expect", [
    ("table:\n  table_hight: 0.7\n", "unknown config key 'table_hight'; valid keys are: table_height"),
    ("table:\n  table_height: high\n", "table_height='high' is not float"),
    ("camera:\n  camera_position: [0, 1]\n", "camera_position=[0, 1] is not a list of float"),
    ("tray: [0.1, 0.2]\n", "section 'tray' must be a mapping"),
    ("camera:\n  camera_quat_xyzw: [0, 0, 1, 1]\n", "has norm 1.414, not 1"),
    ("camera:\n  depth_range: [2.0, 1.0]\n", "depth_range must be near < far"),
    ("table:\n  table_height: -0.2\n", "table_height must be >= 0"),
])
def test_wrong_profiles_are_refused_with_one_line(tmp_path, text, expect):
    with pytest.raises(ConfigError) as err:
        load_profile(_write(tmp_path, text))
    assert expect in str(err.value) and "\n" not in str(err.value)
    assert str(tmp_path / "bench.yaml") in str(err.value)  # names the file


def test_quaternion_rule_normalises_rounding_and_refuses_the_rest():
    """Decision: |norm - 1| <= 1e-3 (4-decimal printouts) is accepted and normalised where used; farther is refused."""
    q = np.array([0.7071, 0.0, 0.0, 0.7071])  # norm 0.99998
    u = unit_quaternion(q, "q", "test")
    assert np.linalg.norm(u) == pytest.approx(1.0, abs=1e-15) and np.allclose(u, q / np.linalg.norm(q))
    prof = calibrated_profile(BenchProfile(), [0, 0, 1], q)
    assert np.linalg.norm(prof.camera.camera_quat_xyzw) == pytest.approx(1.0, abs=1e-15)
    data = to_dict(BenchProfile())
    data["camera"]["camera_quat_xyzw"] = q.tolist()
    stored = build(BenchProfile, data)  # a hand-written profile keeps its digits; camera_pose() normalises
    assert stored.camera.camera_quat_xyzw == tuple(q) and np.linalg.norm(stored.camera_pose()[1]) == \
        pytest.approx(1.0, abs=1e-15)
    for bad in ([0.0, 0.0, 0.0, 0.0], [0.0, 0.0, 1.0, 1.0], [0.5, 0.5, 0.5, 0.5 + 3 * QUAT_NORM_TOL]):
        with pytest.raises(ConfigError, match="not 1; a rotation quaternion is unit length"):
            unit_quaternion(bad, "q", "test")


def test_quaternion_matrix_conversions_agree_for_every_branch():
    rng = np.random.default_rng(1)
    rotations = [_random_rotation(rng) for _ in range(200)]
    # near-180 degree turns about each axis take the other branches of Shepperd's method
    rotations += [quat_xyzw_to_matrix([*(np.eye(3)[i] * math.sin(1.55)), math.cos(1.55)]) for i in range(3)]
    for R in rotations:
        q = matrix_to_quat_xyzw(R)
        assert q[3] >= 0 and np.linalg.norm(q) == pytest.approx(1.0)
        np.testing.assert_allclose(quat_xyzw_to_matrix(q), R, atol=1e-12)
    # a known value: 90 degrees about z (ROS order x y z w)
    Rz = np.array([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    np.testing.assert_allclose(matrix_to_quat_xyzw(Rz), [0, 0, math.sqrt(0.5), math.sqrt(0.5)], atol=1e-15)
    np.testing.assert_allclose(quat_xyzw_to_matrix([0, 0, math.sqrt(0.5), math.sqrt(0.5)]), Rz, atol=1e-15)


def test_base_frame_is_the_sim_robot_base():
    """pandaSingle.g: base at (0, -0.2, 0.65), turned +90 deg about z: base x = world +y, base y = world -x."""
    T = world_from_base()
    np.testing.assert_allclose(base_to_world(np.eye(4)), T)
    np.testing.assert_allclose(T[:3, 3], [0.0, -0.2, 0.65])
    np.testing.assert_allclose(T[:3, :3] @ [1, 0, 0], [0, 1, 0], atol=1e-15)
    np.testing.assert_allclose(T[:3, :3] @ [0, 1, 0], [-1, 0, 0], atol=1e-15)
    # a point 1 m in front of the robot (base x) is 1 m along world +y from the base
    np.testing.assert_allclose((T @ [1, 0, 0, 1])[:3], [0.0, 0.8, 0.65], atol=1e-15)


def test_pose_matrices_are_checked(tmp_path):
    rng = np.random.default_rng(2)
    T = pose_matrix([0.9, 0.1, 0.5], matrix_to_quat_xyzw(_random_rotation(rng)))
    np.save(tmp_path / "T.npy", T)
    np.savetxt(tmp_path / "T.txt", T)
    np.savetxt(tmp_path / "T.csv", T, delimiter=",")
    for name in ("T.npy", "T.txt", "T.csv"):
        np.testing.assert_allclose(read_pose_matrix(tmp_path / name), T, atol=1e-15)
    cases = [(T.T, "last row must be 0 0 0 1"), (T[:3], "expected a 4x4 matrix"),
             (np.diag([2.0, 1.0, 1.0, 1.0]), "not a rotation"), (np.diag([-1.0, 1.0, 1.0, 1.0]), "not a rotation")]
    for bad, msg in cases:
        with pytest.raises(ConfigError, match=msg):
            check_pose_matrix(bad, "m")
    (tmp_path / "junk.txt").write_text("1 2 three\n")
    with pytest.raises(ConfigError, match="not a 4x4 matrix of numbers"):
        read_pose_matrix(tmp_path / "junk.txt")
    with pytest.raises(ConfigError, match="does not exist"):
        read_pose_matrix(tmp_path / "missing.npy")
