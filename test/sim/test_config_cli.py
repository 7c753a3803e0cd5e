"""The `lpds` commands on top of the config schema: presets, a run's own config read back, `--resume` with only
`--out`, flags named alike everywhere, every default in `--help`, bad values refused as one line."""
from __future__ import annotations

import argparse
from pathlib import Path

import pytest
import yaml

from lpds_core.config import flatten, to_dict
from lpds_sim import runs
from lpds_sim.cli import build_parser, main

ROOT = Path(__file__).resolve().parents[2]
PRESETS = ROOT / "config" / "agents"


def _subparsers() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(sub.choices)


def _steer_cfg(argv: list[str]):
    from lpds_sim.train_steer import SteerConfig

    args = build_parser().parse_args(["train-steer", *argv])
    return runs.config_from_args(SteerConfig, args, kind="steer", base=runs.resume_base(SteerConfig, args, "steer"))


def test_pipeline_preset_reproduces_exactly_what_the_pipeline_passes_to_train_steer(tmp_path):
    from lpds_sim.pipeline import PipelineConfig

    base = str(tmp_path / "base")
    from_preset = _steer_cfg(["--base", base, "--task", "pick_place", "--config",
                              str(PRESETS / "lpds_pipeline.yaml"), "--out", str(tmp_path / "s")])
    assert to_dict(from_preset) == to_dict(PipelineConfig().steer_config(Path(base)))
    # and the steer_config.yaml the pipeline writes for its stage reads back to the same settings
    path = tmp_path / "steer_config.yaml"
    runs.save_config(path, PipelineConfig().steer_config(Path(base)))
    assert to_dict(_steer_cfg(["--config", str(path), "--out", str(tmp_path / "s")])) == to_dict(from_preset)


@pytest.mark.parametrize("preset, algo, checks", [
    ("lpds_paper.yaml", "lpds", {"use_eps": False, "tr_norm": "sum"}),
    ("lpds_pipeline.yaml", "lpds", {"use_eps": True, "eps_form": "shrink", "delta": 8.0, "eta_lambda": 0.001,
                                    "explore_eps_scale": [0.0, 1.0]}),
    ("lpds_a.yaml", "lpds-a", {}),
    ("dsrl_na.yaml", "dsrl-na", {"noise_critic_steps": 10, "utd": 20, "explore_eps_scale": None}),
    ("dsrl_sac.yaml", "dsrl-sac", {"action_magnitude": 1.5, "utd": 20}),
])
def test_every_agent_preset_is_a_valid_steer_config(tmp_path, preset, algo, checks):
    cfg = _steer_cfg(["--base", "b", "--config", str(PRESETS / preset), "--out", str(tmp_path / "s")])
    flat = flatten(cfg)
    assert flat["algo"] == algo
    for k, v in checks.items():
        assert flat[k] == v, k


def test_a_runs_own_config_yaml_is_accepted_back_as_config(tmp_path):
    cfg = _steer_cfg(["--base", "b", "--task", "pick_place", "--delta", "3", "--hidden", "32", "32",
                      "--out", str(tmp_path / "s")])
    run = runs.RunDir.open(tmp_path / "run", cfg, resume=False, kind="steer")
    data = yaml.safe_load(run.config_path.read_text())
    assert data["kind"] == "steer" and data["agent"]["delta"] == 3.0
    data["provenance"] = {"git_commit": "0" * 40, "argv": ["lpds", "train-steer"]}  # what a run may record too
    run.config_path.write_text(yaml.safe_dump(data))
    again = _steer_cfg(["--config", str(run.config_path), "--out", str(tmp_path / "other")])
    # its base path is stored relative to the run folder and read back resolved: the same folder, from anywhere
    assert Path(again.base).resolve() == Path(cfg.base).resolve()
    assert to_dict(again) == {**to_dict(cfg), "base": again.base}
    base_run = tmp_path / "b.yaml"
    base_run.write_text("kind: base\ntask: pick_place\n")
    assert main(["train-steer", "--config", str(base_run), "--out", str(tmp_path / "x")]) == 2


def test_resume_needs_only_out_and_lists_every_conflicting_flag(tmp_path, capsys):
    from pipeline_helpers import make_base_run

    base = make_base_run(tmp_path / "base")
    cfg = _steer_cfg(["--base", str(base), "--task", "pick_place", "--delta", "3", "--env-steps", "100",
                      "--warmup-steps", "0", "--out", str(tmp_path / "s")])
    runs.RunDir.open(tmp_path / "s", cfg, resume=False, kind="steer")
    resumed = _steer_cfg(["--out", str(tmp_path / "s"), "--resume"])
    assert to_dict(resumed) == to_dict(cfg)  # everything from the saved config.yaml
    extended = _steer_cfg(["--out", str(tmp_path / "s"), "--resume", "--env-steps", "200"])
    assert extended.train.env_steps == 200 and extended.agent.delta == 3.0
    rc = main(["train-steer", "--out", str(tmp_path / "s"), "--resume", "--delta", "1", "--seed", "4",
               "--algo", "lpds-a"])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and err.count("\n") == 0
    assert "cannot resume" in err and "delta=3.0 (run) vs 1.0 (now)" in err and "seed=0 (run) vs 4 (now)" in err
    assert "algo='lpds' (run) vs 'lpds-a' (now)" in err


# one name per concept, in every subcommand (the old aliases must be gone)
OLD_NAMES = {"--n", "--obs-mode", "--steps", "--warmup", "--grad-steps", "--trials-per-cell", "--eval-episodes",
             "--critic-state", "--no-critic-state", "--episodes"}
CONCEPTS = {"demos count": "--n-demos", "BC steps": "--bc-steps", "env steps": "--env-steps",
            "warm-up": "--warmup-steps", "trials": "--trials", "observation mode": "--obs"}


def test_flags_are_named_alike_in_every_subcommand():
    subs = _subparsers()
    seen = {flag: [] for flag in CONCEPTS.values()}
    for name, p in subs.items():
        flags = {s for a in p._actions for s in a.option_strings}
        assert not flags & OLD_NAMES, f"lpds {name} still has {flags & OLD_NAMES}"
        for flag in CONCEPTS.values():
            if flag in flags:
                seen[flag].append(name)
    assert {"demos", "pipeline"} <= set(seen["--n-demos"])
    assert {"train-base", "pipeline", "toy"} <= set(seen["--bc-steps"])
    assert {"train-steer", "pipeline", "toy"} <= set(seen["--env-steps"]) & set(seen["--warmup-steps"])
    assert {"eval", "pipeline", "toy"} <= set(seen["--trials"])
    assert {"demos", "eval", "train-base", "pipeline"} <= set(seen["--obs"])
    if "ros-sim" in subs:
        assert "ros-sim" in seen["--obs"] and "ros-sim" in seen["--trials"]


def test_help_of_every_subcommand_shows_every_default():
    for name, p in _subparsers().items():
        for a in p._actions:
            if not a.option_strings or a.dest in ("help", "config") or a.required:
                continue
            shown = (a.help or "") if not isinstance(p.formatter_class, type) or not issubclass(
                p.formatter_class, argparse.ArgumentDefaultsHelpFormatter) else "(default: "
            assert "default" in shown or "(required)" in shown or isinstance(
                a, (argparse._StoreTrueAction, argparse._AppendAction)), \
                f"lpds {name} {a.option_strings[0]}: no default in --help"


@pytest.mark.parametrize("argv, expected", [
    (["demos", "--n-demos", "0", "--out", "x.hdf5"], "--n-demos must be >= 1, got 0"),
    (["eval", "--trials", "0", "--out", "e"], "--trials must be >= 1, got 0"),
    (["eval", "--rows", "-1", "--out", "e"], "--rows must be >= 1, got -1"),
    (["train-steer", "--base", "b", "--utd", "0", "--out", "s"], "--utd must be >= 1"),
    (["train-steer", "--base", "b", "--env-steps", "1000", "--warmup-steps", "1000", "--out", "s"],
     "warmup_steps=1000 is at or above the budget env_steps=1000"),
    (["train-steer", "--base", "b", "--delta", "-1", "--out", "s"], "--delta must be > 0"),
    (["train-base", "--data", "d.hdf5", "--bc-steps", "0", "--out", "b"], "--bc-steps must be >= 1"),
    (["pipeline", "--n-demos", "0"], "--n-demos must be >= 1"),
    (["pipeline", "--trials", "0"], "--trials must be >= 1"),
    (["toy", "--env-steps", "0"], "--env-steps must be >= 1"),
    (["toy", "--n-envs", "2"], "the toy task runs one env"),
])
def test_bad_counts_are_one_line_before_anything_runs(tmp_path, capsys, monkeypatch, argv, expected):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and expected in err and "\n" not in err
    assert list(tmp_path.iterdir()) == []  # refused before anything was written


def test_a_yaml_string_for_a_bool_is_an_error_naming_the_file(tmp_path, capsys):
    f = tmp_path / "c.yaml"
    f.write_text('use_eps: "false"\nlr_actor: 1e-3\n')
    assert main(["train-steer", "--base", "b", "--config", str(f), "--out", str(tmp_path / "s")]) == 2
    err = capsys.readouterr().err
    assert f"{f}: use_eps='false' is not bool" in err
