"""Run-folder infrastructure: configs, atomic checkpoints, RNG restore, scalar truncation on resume."""
from __future__ import annotations

import dataclasses
import random

import numpy as np
import pytest
import torch

from lpds_sim import runs


@dataclasses.dataclass
class Cfg:
    task: str = "pick_place"
    steps: int = 10
    lr: float = 1e-3


def test_unknown_config_key_names_key_and_valid_ones(tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text("task: pick_place\nsteps: 5\nlearning_rate: 0.1\n")
    with pytest.raises(runs.ConfigError) as err:
        runs.merge_config(Cfg, Cfg(), f, {})
    msg = str(err.value)
    assert "'learning_rate'" in msg and "lr" in msg and "steps" in msg and "task" in msg


def test_config_file_and_overrides_merge(tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text("steps: 5\n")
    cfg = runs.merge_config(Cfg, Cfg(), f, {"lr": 0.5, "task": None})
    assert cfg == Cfg(task="pick_place", steps=5, lr=0.5)


def test_checkpoint_round_trip_with_numpy_and_rng(tmp_path):
    gen = np.random.default_rng(3)
    gen.random(5)
    state = {"arr": np.arange(6, dtype=np.float32).reshape(2, 3), "t": torch.ones(3), "rng": runs.rng_state(),
             "gen": runs.generator_state(gen), "nested": {"k": [1, 2.5, "x"]}}
    expected_next = (random.random(), np.random.rand(), torch.rand(1).item(), gen.random())
    ck = runs.Checkpointer(tmp_path / "ck")
    ck.save(7, state)
    loaded = ck.load_latest()
    assert loaded["step"] == 7 and loaded["nested"] == {"k": [1, 2.5, "x"]}
    assert torch.equal(loaded["arr"], torch.arange(6, dtype=torch.float32).reshape(2, 3))
    runs.set_rng_state(loaded["rng"])
    gen2 = np.random.default_rng(0)
    runs.set_generator_state(gen2, loaded["gen"])
    assert (random.random(), np.random.rand(), torch.rand(1).item(), gen2.random()) == expected_next


def test_checkpointer_keeps_newest(tmp_path):
    ck = runs.Checkpointer(tmp_path, keep=2)
    for s in (1, 2, 3):
        ck.save(s, {"v": s})
    assert [p.name for p in ck.paths()] == ["ckpt_0000000002.pt", "ckpt_0000000003.pt"]
    assert ck.load_latest()["v"] == 3


@pytest.mark.parametrize("damage", ["truncate", "flip", "garbage"])
def test_corrupt_checkpoint_gives_clear_error(tmp_path, damage):
    path = tmp_path / "ckpt_0000000001.pt"
    runs.save_checkpoint(path, {"w": torch.randn(100)})
    raw = bytearray(path.read_bytes())
    if damage == "truncate":
        raw = raw[: len(raw) // 2]
    elif damage == "flip":
        raw[-10] ^= 0xFF
    else:
        raw = bytearray(b"not a checkpoint at all")
    path.write_bytes(bytes(raw))
    with pytest.raises(runs.RunCheckpointError, match=r"corrupt|cannot be loaded"):
        runs.load_checkpoint(path)


def test_atomic_write_leaves_no_temp_files(tmp_path):
    runs.atomic_write_json(tmp_path / "a.json", {"x": np.float32(1.5)})
    assert [p.name for p in tmp_path.iterdir()] == ["a.json"]


def test_rundir_refuses_overwrite_and_mismatched_resume(tmp_path):
    root = tmp_path / "run"
    run = runs.RunDir.open(root, Cfg(), resume=False, kind="base")
    runs.RunDir.open(root, Cfg(), resume=False, kind="base")  # no work yet (a failed start): reused
    run.checkpointer().save(1, {"x": 1})
    with pytest.raises(runs.RunError, match="--resume"):
        runs.RunDir.open(root, Cfg(), resume=False, kind="base")
    with pytest.raises(runs.RunError, match="task"):
        runs.RunDir.open(root, Cfg(task="mug_hang"), resume=True, kind="base", must_match=["task"])
    with pytest.raises(runs.RunError, match="'base' run"):
        runs.RunDir.open(root, Cfg(), resume=True, kind="steer")
    runs.RunDir.open(root, Cfg(), resume=True, kind="base", must_match=["task"])


def test_require_run_rejects_other_task_and_unfinished(tmp_path):
    run = runs.RunDir.open(tmp_path / "b", Cfg(task="mug_hang"), resume=False, kind="base")
    with pytest.raises(runs.RunError, match="not finished"):
        runs.require_run(run.root, "base", "mug_hang")
    run.mark_done(ok=True)
    with pytest.raises(runs.RunError, match="task 'mug_hang'.*'pick_place'"):
        runs.require_run(run.root, "base", "pick_place")
    assert runs.require_run(run.root, "base", "mug_hang")["task"] == "mug_hang"


def test_scalar_log_truncates_after_resume_step(tmp_path):
    log = runs.ScalarLog(tmp_path, tensorboard=False)
    for s in range(10):
        log.log(s, "train", loss=s)
    log.close()
    log = runs.ScalarLog(tmp_path, resume_step=4, tensorboard=False)
    log.log(5, "train", loss=50)
    log.close()
    rows = runs.read_scalars(tmp_path, "train")
    assert [r["step"] for r in rows] == [0, 1, 2, 3, 4, 5] and rows[-1]["loss"] == 50
