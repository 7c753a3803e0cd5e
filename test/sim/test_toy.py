"""Toy multi-goal task, its demonstrations, and the `lpds toy` command end to end (short run)."""
from __future__ import annotations

import json
import subprocess
import sys

import gymnasium as gym
import numpy as np
import pytest

from lpds_sim.toy import ENV_ID, MultiGoalEnv, reward_map
from lpds_sim.toy.demos import make_demos


def test_env_is_registered_and_passes_the_gymnasium_checker():
    from gymnasium.utils.env_checker import check_env
    env = gym.make(ENV_ID)
    check_env(env.unwrapped, skip_render_check=True)
    obs, _ = env.reset(seed=0)
    assert np.linalg.norm(obs) < 0.1  # starts near the origin


def test_four_equal_peaks_and_clear_errors():
    env = MultiGoalEnv()
    peaks = reward_map(env.goals, env.goals, env.reward_sigma)
    assert np.allclose(peaks, peaks[0]) and peaks[0] == pytest.approx(1.0, abs=1e-6)
    assert reward_map(np.zeros(2), env.goals, env.reward_sigma) < 0.01
    env.reset(seed=0)
    with pytest.raises(ValueError, match="shape"):
        env.step(np.zeros(3))
    with pytest.raises(ValueError, match="NaN"):
        env.step(np.array([np.nan, 0.0]))


def test_demos_reach_all_four_goals_but_imperfectly():
    env = MultiGoalEnv()
    demos = make_demos(40, seed=0)
    ends = np.array([env.goal_index(o[-1] + env.max_step * a[-1]) for o, a in demos])
    assert set(ends.tolist()) >= {0, 1, 2, 3}
    rets = np.array([reward_map(o[1:], env.goals, env.reward_sigma).sum() for o, _ in demos])
    # the straight full-speed path to a goal earns far more than the operator does
    env.reset(seed=0)
    best = 0.0
    for _ in range(env.max_steps):
        d = env.goals[0] - env.pos
        best += env.step(d / max(np.linalg.norm(d), 1e-9) * min(1.0, np.linalg.norm(d) / env.max_step))[1]
    assert rets.mean() < 0.75 * best


@pytest.mark.slow
def test_lpds_toy_short_run_writes_metrics_and_figures(tmp_path):
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "lpds_sim.cli", "toy", "--algo", "lpds", "--delta", "0.05", "--env-steps", "320",
           "--seed", "0", "--out", str(out), "--trials", "40", "--eval-every", "160", "--bc-steps", "150",
           "--warmup-steps", "100", "--cache-dir", str(tmp_path / "cache"), "--no-progress"]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    m = json.loads((out / "metrics.json").read_text())
    for k in ("return_base", "return_final", "success_final", "entropy_base", "entropy_final"):
        assert np.isfinite(m[k]), k
    assert len(m["mode_fractions"]) == 4 and 0.0 <= sum(m["mode_fractions"]) <= 1.0
    assert m["history"]["lambda"] and len(m["history"]["lambda"]) == len(m["history"]["delta_sq"])
    assert "sum over all dims" in m["trust_region"]
    for png in ("rollouts.png", "mode_coverage.png", "training.png"):
        assert (out / png).stat().st_size > 5000
    assert "trust region" in res.stdout  # the constraint choice is printed with every run


def test_toy_dppo_runs_on_a_diffusion_base_and_leaves_it_untouched(tmp_path):
    """`lpds toy --algo dppo` in miniature: a tiny diffusion base (the project's BC), two DPPO updates, metrics and
    the rollouts panel; the experiment itself refuses a changed base (toy_experiment's weight digest)."""
    from lpds_core.diffusion import DiffusionPolicy
    from lpds_sim.toy.base_policy import toy_base_policy
    from lpds_sim.toy.experiment import base_kind, run_toy

    assert base_kind("dppo") == "diffusion" and base_kind("lpds") == "flow"
    bb, path = toy_base_policy(cache_dir=tmp_path, progress=False, kind="diffusion", n_demos=8, bc_steps=30,
                               hidden=32, n_layers=2)
    assert isinstance(bb, DiffusionPolicy) and bb.num_train_steps == 20 and path.name.startswith("toy_diffusion_")
    m = run_toy("dppo", bb, steps=160, seed=0, out=tmp_path / "run", eval_episodes=16, eval_every=80,
                coverage_episodes=8, config={"rollout_steps": 20, "ppo_batch_size": 100, "ppo_epochs": 2,
                                                    "warmup_steps": 0},  # (on-policy: no warm-up)
                progress=False)
    assert m["algo"] == "dppo" and np.isfinite(m["return_final"]) and np.isfinite(m["entropy_final"])
    assert len(m["history"]["approx_kl"]) == 2  # 160 env steps = 40 chunks = two rollouts of 20
    assert (tmp_path / "run" / "rollouts.png").stat().st_size > 5000


def test_dppo_preset_reads_as_a_toy_and_a_train_steer_config():
    """config/agents/dppo.yaml (DPPO's Gym fine-tuning settings) is valid for both commands that take it."""
    from pathlib import Path

    from lpds_core.config import resolve
    from lpds_sim.toy.experiment import ToyConfig
    from lpds_sim.train_steer import SteerConfig

    preset = Path(__file__).resolve().parents[2] / "config" / "agents" / "dppo.yaml"
    toy = resolve(ToyConfig, preset, {})
    assert toy.algo == "dppo" and toy.agent.ft_denoising_steps == 10 and toy.agent.ppo_batch_size == 5000
    assert toy.agent.critic_hidden == (256, 256, 256) and toy.agent.gamma == pytest.approx(0.99 ** 0.25, abs=1e-4)
    steer = resolve(SteerConfig, preset, {"base": "runs/base"})
    assert steer.algo == "dppo" and steer.agent.lr_actor == pytest.approx(1e-4)
