"""The config schema (lpds_core.config): one typed home per setting, values converted or refused with one clear
error naming where, key, value and expected type, flags derived from the fields, value checks up front."""
from __future__ import annotations

import argparse
from dataclasses import dataclass

import pytest
import yaml

from lpds_core import config as schema
from lpds_core.agents.base import AgentConfig
from lpds_core.errors import ConfigError
from lpds_core.training import LoopConfig


@dataclass
class Run:
    """A run with both sections, as train-steer's config has them."""

    name: str = schema.setting("r", "run name")
    agent: AgentConfig = schema.nested(AgentConfig)
    train: LoopConfig = schema.nested(LoopConfig)


def from_yaml(text: str, where: str = "f.yaml") -> Run:
    return schema.build(Run, yaml.safe_load(text), where)


def test_yaml_scientific_notation_is_a_float_though_pyyaml_reads_a_string():
    raw = yaml.safe_load("lr_actor: 1e-3\nenv_steps: 1e5\n")
    assert raw["lr_actor"] == "1e-3"  # PyYAML 1.1: no dot, so a string — the schema must convert it
    cfg = from_yaml("lr_actor: 1e-3\nenv_steps: 1e5\n")
    assert cfg.agent.lr_actor == 0.001 and isinstance(cfg.agent.lr_actor, float)
    assert cfg.train.env_steps == 100_000 and isinstance(cfg.train.env_steps, int)


@pytest.mark.parametrize("text, key, expected", [
    ('use_eps: "false"', "use_eps", "bool"),   # a string is never silently True
    ("use_eps: 0", "use_eps", "bool"),
    ("utd: 1.5", "utd", "int"),
    ("utd: true", "utd", "int"),
    ("delta: abc", "delta", "float"),
    ("delta: .nan", "delta", "float"),
    ('hidden: "64"', "hidden", "a list of int"),
    ("hidden: [64, x]", "hidden", "a list of int"),
    ("explore_eps_scale: 0.5", "explore_eps_scale", "a list of float or null"),
])
def test_wrong_types_are_one_error_naming_file_key_value_and_type(text, key, expected):
    with pytest.raises(ConfigError) as err:
        from_yaml(text, "my.yaml")
    msg = str(err.value)
    assert msg.startswith("my.yaml: ") and f"{key}=" in msg and f"is not {expected}" in msg
    assert "\n" not in msg


def test_lists_tuples_optional_and_sections():
    cfg = from_yaml("agent:\n  hidden: [64, 32]\n  critic_obs: null\n  target_entropy: none\n"
                    "train:\n  explore_eps_scale: [0, 1]\n")
    assert cfg.agent.hidden == (64, 32) and cfg.agent.critic_obs is None and cfg.agent.target_entropy is None
    assert cfg.train.explore_eps_scale == [0.0, 1.0]
    flat = from_yaml("hidden: [64, 32]\ntarget_entropy: null\nexplore_eps_scale: [0, 1]\n")  # flat keys: one home
    assert flat == cfg


def test_unknown_keys_list_the_valid_ones_also_inside_a_section():
    with pytest.raises(ConfigError, match=r"f.yaml \[agent\]: unknown config key 'detla'; valid keys are: .*delta"):
        from_yaml("agent:\n  detla: 1\n")
    with pytest.raises(ConfigError, match="unknown config keys 'a', 'b'"):
        from_yaml("a: 1\nb: 2\n")
    with pytest.raises(ConfigError, match="section 'agent' must be a mapping"):
        from_yaml("agent: 3\n")


@pytest.mark.parametrize("text, match", [
    ("utd: 0", "utd must be >= 1, got 0"),
    ("env_steps: -5", "env_steps must be >= 1"),
    ("batch_size: 0", "batch_size must be >= 1"),
    ("delta: 0", "delta must be > 0"),
    ("delta: -1", "delta must be > 0"),
    ("noise_critic_steps: 0", "noise_critic_steps must be >= 1"),
    ("gamma: 1.5", "gamma must be <= 1"),
    ("warmup_steps: -1", "warmup_steps must be >= 0"),
    ("tr_norm: max", "tr_norm='max' is not valid; choose one of sum, per_dim"),
    ("vector: threads", "choose one of sync, async"),
    ("hidden: [64, 0]", "hidden must be >= 1"),
])
def test_bad_values_are_refused_up_front(text, match):
    with pytest.raises(ConfigError, match=match):
        from_yaml(text)


def test_warmup_at_or_above_the_budget_is_refused():
    for warm in (1000, 5000):
        with pytest.raises(ConfigError, match=rf"warmup_steps={warm} is at or above the budget env_steps=1000"):
            from_yaml(f"env_steps: 1000\nwarmup_steps: {warm}\n")
    assert from_yaml("env_steps: 1000\nwarmup_steps: 999\n").train.warmup_steps == 999
    assert from_yaml("env_steps: 1000\nwarmup_steps: 0\n").train.warmup_steps == 0  # 0 = no warm-up


def test_each_setting_has_one_home_and_a_doc():
    names = schema.check_schema(Run)
    assert names["delta"] == ("agent", "delta") and names["utd"] == ("train", "utd")
    for cls in (AgentConfig, LoopConfig):
        for path, f, _ in schema.leaves(cls):
            assert schema.doc_of(f), f"{cls.__name__}.{f.name} has no doc"
    # the loop's settings are not the agent's: no second default to disagree with
    assert not {"utd", "batch_size", "warmup_steps", "buffer_capacity"} & {f for f in names if
                                                                           names[f][0] == "agent"}

    @dataclass
    class Twice:
        utd: int = schema.setting(3, "a second home for the loop's utd")
        train: LoopConfig = schema.nested(LoopConfig)

    with pytest.raises(TypeError, match="'utd' is declared twice"):
        schema.check_schema(Twice)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser()
    p.add_argument("--config")
    schema.add_flags(p, Run)
    return p


def _from_argv(argv: list[str], file=None) -> Run:
    args = _parser().parse_args(argv)
    return schema.resolve(Run, file or args.config, schema.given_flags(Run, args))


def test_every_field_is_a_flag_with_its_default_in_help():
    p = _parser()
    text = " ".join(p.format_help().split())
    for path, f, _ in schema.leaves(Run):
        flag = schema.flag_name(f)
        assert flag in text, flag
    assert "--delta X trust-region budget δ on E‖Δθ(s)‖² (lpds, lpds-a) (default: 0.05)" in text
    assert "--hidden N [N ...] hidden sizes of the perturbation / SAC actor MLP (default: 256 256)" in text
    assert "--use-eps, --no-use-eps" in text and "(default: off)" in text
    helps = [a.help for a in p._actions if a.dest not in ("help", "config")]
    assert all("(default: " in h for h in helps)


def test_flags_convert_and_win_over_the_file(tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text("agent:\n  delta: 2\n  use_eps: true\ntrain:\n  utd: 3\n")
    cfg = _from_argv(["--config", str(f), "--delta", "1e-2", "--no-use-eps", "--hidden", "8", "8",
                      "--target-entropy", "none", "--explore-eps-scale", "0", "1"])
    assert cfg.agent.delta == 0.01 and cfg.agent.use_eps is False and cfg.train.utd == 3
    assert cfg.agent.hidden == (8, 8) and cfg.agent.target_entropy is None
    assert cfg.train.explore_eps_scale == [0.0, 1.0]
    assert _from_argv([]) == Run()  # no flag given: the defaults, untouched


@pytest.mark.parametrize("argv, match", [
    (["--utd", "abc"], "command line: --utd='abc' is not int"),
    (["--utd", "0"], "command line: --utd must be >= 1"),
    (["--delta", "0"], "command line: --delta must be > 0"),
    (["--tr-norm", "l2"], "command line: --tr-norm='l2' is not valid"),
    (["--env-steps", "100", "--warmup-steps", "100"], "warmup_steps=100 is at or above the budget env_steps=100"),
])
def test_bad_flags_name_the_flag(argv, match):
    with pytest.raises(ConfigError, match=match):
        _from_argv(argv)


def test_saved_config_round_trips_with_its_kind_and_provenance():
    cfg = _from_argv(["--delta", "3", "--hidden", "16", "16"])
    saved = {"kind": "steer", "provenance": {"git": "abc"}, **schema.to_dict(cfg)}
    again = yaml.safe_load(yaml.safe_dump(saved))
    assert schema.build(Run, schema.strip_meta(again, "steer", "run/config.yaml")) == cfg
    with pytest.raises(ConfigError, match="config of a 'steer' run; this command takes 'base' settings"):
        schema.strip_meta(again, "base", "run/config.yaml")


def test_conflicts_list_every_differing_key():
    a, b = _from_argv(["--delta", "1", "--seed", "1"]), _from_argv(["--delta", "2", "--seed", "3", "--utd", "5"])
    bad = schema.conflicts(a, b, ("delta", "seed", "tau"))
    assert bad == ["delta=1.0 (run) vs 2.0 (now)", "seed=1 (run) vs 3 (now)"]


def test_agent_config_from_dict_uses_the_schema():
    assert AgentConfig.from_dict({"lr_actor": "3e-3", "hidden": [4, 4]}).lr_actor == 0.003
    with pytest.raises(ConfigError, match="agent config: use_eps='yes' is not bool"):
        AgentConfig.from_dict({"use_eps": "yes"})
