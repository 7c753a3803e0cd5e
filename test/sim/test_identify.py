"""`lpds identify` (lpds_sim.rai.identify): the fit recovers the latency, gain and gripper delay a demo was recorded
under — on a toy arm whose answer is known in closed form, and on real RAI demos recorded in a fixed world — and
the identified world and the pipeline's identify stage are what they claim.
"""
from __future__ import annotations

import dataclasses
import json
import time

import numpy as np
import pytest

from lpds_core.errors import ConfigError, RunError
from lpds_sim.rai.identify import (DemoFit, IdentifyConfig, fit_arm, fit_gripper, first_change, identified_world,
                                   motion_onset, resting_stats, write_identified)
from lpds_sim.rai.world import World, randomised, resolve_world


def toy_replay(states: np.ndarray, actions: np.ndarray, world: World, n: int) -> np.ndarray:
    """A first-order arm: each step the end effector closes a fraction of its gap to the target, the fraction
    growing with the gain; commands act `latency` steps late; the fingers move `close delay` steps after that."""
    latency, gain = world.command_latency_steps[0], world.controller_gain_scale[0]
    close_delay = world.gripper_close_delay_steps[0]
    alpha = 1.0 - np.exp(-4.0 * gain)
    out = np.zeros((n, states.shape[1]))
    x, tgt, width, wait = states[0, :3].copy(), states[0, :3].copy(), 0.08, None
    out[0, :3], out[0, 7] = x, width
    for t in range(n - 1):
        a = actions[t - latency] if t >= latency else np.array([0.0, 0.0, 0.0, 1.0])
        tgt = tgt + 0.02 * a[:3]
        x = x + alpha * (tgt - x)
        if a[-1] < 0 and wait is None:
            wait = close_delay
        if wait is not None:
            if wait == 0:
                width = max(width - 0.01, 0.04)
            else:
                wait -= 1
        out[t + 1, :3], out[t + 1, 7] = x, width
    return out


def _recorded(latency: int, gain: float, close: int = 0, steps: int = 40, t_close: int = 30) -> tuple:
    rng = np.random.default_rng(0)
    actions = np.concatenate([rng.uniform(-1, 1, (steps, 3)), np.ones((steps, 1))], axis=1)
    actions[t_close:, -1] = -1.0
    states = np.zeros((steps, 18))
    states[0, :3] = [0.1, 0.2, 0.3]
    world = World(world_name="truth", controller_gain_scale=(gain, gain), command_latency_steps=(latency, latency),
                  gripper_close_delay_steps=(close, close))
    return toy_replay(states, actions, world, steps), actions


@pytest.mark.parametrize("latency,gain", [(0, 1.0), (1, 0.137), (2, 0.11), (3, 0.07)])
def test_fit_arm_recovers_latency_and_gain_of_a_toy_arm(latency, gain):
    states, actions = _recorded(latency, gain)
    L, g, err, nominal = fit_arm(toy_replay, states, actions, 30, [0, 1, 2, 3], [0.03, 0.05, 0.1, 0.2, 0.5, 1.0])
    assert L == latency
    assert abs(g - gain) / gain < 0.015  # golden-section refinement between the grid's neighbours
    assert err < 0.2 and (latency, gain) == (0, 1.0) or err < nominal / 10


def test_fit_gripper_recovers_the_close_delay():
    states, actions = _recorded(1, 0.14, close=2)
    t_close = first_change(actions, 0, to_open=False)
    assert t_close == 30
    assert fit_gripper(toy_replay, states, actions, 1, 0.14, [0, 1, 2, 3], t_close, closing=True) == 2
    assert fit_gripper(toy_replay, states, actions, 1, 0.14, [0, 1], t_close, closing=True) == 1  # nearest tried
    still = states.copy()
    still[:, 7] = 0.08  # fingers never move: nothing to fit
    assert fit_gripper(toy_replay, still, actions, 1, 0.14, [0, 1, 2], t_close, closing=True) is None


def test_motion_onset_and_resting_stats():
    w = np.array([0.08, 0.08, 0.08, 0.079, 0.07, 0.06])
    assert motion_onset(w, 1, closing=True) == 4 and motion_onset(w, 1, closing=False) is None
    rng = np.random.default_rng(1)
    states = np.zeros((460, 18))
    states[:, 8:11] = [0.0, 0.3, 0.025] + rng.normal(0, 0.0015, (460, 3))  # an object resting, 1.5 mm jitter
    states[:, :3] = [0.5, 0.5, 0.5]
    states[400:, :3] = [0.0, 0.3, 0.1]  # the hand arrives at step 400: only steps before it count
    states[400:, 8:11] += 0.05  # (and the object moves with it)
    noise, z = resting_stats(states, slice(8, 11), 460)
    assert abs(noise - 1.5) < 0.1 and abs(z - 25.0) < 0.3


def _fit(name: str, latency: int, gain: float, close: int | None, noise: float, z: float) -> DemoFit:
    return DemoFit(name, latency, gain, 0.1, 20.0, close, None, noise, z)


def test_identified_world_spans_the_fits_and_keeps_the_unknowns():
    fits = [_fit("a", 1, 0.10, 1, 1.2, 15.0), _fit("b", 2, 0.18, 2, 1.8, 13.0), _fit("c", 2, 0.13, None, 1.5, 14.0)]
    w = identified_world(fits, nominal_obj_z_mm=22.0)
    r = randomised()
    assert w.command_latency_steps == (1, 2) and w.controller_gain_scale == (0.1, 0.18)
    assert w.gripper_close_delay_steps == (1, 2)
    assert w.gripper_open_delay_steps == r.gripper_open_delay_steps  # no demo showed it: the randomised range
    assert w.obj_pos_noise_mm == (1.2, 1.8) and w.table_offset_mm == (-8.0, -8.0)
    for k in ("object_mass_scale", "object_friction", "object_size_scale", "camera_shift_mm", "camera_tilt_deg"):
        assert getattr(w, k) == getattr(r, k), k
    assert w.world_name == "identified" and resolve_world(w) is not None


def test_write_identified_round_trips_and_never_overwrites(tmp_path):
    fits = [_fit("a", 1, 0.10, 1, 1.2, 15.0)]
    w = identified_world(fits, nominal_obj_z_mm=22.0)
    cfg = IdentifyConfig(demos="demos.hdf5")
    out = write_identified(w, fits, cfg, tmp_path / "id.yaml")
    assert resolve_world(str(out)) == w
    report = json.loads(out.with_suffix(".json").read_text())
    assert report["fits"][0]["gain"] == 0.10 and report["config"]["demos"] == "demos.hdf5"
    before = out.read_text()
    with pytest.raises(RunError, match="exists"):
        write_identified(w, fits, cfg, out)
    assert out.read_text() == before
    with pytest.raises(ConfigError, match=r"\.yaml"):
        write_identified(w, fits, cfg, tmp_path / "id.txt")


@pytest.mark.slow
def test_identify_recovers_the_world_real_demos_were_recorded_in(tmp_path, capsys):
    """Two demos recorded by the scripted operator in a world with a known latency, gain, gripper delay and table
    height; `lpds identify` on them recovers each (one process: the replays use the fitted worlds one at a time)."""
    from lpds_sim.cli import main
    from lpds_sim.rai.world import world_yaml

    truth = World(world_name="bench", controller_gain_scale=(0.12, 0.12), command_latency_steps=(2, 2),
                  gripper_close_delay_steps=(1, 1), table_offset_mm=(-8.0, -8.0))
    (tmp_path / "bench.yaml").write_text(world_yaml(truth))
    demos = tmp_path / "demos.hdf5"
    assert main(["demos", "--task", "pick_place", "--n-demos", "2", "--world", str(tmp_path / "bench.yaml"),
                 "--out", str(demos), "--no-progress"]) == 0
    out = tmp_path / "identified.yaml"
    assert main(["identify", "--demos", str(demos), "--out", str(out), "--gains", "0.05", "0.1", "0.2", "1.0",
                 "--gripper-delays", "0", "1", "2"]) == 0
    w = resolve_world(str(out))
    assert w.command_latency_steps == (2, 2)
    assert all(abs(g - 0.12) / 0.12 < 0.1 for g in w.controller_gain_scale), w.controller_gain_scale
    assert w.gripper_close_delay_steps == (1, 1)
    assert abs(w.table_offset_mm[0] + 8.0) < 1.5
    fits = json.loads(out.with_suffix(".json").read_text())["fits"]
    assert all(f["ee_error_mm"] < 1.0 < 10 < f["nominal_ee_error_mm"] for f in fits)
    before, t0 = out.read_text(), time.time()
    assert main(["identify", "--demos", str(demos), "--out", str(out)]) == 2  # one line, before any replay
    assert time.time() - t0 < 5 and out.read_text() == before
    assert "exists" in capsys.readouterr().err


def test_identify_refuses_a_missing_or_unreadable_demo_file(tmp_path, capsys):
    from lpds_sim.cli import main

    assert main(["identify", "--demos", str(tmp_path / "none.hdf5"), "--out", str(tmp_path / "w.yaml")]) == 2
    assert "does not exist" in capsys.readouterr().err
    bad = tmp_path / "bad.hdf5"
    bad.write_bytes(b"not hdf5")
    assert main(["identify", "--demos", str(bad), "--out", str(tmp_path / "w.yaml")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "bad.hdf5" in err, err
    assert not (tmp_path / "w.yaml").exists()


def test_pipeline_identified_steer_world_checks_and_plans_the_stage(tmp_path):
    from lpds_sim.pipeline import IDENTIFIED, PipelineConfig

    cfg = dataclasses.replace(PipelineConfig(), world="reality", steer_world=IDENTIFIED).check()
    from lpds_sim.rai.world import world_yaml

    (tmp_path / "identified_world.yaml").write_text(world_yaml(identified_world([_fit("a", 1, 0.1, 1, 1.0, 14.0)],
                                                                                 22.0)))
    sc = cfg.steer_config(tmp_path / "base", tmp_path / "identified_world.yaml")
    assert sc.world == str(tmp_path / "identified_world.yaml")
    with pytest.raises(ConfigError, match="unknown world"):
        dataclasses.replace(PipelineConfig(), steer_world="identifed").check()


def test_identify_stage_is_redone_only_for_newer_demos_and_keeps_the_old_fit(tmp_path, monkeypatch):
    import os

    from lpds_sim import pipeline
    from lpds_sim.pipeline import IDENTIFIED, PipelineConfig, identified_description, identified_valid

    demos, world = tmp_path / "demos.hdf5", tmp_path / "identified_world.yaml"
    demos.write_bytes(b"x")
    assert not identified_valid(world, demos) and identified_description(world) == []
    fit = identified_world([_fit("a", 2, 0.12, 1, 1.0, 14.0)], 22.0)
    write_identified(fit, [_fit("a", 2, 0.12, 1, 1.0, 14.0)], IdentifyConfig(demos=str(demos)), world)
    assert identified_valid(world, demos)
    assert "latency [2, 2] steps" in identified_description(world)[0]
    os.utime(demos, (world.stat().st_mtime + 10,) * 2)  # demos re-recorded after the fit
    assert not identified_valid(world, demos)
    calls = []
    monkeypatch.setattr(pipeline, "lpds", lambda *a: calls.append(a))
    cfg = dataclasses.replace(PipelineConfig(), world="reality", steer_world=IDENTIFIED)
    pipeline.identify_world(cfg, demos, world)
    assert calls == [("identify", "--demos", str(demos), "--task", "pick_place", "--out", str(world))]
    assert (tmp_path / "identified_world.old.yaml").is_file() and (tmp_path / "identified_world.old.json").is_file()
