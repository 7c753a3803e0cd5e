"""The pipeline's deploy stage: the steered policy's temperature is chosen on the steering world's grid (its own
seeds, never reality's), the export is made at it, and a changed choice re-exports and re-grades only what depends
on it. The grid commands are faked here; test_pipeline_e2e runs them for real."""
from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from lpds_core.config import build
from lpds_core.errors import ConfigError


def _finished_steer(root: Path) -> None:
    (root / "steer").mkdir(parents=True)
    (root / "steer" / "done.json").write_text("{}")
    (root / "steer" / "config.yaml").write_text("kind: steer\n")


def _fake_grids(monkeypatch, successes: dict[str, int], n: int = 40) -> list[tuple[str, ...]]:
    """`lpds eval` writes a grid with `successes[c]` successes for --noise-scale c; every call is recorded."""
    from lpds_sim import pipeline

    calls: list[tuple[str, ...]] = []

    def fake(*args: str) -> None:
        calls.append(args)
        assert args[0] == "eval"
        c = args[args.index("--noise-scale") + 1]
        out = Path(args[args.index("--out") + 1])
        out.mkdir(parents=True, exist_ok=True)
        world = args[args.index("--world") + 1] if "--world" in args else "emulation"
        meta = {"policy": args[args.index("--policy") + 1], "world": pipeline.world_label(world),
                "noise_scale": float(c)}
        (out / "grid_results.json").write_text(json.dumps({"successes": successes[c], "total": n, "meta": meta}))

    monkeypatch.setattr(pipeline, "lpds", fake)
    return calls


def test_the_best_temperature_on_the_steering_worlds_grid_is_deployed_ties_to_the_more_diverse(tmp_path,
                                                                                             monkeypatch):
    from lpds_sim import pipeline

    root = tmp_path / "run"
    _finished_steer(root)
    (root / pipeline.IDENTIFIED_FILE).write_text("world_name: identified\ncommand_latency_steps: [1, 2]\n")
    cfg = build(pipeline.PipelineConfig, {"world": "reality", "steer_world": "identified", "seed": 2,
                                          "deploy_noise_scales": [1.0, 0.25, 0.5, 0.5]})
    assert cfg.deploy_candidates == [0.25, 0.5, 1.0]  # sorted, once each
    calls = _fake_grids(monkeypatch, {"0.25": 30, "0.5": 30, "1": 21})
    doc = pipeline.choose_deploy(cfg, root)
    assert doc["noise_scale"] == 0.5 and doc["successes"] == {"0.25": 30, "0.5": 30, "1": 21}  # the tie: larger c
    assert doc["checkpoint"] == "best" and doc["world"] == "identified"
    for c, call in zip(("0.25", "0.5", "1"), calls):
        # the run's own checkpoint, in the world it trained in, on seeds the final grids (20000 + seed) do not use
        assert call[call.index("--world") + 1] == str(root / pipeline.IDENTIFIED_FILE)
        assert call[call.index("--seed") + 1] == "30002" and call[call.index("--checkpoint") + 1] == "best"
        assert call[call.index("--noise-scale") + 1] == c and "reality" not in call
        assert call[call.index("--policy") + 1] == str(root / "steer")
    assert pipeline.choice_valid(cfg, root)
    assert "c = 0.5" in " ".join(pipeline.deploy_description(root))

    # graded candidates are kept: choosing again (e.g. after a crash) grades nothing twice
    calls.clear()
    assert pipeline.choose_deploy(cfg, root)["noise_scale"] == 0.5 and calls == []
    # other candidates or another checkpoint make the choice stale; a newer steer run does too
    assert not pipeline.choice_valid(build(pipeline.PipelineConfig, {"deploy_noise_scales": [0.5, 1.0]}), root)
    assert not pipeline.choice_valid(build(pipeline.PipelineConfig, {"deploy_noise_scales": [1.0, 0.25, 0.5],
                                                                     "deploy_checkpoint": "latest"}), root)
    later = time.time() + 5
    os.utime(root / "steer" / "done.json", (later, later))
    assert not pipeline.choice_valid(cfg, root)


def test_one_candidate_is_taken_ungraded_and_other_algorithms_deploy_as_trained(tmp_path, monkeypatch):
    from lpds_sim import pipeline

    root = tmp_path / "run"
    _finished_steer(root)
    calls = _fake_grids(monkeypatch, {})
    doc = pipeline.choose_deploy(build(pipeline.PipelineConfig, {"deploy_noise_scales": [0.5]}), root)
    assert (doc["noise_scale"], doc["successes"], calls) == (0.5, {}, [])
    cfg = build(pipeline.PipelineConfig, {"algo": "dsrl-na"})  # samples its own noise: nothing to scale
    assert cfg.deploy_candidates == [1.0] and pipeline.choose_deploy(cfg, root)["noise_scale"] == 1.0 and calls == []
    assert "ε ~ N(0, I)" in " ".join(pipeline.deploy_description(root))


@pytest.mark.parametrize("bad", [[], [-0.5], [float("inf")]])
def test_bad_deploy_temperatures_are_one_clear_error(bad):
    from lpds_sim import pipeline

    with pytest.raises(ConfigError, match="deploy_noise_scales"):
        build(pipeline.PipelineConfig, {"deploy_noise_scales": bad})


def test_the_export_stage_follows_the_choice_and_a_new_export_makes_its_grades_stale(tmp_path, monkeypatch):
    from lpds_sim import pipeline

    root = tmp_path / "run"
    cfg = build(pipeline.PipelineConfig, {"deploy_noise_scales": [0.25, 1.0]})
    stages: list = []
    monkeypatch.setattr(pipeline, "run_stages", lambda st, force=(): stages.extend(st) or [])
    pipeline.run_pipeline(cfg, root)
    _finished_steer(root)
    (root / "steer" / "checkpoints").mkdir()
    _fake_grids(monkeypatch, {"0.25": 33, "1": 20})
    pipeline.choose_deploy(cfg, root)
    export = root / "export"
    export.mkdir()
    (export / "decoder.onnx").write_bytes(b"x")

    def parity(c: float, ckpt: str) -> None:
        (export / "parity.json").write_text(json.dumps({"format": "lpds-export", "passed": True, "noise_scale": c,
                                                        "checkpoint": str(root / "steer" / ckpt),
                                                        "files": ["decoder.onnx"]}))

    parity(1.0, "checkpoints/best.pt")
    assert not pipeline.export_matches(root)  # made at another temperature
    parity(0.25, "agent.pt")
    assert not pipeline.export_matches(root)  # of another checkpoint
    parity(0.25, "checkpoints/best.pt")
    assert pipeline.export_matches(root)
    grid = root / "eval" / "steered"
    grid.mkdir(parents=True)
    (grid / "grid_results.json").write_text(json.dumps({"total": 40, "meta": {"policy": str(export),
                                                                              "world": "emulation"}}))
    assert pipeline.eval_valid(grid, 40, export, since=export / "parity.json")
    later = time.time() + 5
    os.utime(export / "parity.json", (later, later))  # re-exported after the grade
    assert not pipeline.eval_valid(grid, 40, export, since=export / "parity.json")
    assert pipeline.eval_valid(grid, 40, export)  # (the base's grades do not depend on the export)

    calls: list = []
    monkeypatch.setattr(pipeline, "lpds", lambda *a: calls.append(a))
    next(s for s in stages if s.name == "export").run()
    assert calls[-1][:1] == ("export",) and calls[-1][-4:] == ("--checkpoint", "best", "--noise-scale", "0.25")


def test_changing_the_deploy_settings_of_a_started_pipeline_is_allowed(tmp_path, monkeypatch):
    from lpds_sim import pipeline

    monkeypatch.setattr(pipeline, "run_stages", lambda st, force=(): [])
    root = tmp_path / "run"
    pipeline.run_pipeline(build(pipeline.PipelineConfig, {}), root)
    (root / "demos.hdf5").write_bytes(b"")
    pipeline.run_pipeline(build(pipeline.PipelineConfig, {"deploy_noise_scales": [1.0], "deploy_checkpoint":
                                                          "latest"}), root)
    assert "latest" in (root / "pipeline.yaml").read_text()


def test_a_larger_budget_extends_the_steer_run_of_a_started_pipeline(tmp_path, monkeypatch):
    """--env-steps above the finished run's reopens the steer stage (train-steer --resume extends the run); a
    smaller budget cannot be had from a longer run and stays an error."""
    from lpds_core.errors import RunError
    from lpds_sim import pipeline

    stages: list = []
    monkeypatch.setattr(pipeline, "run_stages", lambda st, force=(): stages.extend(st) or [])
    root = tmp_path / "run"
    pipeline.run_pipeline(build(pipeline.PipelineConfig, {"env_steps": 10000}), root)
    _finished_steer(root)
    (root / "steer" / "done.json").write_text(json.dumps({"env_steps": 10004}))
    steer = next(s for s in stages if s.name == "steer")
    assert steer.valid()
    stages.clear()
    pipeline.run_pipeline(build(pipeline.PipelineConfig, {"env_steps": 20000}), root)
    steer = next(s for s in stages if s.name == "steer")
    assert not steer.valid()   # 10004 < 20000: the stage runs again
    calls: list = []
    monkeypatch.setattr(pipeline, "lpds", lambda *a: calls.append(a))
    steer.run()
    assert calls[-1][0] == "train-steer" and calls[-1][-1] == "--resume"
    assert "env_steps: 20000" in (root / "steer_config.yaml").read_text()
    with pytest.raises(RunError, match="env_steps"):
        pipeline.run_pipeline(build(pipeline.PipelineConfig, {"env_steps": 8000}), root)
