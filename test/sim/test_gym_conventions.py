"""Gymnasium conventions for every env lpds_sim ships: registered by `import lpds_sim` (without importing `robotic`),
Gymnasium's own `check_env` and passive checker silent, bounded observation spaces that hold every observation, and
bit-exact repeatability (same seed + same actions -> identical observations, across resets and env instances).

Warnings are errors here, so a new Gymnasium warning fails the test.
"""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import lpds_sim

RAI_TASKS = ["pick_place", "mug_hang"]


def _rai():
    pytest.importorskip("robotic")


def _run(script: str, tmp_path, timeout: int = 180) -> str:
    out = subprocess.run([sys.executable, "-c", textwrap.dedent(script)], cwd=tmp_path, capture_output=True,
                         text=True, timeout=timeout, env=dict(os.environ))
    assert out.returncode == 0, f"rc={out.returncode}\n{out.stdout}\n{out.stderr[-3000:]}"
    return out.stdout


def _rollout(env: gym.Env, seed: int, n: int = 25) -> np.ndarray:
    """Observations of one seeded episode under a fixed random action stream (the gripper closes and opens)."""
    obs, _ = env.reset(seed=seed)
    rng = np.random.default_rng(123)
    out = [obs]
    for _ in range(n):
        out.append(env.step(rng.uniform(-1, 1, env.action_space.shape).astype(np.float32))[0])
    return np.array(out)


def _checked(make):
    """Build an env and run Gymnasium's checks on it with every warning an error; returns the gym.make env."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        env = make()
        env.reset(seed=0)                               # the passive checker (gym.make) checks the first reset ...
        env.step(env.action_space.sample())             # ... and the first step
        check_env(env.unwrapped, skip_render_check=True)  # rendering: test_image_envs_pass_check_env_...
    return env


# ---------------------------------------------------------------- registration

def test_import_lpds_sim_registers_every_env_without_robotic(tmp_path):
    """`import lpds_sim` alone registers all ids, even with `robotic` unimportable (entry points are strings)."""
    out = _run(f"""
        import sys
        sys.modules["robotic"] = None        # any `import robotic` now raises ImportError
        import gymnasium as gym
        import lpds_sim
        ids = {sorted(lpds_sim.ENV_IDS.values())!r}
        assert all(i in gym.registry for i in ids), [i for i in ids if i not in gym.registry]
        assert not any(m.startswith("lpds_sim.rai") or m == "torch" for m in sys.modules), sorted(sys.modules)
        env = gym.make("lpds_sim/MultiGoal-v0")   # the toy env needs nothing else
        env.reset(seed=0)
        print("REGISTERED", len(ids))
    """, tmp_path, timeout=60)
    assert "REGISTERED 3" in out


def test_registered_ids_cover_the_task_registry():
    from lpds_sim.rai import ENV_IDS as rai_ids
    from lpds_sim.tasks import TASKS
    from lpds_sim.toy import ENV_ID

    ids = set(lpds_sim.ENV_IDS.values())
    assert {t.env_id for t in TASKS.values()} | set(rai_ids.values()) | {ENV_ID} == ids
    for env_id in ids:
        spec = gym.spec(env_id)
        assert isinstance(spec.entry_point, str)  # a string: registering imports nothing
        assert not spec.disable_env_checker       # gym.make wraps every env in the passive checker


# ---------------------------------------------------------------- check_env, no warnings

def test_toy_env_passes_check_env_without_warnings():
    env = _checked(lambda: gym.make(lpds_sim.ENV_IDS["multigoal"]))
    assert env.observation_space.is_bounded("both")
    a, b = _rollout(env, 5), _rollout(gym.make(lpds_sim.ENV_IDS["multigoal"]), 5)
    assert np.array_equal(a, b) and np.all([o in env.observation_space for o in a])


@pytest.mark.parametrize("task", RAI_TASKS)
def test_rai_state_env_passes_check_env_without_warnings(task):
    _rai()
    env = _checked(lambda: gym.make(lpds_sim.ENV_IDS[task], obs_mode="state"))
    try:
        space = env.observation_space
        assert space.is_bounded("both") and space.dtype == np.float32
        # every observation of an episode that moves the arm around and grasps lies inside the space
        obs = _rollout(env, 1, n=40)
        assert all(o in space for o in obs)
    finally:
        env.close()


IMAGE_CHECK_SCRIPT = """
    import warnings
    import gymnasium as gym
    import numpy as np
    from gymnasium.utils.env_checker import check_env
    import lpds_sim
    warnings.simplefilter("error")
    cases = [("pick_place", dict(obs_mode="image", sensor_noise=True, privileged_state=True)),
             ("mug_hang", dict(obs_mode="image")),
             ("pick_place", dict(obs_mode="state"))]   # its rgb_array render mode is checked here (needs a display)
    for task, kw in cases:
        env = gym.make(lpds_sim.ENV_IDS[task], **kw)
        env.reset(seed=0)
        env.step(env.action_space.sample())
        check_env(env.unwrapped)                # includes the render check: a new env per declared render mode
        space = env.observation_space
        if kw["obs_mode"] == "image":
            assert all(s.is_bounded("both") for s in space.values()), space
            assert space["rgb"].dtype == np.uint8 and space["depth"].high.max() == 3.0
            def roll():
                rng = np.random.default_rng(0)
                seq = [env.reset(seed=1)[0]]
                for _ in range(5):
                    seq.append(env.step(rng.uniform(-1, 1, env.action_space.shape))[0])
                return seq
            first, second = roll(), roll()
            assert all(o in space for o in first + second)
            for o1, o2 in zip(first, second):   # image mode (sensor noise included) is bit-exact too
                assert all(np.array_equal(o1[k], o2[k]) for k in o1), task
        env.close()
        print("CHECKED", task, kw["obs_mode"], flush=True)
    # depth noise must not push a pixel past the far plane: a near far plane (1.2 m) cuts through the table
    from lpds_sim.rai.camera import CameraSpec
    env = gym.make(lpds_sim.ENV_IDS["pick_place"], obs_mode="image", sensor_noise=True,
                   camera=CameraSpec(z_range=(0.1, 1.2)))
    obs, _ = env.reset(seed=0)
    assert (obs["depth"] > 1.1).any() and obs in env.observation_space, obs["depth"].max()
    env.close()
    print("DEPTH-IN-RANGE", flush=True)
"""


@pytest.mark.display
def test_image_envs_pass_check_env_without_warnings(tmp_path):
    """Image mode of both RAI tasks (sensor noise and privileged state included) and the rgb_array render mode."""
    _rai()
    out = _run(IMAGE_CHECK_SCRIPT, tmp_path)
    assert out.count("CHECKED") == 3 and "DEPTH-IN-RANGE" in out, out


# ---------------------------------------------------------------- bounds

def test_rai_observations_are_clipped_into_their_bounds():
    """A cube placed off the table (x = 3 m) still gives an observation inside the space, at the scene bound."""
    _rai()
    from lpds_sim.rai import scene
    from lpds_sim.rai.panda_env import EE_MARGIN

    env = gym.make(lpds_sim.ENV_IDS["pick_place"])
    try:
        u = env.unwrapped
        low, high = u.observation_space.low, u.observation_space.high
        L = u.state_layout
        assert np.allclose(low[L["ee_pos"]], np.array(u.ee_low) - EE_MARGIN)
        assert np.allclose(high[L["ee_pos"]], np.array(u.ee_high) + EE_MARGIN)
        assert low[L["gripper_width"]] == 0 and np.isclose(high[L["gripper_width"]], 0.08)
        for k in ("ee_quat", "obj_quat"):
            assert np.all(low[L[k]] == -1) and np.all(high[L[k]] == 1)
        obs, _ = env.reset(seed=0, options={"object_xy": (3.0, 0.3)})
        assert obs in u.observation_space
        assert obs[L["obj_pos"]][0] == np.float32(scene.SCENE_HIGH[0])
    finally:
        env.close()


# ---------------------------------------------------------------- determinism

@pytest.mark.parametrize("task", RAI_TASKS)
def test_same_seed_same_actions_bit_exact_across_resets_and_instances(task):
    """Seeded resets rebuild the PhysX Simulation: the same seed and actions give identical observations after an
    episode that grasped (setState alone leaves PhysX caches and the gripper reference behind: up to 1e-3 apart),
    and in a second env instance (whose home pose KOMO solves again)."""
    _rai()
    env = gym.make(lpds_sim.ENV_IDS[task])
    a = _rollout(env, 7)
    b = _rollout(env, 7)
    c = _rollout(env, 8)
    env.close()
    env2 = gym.make(lpds_sim.ENV_IDS[task])
    d = _rollout(env2, 7)
    env2.close()
    assert np.array_equal(a, b), np.abs(a - b).max()
    assert np.array_equal(a, d), np.abs(a - d).max()
    assert np.abs(a - c).max() > 1e-3   # another seed is another episode


def test_seeded_reset_rebuilds_only_when_alone_and_unseeded_reset_stays_fast():
    """Unseeded resets keep the Simulation (fast path for training); seeded ones rebuild it, but not while another
    env of the process holds one (RAI's Simulation destructor releases every PhysX material of the process)."""
    _rai()
    env = gym.make(lpds_sim.ENV_IDS["pick_place"]).unwrapped
    other = gym.make(lpds_sim.ENV_IDS["pick_place"]).unwrapped
    try:
        env.reset(seed=0)
        assert env.sim_builds == 1
        env.reset()
        assert env.sim_builds == 1             # unseeded: the same Simulation
        env.reset(seed=0)
        assert env.sim_builds == 2             # seeded and alone: rebuilt
        other.reset(seed=0)                    # now a second Simulation lives in this process
        env.reset(seed=0)
        assert env.sim_builds == 2             # seeded, not alone: kept (no destruction while another lives)
    finally:
        other.close()
        env.close()
