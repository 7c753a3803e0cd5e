"""`lpds calibrate`: a measured camera pose (or 4x4 matrix) -> a bench profile; print -> load -> the same numbers."""
from __future__ import annotations

import numpy as np
import pytest

from lpds_core.bench_profile import (BenchProfile, calibrated_profile, load_profile, matrix_to_quat_xyzw, pose_matrix,
                             profile_yaml, world_from_base)
from lpds_sim.cli import main

# a camera 0.9 m in front of the robot base, 0.55 m up, looking back at it and down (base frame, ROS x y z w)
POSE = [0.9, 0.05, 0.55, -0.6720, -0.6448, 0.2438, 0.2713]


def _q(v):
    v = np.asarray(v, float)
    return v / np.linalg.norm(v)


def _calibrate(capsys, *args) -> tuple[int, str, str]:
    rc = main(["calibrate", *args])
    out, err = capsys.readouterr()
    return rc, out, err


def _strip_header(text: str) -> str:
    return "".join(ln for ln in text.splitlines(keepends=True) if not ln.startswith("#"))


def test_printed_profile_loads_back_to_the_measured_pose(tmp_path, capsys):
    rc, out, _ = _calibrate(capsys, "--camera-pose", ",".join(map(str, POSE)), "--table-height", "0.02",
                            "--name", "lab-a")
    assert rc == 0 and out.startswith("# bench profile written by")
    path = tmp_path / "p.yaml"
    path.write_text(out)
    prof = load_profile(path)
    pos, quat = prof.camera_pose()
    back = np.linalg.inv(world_from_base()) @ pose_matrix(pos, quat)  # the profile is in the sim world frame
    np.testing.assert_allclose(back[:3, 3], POSE[:3], atol=1e-12)
    q = matrix_to_quat_xyzw(back[:3, :3])
    np.testing.assert_allclose(q * np.sign(q @ POSE[3:]), _q(POSE[3:]), atol=1e-12)
    assert prof.table.table_height == pytest.approx(0.65 + 0.02, abs=1e-12) and prof.bench_name == "lab-a"
    assert prof.tray == BenchProfile().tray and prof.mug_camera == BenchProfile().mug_camera  # the rest: default
    assert _strip_header(profile_yaml(prof)) == _strip_header(out)  # print -> load -> print: the same text


def test_world_frame_pose_is_written_as_given(capsys, tmp_path):
    q = _q([0.1, -0.9, 0.4, 0.05])
    rc, out, _ = _calibrate(capsys, "--camera-pose", ",".join(repr(float(v)) for v in [0.11, 0.82, 1.31, *q]), "--frame", "world",
                            "--camera", "mug_camera", "--table-height", "0.7")
    assert rc == 0
    (tmp_path / "p.yaml").write_text(out)
    prof = load_profile(tmp_path / "p.yaml")
    np.testing.assert_allclose(prof.mug_camera.mug_camera_position, [0.11, 0.82, 1.31], atol=1e-15)
    np.testing.assert_allclose(prof.mug_camera.mug_camera_quat_xyzw, q * np.sign(q[3]), atol=1e-15)
    assert prof.camera == BenchProfile().camera and prof.table.table_height == 0.7


def test_a_hand_eye_matrix_gives_the_same_profile_as_its_pose(tmp_path, capsys):
    T = pose_matrix(POSE[:3], _q(POSE[3:]))
    np.save(tmp_path / "T.npy", T)
    np.savetxt(tmp_path / "T.txt", T)
    outs = [_calibrate(capsys, "--camera-matrix", str(tmp_path / name))[1] for name in ("T.npy", "T.txt")]
    outs.append(_calibrate(capsys, "--camera-pose", ",".join(map(str, POSE)))[1])
    profs = [load_profile((tmp_path / f"{i}.yaml").write_text(o) and tmp_path / f"{i}.yaml") for i, o in
             enumerate(outs)]
    for p in profs[1:]:
        np.testing.assert_allclose(p.camera.camera_position, profs[0].camera.camera_position, atol=1e-12)
        np.testing.assert_allclose(p.camera.camera_quat_xyzw, profs[0].camera.camera_quat_xyzw, atol=1e-12)


def test_from_keeps_the_other_values_and_out_never_overwrites(tmp_path, capsys):
    data_prof = calibrated_profile(BenchProfile(), [0, 1, 1], [0, 0, 0, 1], table_height=0.7, name="old")
    src = tmp_path / "old.yaml"
    src.write_text(profile_yaml(data_prof))
    out = tmp_path / "new" / "bench.yaml"
    rc, _, err = _calibrate(capsys, "--camera-pose", ",".join(map(str, POSE)), "--from", str(src), "--out", str(out))
    assert rc == 0 and f"wrote {out}" in err
    new = load_profile(out)
    assert new.table.table_height == 0.7 and new.bench_name == "old" and new.camera != data_prof.camera
    before = out.read_text()
    rc, _, err = _calibrate(capsys, "--camera-pose", ",".join(map(str, POSE)), "--out", str(out))
    assert rc == 2 and err.startswith(f"error: --out {out} already exists") and err.count("\n") == 1
    assert out.read_text() == before


@pytest.mark.parametrize("args,expect", [
    (["--camera-pose", "0.9,0.05,0.55,1,1,0,0"], "has norm 1.414, not 1; a rotation quaternion is unit length"),
    (["--camera-pose", "0.9,0.05,0.55"], "must be 7 comma-separated numbers x,y,z,qx,qy,qz,qw"),
    (["--camera-pose", "0.9,0.05,0.55,0,0,0,one"], "must be 7 comma-separated numbers"),
    (["--camera-matrix", "/nonexistent/T.npy"], "camera matrix file /nonexistent/T.npy does not exist"),
    (["--camera-pose", "0,0,0,0,0,0,1", "--from", "/nonexistent/p.yaml"], "does not exist"),
    (["--camera-pose", "0,0,0,0,0,0,1", "--table-height", "2.0"], "table_height must be <= 1.6"),
])
def test_bad_input_is_one_line(capsys, args, expect):
    rc, out, err = _calibrate(capsys, *args)
    assert rc == 2 and out == "" and err.startswith("error: ") and err.count("\n") == 1
    assert expect in err, err


def test_near_unit_quaternion_is_normalised(capsys, tmp_path):
    """Rounded digits (norm 0.99998) are normalised; the profile then holds a unit quaternion."""
    rc, out, _ = _calibrate(capsys, "--camera-pose", "0.9,0,0.5,0.7071,0,0,0.7071", "--frame", "world")
    assert rc == 0
    (tmp_path / "p.yaml").write_text(out)
    q = np.array(load_profile(tmp_path / "p.yaml").camera.camera_quat_xyzw)
    assert np.linalg.norm(q) == pytest.approx(1.0, abs=1e-15)
    np.testing.assert_allclose(q, [np.sqrt(0.5), 0, 0, np.sqrt(0.5)], atol=1e-12)


def test_tray_and_holder_measured_in_the_base_frame_land_in_the_world(capsys, tmp_path):
    """Base frame (x forward, y left of the robot) -> sim world: world x = -base y, world y = base x - 0.2."""
    rc, out, _ = _calibrate(capsys, "--camera-pose", ",".join(map(str, POSE)), "--tray-xy", "0.52,0.25",
                            "--holder-xy", "0.62,-0.3")
    assert rc == 0
    (tmp_path / "p.yaml").write_text(out)
    prof = load_profile(tmp_path / "p.yaml")
    np.testing.assert_allclose(prof.tray.tray_xy, BenchProfile().tray.tray_xy, atol=1e-12)  # today's tray place
    np.testing.assert_allclose(prof.holder.holder_xy, BenchProfile().holder.holder_xy, atol=1e-12)
    rc, _, err = _calibrate(capsys, "--camera-pose", ",".join(map(str, POSE)), "--tray-xy", "0.52")
    assert rc == 2 and "--tray-xy '0.52' must be 2 comma-separated numbers x,y (m)" in err
