"""`lpds pipeline` end to end on a tiny budget; a rerun skips every finished stage and redoes a deleted one."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

pytest.importorskip("robotic")

ROOT = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join(str(ROOT / "src" / p) for p in ("lpds_core", "lpds_sim"))}
TINY = ["--n-demos", "2", "--bc-steps", "40", "--env-steps", "400", "--eval-every", "400", "--warmup-steps", "200",
        "--trials", "1", "--eval-trials", "1", "--deploy-noise-scales", "0.5", "1"]


def _pipeline(out: Path, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "lpds_sim.cli", "pipeline", "--task", "pick_place", "--out",
                           str(out), *TINY, *extra], env=ENV, cwd=out.parent, capture_output=True, text=True,
                          timeout=400)


@pytest.mark.slow
def test_pipeline_runs_end_to_end_and_rerun_skips_finished_stages(tmp_path):
    out = tmp_path / "pipe"
    first = _pipeline(out)
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    for name in ("demos.hdf5", "base/done.json", "steer/done.json", "export/decoder.onnx",
                 "export/perturbation.onnx", "eval/base/grid_results.json", "eval/steered/grid_results.json",
                 "steer/plots/success_return.png", "steer/plots/lambda_delta.png"):
        assert (out / name).is_file(), name
    report = (out / "report.md").read_text()
    assert "| base (flow, torch) |" in report and "/8 |" in report and "parity" in report
    assert json.loads((out / "export" / "parity.json").read_text())["max_abs_diff"] <= 1e-4
    steer_cfg = yaml.safe_load((out / "steer" / "config.yaml").read_text())  # the pipeline's LP-DS settings arrived
    assert (steer_cfg["agent"]["use_eps"], steer_cfg["agent"]["eps_form"], steer_cfg["agent"]["delta"],
            steer_cfg["train"]["explore_eps_scale"]) == (True, "shrink", 8.0, [0.0, 1.0])
    assert "Δθ(s, ε) = h(s) − g(s)⊙ε" in report
    choice = json.loads((out / "deploy" / "choice.json").read_text())  # the temperature, chosen on its own grids
    assert sorted(choice["successes"]) == ["0.5", "1"] and choice["checkpoint"] == "best"
    assert json.loads((out / "export" / "parity.json").read_text())["noise_scale"] == choice["noise_scale"]
    assert "Deployed: the best checkpoint" in report
    assert "![eval/grid_base_vs_steered.png](eval/grid_base_vs_steered.png)" in report  # the pictures, 2 GIFs each
    for name in ("base", "steered"):
        assert f"![eval/{name}/trajectories.png]" in report
        assert sorted(p.name for p in (out / "eval" / name / "videos").glob("*.gif")) == ["trial_000.gif",
                                                                                           "trial_001.gif"]

    shutil.rmtree(out / "eval" / "steered")
    second = _pipeline(out)
    assert second.returncode == 0, second.stdout[-3000:] + second.stderr[-3000:]
    for stage in ("demos", "base", "steer", "deploy", "export", "eval-base"):
        assert f"{stage}] skipped" in second.stdout
    assert "eval-steered] running" in second.stdout and "report] running" in second.stdout
    assert "$ lpds train-" not in second.stdout

    # another deploy temperature: exported and graded again, nothing trained again
    redeploy = _pipeline(out, "--deploy-noise-scales", "1")
    assert redeploy.returncode == 0, redeploy.stdout[-3000:] + redeploy.stderr[-3000:]
    for stage in ("demos", "base", "steer", "eval-base"):
        assert f"{stage}] skipped" in redeploy.stdout
    for stage in ("deploy", "export", "eval-steered", "report"):
        assert f"{stage}] running" in redeploy.stdout
    assert json.loads((out / "export" / "parity.json").read_text())["noise_scale"] == 1.0

    changed = _pipeline(out, "--delta", "0.3")
    assert changed.returncode == 2 and "delta" in changed.stderr
