"""MugHang-v0 in RAI PhysX: hanging mug registers success, reward audit, grid cells, the scripted operator."""
import numpy as np
import pytest

from lpds_sim.rai.mug_scene import MugScene, axis_angle_quat
from lpds_sim.rai.mug_teleop import MugHangOperator, MugOperatorStyle, fit_yaw_range, min_jerk, wrap_angle
from lpds_sim.tasks import get_task, make_env, make_operator
from lpds_core.grid_protocol import run_episode

SC = MugScene()


@pytest.fixture(scope="module")
def env():
    e = make_env("mug_hang")
    yield e
    e.close()


def quat_yaw(q: np.ndarray) -> np.ndarray:
    """Heading of a (w, x, y, z) quaternion's x axis in the table plane."""
    w, x, y, z = np.moveaxis(np.asarray(q), -1, 0)
    return np.arctan2(2 * (w * z + x * y), 1 - 2 * (y * y + z * z))


def hold(env, n):
    """Step with the gripper open and the arm still; returns the infos."""
    return [env.step(np.array([0, 0, 0, 0, 1.0], np.float32))[-1] for _ in range(n)]


def test_registry_and_spaces(env):
    spec = get_task("mug_hang")
    assert spec.env_id == "lpds_sim/MugHang-v0" and spec.grid == (2, 2, 5)
    assert env.action_space.shape == (5,)  # dx dy dz dyaw gripper
    obs, info = env.reset(seed=0)
    assert obs.shape == env.observation_space.shape and obs.dtype == np.float32
    assert set(info) >= {"obj_xy", "target_xy", "collision", "success"}


def test_mug_hung_on_the_peg_stays_and_succeeds(env):
    pos, quat = SC.hang_pose()  # peg through the handle; released, the mug drops onto its top bar and swings
    env.reset(seed=0, options={"mug_pose": (pos, quat)})
    u = env.unwrapped
    infos, terminated = [], False
    for _ in range(u.hold_steps + 5):
        _, r, terminated, _, info = env.step(np.array([0, 0, 0, 0, 1.0], np.float32))
        infos.append(info)
        if terminated:
            break
    assert terminated and infos[-1]["success"]
    assert len(infos) == u.hold_steps  # success needs hold_steps consecutive hanging steps, not fewer
    assert not any(i["success"] for i in infos[:-1])
    assert not any(i["collision"] for i in infos)
    mug_pos, _ = u.mug_pose()
    assert mug_pos[2] > SC.mug_rest_z() + 0.08  # still up on the peg
    assert np.linalg.norm(infos[-1]["obj_xy"] - infos[-1]["target_xy"]) < 0.03


def test_mug_on_the_table_or_knocked_over_never_succeeds(env):
    env.reset(seed=1)
    assert not any(i["success"] for i in hold(env, 15))
    lying = axis_angle_quat([1, 0, 0], np.pi / 2)
    env.reset(seed=1, options={"mug_pose": ([0.25, 0.25, 0.65 + SC.mug.radius + 0.002], lying)})
    assert not any(i["success"] for i in hold(env, 15))
    # dropped from beside the peg: falls to the table
    pos, quat = SC.hang_pose()
    env.reset(seed=1, options={"mug_pose": (pos + [0, 0, -0.02] + [SC.mug.hole_w + 0.02, 0, 0], quat)})
    assert not any(i["success"] for i in hold(env, 15))


def test_bad_mug_pose_option_is_a_clear_error(env):
    with pytest.raises(ValueError, match="mug_pose"):
        env.reset(seed=0, options={"mug_pose": ([0.1, 0.2], [1, 0, 0, 0])})


def test_reward_is_the_formula_of_the_info_terms(env):
    env.reset(seed=3)
    rng = np.random.default_rng(0)
    u = env.unwrapped
    for _ in range(40):
        _, r, term, trunc, info = env.step(rng.uniform(-1, 1, 5).astype(np.float32))
        expect = (-0.1 * np.linalg.norm(info["obj_xy"] - info["target_xy"]) - 0.5 * info["collision"]
                  + 1.0 * info["success"])
        assert r == pytest.approx(expect, abs=1e-9)
        handle = u.C.getFrame("mug_handle_centre").getPosition()[:2]
        assert np.allclose(info["obj_xy"], handle) and np.allclose(info["target_xy"], [0.3, 0.306], atol=1e-3)
        if term or trunc:
            break


def test_pushing_the_gripper_onto_the_holder_post_is_a_collision(env):
    env.reset(seed=0)
    u = env.unwrapped
    post_top = np.array([*SC.holder.xy, 0.65 + SC.holder.peg_height + 0.015])
    collided = False
    for _ in range(60):  # fly above the post, then press down onto it
        goal = post_top + ([0, 0, 0.10] if np.linalg.norm(u.ee_pose()[0][:2] - post_top[:2]) > 0.01 else [0, 0, -0.05])
        a = np.r_[np.clip((goal - u.ee_target) / 0.03, -1, 1), 0.0, 1.0].astype(np.float32)
        collided |= env.step(a)[-1]["collision"]
        if collided:
            break
    assert collided


def test_grid_cells_place_the_mug_inside_the_cell(env):
    u = env.unwrapped
    rows, cols, _ = get_task("mug_hang").grid
    for row in range(rows):
        for col in range(cols):
            env.reset(seed=row * 10 + col, options={"cell": (row, col), "grid": (rows, cols)})
            lo, hi = u.cell_bounds(row, col, (rows, cols))
            xy = u.mug_pose()[0][:2]
            assert np.all(xy >= lo - 0.005) and np.all(xy <= hi + 0.005), (row, col, xy, lo, hi)


def test_yaw_helpers():
    assert wrap_angle(3 * np.pi / 2) == pytest.approx(-np.pi / 2)
    y = fit_yaw_range(np.array([2.8, 1.6]), np.pi / 2 + 0.35)  # fingers are symmetric: shift by -pi
    assert np.allclose(y, [2.8 - np.pi, 1.6 - np.pi])
    y0 = fit_yaw_range(np.array([0.2, 1.5]), np.pi / 2)  # already inside: untouched
    assert np.allclose(y0, [0.2, 1.5])
    s = min_jerk(10)
    assert s[-1] == pytest.approx(1.0) and np.all(np.diff(s) > 0)


def test_operator_picks_the_mirrored_hang_for_a_backwards_mug(env):
    env.reset(seed=0, options={"mug_pose": ([-0.05, 0.2, SC.mug_rest_z()], axis_angle_quat([0, 0, 1], 3.0))})
    op = MugHangOperator(env, MugOperatorStyle.exact(), seed=0)
    op.reset()
    assert op.side == -1 and op.planner.startswith("komo")


def test_scripted_episode_hangs_the_mug_without_collisions(env):
    op = make_operator("mug_hang", env, seed=0)
    r = run_episode(env, op, seed=5, options={"cell": (0, 1), "grid": (2, 2)}, record=True)
    assert r["success"], op.planner
    assert r["collisions"] == 0
    acts = r["actions"]
    assert acts.shape[1] == 5 and np.all(np.abs(acts) <= 1.0)
    assert (acts[:, -1] < 0).any() and acts[-1, -1] > 0  # grasped, then released
    assert r["dones"][-1] and not r["dones"][:-1].any()
    # the grasp-yaw features: sin, cos of 2(yaw(ee) - yaw(mug)), read here off the state's own quaternions
    lay = env.unwrapped.state_layout
    obs = np.array(r["obs"])
    d = 2 * (quat_yaw(obs[:, lay["ee_quat"]]) - quat_yaw(obs[:, lay["obj_quat"]]))
    assert np.allclose(obs[:, lay["extra"]], np.stack([np.sin(d), np.cos(d)], 1), atol=1e-4)
    close = np.flatnonzero(acts[:, -1] < 0)[0]
    assert obs[close, lay["extra"]][1] < -0.9  # the operator closes at +-90 deg to the mug's x axis


def test_same_seed_same_operator_actions(env):
    def first_actions(op_seed):
        env.reset(seed=7)
        op = make_operator("mug_hang", env, seed=op_seed)
        op.reset()
        acts = []
        for _ in range(25):
            acts.append(op())
            env.step(acts[-1])
        return np.array(acts)

    a, b, other = first_actions(3), first_actions(3), first_actions(4)
    # KOMO differs in the 6th digit between runs and PhysX warm starts survive a reset (~1e-4 m): equal up to that
    assert np.allclose(a, b, atol=1e-2)
    assert np.abs(a - other).max() > 0.05  # another operator seed is another human


@pytest.mark.slow
def test_scripted_operator_meets_the_mug_grid_target(env):
    """The issue's bar: >= 85 % of the 20 mug grid trials (2x2 cells x 5, seed 0)."""
    from lpds_core.grid_protocol import GridProtocol

    rows, cols, trials = get_task("mug_hang").grid
    res = GridProtocol(rows, cols, trials, seed=0).run(env, make_operator("mug_hang", env, seed=0), progress=False)
    assert len(res.trials) == 20
    assert res.successes >= 17, res.summary()


IMAGE_SCRIPT = """
import numpy as np
from lpds_sim.rai.display import NoDisplayError
from lpds_sim.rai.mug_scene import MugScene
from lpds_sim.tasks import make_env
try:
    env = make_env("mug_hang", obs_mode="image")
except NoDisplayError as exc:
    print("CLEAR-ERROR", exc)
    raise SystemExit(0)
def rgb(pos, quat=(1, 0, 0, 0)):
    obs, _ = env.reset(seed=0, options={"mug_pose": (pos, quat)})
    return obs
z = MugScene().mug_rest_z()
away = rgb([1.0, -0.9, z])["rgb"].astype(int)  # on the table, out of the camera's view
hung = rgb(*MugScene().hang_pose())
assert hung["rgb"].shape == (3, 84, 84) and hung["depth"].shape == (1, 84, 84)
assert hung["rgb"].std() > 5 and (hung["depth"] > 0).mean() > 0.9   # a real picture, not a blank frame
(x0, x1), (y0, y1) = env.unwrapped.object_region
for obs in (hung, rgb([x0, y0, z]), rgb([x0, y1, z]), rgb([x1, y0, z]), rgb([x1, y1, z])):
    changed = (np.abs(obs["rgb"].astype(int) - away).sum(0) > 30).sum()
    assert changed > 20, changed   # the mug is in view at the peg and at every corner of its start region
env.close()
print("IMAGE-OK")
"""


def test_mug_camera_sees_the_start_region_and_the_peg(tmp_path):
    import os
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-c", IMAGE_SCRIPT], cwd=tmp_path, capture_output=True, text=True,
                         timeout=120, env=dict(os.environ))
    assert out.returncode == 0, f"rc={out.returncode}\n{out.stdout}\n{out.stderr[-2000:]}"
    assert "IMAGE-OK" in out.stdout or "CLEAR-ERROR" in out.stdout
