"""The held-out reality world (lpds_sim.rai.world): the emulation stays today's scene bit for bit, each reality
setting changes what it claims, the draws are seeded, and a bad world is one clear line.

Tests that build envs with unusual physics run `@isolated` (PhysX keeps process-wide state, see isolation.py).
"""
from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("robotic")

from isolation import ROOT, isolated  # noqa: E402
from main_obs import MAIN, assert_main_state  # noqa: E402
from lpds_core.bench_profile import BenchProfile, quat_xyzw_to_matrix  # noqa: E402
from lpds_core.errors import ConfigError  # noqa: E402
from lpds_sim.rai.sensor_noise import EDGE_STEP_M, SensorNoise, edge_holes  # noqa: E402
from lpds_sim.rai.world import (World, WORLDS, draw_bench, draw_episode, draws_physics, per_env,  # noqa: E402
                                preset_yaml_path, randomised, reality, resolve_world, rotation, world_yaml)

STATE_ROLLOUT = textwrap.dedent("""
    import sys
    import numpy as np
    import gymnasium as gym
    import lpds_sim
    task, world, outp = sys.argv[1], sys.argv[2], sys.argv[3]
    env = gym.make(lpds_sim.ENV_IDS[task], obs_mode="state", world=None if world == "none" else world)
    obs, _ = env.reset(seed=3, options={"cell": (1, 1)})
    frames = np.asarray(env.unwrapped.C.getFrameState(), np.float64)
    acts = np.random.default_rng(7).uniform(-1, 1, (25, env.action_space.shape[0])).astype(np.float32)
    acts[:12, -1], acts[12:, -1] = 1.0, -1.0
    np.savez(outp, frames=frames, state=np.stack([obs] + [env.step(a)[0] for a in acts]))
""")


def _rollout(tmp_path: Path, task: str, world: str) -> dict:
    """The bench-profile test's fixed rollout (seed 3, cell (1, 1), 25 seeded random actions), in a fresh process."""
    out = tmp_path / f"{task}_{Path(world).stem}.npz"
    proc = subprocess.run([sys.executable, "-c", STATE_ROLLOUT, task, world, str(out)], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120, env=dict(os.environ))
    assert proc.returncode == 0, proc.stderr[-3000:]
    return dict(np.load(out))


def _env(world: World | str | None, **kw):
    from lpds_sim.tasks import make_env

    return make_env(kw.pop("task", "pick_place"), obs_mode=kw.pop("obs_mode", "state"), world=world, **kw)


def _only(**settings) -> World:
    return dataclasses.replace(World(), world_name="test", **settings)


# ---------------------------------------------------------------------------------------------------------------
# the emulation is today's scene
# ---------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("task,world", [("pick_place", "emulation"), ("mug_hang", "emulation"),
                                        ("pick_place", str(preset_yaml_path("emulation")))])
def test_emulation_world_reproduces_the_observations_from_before_worlds_exactly(tmp_path, task, world):
    main = np.load(MAIN)
    got = _rollout(tmp_path, task, world)
    assert np.array_equal(got["frames"], main[f"{task}_frames"])
    assert_main_state(got["state"], main[f"{task}_state"], task)


def test_reality_world_changes_that_rollout(tmp_path):
    """The comparison above can fail: the same rollout in reality differs."""
    got = _rollout(tmp_path, "pick_place", "reality")
    assert not np.array_equal(got["state"], np.load(MAIN)["pick_place_state"])


def test_nominal_worlds_are_no_world():
    assert resolve_world(None) is None and resolve_world("emulation") is None and resolve_world("") is None
    assert resolve_world(World()) is None
    assert resolve_world(dataclasses.replace(World(), world_name="mine", world_seed=4)) is None
    assert resolve_world(str(preset_yaml_path("emulation"))) is None
    assert resolve_world("reality") == reality()


def test_preset_files_are_the_presets():
    """config/worlds/<name>.yaml cannot drift from the code presets (the CLI resolves names from the code)."""
    for name, preset in WORLDS.items():
        text = preset_yaml_path(name).read_text()
        assert [ln for ln in text.splitlines() if not ln.startswith("#")] == world_yaml(preset()).splitlines()
        assert resolve_world(str(preset_yaml_path(name))) == resolve_world(name)


def test_randomised_world_brackets_the_emulation_and_is_wider_than_reality_everywhere():
    """Domain randomisation for steering must cover the bench without being the held-out reality: every range
    holds reality's whole range and differs from it, and all but the controller gain hold the emulation's nominal
    value too (the gain spans soft impedance controllers up to half the emulated PD, never the stiff PD itself)."""
    rand, real, nominal = randomised(), reality(), World()
    ranges = [f.name for f in dataclasses.fields(World) if isinstance(getattr(nominal, f.name), tuple)]
    assert len(ranges) == 11
    for name in ranges:
        (lo, hi), (rlo, rhi), (n, _) = getattr(rand, name), getattr(real, name), getattr(nominal, name)
        assert lo <= rlo and hi >= rhi and (lo, hi) != (rlo, rhi), name
        if name != "controller_gain_scale":
            assert lo <= n <= hi, name
    assert rand.controller_gain_scale[1] == 0.5 * nominal.controller_gain_scale[1]
    assert draws_physics(rand) and draws_physics(real) and not draws_physics(World())
    assert not draws_physics(_only(command_latency_steps=(0, 3), table_offset_mm=(-5.0, 5.0)))


def test_each_training_env_draws_its_own_world():
    """per_env gives env i its own seed: its own table/size and its own episode stream, reproducibly."""
    w = randomised()
    envs = [per_env(w, i) for i in range(4)]
    assert [e.world_seed for e in envs] == [0, 1, 2, 3] and {e.world_name for e in envs} == {"randomised"}
    assert len({draw_bench(e) for e in envs}) == 4
    assert len({draw_episode(e, 5).controller_gain_scale for e in envs}) == 4  # the same reset seed, other draws
    assert per_env(w, 2) == per_env(w, 2)


def test_training_envs_run_in_the_steering_world_and_rebuild_physics_per_episode():
    """`train-steer --world randomised`: each async env holds its own world (seed offset by the run seed) and
    draws new controller/object physics on every reset, rebuilding its PhysX Simulation."""
    from lpds_sim.evaluation import make_train_envs

    envs, space, _ = make_train_envs("pick_place", "state", 2, 8, 0.99, seed=3, world=randomised())
    try:
        assert [w.world_seed for w in envs.get_attr("world")] == [6, 7]
        assert space.shape == (18,)
        draws = []
        for k in range(3):
            envs.reset(seed=100 + k)
            draws.append([ep.physics() for ep in envs.get_attr("world_episode")])
        flat = [d for row in draws for d in row]
        assert len(set(flat)) == 6  # every env, every episode: its own gain, mass and friction
        assert all(b >= 3 for b in envs.get_attr("sim_builds"))
        gain_lo, gain_hi = randomised().controller_gain_scale
        assert all(gain_lo <= g <= gain_hi for _, _, g in flat)
        obs, *_ = envs.step(np.zeros((2, 8, 4), np.float32))
        assert obs.shape == (2, 18) and np.isfinite(obs).all()
    finally:
        envs.close()


def test_steering_in_a_world_that_draws_physics_needs_one_env_per_process(tmp_path):
    from lpds_sim import runs
    from lpds_sim.train_steer import SteerConfig

    def steer(**kw):
        return runs.config_from_dict(SteerConfig, {"base": "b", **kw}, "test")

    assert steer(world="randomised").world == "randomised" and steer().world == "emulation"
    with pytest.raises(ConfigError, match="world randomised: .* use train.vector=async"):
        steer(world="randomised", vector="sync")
    late = tmp_path / "late.yaml"
    late.write_text("world_name: late\ncommand_latency_steps: [0, 2]\n")
    assert steer(world=str(late), vector="sync").train.vector == "sync"  # no physics drawn: one process is fine
    with pytest.raises(ConfigError, match="unknown world 'realty'"):
        steer(world="realty")


# ---------------------------------------------------------------------------------------------------------------
# each setting does what it claims
# ---------------------------------------------------------------------------------------------------------------
def test_camera_error_moves_the_object_estimate_where_the_miscalibrated_camera_puts_it():
    """A point seen by the true (moved, turned) camera and mapped back with the calibrated pose: both cameras give
    the estimate and the true point the same camera coordinates (checked with an independent rotation R)."""
    ep = draw_episode(_only(camera_shift_mm=(6.0, 6.0), camera_tilt_deg=(1.0, 1.0)), seed=11)
    assert np.linalg.norm(ep.camera_shift) == pytest.approx(0.006)
    assert np.linalg.norm(ep.camera_rotvec) == pytest.approx(np.deg2rad(1.0))
    c = np.array(BenchProfile().camera.camera_position)
    R = quat_xyzw_to_matrix(BenchProfile().camera.camera_quat_xyzw)
    R_true, c_true = rotation(ep.camera_rotvec) @ R, c + ep.camera_shift
    p = np.array([0.1, 0.3, 0.675])
    est = ep.estimated(p, c)
    assert np.allclose(R.T @ (est - c), R_true.T @ (p - c_true), atol=1e-12)
    assert 0.005 < np.linalg.norm(est - p) < 0.03  # 1 degree at ~0.8 m plus 6 mm


@isolated
def test_state_observation_reads_the_object_where_the_camera_error_puts_it():
    w = _only(camera_shift_mm=(6.0, 6.0), camera_tilt_deg=(1.0, 1.0))
    env = _env(w)
    obs, _ = env.reset(seed=5, options={"cell": (0, 1)})
    u = env.unwrapped
    sl = u.state_layout["obj_pos"]
    true = u.C.getFrame("cube").getPosition()
    expect = u.world_episode.estimated(true, np.array(u._cam_spec.position))
    assert np.allclose(obs[sl], expect, atol=1e-6)
    assert np.linalg.norm(obs[sl] - true) > 0.004
    assert u._state()[sl] == pytest.approx(true, abs=1e-6)  # the simulator (and a privileged critic) keep the truth
    env.close()


@pytest.mark.display
@isolated
def test_image_camera_is_moved_by_the_extrinsics_error():
    w = _only(camera_shift_mm=(5.0, 5.0), camera_tilt_deg=(2.0, 2.0))
    env = _env(w, obs_mode="image")
    env.reset(seed=2)
    cam = env.unwrapped._camera
    assert np.linalg.norm(cam.frame.getPosition() - np.array(cam.spec.position)) == pytest.approx(0.005, abs=1e-6)
    dR = cam.frame.getRotationMatrix() @ cam._R0.T
    angle = np.degrees(np.arccos(np.clip((np.trace(dR) - 1) / 2, -1, 1)))
    assert angle == pytest.approx(2.0, abs=1e-3)
    env.close()


def test_edge_holes_drop_edge_pixels_only():
    depth = np.full((40, 40), 1.0, np.float32)
    depth[:, 20:] = 1.0 - 2 * EDGE_STEP_M  # an object face 4 cm closer: a vertical edge at column 20
    out = edge_holes(depth, 1.0, np.random.default_rng(0))
    assert (out[:, 20] == 0).all() and (np.delete(out, 20, axis=1) > 0).all()
    half = edge_holes(depth, 0.5, np.random.default_rng(0))
    assert 5 < int((half[:, 20] == 0).sum()) < 35
    assert np.array_equal(edge_holes(depth, 0.0, np.random.default_rng(0)), depth)


def test_world_sensor_noise_reaches_the_camera_and_punches_holes():
    """The world's sensor noise replaces the env's; on a raw frame it leaves random and edge holes (unfilled: the
    shared preprocessing fills them afterwards, as on the robot)."""
    from lpds_sim.rai.camera import noisy_frame

    noise = reality().sensor
    assert noise.edge_hole_frac > 0 and noise.hole_frac > 0
    env = _env(_only(sensor=noise))
    assert env.unwrapped._cam_spec.noise == noise
    env.close()
    depth = np.full((84, 84), 1.0, np.float32)
    depth[30:50, 30:50] = 0.9  # a box 10 cm in front of the table
    rgb = np.zeros((84, 84, 3), np.uint8)
    _, raw = noisy_frame(rgb, depth, dataclasses.replace(noise, depth_std_per_m2=0.0), np.random.default_rng(1))
    holes = raw == 0
    assert holes.mean() > noise.hole_frac / 2
    assert holes[30:50, 30].mean() > 0.25  # the box's left edge lost far more than the 2 % random holes
    assert holes[30:50, 40].mean() < 0.2
    _, clean = noisy_frame(rgb, depth, SensorNoise.off(), np.random.default_rng(1))
    assert np.array_equal(clean, depth)


@isolated
def test_object_physics_and_table_are_applied_to_the_simulated_scene():
    from lpds_sim.rai import scene

    nominal = _env(None)
    nominal.reset(seed=1)
    n = nominal.unwrapped
    n_cube, n_table = n.C.getFrame("cube"), n.C.getFrame("table").getPosition().copy()
    n_base = n.C.getFrame(scene.ROBOT_BASE_FRAME).getPosition().copy()
    assert n_cube.getMass() == pytest.approx(0.1)
    nominal.close()
    env = _env(_only(object_mass_scale=(2.0, 2.0), object_friction=(0.3, 0.3), object_size_scale=(0.9, 0.9),
                     table_offset_mm=(-8.0, -8.0)))
    env.reset(seed=1)
    u = env.unwrapped
    cube = u.C.getFrame("cube")
    assert cube.getMass() == pytest.approx(0.2)
    assert float(cube.getAttributes()["friction"]) == pytest.approx(0.3)
    assert cube.getSize()[0] == pytest.approx(0.045) and u.cube_size == pytest.approx(0.045)
    assert u.C.getFrame("table").getPosition()[2] == pytest.approx(n_table[2] - 0.008)
    assert u.C.getFrame(scene.ROBOT_BASE_FRAME).getPosition() == pytest.approx(n_base)  # the robot did not move
    assert cube.getPosition()[2] == pytest.approx(u.table_z + 0.045 / 2, abs=2e-3)  # PhysX rests it on that table
    assert u._target_pos()[2] == pytest.approx(u.table_z + 0.01 + 0.045 / 2)
    env.close()


def _slide(world: World | None) -> float:
    """How far the cube slides on the table from 1 m/s (PhysX reads the friction when the Simulation is built)."""
    env = _env(world)
    env.reset(seed=1)
    u = env.unwrapped
    st = u.S.getState()
    x0 = u.C.getFrame("cube").getPosition().copy()
    i = int(np.argmin(np.linalg.norm(st.freePos[:, :3] - x0, axis=1)))  # the cube's row among the free bodies
    v = st.freeVel.copy()
    v[i, 0], v[i, 1] = [0.0, 1.0, 0.0], 0.0
    st.freeVel = v
    u.S.setState(st)
    import robotic as ry
    for _ in range(40):
        u.S.step(u.q_home, 0.01, ry.ControlMode.position)
    d = float(np.linalg.norm(u.C.getFrame("cube").getPosition()[:2] - x0[:2]))
    env.close()
    return d


@isolated
def test_lower_friction_makes_the_cube_slide_farther():
    assert _slide(_only(object_friction=(0.2, 0.2))) > 1.3 * _slide(None)


def _lag(env) -> float:
    """Mean end-effector error to its (executed) target while moving at full speed along x, after reset(seed=1)."""
    env.reset(seed=1)
    u = env.unwrapped
    err = []
    for _ in range(10):
        env.step(np.array([1.0, 0.0, 0.0, 1.0], np.float32))
        err.append((u.ee_pose()[0] - u.executed_ee_target)[0])
    return float(np.mean(err[3:]))


@isolated
def test_soft_controller_lags_and_leaves_the_other_envs_nominal():
    """The gain is a process-global PhysX parameter read when a Simulation is built: a nominal env rebuilding its
    Simulation after a soft one was built must get the nominal gain back."""
    nominal_env = _env(None, coarse_free_motion=False)
    nominal = _lag(nominal_env)
    soft_env = _env(_only(controller_gain_scale=(0.1, 0.1)), coarse_free_motion=False)
    soft = _lag(soft_env)
    soft_env.close()
    assert soft < nominal - 0.01  # trails the target by > 1 cm more
    assert _lag(nominal_env) == pytest.approx(nominal, abs=1e-4)  # its seeded reset rebuilt the Simulation
    assert nominal_env.unwrapped.sim_builds == 2
    nominal_env.close()


@isolated
def test_command_latency_delays_the_command_by_k_steps():
    push = np.array([1.0, 0.0, 0.0, 1.0], np.float32)
    still = np.array([0.0, 0.0, 0.0, 1.0], np.float32)
    for k in (0, 2):
        env = _env(_only(command_latency_steps=(k, k)) if k else None)
        env.reset(seed=1)
        u = env.unwrapped
        t0 = u.executed_ee_target
        moved = []
        for a in [push] + [still] * 4:
            env.step(a)
            moved.append(bool(u.executed_ee_target[0] - t0[0] > 1e-6))
            if k:  # the sent target already holds the push (what the operator steers by)
                assert u.ee_target[0] - t0[0] == pytest.approx(u.max_lin_speed / u.control_hz, abs=1e-9)
        assert moved.index(True) == k  # executed k steps later
        env.close()


@isolated
def test_gripper_close_delay_holds_the_fingers_open_that_many_steps():
    close = np.array([0.0, 0.0, 0.0, -1.0], np.float32)
    for d in (0, 3):
        env = _env(_only(gripper_close_delay_steps=(d, d)) if d else None)
        env.reset(seed=1)
        u = env.unwrapped
        w0 = u.gripper_width()
        widths = []
        for _ in range(6):
            env.step(close)
            widths.append(u.gripper_width())
        started = [w < w0 - 1e-3 for w in widths]
        assert started.index(True) == d
        env.close()


# ---------------------------------------------------------------------------------------------------------------
# seeded and reproducible
# ---------------------------------------------------------------------------------------------------------------
def test_draws_are_seeded_and_each_setting_has_its_own_stream():
    w = reality()
    a, b = draw_episode(w, 7), draw_episode(w, 7)
    for f in dataclasses.fields(a):
        assert np.array_equal(getattr(a, f.name), getattr(b, f.name)), f.name
    assert draw_episode(w, 8).physics() != a.physics()
    assert draw_episode(dataclasses.replace(w, world_seed=1), 7).physics() != a.physics()
    alone = draw_episode(_only(command_latency_steps=w.command_latency_steps), 7)
    assert alone.command_latency == a.command_latency  # the same value alone as with every other setting on
    alone = draw_episode(_only(camera_shift_mm=w.camera_shift_mm, camera_tilt_deg=w.camera_tilt_deg), 7)
    assert np.array_equal(alone.camera_shift, a.camera_shift)
    for s in range(30):
        ep = draw_episode(w, s)
        assert w.command_latency_steps[0] <= ep.command_latency <= w.command_latency_steps[1]
        assert w.object_mass_scale[0] <= ep.object_mass_scale <= w.object_mass_scale[1]
    assert draw_bench(w) == draw_bench(reality())


@isolated
def test_seeded_reset_in_reality_repeats_exactly():
    env = _env("reality")
    acts = np.random.default_rng(3).uniform(-1, 1, (20, 4)).astype(np.float32)
    runs = []
    for _ in range(2):
        obs, _ = env.reset(seed=4, options={"cell": (1, 2)})
        runs.append(np.stack([obs] + [env.step(a)[0] for a in acts]))
    assert np.array_equal(runs[0], runs[1])
    obs, _ = env.reset(seed=5, options={"cell": (1, 2)})
    assert not np.array_equal(obs, runs[0][0])
    env.close()


# ---------------------------------------------------------------------------------------------------------------
# bad input: one line
# ---------------------------------------------------------------------------------------------------------------
def test_bad_worlds_are_one_clear_line(tmp_path):
    with pytest.raises(ConfigError, match="unknown world 'realty'; choose emulation, reality, randomised or a world YAML"):
        resolve_world("realty")
    bad = tmp_path / "bad.yaml"
    bad.write_text("command_latency_steps: [3, 1]\n")
    with pytest.raises(ConfigError, match=r"command_latency_steps must be \[lo, hi\] with lo <= hi"):
        resolve_world(str(bad))
    bad.write_text("object_mass_scale: [0, 2]\n")
    with pytest.raises(ConfigError, match="object_mass_scale must be > 0"):
        resolve_world(str(bad))
    bad.write_text("latency: 2\n")
    with pytest.raises(ConfigError, match="unknown config key 'latency'; valid keys are: .*command_latency_steps"):
        resolve_world(str(bad))
    with pytest.raises(ConfigError, match="does not exist"):
        resolve_world(str(tmp_path / "missing.yaml"))


@pytest.mark.parametrize("command,flag", [("eval", "--world"), ("demos", "--world"), ("pipeline", "--world"),
                                          ("pipeline", "--steer-world"), ("train-steer", "--world")])
def test_cli_refuses_a_bad_world_in_one_line(tmp_path, command, flag):
    extra = ["--base", str(tmp_path)] if command == "train-steer" else []
    proc = subprocess.run([sys.executable, "-m", "lpds_sim.cli", command, flag, "realty", *extra, "--out",
                           str(tmp_path / "out")], capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == ["error: unknown world 'realty'; choose emulation, reality, randomised "
                                                "or a world YAML file (see config/worlds/reality.yaml)"]
    assert not (tmp_path / "out").exists()


def test_grid_results_record_the_world_that_graded_them(tmp_path):
    import json

    for world in ("emulation", "reality"):
        out = tmp_path / world
        proc = subprocess.run([sys.executable, "-m", "lpds_sim.cli", "eval", "--policy", "scripted", "--world", world,
                               "--max-trials", "1", "--out", str(out), "--no-progress"], capture_output=True,
                              text=True, cwd=tmp_path)
        assert proc.returncode == 0, proc.stderr[-2000:]
        meta = json.loads((out / "grid_results.json").read_text())["meta"]
        assert meta["world"] == world
        assert ("world" in meta["env"]) == (world == "reality")


@pytest.mark.parametrize("world", ["emulation", "reality"])
def test_pipeline_records_demos_in_the_world_steers_in_the_emulation_and_grades_in_both(tmp_path, monkeypatch, world):
    """The commands and stages `lpds pipeline --world W` runs (the stage commands themselves are faked here; the
    tiny end-to-end run is in docs/reality.md)."""
    from lpds_core.config import build
    from lpds_sim import pipeline

    calls: list[tuple[str, ...]] = []

    def fake(*args: str) -> None:
        calls.append(args)
        if args[0] == "demos":
            Path(args[args.index("--out") + 1]).touch()

    monkeypatch.setattr(pipeline, "lpds", fake)
    cfg = build(pipeline.PipelineConfig, {"world": world})
    flag = ["--world", world] if world != "emulation" else []
    pipeline.record_demos(cfg, tmp_path / "demos.hdf5")
    pipeline.evaluate_policy(cfg, tmp_path / "base", tmp_path / "ev", cfg.world)
    pipeline.evaluate_policy(cfg, tmp_path / "base", tmp_path / "ev")  # the emulation's grid
    assert [c[0] for c in calls] == ["demos", "eval", "eval"]
    for c in calls[:2]:  # demos and the world's grid end with the world flag (none for the emulation)
        assert list(c[len(c) - len(flag):]) == flag and c.count("--world") == len(flag) // 2
    assert "--world" not in calls[2]
    steer = cfg.steer_config(tmp_path / "base")
    assert steer.task == "pick_place" and steer.world == "emulation"  # steering trains in the emulation by default
    assert dataclasses.replace(cfg, steer_world="randomised").steer_config(tmp_path / "base").world == "randomised"
    stages: list[str] = []
    monkeypatch.setattr(pipeline, "run_stages", lambda st, force=(): stages.extend(s.name for s in st) or [])
    pipeline.run_pipeline(cfg, tmp_path / "run")
    extra = [f"eval-base-{world}", f"eval-steered-{world}"] if world != "emulation" else []
    assert stages == ["demos", "base", "steer", "deploy", "export", "eval-base", "eval-steered", *extra, "report"]


def test_pipeline_grades_in_every_extra_world_once(tmp_path, monkeypatch):
    """`--grade-worlds reality` (what `make demo` passes): emulation demos, and both policies graded in reality too;
    a world named twice, or the emulation, adds no stage."""
    from lpds_core.config import build
    from lpds_sim import pipeline

    late = tmp_path / "late.yaml"
    late.write_text("world_name: late\ncommand_latency_steps: [1, 1]\n")
    cfg = build(pipeline.PipelineConfig, {"grade_worlds": ["reality", "emulation", str(late), "reality"]})
    assert cfg.graded_worlds == [("reality", "reality"), ("late", str(late))]
    assert build(pipeline.PipelineConfig, {"world": "reality", "grade_worlds": ["reality"]}).graded_worlds == [
        ("reality", "reality")]
    stages: list = []
    monkeypatch.setattr(pipeline, "run_stages", lambda st, force=(): stages.extend(st) or [])
    pipeline.run_pipeline(cfg, tmp_path / "run")
    names = [s.name for s in stages]
    assert names == ["demos", "base", "steer", "deploy", "export", "eval-base", "eval-steered", "eval-base-reality",
                     "eval-steered-reality", "eval-base-late", "eval-steered-late", "report"]
    calls: list = []
    monkeypatch.setattr(pipeline, "lpds", lambda *a: calls.append(a))
    next(s for s in stages if s.name == "eval-steered-late").run()
    assert calls[-1][-2:] == ("--world", str(late)) and str(tmp_path / "run" / "eval_late" / "steered") in calls[-1]
    with pytest.raises(ConfigError, match="unknown world 'realty'"):
        build(pipeline.PipelineConfig, {"grade_worlds": ["realty"]})


@isolated
def test_steering_in_a_world_trains_and_evaluates_there_with_a_binomial_interval(tmp_path, monkeypatch):
    """`train-steer --world randomised`: the periodic grid runs in that world too (the best checkpoint is chosen
    where the run trains, never in reality), and every evaluation logs its trials and 95 % Wilson interval."""
    import lpds_sim.evaluation as evaluation
    from lpds_core.metrics import wilson_ci95
    from lpds_sim import runs
    from lpds_sim.train_steer import SteerConfig, train_steer
    from pipeline_helpers import make_base_run

    made: list = []
    real_make_env = evaluation.make_env

    def spy(task, obs_mode, **kw):
        made.append(kw.get("world"))
        return real_make_env(task, obs_mode, **kw)

    monkeypatch.setattr(evaluation, "make_env", spy)
    base = make_base_run(tmp_path / "base")
    cfg = runs.config_from_dict(SteerConfig, {"base": str(base), "world": "randomised", "env_steps": 300,
                                              "warmup_steps": 100, "eval_every": 150, "eval_trials": 1,
                                              "ckpt_every": 300, "delta": 0.05}, "test")
    summary = train_steer(cfg, tmp_path / "steer", progress=False)
    assert summary["env_steps"] >= 300
    assert made and made[0] == randomised()  # the main process's env: the evaluation's
    rows = runs.read_scalars(tmp_path / "steer", "eval")
    assert len(rows) >= 2
    for r in rows:
        assert r["trials"] == 8 and r["success"] == pytest.approx(r["successes"] / 8)
        assert (r["success_lo"], r["success_hi"]) == pytest.approx(wilson_ci95(int(r["successes"]), 8))
    assert (tmp_path / "steer" / "plots" / "success_return.png").is_file()


def test_a_started_pipeline_refuses_changed_settings_but_takes_new_gradings(tmp_path, monkeypatch):
    from lpds_core.config import build
    from lpds_sim import pipeline

    monkeypatch.setattr(pipeline, "run_stages", lambda st, force=(): [])
    root = tmp_path / "run"
    pipeline.run_pipeline(build(pipeline.PipelineConfig, {}), root)
    (root / "demos.hdf5").write_bytes(b"")  # the run has produced something
    with pytest.raises(pipeline.runs.RunError, match=r"different settings \(bc\.bc_steps|different settings \(bc_steps"):
        pipeline.run_pipeline(build(pipeline.PipelineConfig, {"bc_steps": 10}), root)
    pipeline.run_pipeline(build(pipeline.PipelineConfig, {"grade_worlds": ["reality"], "videos": 0}), root)
    assert "reality" in (root / "pipeline.yaml").read_text()
