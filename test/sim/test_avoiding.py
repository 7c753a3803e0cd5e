"""D3IL Avoiding re-implemented (lpds_sim.benchmarks.avoiding): the env, the mode code on hand-made paths, the
diversity metric, the scripted operator, the cached base and a tiny in-process `lpds bench avoiding`."""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest

from lpds_sim.benchmarks.avoiding import ENV_ID, AvoidingEnv, mode_entropy, path_mode
from lpds_sim.benchmarks.avoiding.demos import GAP_X, make_demos, operator_episode
from lpds_sim.benchmarks.avoiding.geometry import (FINISH_Y, N_MODES, OBSTACLES, ROW_Y, START_XY, ModeTracker,
                                                   gap_of,
                                                   mode_bits, mode_gaps, mode_index, path_collides)


def _line(*points, step=0.004):
    """A densely sampled polyline through `points` (x, y)."""
    pts = [np.asarray(p, float) for p in points]
    out = [pts[0]]
    for a, b in zip(pts[:-1], pts[1:]):
        n = max(1, int(np.ceil(np.linalg.norm(b - a) / step)))
        out += [a + (b - a) * t for t in np.linspace(0, 1, n + 1)[1:]]
    return np.stack(out)


def _through(mode):
    """A hand-made path of `mode`: up to each row's gap, straight through it, on to the finish line."""
    pts = [START_XY]
    for row, g in enumerate(mode_gaps(mode)):
        pts += [(GAP_X[row][g], ROW_Y[row] - 0.045), (GAP_X[row][g], ROW_Y[row] + 0.05)]
    return _line(*pts, (pts[-1][0], FINISH_Y + 0.02))


def test_env_is_registered_and_passes_the_gymnasium_checker():
    from gymnasium.utils.env_checker import check_env

    env = gym.make(ENV_ID)
    check_env(env.unwrapped, skip_render_check=True)
    obs, info = env.reset(seed=0)
    assert np.allclose(obs, [*START_XY, *START_XY]) and info["mode"] == -1
    assert env.action_space.high.tolist() == pytest.approx([0.01, 0.01]) and env.observation_space.shape == (4,)


def test_geometry_is_d3ils():
    assert ROW_Y == pytest.approx((-0.10, 0.08, 0.26)) and FINISH_Y == pytest.approx(0.35)
    assert OBSTACLES[:, 0].tolist() == pytest.approx([0.5, 0.425, 0.575, 0.35, 0.5, 0.65])
    assert OBSTACLES[:, 2].tolist() == pytest.approx([0.03] + [0.025] * 5)


def test_straight_paths_through_known_gaps_give_their_codes():
    left = path_mode(_line(START_XY, (0.30, -0.20), (0.30, 0.40)))  # left of every cylinder: gaps (0, 0, 0)
    assert left.success and not left.collided and left.mode == 0
    assert left.bits.tolist() == [1, 0, 1, 0, 0, 1, 0, 0, 0]
    right = path_mode(_line(START_XY, (0.70, -0.20), (0.70, 0.40)))  # right of every one: gaps (1, 2, 3)
    assert right.success and right.mode == 23 and right.bits.tolist() == [0, 1, 0, 0, 1, 0, 0, 0, 1]
    mid = path_mode(_line(START_XY, (0.575, -0.2), (0.575, -0.05), (0.5, 0.0), (0.5, 0.16), (0.425, 0.2),
                          (0.425, 0.40)))  # right of row 1, middle gap of row 2, second gap of row 3
    assert mid.success and mode_gaps(mid.mode) == (1, 1, 1) and mid.mode == 17


def test_a_rows_gap_is_fixed_at_the_first_step_in_its_band():
    # through row 3's left gap, then right above the row and up: D3IL keeps the first gap (its l3_passed flag)
    late = path_mode(_line(START_XY, (0.30, -0.20), (0.30, 0.30), (0.70, 0.30), (0.70, 0.40)))
    assert late.success and mode_gaps(late.mode) == (0, 0, 0)
    # the row-1 band starts 3 cm below the row: a path that is in it left of x = 0.5 is "left" for good
    assert path_mode(_line(START_XY, (0.42, -0.13), (0.42, -0.05), (0.3, 0.0), (0.3, 0.4))).mode == 0
    t = ModeTracker()  # the bands themselves: rows 1, 2 within 3 cm of the row; row 3 only from y = 0.26 on
    t.update(0.3, -0.131)
    t.update(0.3, 0.049)
    t.update(0.3, 0.259)
    assert t.passed == [False, False, False]
    t.update(0.3, -0.129)
    t.update(0.3, 0.109)
    t.update(0.3, 0.26)
    assert t.passed == [True, True, True] and t.mode == 0


def test_every_one_of_the_24_paths_has_its_own_code_in_the_env_too():
    codes = set()
    for m in range(N_MODES):
        res = path_mode(_through(m))
        assert res.success and not res.collided and res.mode == m, m
        assert res.bits.tolist() == mode_bits(m).tolist() and res.bits.sum() == 3
        codes.add(tuple(res.bits.tolist()))
        assert mode_index(mode_gaps(m)) == m
    assert len(codes) == N_MODES
    env = AvoidingEnv(tracking_gain=1.0)  # replayed as actions: the env reads the same code step by step
    env.reset(seed=0)
    path = _through(7)[::2]  # steps of <= 8 mm, inside the 150-step limit
    for a, b in zip(path[:-1], path[1:]):
        *_, term, trunc, info = env.step(b - a)
        if term or trunc:
            break
    assert info["success"] and info["mode"] == 7 and not info["collided"]


def test_hitting_a_cylinder_is_a_collision_and_never_a_success():
    straight = path_mode(_line(START_XY, (START_XY[0], 0.40)))  # x = 0.525 hits row 1's cylinder
    assert straight.collided and not straight.success
    assert path_collides(_line((0.455, -0.3), (0.455, 0.4)))  # clears row 1 (by 5 mm), hits row 2's at 0.425
    assert not path_collides(_line((0.455, -0.3), (0.455, 0.0)))
    # one long step across a cylinder: both ends are clear, the segment is not (swept test)
    assert path_collides(np.array([[0.5, -0.15], [0.5, -0.05]]))
    env = AvoidingEnv()
    env.reset(seed=0)
    for _ in range(60):
        *_, r, term, trunc, info = env.step(np.array([0.0, 0.01]))
        if term:
            break
    assert term and info["collided"] and not info["success"] and r == 0.0
    with pytest.raises(RuntimeError, match="reset"):
        env.step(np.zeros(2))


def test_d3il_row3_quirk_and_no_bit_on_a_centre_line():
    assert gap_of(2, 0.5) == 3 and gap_of(2, 0.65) == 3  # D3IL's `elif x > l3_top_xpos`
    assert gap_of(2, 0.49) == 1 and gap_of(2, 0.51) == 2 and gap_of(2, 0.7) == 3
    assert gap_of(0, 0.5) == -1 and gap_of(1, 0.425) == -1


def test_mode_entropy_is_d3ils_normalised_entropy():
    assert mode_entropy(range(N_MODES)) == pytest.approx(1.0)
    assert mode_entropy(list(range(N_MODES)) * 3) == pytest.approx(1.0)
    assert mode_entropy([5] * 40) == 0.0 and str(mode_entropy([5])) == "0.0"
    assert mode_entropy([0, 1] * 10) == pytest.approx(np.log(2) / np.log(24))
    assert mode_entropy([0, 0, 0, 1]) == pytest.approx(-(0.75 * np.log(0.75) + 0.25 * np.log(0.25)) / np.log(24))
    assert mode_entropy([mode_bits(3), mode_bits(3), mode_bits(4), mode_bits(4)]) == pytest.approx(
        np.log(2) / np.log(24))  # the 9-bit codes count like the integers
    assert mode_entropy([]) == 0.0


def test_the_scripted_operator_succeeds_and_covers_every_mode():
    episodes, stats = make_demos(48, seed=0)
    assert stats["success_rate"] >= 0.85 and stats["mode_counts"] == [2] * N_MODES
    again, _ = make_demos(48, seed=0)  # deterministic per seed
    assert all(np.array_equal(a["actions"], b["actions"]) for a, b in zip(episodes, again))
    for e in episodes[:6]:  # the kept demos replay to their mode from the recorded positions
        res = path_mode(np.concatenate([e["obs"][:, 2:], e["obs"][-1:, 2:]]))
        assert res.mode in (e["mode"], -1) and not res.collided
    rng, env = np.random.default_rng(1), AvoidingEnv()
    wins = [operator_episode(env, rng, m)[2] for m in (0, 5, 11, 17, 23, 8)]
    assert sum(w["success"] for w in wins) >= 5 and len({w["mode"] for w in wins if w["success"]}) >= 5


def test_suite_evaluate_reports_success_and_mode_entropy():
    from lpds_sim.benchmarks.suites import get_suite

    suite = get_suite("avoiding")

    def go_right_then_up(obs):  # a scripted "policy": chunks of 4 moves, right to x = 0.7, then straight up
        a = np.where((obs[:, 0] < 0.7)[:, None], [0.01, 0.0], [0.0, 0.01])
        return np.repeat(a[:, None, :], 4, axis=1)

    res = suite.evaluate("avoiding", go_right_then_up, 5, seed=0)
    assert res["success"] == 1.0 and res["return"] == 1.0 and res["mode_entropy"] == 0.0 and res["modes_found"] == 1
    up = suite.evaluate("avoiding", lambda o: np.tile([0.0, 0.01], (len(o), 4, 1)), 3, seed=0)
    assert up["success"] == 0.0 and up["collision"] == 1.0
    assert suite.entropy_observations("avoiding", 3, 0).shape == (3, 4)


TINY_BASE = dict(n_demos=48, bc_steps=60, hidden=32, n_layers=2)


def test_base_is_cached_and_a_foreign_file_is_never_replaced(tmp_path):
    from lpds_core.errors import CheckpointError
    from lpds_sim.benchmarks.avoiding.base import avoiding_base_policy, load_demo_episodes

    _, path = avoiding_base_policy(cache_dir=tmp_path, progress=False, **TINY_BASE)
    mtime = path.stat().st_mtime_ns
    _, again = avoiding_base_policy(cache_dir=tmp_path, progress=False, **TINY_BASE)
    assert again == path and path.stat().st_mtime_ns == mtime  # found, not retrained
    demos = load_demo_episodes(next(tmp_path.glob("avoiding_demos_*.hdf5")))
    assert len(demos) == 48 and sorted({d["mode"] for d in demos}) == list(range(N_MODES))
    stats = json.loads(next(tmp_path.glob("avoiding_demos_*.json")).read_text())
    assert stats["success_rate"] >= 0.85
    path.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="unusable"):
        avoiding_base_policy(cache_dir=tmp_path, progress=False, **TINY_BASE)
    assert path.read_bytes() == b"not a checkpoint"


def test_tiny_bench_carries_the_mode_entropy_into_metrics_and_table(tmp_path):
    from lpds_sim.benchmarks import one_run
    from lpds_sim.benchmarks.aggregate import aggregate
    from lpds_sim.benchmarks.avoiding.base import avoiding_base_policy
    from lpds_sim.benchmarks.suites import get_suite
    from lpds_sim.benchmarks.sweep import plan

    from bench_helpers import tiny_bench_config

    _, base = avoiding_base_policy(cache_dir=tmp_path / "cache", progress=False, **TINY_BASE)
    cfg = tiny_bench_config("avoiding", "avoiding", tmp_path / "out", ["base", "lpds"], trials=6, entropy_samples=32,
                            env_steps=160, warmup_steps=60, eval_every=80, ckpt_every=80, batch_size=32, eval_trials=4)
    suite = get_suite("avoiding")
    (dppo,) = plan(dataclasses.replace(cfg, algos=["dppo"]), {("avoiding", "diffusion"): "d.safetensors"},
                   suite.base_kind)  # DPPO's own avoid settings, on the diffusion base
    assert dppo["config"]["base"] == "d.safetensors" and dppo["config"]["agent"]["lr_actor"] == 1e-5
    jobs = plan(cfg, {("avoiding", "flow"): str(base)})
    metrics = [one_run.execute(j) for j in jobs]
    for m in metrics:
        assert 0.0 <= m["mode_entropy"] <= 1.0 and 0.0 <= m["success"] <= 1.0
    assert metrics[1]["env_steps"] >= 160 and metrics[1]["updates"] > 0
    s = aggregate(cfg, jobs, get_suite("avoiding"))
    table = (Path(cfg.out) / "table.md").read_text()
    assert "mode entropy" in table.splitlines()[0]
    from lpds_sim.benchmarks.avoiding.plots import load_episodes

    kept = load_episodes(Path(jobs[0]["root"]) / "trajectories.npz")  # the base's final evaluation, as drawn
    assert len(kept) == cfg.trials and np.mean([e["success"] for e in kept]) == pytest.approx(metrics[0]["success"])
    assert (Path(jobs[1]["root"]) / "plots" / "trajectories.png").is_file()
    assert {"trajectories.png", "diversity.png"} <= set(s["figures"]) and (Path(cfg.out) / "diversity.png").is_file()
    assert {r["method"]: r for r in s["table"]}["base"]["mode_entropy"]["mean"] == pytest.approx(
        metrics[0]["mode_entropy"])
