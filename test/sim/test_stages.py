"""Stage runner: valid outputs are skipped, interrupted stages rerun, a stage that leaves invalid outputs fails."""
from __future__ import annotations

import pytest

from lpds_sim.stages import Stage, StageError, run_stages


def _file_stage(tmp_path, name, calls, fail_after_write=False):
    path = tmp_path / f"{name}.txt"

    def run():
        calls.append(name)
        path.write_text("ok")
        if fail_after_write:
            raise KeyboardInterrupt  # a kill in the middle of the stage

    return Stage(name, lambda: path.is_file() and path.read_text() == "ok", run)


def test_second_run_skips_everything(tmp_path):
    calls: list[str] = []
    stages = [_file_stage(tmp_path, n, calls) for n in ("a", "b", "c")]
    assert run_stages(stages, log=lambda s: None) == ["a", "b", "c"]
    assert run_stages(stages, log=lambda s: None) == []
    assert calls == ["a", "b", "c"]


def test_rerun_continues_after_interruption(tmp_path):
    calls: list[str] = []
    stages = [_file_stage(tmp_path, "a", calls), _file_stage(tmp_path, "b", calls)]
    (tmp_path / "a.txt").write_text("ok")
    (tmp_path / "b.txt").write_text("half-writ")  # invalid output from a killed run
    assert run_stages(stages, log=lambda s: None) == ["b"]
    assert run_stages(stages, log=lambda s: None, force=("a",)) == ["a"]


def test_stage_with_invalid_outputs_fails_clearly(tmp_path):
    st = Stage("broken", lambda: False, lambda: None)
    with pytest.raises(StageError, match="broken"):
        run_stages([st], log=lambda s: None)


def test_unreadable_output_counts_as_invalid(tmp_path):
    calls: list[str] = []

    def valid():
        if not calls:
            raise OSError("corrupt file")
        return True

    assert run_stages([Stage("x", valid, lambda: calls.append("x"))], log=lambda s: None) == ["x"]
