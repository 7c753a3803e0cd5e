"""Runs never lose work: export swaps in only a parity-checked export and refuses foreign folders, partial grids
are saved as partial, JSON is strict, a failed start does not block the rerun, a moved run folder keeps working,
every run records its provenance, and the best periodically evaluated agent is kept and can be chosen."""
from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from lpds_core.agents.base import low_precision_decoder
from lpds_sim import runs
from pipeline_helpers import make_base_run, make_steer_run, write_tiny_demos

pytest.importorskip("robotic")


def strict_json(path: Path):
    def refuse(name):
        raise AssertionError(f"{path} holds {name}: not valid JSON")

    return json.loads(Path(path).read_text(), parse_constant=refuse)


def files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in folder.iterdir()}


def tiny_base_yaml(tmp_path: Path) -> Path:
    path = tmp_path / "tiny_base.yaml"
    path.write_text("hidden: 16\nn_layers: 1\nnum_steps: 2\nhorizon: 4\ngrad_steps: 4\nbatch_size: 8\n"
                    "ckpt_every: 2\nlog_every: 1\n")
    return path


# --- export ------------------------------------------------------------------------------------------------------
def test_export_replaces_an_earlier_export_and_keeps_it_when_parity_fails(tmp_path, capsys):
    from lpds_sim.cli import main

    base = make_base_run(tmp_path / "base")
    steer = make_steer_run(tmp_path / "steer", base)
    out = tmp_path / "export"
    assert main(["export", "--run", str(steer), "--out", str(out)]) == 0
    first = files(out)
    assert strict_json(out / "parity.json")["format"] == "lpds-export"
    assert main(["export", "--run", str(steer), "--out", str(out)]) == 0  # an earlier export may be replaced
    assert sorted(files(out)) == sorted(first)
    kept = files(out)
    capsys.readouterr()
    assert main(["export", "--run", str(steer), "--out", str(out), "--tol", "-1"]) == 2  # parity cannot pass
    err = capsys.readouterr().err
    assert "differs from torch" in err and "unchanged" in err and len(err.strip().splitlines()) == 1
    assert files(out) == kept, "a failed export must leave the installed one byte for byte"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["base", "export", "steer"], "temporary folders left"


def test_export_into_a_new_or_empty_folder(tmp_path):
    from lpds_sim.cli import main

    base = make_base_run(tmp_path / "base")
    (tmp_path / "empty").mkdir()
    assert main(["export", "--run", str(base), "--out", str(tmp_path / "empty")]) == 0
    assert (tmp_path / "empty" / "decoder.onnx").is_file()
    assert main(["export", "--run", str(base), "--out", str(tmp_path / "new" / "deep")]) == 0


# --- grids and JSON ---------------------------------------------------------------------------------------------
class _FakeEnv:
    """Three steps per episode; succeeds on odd seeds; raises KeyboardInterrupt on reset number `interrupt_at`."""

    def __init__(self, interrupt_at: int | None = None):
        self.unwrapped, self.resets, self.interrupt_at, self.start_xy = self, 0, interrupt_at, (0.1, 0.2)

    def reset(self, seed=None, options=None):
        self.resets += 1
        if self.resets == self.interrupt_at:
            raise KeyboardInterrupt
        self.seed, self.t = seed, 0
        return np.zeros(2, np.float32), {}

    def step(self, action):
        self.t += 1
        done = self.t >= 3
        return np.zeros(2, np.float32), float("nan"), done, False, {"collision": False,
                                                                     "success": done and self.seed % 2 == 1}


def test_partial_grid_is_saved_as_partial_with_not_run_cells(tmp_path):
    from lpds_core.grid_protocol import GridProtocol

    proto = GridProtocol(2, 4, 2, seed=0)
    res = proto.run(_FakeEnv(interrupt_at=4), lambda o: np.zeros(4), progress=False, keep_on_interrupt=True)
    assert res.partial and res.stopped == "interrupted" and len(res.trials) == 3 and res.planned == 16
    assert res.trials_table.tolist() == [[2, 1, 0, 0], [0, 0, 0, 0]]
    assert "not run" in res.summary() and "PARTIAL: 3 of 16" in res.summary() and "0/2" not in res.summary()
    paths = res.write(tmp_path)
    doc = strict_json(paths["json"])  # the NaN returns and the never-run cells are null, not NaN
    assert doc["partial"] and doc["planned"] == 16 and doc["total"] == 3
    cells = {(c["row"], c["col"]): c for c in doc["cells"]}
    assert cells[(0, 2)]["trials"] == 0 and cells[(0, 2)]["success_rate"] is None
    assert cells[(0, 0)]["success_rate"] is not None and doc["trials"][0]["ret"] is None
    assert paths["heatmap"].stat().st_size > 0
    with pytest.raises(KeyboardInterrupt):  # callers that did not ask for a partial grid still see Ctrl-C
        proto.run(_FakeEnv(interrupt_at=2), lambda o: np.zeros(4), progress=False)
    limited = proto.run(_FakeEnv(), lambda o: np.zeros(4), progress=False, max_trials=5)
    assert limited.partial and limited.stopped == "trial limit" and len(limited.trials) == 5
    full = proto.run(_FakeEnv(), lambda o: np.zeros(4), progress=False)
    assert not full.partial and "not run" not in full.summary()


def test_eval_trial_limit_and_overwrite(tmp_path, capsys):
    from lpds_sim.cli import main

    out = tmp_path / "e"
    assert main(["eval", "--policy", "random", "--trials", "1", "--max-trials", "2", "--out", str(out),
                 "--no-progress"]) == 0
    doc = strict_json(out / "grid_results.json")
    assert doc["partial"] and doc["total"] == 2 and doc["planned"] == 8 and doc["stopped"] == "trial limit"
    assert sum(c["success_rate"] is None for c in doc["cells"]) == 6
    assert main(["eval", "--policy", "random", "--trials", "1", "--max-trials", "1", "--out", str(out),
                 "--no-progress"]) == 2
    assert strict_json(out / "grid_results.json")["total"] == 2  # refused: untouched
    assert main(["eval", "--policy", "random", "--trials", "1", "--max-trials", "1", "--out", str(out),
                 "--no-progress", "--overwrite"]) == 0
    assert strict_json(out / "grid_results.json")["total"] == 1


def test_json_writer_maps_non_finite_to_null(tmp_path):
    from lpds_core import jsonio

    text = jsonio.dumps({"a": float("nan"), "b": [np.float32(np.inf), np.int64(3)], "c": np.array([1.0, -np.inf]),
                         "p": tmp_path, "t": (1, 2)})
    assert json.loads(text) == {"a": None, "b": [None, 3], "c": [1.0, None], "p": str(tmp_path), "t": [1, 2]}
    runs.atomic_write_json(tmp_path / "x.json", {"v": float("nan")})
    assert strict_json(tmp_path / "x.json") == {"v": None}
    log = runs.ScalarLog(tmp_path, tensorboard=False)
    log.log(1, "train", loss=float("nan"), ok=1.0)
    log.close()
    assert runs.read_scalars(tmp_path) == [{"step": 1, "group": "train", "loss": None, "ok": 1.0}]


# --- failed starts, moved folders, provenance ---------------------------------------------------------------------
def test_failed_start_does_not_block_the_corrected_rerun(tmp_path, capsys):
    from lpds_sim.cli import main

    cfg = tiny_base_yaml(tmp_path)
    bad = write_tiny_demos(tmp_path / "bad.hdf5", bad=(0, "actions"))
    good = write_tiny_demos(tmp_path / "good.hdf5")
    args = ["train-base", "--task", "pick_place", "--config", str(cfg), "--out", str(tmp_path / "b"), "--no-progress"]
    assert main([*args, "--data", str(bad)]) == 2
    assert main([*args, "--data", str(good)]) == 0
    assert runs.RunDir(tmp_path / "b").is_done()
    # a start that failed after the folder was made (here: by hand, config.yaml only) is reused too
    runs.RunDir.open(tmp_path / "s", {"task": "pick_place"}, resume=False, kind="steer")
    runs.RunDir.open(tmp_path / "s", {"task": "pick_place", "algo": "x"}, resume=False, kind="steer")
    # ... but never a folder that holds work
    assert main([*args, "--data", str(good)]) == 2
    assert "already holds a run" in capsys.readouterr().err


def test_moved_run_folders_still_export_evaluate_and_resume(tmp_path, monkeypatch, capsys):
    from lpds_sim.cli import main

    cfg = tiny_base_yaml(tmp_path)
    root = tmp_path / "project"
    root.mkdir()
    write_tiny_demos(root / "demos.hdf5")
    assert main(["train-base", "--task", "pick_place", "--config", str(cfg), "--data", str(root / "demos.hdf5"),
                 "--out", str(root / "base"), "--no-progress"]) == 0
    make_steer_run(root / "steer", root / "base")
    assert yaml.safe_load((root / "base" / "config.yaml").read_text())["data"] == "../demos.hdf5"
    assert yaml.safe_load((root / "steer" / "config.yaml").read_text())["base"] == "../base"

    moved = tmp_path / "elsewhere" / "copy"
    shutil.copytree(root, moved)
    shutil.rmtree(root)  # the originals are gone: only the moved copy can work
    monkeypatch.chdir(tmp_path / "elsewhere")  # and the working directory is another one
    assert main(["export", "--run", "copy/steer", "--out", "copy/export"]) == 0
    assert main(["eval", "--policy", "copy/steer", "--trials", "1", "--max-trials", "1", "--out", "copy/ev",
                 "--no-progress"]) == 0
    (moved / "base" / "done.json").unlink()  # resume the moved base run from its checkpoint
    assert main(["train-base", "--task", "pick_place", "--config", str(cfg), "--data", "copy/demos.hdf5",
                 "--out", "copy/base", "--resume", "--no-progress"]) == 0
    assert "resumed copy/base at gradient step 4" in capsys.readouterr().out


def test_a_run_moved_alone_falls_back_to_the_absolute_path_it_started_with(tmp_path):
    base = make_base_run(tmp_path / "b" / "base")
    run = runs.RunDir.open(tmp_path / "a" / "steer", {"base": str(base)}, resume=False, kind="steer")
    (tmp_path / "c" / "d").mkdir(parents=True)
    moved = Path(shutil.move(str(run.root), str(tmp_path / "c" / "d" / "steer")))
    assert Path(runs.read_config_dict(moved)["base"]).resolve() == base.resolve()


def test_every_run_records_commit_versions_and_command_line(tmp_path):
    run = runs.RunDir.open(tmp_path / "r", {"task": "pick_place"}, resume=False, kind="base")
    runs.RunDir.open(tmp_path / "r", {"task": "pick_place"}, resume=True, kind="base")
    doc = strict_json(run.provenance_path)
    first, second = doc["sessions"]
    assert first["argv"] == list(sys.argv) and not first["resume"] and second["resume"]
    assert set(first["packages"]) == set(runs.PROVENANCE_PACKAGES)
    assert first["packages"]["numpy"] == np.__version__
    assert len(first["git_commit"].split("-")[0]) == 40 or first["git_commit"] == "unknown"
    assert runs.git_commit(tmp_path) == "unknown"  # outside a git checkout
    # the CPU decides `decoder_precision: auto`: a run records what it ran on
    assert first["cpu"]["bf16_matmul"] == low_precision_decoder("auto") and first["cpu"]["cores"] == os.cpu_count()
    assert first["cpu"]["model"]


# --- best checkpoint ---------------------------------------------------------------------------------------------
def test_checkpointer_keeps_the_best_score(tmp_path):
    ck = runs.Checkpointer(tmp_path)
    assert ck.save_best(10, 0.5, {"agent": {"w": 1}})
    assert not ck.save_best(20, 0.5, {"agent": {"w": 2}})  # a tie keeps the earlier
    assert not ck.save_best(30, float("nan"), {"agent": {"w": 3}})
    assert ck.save_best(40, 0.75, {"agent": {"w": 4}})
    assert not ck.save_best(50, 0.25, {"agent": {"w": 5}})
    state = runs.load_checkpoint(ck.best())
    assert state["step"] == 40 and state["agent"] == {"w": 4} and ck.best_score() == 0.75
    ck.save(60, {"x": 1})
    ck.save(70, {"x": 1})
    ck.save(80, {"x": 1})
    assert ck.best() is not None, "pruning old numbered checkpoints must keep best.pt"


@pytest.mark.slow
def test_steering_keeps_the_best_evaluated_agent_and_export_eval_can_choose_it(tmp_path, monkeypatch, capsys):
    import lpds_sim.evaluation as evaluation
    from lpds_sim.cli import main

    scores = iter([0.75, 0.25])  # the first periodic evaluation (env step 0) is the best one

    def fake_grid(*args, **kwargs):
        return {"success_rate": next(scores), "mean_return": 0.0, "n_success": 0, "n_trials": 8}

    monkeypatch.setattr(evaluation, "evaluate_grid", fake_grid)
    base = make_base_run(tmp_path / "base")
    small = tmp_path / "small.yaml"
    small.write_text("batch_size: 8\nhidden: 32\n")
    out = tmp_path / "steer"
    assert main(["train-steer", "--base", str(base), "--config", str(small), "--env-steps", "48", "--n-envs", "1",
                 "--warmup-steps", "16", "--eval-every", "100000", "--ckpt-every", "1000", "--out", str(out),
                 "--no-progress"]) == 0
    assert strict_json(out / "checkpoints" / "best.json") == {"step": 0, "score": 0.75}
    assert main(["export", "--run", str(out), "--checkpoint", "best", "--out", str(tmp_path / "xb")]) == 0
    assert strict_json(tmp_path / "xb" / "parity.json")["checkpoint"].endswith("best.pt")
    ckpt = runs.Checkpointer(out / "checkpoints").latest()
    assert main(["export", "--run", str(out), "--checkpoint", str(ckpt), "--out", str(tmp_path / "xc")]) == 0
    monkeypatch.undo()
    assert main(["eval", "--policy", str(out), "--checkpoint", "best", "--trials", "1", "--max-trials", "1",
                 "--out", str(tmp_path / "ev"), "--no-progress"]) == 0
    capsys.readouterr()
    assert main(["export", "--run", str(base), "--checkpoint", "best", "--out", str(tmp_path / "xd")]) == 2
    assert "base run" in capsys.readouterr().err
    # the base and steer runs moved together: the steer run resumes (here: is found finished) from the new place
    moved = tmp_path / "moved"
    moved.mkdir()
    for name in ("base", "steer"):
        shutil.move(str(tmp_path / name), str(moved / name))
    assert main(["train-steer", "--base", str(moved / "base"), "--config", str(small), "--env-steps", "48",
                 "--n-envs", "1", "--warmup-steps", "16", "--eval-every", "100000", "--ckpt-every", "1000",
                 "--out", str(moved / "steer"), "--resume", "--no-progress"]) == 0
    assert "already finished" in capsys.readouterr().out
    # a larger budget extends the finished run from its last checkpoint, with its replay and counters
    assert main(["train-steer", "--base", str(moved / "base"), "--config", str(small), "--env-steps", "80",
                 "--n-envs", "1", "--warmup-steps", "16", "--eval-every", "100000", "--ckpt-every", "1000",
                 "--out", str(moved / "steer"), "--resume", "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert "extending it to 80" in printed and "resumed" in printed and "at env step 48" in printed
    assert strict_json(moved / "steer" / "done.json")["env_steps"] == 80


def test_interrupted_eval_saves_a_partial_grid(tmp_path, monkeypatch, capsys):
    import lpds_core.grid_protocol as gp
    from lpds_sim.cli import main

    real, calls = gp.run_episode, []

    def interrupted_on_the_third(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(gp, "run_episode", interrupted_on_the_third)
    assert main(["eval", "--policy", "random", "--trials", "1", "--out", str(tmp_path / "e"), "--no-progress"]) == 130
    assert "partial grid (2 of 8 trials)" in capsys.readouterr().err
    doc = strict_json(tmp_path / "e" / "grid_results.json")
    assert doc["partial"] and doc["stopped"] == "interrupted" and doc["total"] == 2


def test_image_demos_train_on_the_encoder_keys_only(tmp_path):
    """An image demo file that also holds the privileged 'state' trains; the layout check knows image keys."""
    from lpds_sim.cli import main
    from lpds_sim.demos_io import Episode, write_demos

    rng = np.random.default_rng(0)
    eps = [Episode({"rgb": rng.integers(0, 255, (5, 3, 84, 84), dtype=np.uint8),
                    "depth": rng.uniform(0, 1, (5, 1, 84, 84)).astype(np.float32),
                    "proprio": rng.normal(size=(5, 8)).astype(np.float32),
                    "state": rng.normal(size=(5, 18)).astype(np.float32)},
                   rng.uniform(-1, 1, (5, 4)).astype(np.float32), np.zeros(5, np.float32), np.zeros(5, bool))
           for _ in range(2)]
    data = write_demos(tmp_path / "img.hdf5", eps, {"task": "pick_place", "env_kwargs": {"obs_mode": "image"}},
                       {"task": "pick_place"})
    cfg = tiny_base_yaml(tmp_path)
    assert main(["train-base", "--task", "pick_place", "--obs", "image", "--config", str(cfg), "--data", str(data),
                 "--out", str(tmp_path / "b"), "--no-progress"]) == 0
    from lpds_core.checkpoint import read_metadata

    assert sorted(read_metadata(tmp_path / "b" / "backbone.safetensors")["obs_spec"]) == ["depth", "proprio", "rgb"]
