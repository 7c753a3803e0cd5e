"""The one steering loop (lpds_core.training.run_steering) on a vector env: schedule of updates, evaluations and
checkpoints, warm-up with the base policy, final observations of finished episodes, resume from the counters."""
from __future__ import annotations

import gymnasium as gym
import numpy as np
import torch

from lpds_core.agents import make_agent
from lpds_core.chunking import ActionChunkWrapper
from lpds_core.replay import ReplayBuffer
from lpds_core.training import LoopConfig, LoopState, run_steering
from steering_helpers import TinyDecoder

H = 4


def _envs(n: int = 2):
    from lpds_sim.toy import MultiGoalEnv

    fns = [lambda: ActionChunkWrapper(MultiGoalEnv(max_steps=16), H, 0.99) for _ in range(n)]
    return gym.vector.SyncVectorEnv(fns, autoreset_mode=gym.vector.AutoresetMode.SAME_STEP)


class Sink:
    def __init__(self):
        self.rows: list[tuple[int, str, dict]] = []
        self.ckpts: list[LoopState] = []

    def log(self, step, group, values):
        self.rows.append((step, group, dict(values)))

    def checkpoint(self, state):
        self.ckpts.append(state)


def _agent(env):
    return make_agent("lpds", TinyDecoder(), env.single_observation_space, {"hidden": (16,), "critic_hidden": (16,)},
                      env.single_action_space)


def test_one_loop_schedule_on_a_vector_env():
    torch.manual_seed(0)
    envs = _envs(2)
    agent = _agent(envs)
    loop = LoopConfig(env_steps=160, warmup_steps=32, utd=3, batch_size=8, n_envs=2, eval_every=64, ckpt_every=48,
                      seed=0)
    replay = ReplayBuffer(1000, agent.noise_shape, seed=0)
    evals: list[int] = []
    sink = Sink()
    st = run_steering(envs, agent, loop, replay, evaluate=lambda s: evals.append(s) or {"success": 0.5}, sink=sink,
                      progress=False, log_every=2)
    # 2 envs × 4 steps per vector step: 160 env steps = 20 vector steps = 40 chunks, all in the replay
    assert st.env_steps == 160 and st.chunks == 40 and len(replay) == 40
    # updates: utd × n_envs per vector step once warm-up (32 steps = 4 vector steps) is over: they run during
    # vector steps 5..20, while the envs execute them
    assert st.updates == 3 * 2 * (20 - 4)
    assert agent.updates == st.updates
    assert evals == [0, 64, 128, 160]  # at the start, every eval_every, and at the end
    assert [c.env_steps for c in sink.ckpts] == [48, 96, 144, 160]
    assert [c.updates for c in sink.ckpts][-1] == st.updates
    train_rows = [r for r in sink.rows if r[1] == "train"]
    assert train_rows and all(np.isfinite(r[2]["critic_loss"]) for r in train_rows)
    assert st.episodes == len([r for r in sink.rows if r[1] == "episode"]) == 160 // 16  # 16-step episodes
    assert [r for r in sink.rows if r[1] == "eval"][-1] == (160, "eval", {"success": 0.5})


def test_warm_up_acts_with_the_base_policy_and_resume_continues_the_counters():
    torch.manual_seed(0)
    envs = _envs(1)
    agent = _agent(envs)
    loop = LoopConfig(env_steps=64, warmup_steps=64 - 4, utd=1, batch_size=4, n_envs=1, eval_every=1000,
                      ckpt_every=1000)
    replay = ReplayBuffer(100, agent.noise_shape, seed=0)
    st = run_steering(envs, agent, loop, replay, progress=False)
    assert st.updates == 1  # with the last chunk, the first to start at the warm-up's end (60 → 64)
    # during warm-up the stored noise is plain ε ~ N(0, I) (no perturbation): unit variance over the chunks
    w = replay.noise[: len(replay) - 1]
    assert 0.6 < float(np.std(w)) < 1.4
    # a finished episode (16 steps = 4 chunks) stores its final observation as next_obs, not the reset one
    (key,) = replay._obs
    obs, nxt = replay._obs[key][: len(replay)], replay._next_obs[key][: len(replay)]
    for i in range(len(replay) - 1):
        same = np.array_equal(nxt[i], obs[i + 1])
        assert same == ((i + 1) % 4 != 0), i
    evals: list[int] = []
    again = run_steering(envs, agent, LoopConfig(env_steps=96, warmup_steps=0, utd=1, batch_size=4, n_envs=1,
                                                 eval_every=32, ckpt_every=1000),
                         replay, evaluate=lambda s: evals.append(s), state=st, progress=False)
    assert again.env_steps == 96 and again.updates == 1 + 8 and len(replay) == 24
    assert evals == [96]  # a resumed run does not evaluate again at its start; the final evaluation runs


class _RecordingAsyncEnv(gym.vector.AsyncVectorEnv):
    """An AsyncVectorEnv that logs when the loop hands it a step and when it collects the result."""

    events: list[str]

    def step_async(self, actions):
        self.events.append("send")
        return super().step_async(actions)

    def step_wait(self, **kwargs):
        self.events.append("wait")
        return super().step_wait(**kwargs)


def _fns(n: int = 2):
    from lpds_sim.toy import MultiGoalEnv

    return [lambda: ActionChunkWrapper(MultiGoalEnv(max_steps=16), H, 0.99) for _ in range(n)]


def test_updates_run_while_async_envs_step_and_give_the_sync_numbers():
    """With an AsyncVectorEnv the agent updates between sending the chunks and collecting the result (the env
    time hides behind the updates); a SyncVectorEnv runs the same schedule, so both train the same weights."""
    loop = LoopConfig(env_steps=96, warmup_steps=32, utd=2, batch_size=8, n_envs=2, eval_every=1000,
                      ckpt_every=1000, seed=0)
    weights = {}
    for kind in ("sync", "async"):
        torch.manual_seed(0)
        if kind == "sync":
            envs = gym.vector.SyncVectorEnv(_fns(), autoreset_mode=gym.vector.AutoresetMode.SAME_STEP)
        else:
            envs = _RecordingAsyncEnv(_fns(), autoreset_mode=gym.vector.AutoresetMode.SAME_STEP)
            envs.events = []
        agent = _agent(envs)
        if kind == "async":
            update = agent.update

            def logged(batch, _update=update):
                envs.events.append("update")
                return _update(batch)

            agent.update = logged
        replay = ReplayBuffer(1000, agent.noise_shape, seed=0)
        st = run_steering(envs, agent, loop, replay, progress=False)
        weights[kind] = [p.detach().clone() for p in agent.perturbation.parameters()]
        if kind == "async":
            ev = envs.events
            # 12 vector steps; the last 8 (after the 4 of warm-up) each carry utd × n_envs = 4 updates in flight
            assert ev[:8] == ["send", "wait"] * 4
            assert ev[8:] == (["send"] + ["update"] * 4 + ["wait"]) * 8
        envs.close()
        assert st.updates == 4 * 8
    assert all(torch.equal(a, b) for a, b in zip(weights["sync"], weights["async"]))
