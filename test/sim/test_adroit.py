"""Adroit (gymnasium-robotics): the envs, the hand's servo/IK, the scripted Relocate operator, its robomimic-style
demos, the cached base and the bench suite's evaluation. Each test takes a second or two."""
from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

pytest.importorskip("gymnasium_robotics")
h5py = pytest.importorskip("h5py")

from lpds_core.errors import ConfigError, DataError  # noqa: E402

from lpds_sim.benchmarks.adroit import TASKS, AdroitSuccess, make_env  # noqa: E402
from lpds_sim.benchmarks.adroit.control import Hand  # noqa: E402
from lpds_sim.benchmarks.adroit.demos import MAKER, load_adroit_demos, make_demos  # noqa: E402
from lpds_sim.benchmarks.adroit.operators import OPERATORS, run_episode, styles  # noqa: E402


@pytest.mark.filterwarnings("ignore:.*is different from the unwrapped version")  # the wrapper is what we check
@pytest.mark.filterwarnings("ignore:.*Box observation space m")  # gymnasium-robotics' own unbounded obs space
@pytest.mark.parametrize("task", sorted(TASKS))
def test_env_passes_check_env(task):
    from gymnasium.utils.env_checker import check_env

    env = make_env(task)
    check_env(env, skip_render_check=True)
    obs, info = env.reset(seed=0)
    assert obs.dtype == np.float32 and env.observation_space.contains(obs)
    assert info["success"] is False and env.spec.max_episode_steps == 200


class _Goal(gym.Env):
    """Reports the goal achieved on every step: D4RL's success needs more than `success_steps` of them."""

    observation_space = gym.spaces.Box(-1.0, 1.0, (2,), np.float64)
    action_space = gym.spaces.Box(-1.0, 1.0, (1,), np.float32)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        return np.zeros(2), {}

    def step(self, action):
        return np.zeros(2), 0.0, False, False, {"success": True}


def test_success_is_d4rls_count_of_goal_steps():
    env = AdroitSuccess(_Goal(), success_steps=3)
    env.reset(seed=0)
    flags = [env.step(np.zeros(1))[4] for _ in range(5)]
    assert [f["success"] for f in flags] == [False, False, False, True, True]
    assert [f["goal_steps"] for f in flags] == [1, 2, 3, 4, 5] and all(f["goal_achieved"] for f in flags)
    env.reset(seed=1)
    assert env.step(np.zeros(1))[4]["goal_steps"] == 1  # the count starts again with every episode


def test_hand_layout_action_scale_and_ik():
    env = make_env("relocate")
    env.reset(seed=0)
    h = Hand(env)
    assert [h.names[i] for i in h.index("ART")] == ["ARTx", "ARTy", "ARTz"]
    assert np.allclose(h.action(h.lo), -1.0) and np.allclose(h.action(h.hi), 1.0)
    assert np.allclose(h.action((h.lo + h.hi) / 2), 0.0, atol=1e-6)
    slides = h.index("ART")
    target = h.site("S_grasp") + np.array([0.05, 0.1, 0.05])
    q = h.ik("S_grasp", target, slides)
    assert np.linalg.norm(h.site_at("S_grasp", slides, q) - target) < 1e-3


def test_relocate_operator_succeeds_in_every_style():
    env = make_env("relocate")
    for style in styles("relocate"):
        for seed in (0, 1):
            ep = run_episode(env, "relocate", seed, style)
            assert ep["success"], f"{style} seed {seed}: goal held on {ep['goal_steps']} steps only"
            assert ep["actions"].shape == (200, 30) and np.abs(ep["actions"]).max() <= 1.0
    with pytest.raises(ConfigError, match="no scripted Adroit operator"):
        run_episode(env, "pen", 0, "direct")


def test_hammer_operator_drives_the_nail_in_every_style():
    env = make_env("hammer")
    for style in styles("hammer"):
        for seed in (100, 101):  # resets outside the tuning seeds 0-15 (the board's height is drawn per reset)
            ep = run_episode(env, "hammer", seed, style)
            assert ep["success"], f"{style} seed {seed}: goal held on {ep['goal_steps']} steps only"
            assert ep["actions"].shape == (200, 26) and np.abs(ep["actions"]).max() <= 1.0


def test_demos_round_trip_and_are_deterministic(tmp_path):
    path = tmp_path / "relocate.hdf5"
    s = make_demos("relocate", 3, seed=0, out=path)
    assert s.n_demos == 3 and s.attempts >= 3 and 0 < s.success_rate <= 1 and s.return_mean > 0
    eps = load_adroit_demos(path)
    assert len(eps) == 3
    for ep in eps:
        assert ep["obs"].shape == (200, 39) and ep["actions"].shape == (200, 30) and ep["dones"][-1]
    from lpds_core.demos_io import load_demos

    demos = load_demos(path)
    meta = demos.meta
    assert meta["maker"] == MAKER and meta["env_args"]["env_name"] == "AdroitHandRelocate-v1"
    assert sorted(meta["masks"]) == sorted(["train", "valid", *styles("relocate")])
    assert all(ep.next_obs is not None and ep.states is not None for ep in demos)
    # replaying a demo's actions from its reset seed reproduces it (the file is a faithful record)
    env = make_env("relocate")
    obs, _ = env.reset(seed=int(demos[0].attrs["seed"]))
    assert np.allclose(obs, demos[0].obs["state"][0])
    for a in demos[0].actions[:20]:
        obs, *_ = env.step(a)
    assert np.allclose(obs, demos[0].next_obs["state"][19], atol=1e-5)
    again = make_demos("relocate", 3, seed=0, out=tmp_path / "again.hdf5")
    assert np.array_equal(load_adroit_demos(again.path)[2]["actions"], eps[2]["actions"])
    with pytest.raises(DataError, match="already exists"):
        make_demos("relocate", 1, seed=0, out=path)
    foreign = tmp_path / "foreign.hdf5"
    with h5py.File(foreign, "w") as f:
        f.create_group("data")
    with pytest.raises(DataError, match="not written by"):
        make_demos("relocate", 1, seed=0, out=foreign, overwrite=True)


def test_suite_base_is_cached_and_evaluate_reports_success_and_return(tmp_path):
    from lpds_sim.benchmarks.adroit.base import adroit_base_policy
    from lpds_sim.benchmarks.suites import get_suite

    suite = get_suite("adroit")
    assert suite.tasks == tuple(OPERATORS) and suite.metric == "success"
    tiny = dict(n_demos=2, bc_steps=3, hidden=16, n_layers=1, num_steps=2)
    model, path = adroit_base_policy("relocate", cache_dir=tmp_path, progress=False, **tiny)
    stamp = path.stat().st_mtime_ns
    _, again = adroit_base_policy("relocate", cache_dir=tmp_path, progress=False, **tiny)
    assert again == path and path.stat().st_mtime_ns == stamp  # found, not retrained
    base = suite.load_base(str(path))
    h, a = base.noise_shape
    assert (h, a) == (4, 30)

    import torch

    def act(obs):
        with torch.no_grad():
            o = torch.as_tensor(obs, dtype=torch.float32)
            return np.clip(base.decode(o, torch.randn(len(o), h, a)).numpy(), -1.0, 1.0)

    res = suite.evaluate("relocate", act, n_episodes=3, seed=0)
    assert set(res) == {"return", "success", "length"} and res["length"] == 200.0
    assert np.isfinite(res["return"]) and res["success"] in (0.0, 1 / 3, 2 / 3, 1.0)
    obs = suite.entropy_observations("relocate", 4, seed=0)
    assert obs.shape == (4, 39) and obs.dtype == np.float32 and not np.allclose(obs[0], obs[1])
