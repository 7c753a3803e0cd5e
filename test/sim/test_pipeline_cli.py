"""CLI-level errors of the training commands that need no simulator: bad config keys, bad run folders."""
from __future__ import annotations

import pytest

from lpds_sim.cli import main


@pytest.mark.parametrize("command", ["train-base", "train-steer", "pipeline"])
def test_unknown_config_key_is_a_clear_error(tmp_path, capsys, command):
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text("seed: 1\nbogus_key: 3\n")
    rc = main([command, "--config", str(cfg), "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err
    assert rc == 2
    assert "'bogus_key'" in err and "valid keys are:" in err and "seed" in err


def test_train_steer_rejects_a_folder_that_is_not_a_base_run(tmp_path, capsys):
    rc = main(["train-steer", "--base", str(tmp_path), "--algo", "lpds", "--delta", "0.05", "--env-steps", "10",
               "--warmup-steps", "0",
               "--out", str(tmp_path / "steer")])
    assert rc == 2
    assert "not a run folder" in capsys.readouterr().err


def test_train_base_rejects_missing_demo_file(tmp_path, capsys):
    rc = main(["train-base", "--task", "pick_place", "--data", str(tmp_path / "nope.hdf5"), "--out",
               str(tmp_path / "b")])
    assert rc == 2
    assert "does not exist" in capsys.readouterr().err
