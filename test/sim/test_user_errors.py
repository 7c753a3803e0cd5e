"""Every class of user error, through the real `lpds` CLI: exit code 2, exactly one line on stderr that starts with
"error:" and names the problem and the fix, no traceback, and nothing of the user's deleted or changed."""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from lpds_sim import runs
from pipeline_helpers import make_base_run, make_steer_run, write_tiny_demos

pytest.importorskip("robotic")

ROOT = Path(__file__).resolve().parents[2]


def snapshot(root: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns) for p in root.rglob("*") if p.is_file()}


def fails(capsys, argv: list[str], root: Path, *needles: str) -> str:
    """Run `lpds argv`; check the one-line contract and that every file under `root` is still there, unchanged."""
    from lpds_sim.cli import main

    before = snapshot(root)
    capsys.readouterr()
    rc = main(argv)
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert rc == 2, err
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert "Traceback" not in err and "(this is a bug" not in err, err
    for needle in needles:
        assert needle in lines[0], lines[0]
    after = snapshot(root)
    kept = {k: v for k, v in after.items() if k in before}
    for k in [k for k in before if k.endswith(runs.PROVENANCE_FILE)]:  # a failed resume is a session: appended
        assert k in after and after[k][0] >= before[k][0]
        kept.pop(k, None), before.pop(k)
    assert kept == before, "a file of the user's was changed or deleted"
    return lines[0]


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A base run, a finished steer run and its export (pick_place), a mug_hang base run and a pick_place base run
    whose backbone has 5 action dims."""
    import torch
    from lpds_core.checkpoint import save_backbone
    from lpds_core.flow_matching import FlowMatchingPolicy

    from lpds_sim.cli import main
    from lpds_sim.train_base import backbone_path

    root = tmp_path_factory.mktemp("world")
    base = make_base_run(root / "base")
    steer = make_steer_run(root / "steer", base)
    assert main(["export", "--run", str(steer), "--out", str(root / "export")]) == 0
    make_base_run(root / "base_mug", task="mug_hang")
    wide = make_base_run(root / "base_wide")
    pol = FlowMatchingPolicy(18, 5, 4, hidden=16, n_layers=1, num_steps=2)
    pol.fit_normalizers(torch.randn(16, 18), torch.rand(16, 4, 5) * 2 - 1)
    save_backbone(pol, backbone_path(wide), extra={"task": "pick_place", "obs": "state"})
    return root


def _copy(world: Path, name: str, tmp_path: Path) -> Path:
    return Path(shutil.copytree(world / name, tmp_path / name))


# --- missing or wrong paths -------------------------------------------------------------------------------------
def test_missing_demo_file(tmp_path, capsys):
    fails(capsys, ["train-base", "--task", "pick_place", "--data", str(tmp_path / "nope.hdf5"), "--out",
                   str(tmp_path / "b")], tmp_path, "nope.hdf5", "does not exist", "lpds demos")
    assert not (tmp_path / "b").exists()


def test_missing_base_run(tmp_path, capsys):
    fails(capsys, ["train-steer", "--base", str(tmp_path / "nope"), "--out", str(tmp_path / "s")], tmp_path,
          "nope", "does not exist")
    assert not (tmp_path / "s").exists()


def test_missing_run_to_export(tmp_path, capsys):
    fails(capsys, ["export", "--run", str(tmp_path / "nope"), "--out", str(tmp_path / "o")], tmp_path,
          "does not exist")
    assert not (tmp_path / "o").exists()


def test_missing_policy_path(tmp_path, capsys):
    fails(capsys, ["eval", "--policy", str(tmp_path / "nope"), "--out", str(tmp_path / "e"), "--no-progress"],
          tmp_path, "--policy", "no such file", "scripted or random")


def test_policy_folder_that_is_neither_run_nor_export(tmp_path, capsys):
    (tmp_path / "stuff").mkdir()
    (tmp_path / "stuff" / "notes.txt").write_text("mine")
    fails(capsys, ["eval", "--policy", str(tmp_path / "stuff"), "--out", str(tmp_path / "e"), "--no-progress"],
          tmp_path, "not a run folder", "lpds export")


def test_demos_refuses_existing_out(tmp_path, capsys):
    (tmp_path / "demos.hdf5").write_bytes(b"my earlier demos")
    fails(capsys, ["demos", "--out", str(tmp_path / "demos.hdf5"), "--n-demos", "1", "--no-progress"], tmp_path,
          "already exists", "--overwrite")


def test_eval_refuses_existing_results(tmp_path, capsys):
    (tmp_path / "e").mkdir()
    (tmp_path / "e" / "grid_results.json").write_text("{}")
    fails(capsys, ["eval", "--policy", "random", "--out", str(tmp_path / "e"), "--no-progress"], tmp_path,
          "already holds grid results", "--overwrite")


def test_export_refuses_a_folder_that_is_not_an_export(world, tmp_path, capsys):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "thesis.tex").write_text("do not delete")
    fails(capsys, ["export", "--run", str(world / "steer"), "--out", str(out)], tmp_path, "not an `lpds export`")
    assert (out / "thesis.tex").read_text() == "do not delete"
    # a training run as --out (the old code deleted it)
    run = _copy(world, "base", tmp_path)
    fails(capsys, ["export", "--run", str(world / "steer"), "--out", str(run)], tmp_path, "not an `lpds export`")


def test_bad_config_file(tmp_path, capsys):
    fails(capsys, ["pipeline", "--config", str(tmp_path / "nope.yaml"), "--out", str(tmp_path / "p")], tmp_path,
          "nope.yaml", "does not exist")


def test_pipeline_refuses_a_folder_that_is_not_a_pipeline_run(world, tmp_path, capsys):
    run = _copy(world, "base", tmp_path)
    fails(capsys, ["pipeline", "--out", str(run)], tmp_path, "not a pipeline run")
    assert not (run / "pipeline.yaml").exists()


def test_toy_out_is_a_file(tmp_path, capsys):
    (tmp_path / "f").write_text("x")
    fails(capsys, ["toy", "--out", str(tmp_path / "f"), "--no-progress"], tmp_path, "is a file")


# --- a run or export of another task ----------------------------------------------------------------------------
def test_base_run_of_another_task(world, tmp_path, capsys):
    fails(capsys, ["train-steer", "--base", str(world / "base_mug"), "--task", "pick_place", "--out",
                   str(tmp_path / "s")], tmp_path, "mug_hang", "pick_place")
    assert not (tmp_path / "s").exists()


def test_eval_run_of_another_task(world, tmp_path, capsys):
    fails(capsys, ["eval", "--task", "mug_hang", "--policy", str(world / "base"), "--out", str(tmp_path / "e"),
                   "--no-progress"], tmp_path, "for task 'pick_place', not 'mug_hang'")


def test_eval_export_of_another_task(world, tmp_path, capsys):
    fails(capsys, ["eval", "--task", "mug_hang", "--policy", str(world / "export"), "--out", str(tmp_path / "e"),
                   "--no-progress"], tmp_path, "exported for task 'pick_place', not 'mug_hang'")


# --- corrupt or truncated files ---------------------------------------------------------------------------------
def _truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def test_corrupt_and_truncated_hdf5(tmp_path, capsys):
    (tmp_path / "garbage.hdf5").write_bytes(b"not hdf5 at all" * 10)
    fails(capsys, ["train-base", "--task", "pick_place", "--data", str(tmp_path / "garbage.hdf5"), "--out",
                   str(tmp_path / "b")], tmp_path, "not a readable HDF5 file", "--overwrite")
    _truncate(write_tiny_demos(tmp_path / "cut.hdf5"))
    fails(capsys, ["train-base", "--task", "pick_place", "--data", str(tmp_path / "cut.hdf5"), "--out",
                   str(tmp_path / "b")], tmp_path, "cut.hdf5", "regenerate it")
    assert not (tmp_path / "b").exists()


def test_truncated_safetensors(world, tmp_path, capsys):
    base = _copy(world, "base", tmp_path)
    _truncate(base / "backbone.safetensors")
    fails(capsys, ["train-steer", "--base", str(base), "--out", str(tmp_path / "s")], tmp_path,
          "backbone.safetensors", "corrupt or truncated")
    fails(capsys, ["eval", "--policy", str(base), "--out", str(tmp_path / "e"), "--no-progress"], tmp_path,
          "corrupt or truncated")


def test_corrupt_agent_checkpoint(world, tmp_path, capsys):
    steer = _copy(world, "steer", tmp_path)
    shutil.copytree(world / "base", tmp_path / "base")  # the steer run points at ../base
    _truncate(steer / "agent.pt")
    fails(capsys, ["export", "--run", str(steer), "--out", str(tmp_path / "o")], tmp_path, "agent.pt",
          "corrupt or truncated")
    assert not (tmp_path / "o").exists() and not [p for p in tmp_path.iterdir() if p.name.startswith(".o.")]


def test_truncated_run_checkpoint_on_resume(tmp_path, capsys):
    from lpds_sim.train_base import BaseConfig

    data = write_tiny_demos(tmp_path / "d.hdf5")
    run = runs.RunDir.open(tmp_path / "b", runs.config_from_dict(BaseConfig, {"task": "pick_place", "data": str(data), "horizon": 4}), resume=False,
                           kind="base")
    path = run.checkpointer().save(2, {"model": {}, "x": list(range(100))})
    _truncate(path)
    fails(capsys, ["train-base", "--task", "pick_place", "--data", str(data), "--horizon", "4", "--out",
                   str(tmp_path / "b"), "--resume", "--no-progress"], tmp_path, "ckpt_0000000002.pt", "corrupt")


def test_truncated_onnx(world, tmp_path, capsys):
    exp = _copy(world, "export", tmp_path)
    _truncate(exp / "decoder.onnx")
    fails(capsys, ["eval", "--policy", str(exp), "--out", str(tmp_path / "e"), "--no-progress"], tmp_path,
          "decoder.onnx", "corrupt or truncated", "re-export")


def test_damaged_run_config(world, tmp_path, capsys):
    steer = _copy(world, "steer", tmp_path)
    (steer / "config.yaml").write_text("task: [unclosed\n")
    fails(capsys, ["export", "--run", str(steer), "--out", str(tmp_path / "o")], tmp_path, "config.yaml",
          "not valid YAML")


# --- NaN/Inf in a dataset, observation layouts, action sizes ----------------------------------------------------
@pytest.mark.parametrize("key", ["actions", "state"])
def test_nan_in_dataset_names_demo_and_key(tmp_path, capsys, key):
    data = write_tiny_demos(tmp_path / "d.hdf5", n=3, bad=(1, key))
    line = fails(capsys, ["train-base", "--task", "pick_place", "--data", str(data), "--out", str(tmp_path / "b")],
                 tmp_path, "data/demo_1", f"'{key}'", "NaN/Inf")
    assert "demo_0" not in line and "demo_2" not in line
    assert not (tmp_path / "b").exists()


def test_unknown_observation_layout_names_keys(tmp_path, capsys):
    data = write_tiny_demos(tmp_path / "d.hdf5", obs_key="joints")
    fails(capsys, ["train-base", "--task", "pick_place", "--data", str(data), "--obs", "state", "--out",
                   str(tmp_path / "b")], tmp_path, "['joints']", "['state']", "--obs")


def test_demo_action_size_does_not_match_task(tmp_path, capsys):
    data = write_tiny_demos(tmp_path / "d.hdf5", act_dim=3)
    fails(capsys, ["train-base", "--task", "pick_place", "--data", str(data), "--out", str(tmp_path / "b")],
          tmp_path, "(6, 3)", "size 4", "--task pick_place")


def test_policy_action_size_does_not_match_task(world, tmp_path, capsys):
    fails(capsys, ["eval", "--policy", str(world / "base_wide"), "--out", str(tmp_path / "e"), "--no-progress"],
          tmp_path, "actions of size 5", "size 4")


def test_steer_base_action_size_does_not_match_task(world, tmp_path, capsys):
    fails(capsys, ["train-steer", "--base", str(world / "base_wide"), "--vector", "sync", "--n-envs", "1",
                   "--out", str(tmp_path / "s"), "--no-progress"], tmp_path, "actions of size 5", "size 4")
    # the failed start left nothing that blocks the corrected rerun
    assert not runs.RunDir(tmp_path / "s").holds_work()


# --- the pipeline: a failing stage is still one line --------------------------------------------------------------
@pytest.mark.slow
def test_pipeline_stage_error_is_one_line(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(str(ROOT / "src" / p) for p in ("lpds_core", "lpds_sim")))
    root = tmp_path / "p"
    root.mkdir()
    from lpds_sim.pipeline import PipelineConfig

    runs.save_config(root / "pipeline.yaml", runs.config_from_dict(PipelineConfig, {"n_demos": 2, "bc_steps": 2}))  # a pipeline run whose demos
    write_tiny_demos(root / "demos.hdf5", n=2, bad=(1, "actions"))  # stage finished with a damaged file
    fails(capsys, ["pipeline", "--n-demos", "2", "--bc-steps", "2", "--out", str(root)], tmp_path,
          "stage `lpds train-base` failed", "data/demo_1", "NaN/Inf", "finished stages are kept")
