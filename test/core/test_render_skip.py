"""Chunk execution and grid evaluation skip the renders nobody reads (lpds_core.chunking.render_skipper), and only
where no wrapper in between could change observations or end an episode on stale ones."""
from __future__ import annotations

import gymnasium as gym
import numpy as np

from lpds_core.chunking import ActionChunkWrapper, render_skipper
from lpds_core.grid_protocol import run_episode


class CameraEnv(gym.Env):
    """A 1-D env whose observation is a costly 'image' (a render counter) beside a cheap position."""

    observation_space = gym.spaces.Dict({"img": gym.spaces.Box(0, 1e6, (1,), np.float64),
                                         "pos": gym.spaces.Box(-1e6, 1e6, (1,), np.float64)})
    action_space = gym.spaces.Box(-1, 1, (1,), np.float32)

    def __init__(self, max_steps: int = 10, with_hook: bool = True):
        self.max_steps, self.renders, self._skip = max_steps, 0, False
        if not with_hook:
            self.skip_render = None

    def skip_render(self, on: bool) -> None:
        self._skip = on

    def _obs(self, render: bool):
        if render:
            self.renders += 1
            self._img = np.array([float(self.t)])   # the step it was rendered at
        return {"img": self._img.copy(), "pos": np.array([float(self.t)])}

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return self._obs(True), {}

    def step(self, a):
        self.t += 1
        trunc = self.t >= self.max_steps
        return self._obs(not self._skip or trunc), 0.0, False, trunc, {"collision": False, "success": False}


def test_a_chunk_renders_only_its_last_observation_and_an_early_end():
    env = CameraEnv(max_steps=6)
    w = ActionChunkWrapper(gym.wrappers.PassiveEnvChecker(env), horizon=4)
    w.reset(seed=0)
    obs, *_ = w.step(np.zeros((4, 1), np.float32))
    assert env.renders == 1 + 1 and obs["img"][0] == obs["pos"][0] == 4   # fresh at the chunk's end
    obs, _, _, trunc, info = w.step(np.zeros((4, 1), np.float32))  # ends after 2 of its 4 steps
    assert trunc and info["chunk_steps"] == 2
    assert env.renders == 3 and obs["img"][0] == obs["pos"][0] == 6       # the episode's last step renders
    assert env._skip is False   # left off: a plain env.step outside a chunk renders again
    env.step(np.zeros(1, np.float32))
    assert env.renders == 4


def test_no_skipping_behind_wrappers_that_may_change_or_end_episodes():
    env = CameraEnv()
    assert render_skipper(gym.wrappers.OrderEnforcing(gym.wrappers.PassiveEnvChecker(env))) == env.skip_render
    assert render_skipper(gym.wrappers.TimeLimit(env, 3)) is None   # it would truncate on a stale image
    assert render_skipper(gym.wrappers.TransformObservation(env, lambda o: o, env.observation_space)) is None
    assert render_skipper(CameraEnv(with_hook=False)) is None

    class Recorder(gym.Wrapper):
        keeps_observations = True

    assert render_skipper(Recorder(env)) == env.skip_render
    # behind a TimeLimit every step renders, and the truncating step's image is current
    limited = ActionChunkWrapper(gym.wrappers.TimeLimit(CameraEnv(max_steps=100), 3), horizon=4)
    limited.reset(seed=0)
    obs, _, _, trunc, _ = limited.step(np.zeros((4, 1), np.float32))
    assert trunc and obs["img"][0] == obs["pos"][0] == 3 and limited.unwrapped.renders == 4


class Chunky:
    """A per-step policy that replans every 4 steps and says so."""

    def __init__(self):
        self.k, self.seen = 0, []

    def reset(self):
        self.k = 0

    @property
    def reads_next_obs(self) -> bool:
        return self.k % 4 == 0

    def __call__(self, obs):
        if self.k % 4 == 0:
            self.seen.append((obs["img"][0], obs["pos"][0]))
        self.k += 1
        return np.zeros(1, np.float32)


def test_grid_episodes_render_only_where_the_policy_replans():
    env = CameraEnv(max_steps=10)
    pol = Chunky()
    out = run_episode(env, pol, seed=0)
    assert out["length"] == 10
    assert env.renders == 1 + 2 + 1          # reset, the steps before the replans at 4 and 8, the last step
    assert pol.seen == [(0, 0), (4, 4), (8, 8)]   # every observation a replan reads is fresh
    env.renders = 0
    run_episode(env, pol, seed=0, record=True)   # recording keeps every observation: every step renders
    assert env.renders == 11
    env.renders = 0
    run_episode(env, lambda obs: np.zeros(1, np.float32), seed=0)   # a policy that does not say: every step
    assert env.renders == 11
