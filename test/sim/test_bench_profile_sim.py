"""The RAI scene is built from the bench profile: the default is today's scene bit for bit, a lab's numbers move it.

`data/bench_default_obs_main.npz` holds observations captured from main *before* the scene read the profile
(commit 60a6617, with `CAPTURE` below, one case per fresh process; state vectors and pick-and-place images are the
same on 379a02e, mug-hanging images changed with the shared OpenCV preprocessing): a seeded reset and 25 steps of a fixed random
action stream of both tasks (state vectors), 6 steps in image mode (sha256 of every rgb/depth/proprio array), and
the frame state after the reset. The default profile must reproduce them exactly. One process per case because a
mug_hang rollout is not bit-identical after other envs ran in the same process (on main too; PhysX keeps
process-wide state), while a fresh process is.
"""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("robotic")

import gymnasium as gym  # noqa: E402

import lpds_sim  # noqa: E402,F401  (registers the env ids)
from lpds_core.bench_profile import BenchProfile, calibrated_profile, load_profile, profile_yaml, world_from_base  # noqa: E402
from lpds_core.config import build, to_dict  # noqa: E402
from lpds_sim import ENV_IDS  # noqa: E402
from isolation import isolated  # noqa: E402
from main_obs import MAIN, assert_main_state  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_YAML = ROOT / "config" / "bench" / "default.yaml"

CAPTURE = textwrap.dedent("""
    import hashlib, sys
    import numpy as np
    import gymnasium as gym
    import lpds_sim
    task, mode, steps, outp = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    kw = {"bench_profile": sys.argv[5]} if len(sys.argv) > 5 else {}
    env = gym.make(lpds_sim.ENV_IDS[task], obs_mode=mode, **kw)
    obs, _ = env.reset(seed=3, options={"cell": (1, 1)})
    frames = np.asarray(env.unwrapped.C.getFrameState(), np.float64)
    rng = np.random.default_rng(7)
    acts = rng.uniform(-1, 1, (steps, env.action_space.shape[0])).astype(np.float32)
    acts[: steps // 2, -1], acts[steps // 2:, -1] = 1.0, -1.0
    out = [obs] + [env.step(a)[0] for a in acts]
    env.close()
    res = {"frames": frames}
    if mode == "state":
        res["state"] = np.stack(out)
    else:
        h = hashlib.sha256()
        for o in out:
            for k in sorted(o):
                h.update(np.ascontiguousarray(o[k]).tobytes())
        res["sha"] = np.array(h.hexdigest())
    np.savez(outp, **res)
""")


def _capture(tmp_path: Path, task: str, mode: str, profile: Path | None = None) -> dict:
    out = tmp_path / f"{task}_{mode}.npz"
    args = [task, mode, "25" if mode == "state" else "6", str(out)] + ([str(profile)] if profile else [])
    proc = subprocess.run([sys.executable, "-c", CAPTURE, *args], cwd=tmp_path, capture_output=True, text=True,
                          timeout=120, env=dict(os.environ))
    assert proc.returncode == 0, proc.stderr[-3000:]
    return dict(np.load(out))


def _write(tmp_path: Path, profile: BenchProfile) -> Path:
    path = tmp_path / "bench.yaml"
    path.write_text(profile_yaml(profile))
    return path


@pytest.mark.parametrize("task,profile", [("pick_place", None), ("mug_hang", None), ("pick_place", DEFAULT_YAML)])
def test_default_profile_reproduces_main_state_observations_exactly(tmp_path, task, profile):
    main = np.load(MAIN)
    got = _capture(tmp_path, task, "state", profile)
    assert np.array_equal(got["frames"], main[f"{task}_frames"])
    assert_main_state(got["state"], main[f"{task}_state"], task)


@pytest.mark.display
@pytest.mark.parametrize("task", ["pick_place", "mug_hang"])
def test_default_profile_reproduces_main_image_observations_exactly(tmp_path, task):
    main = np.load(MAIN)
    got = _capture(tmp_path, task, "image", DEFAULT_YAML)
    assert np.array_equal(got["frames"], main[f"{task}_image_frames"])
    assert str(got["sha"]) == str(main[f"{task}_image_sha256"])


def test_default_yaml_file_is_the_schema_default():
    """config/bench/default.yaml cannot drift from the dataclass defaults (the scene is built from either)."""
    assert load_profile(DEFAULT_YAML) == BenchProfile()


def test_robot_base_is_where_the_frame_conversion_assumes():
    """`--frame base` maps through world_from_base(): it must be the scene's real l_panda_base pose."""
    from lpds_sim.rai import scene

    for height in (scene.TABLE_TOP_Z, 0.72):  # also when the profile moves the table
        C = scene.panda_config(height)
        base = C.getFrame(scene.ROBOT_BASE_FRAME)
        T = world_from_base()
        assert np.allclose(base.getPosition(), T[:3, 3], atol=1e-9)
        assert np.allclose(base.getRotationMatrix(), T[:3, :3], atol=1e-9)


@isolated
def test_changed_table_height_moves_the_table_and_what_stands_on_it(tmp_path):
    """+5 cm: the table top, the cube resting on it (after PhysX settled it), the tray floor target and the
    workspace floor move up 5 cm; the robot (base, home pose) does not move."""
    from lpds_core.bench_profile import matrix_to_quat_xyzw, pose_matrix
    from lpds_sim.cli import main as lpds

    main = np.load(MAIN)
    # the lab's numbers, as `lpds calibrate` takes them: table top 5 cm above the robot base, camera unchanged
    T = np.linalg.inv(world_from_base()) @ pose_matrix(*BenchProfile().camera_pose())
    pose = ",".join(repr(float(v)) for v in [*T[:3, 3], *matrix_to_quat_xyzw(T[:3, :3])])
    path = tmp_path / "bench.yaml"
    assert lpds(["calibrate", "--camera-pose", pose, "--frame", "base", "--table-height", "0.05",
                 "--out", str(path)]) == 0
    assert load_profile(path).table.table_height == pytest.approx(0.70, abs=1e-12)
    env = gym.make(ENV_IDS["pick_place"], bench_profile=str(path))
    try:
        u = env.unwrapped
        obs, _ = env.reset(seed=3, options={"cell": (1, 1)})
        L = u.state_layout
        table = u.C.getFrame("table")
        assert table.getPosition()[2] + table.getSize()[2] / 2 == pytest.approx(0.70, abs=1e-9)
        assert obs[L["obj_pos"]][2] == pytest.approx(0.70 + u.cube_size / 2, abs=3e-3)  # resting on the new top
        ref = main["pick_place_state"][0]
        assert obs[L["target_pos"]][2] == pytest.approx(ref[L["target_pos"]][2] + 0.05, abs=1e-6)
        assert u.C.getFrame("tray").getPosition()[2] == pytest.approx(0.70 + 0.005, abs=1e-9)
        assert u._ee_low[2] == pytest.approx(0.69)
        assert np.allclose(obs[L["ee_pos"]], ref[L["ee_pos"]], atol=2e-3)  # the arm stays at its home
        assert np.allclose(u.C.getFrame("l_panda_base").getPosition(), world_from_base()[:3, 3], atol=1e-6)
        assert u.settings()["bench"]["table"]["table_height"] == pytest.approx(0.70, abs=1e-12)
        assert u.settings()["env_kwargs"]["bench_profile"] == str(path)
    finally:
        env.close()


@isolated
def test_tray_and_holder_follow_the_profile(tmp_path):
    data = to_dict(BenchProfile())
    data["tray"].update(tray_xy=[-0.2, 0.4], tray_yaw=0.5)
    data["holder"].update(holder_xy=[0.25, 0.45], peg_height=0.25)
    path = tmp_path / "b.yaml"
    path.write_text(profile_yaml(build(BenchProfile, data)))
    env = gym.make(ENV_IDS["pick_place"], bench_profile=str(path))
    try:
        u = env.unwrapped
        obs, _ = env.reset(seed=0)
        tray = u.C.getFrame("tray")
        assert np.allclose(tray.getPosition()[:2], [-0.2, 0.4])
        R = tray.getRotationMatrix()
        assert np.arctan2(R[1, 0], R[0, 0]) == pytest.approx(0.5, abs=1e-6)
        assert np.allclose(obs[u.state_layout["target_pos"]][:2], [-0.2, 0.4], atol=1e-6)
        # success is judged in the tray's own axes: a corner point inside the turned tray, outside the unturned one
        half = u.tray_inner / 2 - u.cube_size / 2
        corner = np.array([-0.2, 0.4]) + half * np.array([np.cos(0.5) - np.sin(0.5), np.sin(0.5) + np.cos(0.5)])
        f = u._obj_frame()
        f.setPosition([*corner, u._target_pos()[2]])
        u._obj_speed = 0.0
        assert u._is_success()
    finally:
        env.close()
    env = gym.make(ENV_IDS["mug_hang"], bench_profile=str(path))
    try:
        h = env.unwrapped.scene_spec.holder
        assert h.xy == (0.25, 0.45) and h.peg_height == 0.25
        post = env.unwrapped.C.getFrame("holder_post").getPosition()
        assert np.allclose(post[:2], [0.25, 0.45])
        assert env.unwrapped.C.getFrame("peg").getPosition()[2] == pytest.approx(0.65 + 0.25, abs=1e-9)
    finally:
        env.close()


@pytest.mark.display
@isolated
def test_a_calibrated_camera_pose_sees_the_cube_where_the_pinhole_model_puts_it(tmp_path):
    """The profile's camera is the colour optical frame (x right, y down, z forward): a camera 0.5 m above the
    cube looking straight down, turned so that image x = world x and image down = world -y, must see the cube's
    top face centred at the pixel the pinhole model gives for the cube's world position."""
    R = np.array([[1.0, 0.0, 0.0], [0.0, -1.0, 0.0], [0.0, 0.0, -1.0]])  # columns: camera x, y, z in the world
    from lpds_core.bench_profile import matrix_to_quat_xyzw

    cube_xy = np.array([0.25, 0.32])  # clear of the tray and of the arm at its home, seen from above
    cam = np.array([0.20, 0.36, 0.65 + 0.05 + 0.5])  # the cube appears right of and below the image centre
    path = _write(tmp_path, calibrated_profile(BenchProfile(), cam, matrix_to_quat_xyzw(R)))
    env = gym.make(ENV_IDS["pick_place"], obs_mode="image", bench_profile=str(path), image_size=84)
    try:
        obs, _ = env.reset(seed=0, options={"object_xy": cube_xy})
        u = env.unwrapped
        top = u._obj_frame().getPosition() + [0, 0, u.cube_size / 2]
        p = R.T @ (top - cam)  # cube top centre in the camera frame
        S = 84
        f = 0.5 * S / np.tan(np.deg2rad(BenchProfile().camera.vfov_deg) / 2)
        u_px, v_px = S / 2 + f * p[0] / p[2], S / 2 + f * p[1] / p[2]
        depth = obs["depth"][0]
        mask = np.abs(depth - p[2]) < 0.01  # the cube's top face (the table is 5 cm farther, the hand much nearer)
        assert mask.sum() > 10
        rows, cols = np.nonzero(mask)
        assert cols.mean() + 0.5 == pytest.approx(u_px, abs=1.0), (cols.mean(), u_px)
        assert rows.mean() + 0.5 == pytest.approx(v_px, abs=1.0), (rows.mean(), v_px)
        assert u_px > S / 2 + 3 and v_px > S / 2 + 3  # really off-centre: a flipped axis would fail
        assert np.median(depth[mask]) == pytest.approx(p[2], abs=0.01)
    finally:
        env.close()
