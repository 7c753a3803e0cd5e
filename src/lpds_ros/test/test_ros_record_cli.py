"""`lpds record`: flags from the schema, one-line refusals before ROS starts, the keyboard reader."""
from __future__ import annotations

import io
import sys
from pathlib import Path

import numpy as np
import pytest

PLUGIN = "lpds_ros.cli_record"


@pytest.fixture
def lpds(monkeypatch, capsys, tmp_path):
    """`lpds ...` in this process (the CLI's own main: one-line errors, exit codes); `record` is added to the
    `lpds.commands` entry points, so the test also runs before lpds_ros is reinstalled."""
    import lpds_sim.cli as cli

    plugins = cli._plugin_modules
    monkeypatch.setattr(cli, "_plugin_modules", lambda: sorted(set(plugins()) | {PLUGIN}))
    monkeypatch.chdir(tmp_path)

    def run(*args, stdin=""):
        monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
        try:
            rc = cli.main(list(args))
        except SystemExit as exc:  # --help
            rc = exc.code
        out = capsys.readouterr()
        return rc, out.out, out.err

    return run


def _scripted_file(path: Path) -> None:
    from lpds_core.demos_io import Episode, write_demos

    ep = Episode({"state": np.zeros((3, 18), np.float32)}, np.zeros((3, 4)), np.zeros(3), np.zeros(3, bool))
    write_demos(path, [ep], {"task": "pick_place", "env_kwargs": {"obs_mode": "state"}}, {"task": "pick_place"})


def test_record_refuses_in_one_line_what_it_must_not_write(tmp_path, lpds):
    foreign = tmp_path / "scripted.hdf5"
    _scripted_file(foreign)
    before = foreign.read_bytes()
    (tmp_path / "bad.yaml").write_text("- [unclosed\n")
    cases = [
        (["--out", "d.hdf5", "--ros-params", "bad.yaml"], "is not a ROS parameters YAML"),
        (["--out", str(foreign)], "was not written by `lpds record`"),
        (["--out", str(tmp_path)], "is a folder"),
        (["--out", "bad.yaml"], "exists and is not a demo file"),
        (["--out", "d.hdf5", "--rate", "0"], "rate"),
        (["--out", "d.hdf5", "--task", "stack"], "task"),
        (["--out", "d.hdf5", "--ros-params", "nope.yaml"], "does not exist"),
    ]
    for args, why in cases:
        rc, out, err = lpds("record", *args)
        lines = err.strip().splitlines()
        assert rc == 2, (args, out, err)
        assert len(lines) == 1 and lines[0].startswith("error: ") and why in lines[0], (args, err)
    assert foreign.read_bytes() == before


def test_record_other_layout_is_refused_and_q_quits(tmp_path, lpds):
    pytest.importorskip("rclpy")
    from lpds_ros.recorder_core import EpisodeBuffer, layout_for, save_episode, to_episode

    layout = layout_for("pick_place", "state", 10.0, 0.03)
    buf = EpisodeBuffer()
    for k in range(5):
        buf.add("ee_pose", 0.1 * k, (np.zeros(3), np.array([1.0, 0, 0, 0])))
        buf.add("gripper", 0.1 * k, 0.08)
        buf.add("task_state", 0.1 * k, np.zeros(18, np.float32))
        buf.add("action", 0.1 * k + 0.01, np.array([0, 0, 0, 1.0]))
    out = tmp_path / "demos.hdf5"
    save_episode(out, to_episode(buf.resample(layout, 0.3), layout), layout)
    rc, _, err = lpds("record", "--out", str(out), "--obs", "image")
    assert rc == 2 and "obs_keys" in err and "another --out" in err, err
    # the same layout: the recorder starts, appends nothing, and quits on q (stdin is not a terminal: one line)
    before = out.read_bytes()
    rc, stdout, err = lpds("record", "--out", str(out), "--input", "none", stdin="q\n")
    assert rc == 0, stdout + err
    assert "1 already there" in stdout and "0 episodes saved this session" in stdout, stdout
    assert out.read_bytes() == before
    rc, stdout, _ = lpds("record", "--help")
    for flag in ("--task", "--out", "--obs", "--rate", "--n-demos", "--input", "--max-gap", "--ros-params"):
        assert flag in stdout
