"""Pictures of a grid evaluation: end-effector trajectories (npz + figure), `lpds eval --videos N` GIFs, and the
report's base-vs-steered heatmaps (lpds_sim.eval_pictures)."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("robotic")

SMALL = ["--task", "pick_place", "--rows", "1", "--cols", "2", "--trials", "1", "--no-progress"]


def _eval(out: Path, *extra: str) -> Path:
    from lpds_sim.cli import main

    assert main(["eval", *SMALL, "--out", str(out), *extra]) == 0
    return out


@pytest.fixture(scope="module")
def scripted(tmp_path_factory) -> Path:
    """A 1×2×1 grid of the scripted operator (succeeds), with one video."""
    return _eval(tmp_path_factory.mktemp("scripted") / "e", "--policy", "scripted", "--videos", "1")


@pytest.fixture(scope="module")
def random_one(tmp_path_factory) -> Path:
    """One trial of the random policy (fails: a full 150-step episode), no videos."""
    return _eval(tmp_path_factory.mktemp("random") / "e", "--policy", "random", "--max-trials", "1")


def _grid(folder: Path) -> dict:
    return json.loads((folder / "grid_results.json").read_text())


@pytest.mark.parametrize("which", ["scripted", "random_one"])
def test_trajectories_have_a_row_per_step_from_the_reset_position(which, request):
    from lpds_core.grid_protocol import GridProtocol
    from lpds_sim.eval_pictures import load_trajectories
    from lpds_sim.evaluation import make_env

    folder = request.getfixturevalue(which)
    doc, d = _grid(folder), load_trajectories(folder / "grid_trajectories.npz")
    assert len(d["paths"]) == doc["total"] and d["index"].tolist() == [t["index"] for t in doc["trials"]]
    assert [len(p) for p in d["paths"]] == [t["length"] + 1 for t in doc["trials"]]  # reset row + one per step
    assert (folder / "grid_trajectories.npz").stat().st_size < 20_000
    env = make_env("pick_place", "state")
    try:  # the same trial seed and cell give the same reset: row 0 is where the end effector stood after it
        proto = GridProtocol(1, 2, 1, seed=0)
        for tr, path, obj, tgt in zip(proto.trials(), d["paths"], d["object_start"], d["target"]):
            obs, _ = env.reset(seed=tr.seed, options=proto.reset_options(tr))
            lay = env.unwrapped.state_layout
            assert np.allclose(path[0], obs[lay["ee_pos"]], atol=1e-5)
            assert np.allclose(obj, obs[lay["obj_pos"]], atol=1e-5) and np.allclose(tgt, obs[lay["target_pos"]])
    finally:
        env.close()
    moved = np.linalg.norm(d["paths"][0][-1] - d["paths"][0][0])
    assert moved > 0.05  # the rows follow the arm, not a constant


def test_success_colouring_matches_the_grid_results(scripted, random_one, tmp_path):
    from lpds_sim.eval_pictures import (FAILURE_COLOUR, SUCCESS_COLOUR, load_trajectories, save_trajectories,
                                        trajectory_figure)

    # one grid with both outcomes: the scripted trials (successes) and the random one (a failure)
    parts = [load_trajectories(f / "grid_trajectories.npz") for f in (scripted, random_one)]
    docs = [_grid(f) for f in (scripted, random_one)]
    trials = [t for doc in docs for t in doc["trials"]]
    save_trajectories(tmp_path / "t.npz", [p for d in parts for p in d["paths"]],
                      np.concatenate([d["object_start"] for d in parts]), np.concatenate([d["target"] for d in parts]),
                      list(range(len(trials))), [t["cell"] for t in trials], [t["success"] for t in trials])
    want = [t["success"] for t in trials]
    assert True in want and False in want
    d = load_trajectories(tmp_path / "t.npz")
    assert d["success"].tolist() == want
    fig = trajectory_figure(d, "test")
    for ax in fig.axes[:2]:
        lines = {ln.get_gid(): ln for ln in ax.get_lines() if ln.get_gid()}
        assert sorted(lines) == [f"trial {i}" for i in range(len(trials))]
        for i, ok in enumerate(want):
            assert lines[f"trial {i}"].get_color() == (SUCCESS_COLOUR if ok else FAILURE_COLOUR)
    labels = fig.axes[1].get_legend().get_texts()
    assert {"success", "failure", "object start", "target"} <= {t.get_text() for t in labels}
    # the eval's own figure: its npz's successes are the grid's
    for folder, doc in zip((scripted, random_one), docs):
        assert load_trajectories(folder / "grid_trajectories.npz")["success"].tolist() == \
            [t["success"] for t in doc["trials"]]
        assert (folder / "trajectories.png").stat().st_size > 5000


def test_videos_one_writes_one_readable_gif_and_zero_none(scripted, random_one):
    import imageio.v2 as imageio

    gifs = sorted((scripted / "videos").glob("*.gif"))
    assert [g.name for g in gifs] == ["trial_000.gif"]
    frames = imageio.mimread(gifs[0])
    assert len(frames) > 1 and frames[0].shape[1] <= 160
    assert gifs[0].stat().st_size < 500_000
    assert not (random_one / "videos").exists()


def test_overwrite_drops_the_videos_of_the_earlier_grid(scripted, tmp_path):
    out = tmp_path / "e"
    shutil.copytree(scripted, out)
    _eval(out, "--policy", "scripted", "--max-trials", "1", "--overwrite")
    assert not list((out / "videos").glob("*.gif"))


@pytest.mark.parametrize("bad", ["-1", "-3"])
def test_negative_videos_is_one_clear_error_line(bad, tmp_path, capsys):
    from lpds_sim.cli import main

    rc = main(["eval", *SMALL, "--policy", "scripted", "--out", str(tmp_path / "e"), "--videos", bad])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and err[0].startswith("error: --videos must be >= 0"), err
    assert not (tmp_path / "e").exists()


def _fake_pipeline_root(root: Path, base: Path, steered: Path, cfg) -> Path:
    """A pipeline folder holding what `write_report` reads, with real grid evaluations (the same two in every
    world it grades in)."""
    from lpds_sim import runs

    for ev in ["eval"] + ([f"eval_{cfg.world_label}"] if cfg.world_label != "emulation" else []):
        shutil.copytree(base, root / ev / "base")
        shutil.copytree(steered, root / ev / "steered")
    (root / "steer").mkdir()
    (root / "steer" / "done.json").write_text(json.dumps({"env_steps": 10}))
    (root / "export").mkdir()
    (root / "export" / "parity.json").write_text(json.dumps({"max_abs_diff": 1e-7}))
    runs.save_config(root / "pipeline.yaml", cfg)
    return root


@pytest.mark.parametrize("world", ["emulation", "reality"])
def test_report_shows_side_by_side_heatmaps_trajectories_and_videos(world, scripted, random_one, tmp_path):
    from PIL import Image

    from lpds_sim.pipeline import PipelineConfig, write_report

    cfg = PipelineConfig(world=world)
    root = _fake_pipeline_root(tmp_path / "run", scripted, random_one, cfg)
    report = write_report(cfg, root).read_text()
    folders = ["eval"] + (["eval_reality"] if world == "reality" else [])
    assert report.count("## Grid evaluation: ") == len(folders)
    for ev, label in zip(folders, ["emulation", "reality"]):
        pair = root / ev / "grid_base_vs_steered.png"
        assert pair.is_file() and f"![{ev}/grid_base_vs_steered.png]({ev}/grid_base_vs_steered.png)" in report
        w, h = Image.open(pair).size
        assert w > 1.5 * h  # two heatmaps side by side
        assert f"![{ev}/base/trajectories.png]({ev}/base/trajectories.png)" in report
        assert f"![{ev}/steered/trajectories.png]({ev}/steered/trajectories.png)" in report
        assert f"[base trial 000]({ev}/base/videos/trial_000.gif)" in report
        assert f"## Grid evaluation: pick_place, {label}" in report
    assert "steered trial" not in report  # the steered grid here was run without videos


def test_grid_pair_titles_and_one_colour_scale(scripted, random_one, tmp_path, monkeypatch):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from lpds_sim import eval_pictures

    seen = {}
    monkeypatch.setattr(plt, "close", lambda fig: seen.setdefault("fig", fig))
    eval_pictures.plot_grid_pair(scripted, random_one, tmp_path / "pair.png")
    axes = [ax for ax in seen["fig"].axes if ax.images]
    assert [ax.get_title() for ax in axes] == ["base: 2/2", "steered: 0/1 (partial)"]
    assert all(ax.images[0].get_clim() == (0, 1) for ax in axes)


def test_pipeline_asks_for_two_videos_per_grid_evaluation(tmp_path, monkeypatch):
    from lpds_sim import pipeline

    calls = []
    monkeypatch.setattr(pipeline, "lpds", lambda *args: calls.append(args))
    monkeypatch.setenv("DISPLAY", ":99")
    cfg = pipeline.PipelineConfig()
    assert cfg.videos == 2
    pipeline.evaluate_policy(cfg, tmp_path / "base", tmp_path / "out")
    args = list(calls[-1])
    assert args[args.index("--videos") + 1] == "2"
    pipeline.evaluate_policy(pipeline.PipelineConfig(videos=0), tmp_path / "base", tmp_path / "out")
    assert "--videos" not in calls[-1]


def test_rendering_videos_leaves_the_physics_of_later_envs_alone(scripted, tmp_path):
    """The `scripted` fixture rendered a video in this process; a grid run here afterwards must match the same grid
    run in a fresh process (a camera that simplifies meshes changed every later env's physics)."""
    import os

    args = ["eval", *SMALL, "--policy", "scripted"]
    fresh = subprocess.run([sys.executable, "-m", "lpds_sim.cli", *args, "--out", str(tmp_path / "fresh")],
                           capture_output=True, text=True, env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    assert fresh.returncode == 0, fresh.stderr[-2000:]
    here = _eval(tmp_path / "here", "--policy", "scripted")
    assert [(t["ret"], t["length"]) for t in _grid(here)["trials"]] == \
        [(t["ret"], t["length"]) for t in _grid(tmp_path / "fresh")["trials"]]
