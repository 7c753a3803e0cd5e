"""`lpds eval --noise-scale c`: the noise-temperature floor graded by the same command as any policy."""
from __future__ import annotations

import numpy as np
import pytest

from lpds_core.errors import RunError

from pipeline_helpers import make_base_run, make_steer_run


def _chunks(policy, env, n: int = 3) -> list[np.ndarray]:
    obs, _ = env.reset(seed=0)
    out = []
    for _ in range(n):
        policy.reset()
        out.append(np.stack([policy(obs) for _ in range(4)]))  # one decoded chunk (H = 4)
    return out


@pytest.fixture(scope="module")
def env():
    from lpds_sim.evaluation import make_env

    e = make_env("pick_place", "state")
    yield e
    e.close()


@pytest.mark.parametrize("kind", ["base", "steer", "export"])
def test_noise_scale_zero_is_deterministic_and_one_is_the_default(kind, env, tmp_path):
    from lpds_sim.policies import resolve_policy

    base = make_base_run(tmp_path / "base")
    path = base
    if kind in ("steer", "export"):
        path = make_steer_run(tmp_path / "steer", base)
    if kind == "export":
        from lpds_sim.cli import main

        assert main(["export", "--run", str(path), "--out", str(tmp_path / "export")]) == 0
        path = tmp_path / "export"
    zero = _chunks(resolve_policy(str(path), env, "pick_place", seed=3, noise_scale=0.0), env)
    assert all(np.allclose(c, zero[0]) for c in zero[1:])  # w = 0 (+ Δ): one chunk per observation
    default = _chunks(resolve_policy(str(path), env, "pick_place", seed=3), env)
    one = _chunks(resolve_policy(str(path), env, "pick_place", seed=3, noise_scale=1.0), env)
    assert np.allclose(default, one) and not np.allclose(default[0], default[1])  # c = 1 is the policy as deployed
    half = _chunks(resolve_policy(str(path), env, "pick_place", seed=3, noise_scale=0.5), env)
    assert not np.allclose(half, one) and not np.allclose(half[0], zero[0])


def test_a_dsrl_run_grades_as_deployed_and_refuses_a_noise_scale(env, tmp_path):
    from lpds_sim.policies import resolve_policy

    run = make_steer_run(tmp_path / "steer", make_base_run(tmp_path / "base"), algo="dsrl-na")
    assert np.isfinite(_chunks(resolve_policy(str(run), env, "pick_place", seed=3), env)).all()
    with pytest.raises(RunError, match="dsrl-na run"):
        resolve_policy(str(run), env, "pick_place", seed=3, noise_scale=0.5)


def test_noise_scale_needs_a_generative_policy(env):
    from lpds_sim.policies import resolve_policy

    with pytest.raises(RunError, match="--noise-scale"):
        resolve_policy("scripted", env, "pick_place", noise_scale=0.5)


@pytest.mark.parametrize("value", ["-0.5", "nan", "inf"])
def test_bad_noise_scale_is_one_line(value, tmp_path, capsys):
    from lpds_sim.cli import main

    rc = main(["eval", "--policy", "scripted", "--out", str(tmp_path / "ev"), "--noise-scale", value])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc != 0 and len(err) == 1 and "--noise-scale" in err[0]
    assert not (tmp_path / "ev").exists()
