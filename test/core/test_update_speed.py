"""What the update's speed work may and may not change: the bf16 decoder copy stays close to float32 on real
states, LP-DS decodes once per update with shared_decode (twice without), the actor's critic pass leaves no
weight gradients, DSRL-NA's batched distillation equals the step-by-step one, and first-k chunk execution."""
from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch

from lpds_core.agents import make_agent
from lpds_core.agents.base import low_precision_decoder
from lpds_core.checkpoint import load_backbone
from lpds_core.chunking import ActionChunkWrapper
from lpds_core.critics import TwinQ
from lpds_core.errors import ConfigError


def _hopper():
    from lpds_sim.benchmarks.gym_bases import shipped_base
    from lpds_sim.benchmarks.suites import get_suite

    suite = get_suite("gym")
    env = suite.make_env("hopper")
    obs = np.stack([env.reset(seed=i)[0] for i in range(64)] +
                   [env.step(env.action_space.sample())[0] for _ in range(64)]).astype(np.float32)
    return suite, env, torch.as_tensor(obs)


def test_bf16_update_decoder_stays_close_to_float32():
    from lpds_sim.benchmarks.gym_bases import shipped_base

    _, env, obs = _hopper()
    # diffusion keeps float32 (its DDIM chain amplifies bf16 rounding: see DiffusionPolicy.low_precision)
    diff = load_backbone(str(shipped_base("hopper", "diffusion"))).freeze()
    assert diff.low_precision() is None
    agent = make_agent("lpds", diff, env.observation_space, dict(hidden=(8,), critic_hidden=(8,),
                                                                 decoder_precision="bfloat16"))
    assert agent.update_bf16 is False and agent.update_backbone is agent.backbone
    bb = load_backbone(str(shipped_base("hopper", "flow"))).freeze()
    lowp = bb.low_precision()
    assert lowp is not bb and lowp.net is not bb.net
    assert all(p.dtype == torch.float32 for p in bb.parameters())  # the frozen base itself is untouched
    f = bb.encode(obs)
    torch.manual_seed(0)
    w = torch.randn(len(obs), *bb.noise_shape)
    span = bb.action_norm.high - bb.action_norm.low
    with torch.no_grad():
        err = ((lowp.decode_features(f, w) - bb.decode_features(f, w)) / span).abs()
    # measured on these states: mean 0.2-1 % of the action range, 99th percentile a few % (bf16 keeps 8 mantissa
    # bits)
    q99 = torch.quantile(err.reshape(-1), 0.99)
    assert err.mean() < 2e-2 and q99 < 0.06, (err.mean(), q99)
    # the actor's gradient through the decoder points the same way
    grads = []
    for m in (bb, lowp):
        x = w.clone().requires_grad_(True)
        (m.decode_features(f, x) * torch.linspace(-1, 1, bb.act_dim)).sum().backward()
        grads.append(x.grad.reshape(-1))
    assert torch.nn.functional.cosine_similarity(*grads, dim=0) > 0.99


def test_precision_choice_is_explicit_and_auto_follows_the_cpu():
    assert low_precision_decoder("float32") is False and low_precision_decoder("bfloat16") is True
    assert low_precision_decoder("auto", device="cuda") is True
    assert low_precision_decoder("auto") is bool(torch.cpu._is_avx512_bf16_supported())
    with pytest.raises(ConfigError, match="decoder_precision"):
        low_precision_decoder("fp8")


class _CountingDecoder(torch.nn.Module):
    """Wraps a backbone's decode_features to count decoder passes and their batch sizes."""

    def __init__(self, inner):
        super().__init__()
        self.inner, self.calls = inner, []

    def decode_features(self, features, noise):
        self.calls.append(features.shape[0])
        return self.inner.decode_features(features, noise)


def _batch(agent, obs, n=32):
    h, a = agent.noise_shape
    idx = torch.arange(n)
    return {"obs": obs[idx], "next_obs": obs[idx + 1], "action": torch.zeros(n, h, a), "noise": torch.zeros(n, h, a),
            "reward": torch.ones(n), "discount": torch.full((n,), 0.99), "done": torch.zeros(n)}


@pytest.mark.parametrize("shared", [True, False])
def test_lpds_decodes_once_per_update_with_shared_decode(shared):
    from lpds_sim.benchmarks.gym_bases import shipped_base

    _, env, obs = _hopper()
    bb = load_backbone(str(shipped_base("hopper", "flow"))).freeze()
    h, a = bb.noise_shape
    space = gym.spaces.Box(np.tile(env.action_space.low, (h, 1)), np.tile(env.action_space.high, (h, 1)))
    agent = make_agent("lpds", bb, env.observation_space, dict(hidden=(32,), critic_hidden=(32,),
                                                               shared_decode=shared), space)
    counter = _CountingDecoder(agent.update_backbone)  # what every decode inside an update runs
    agent.__dict__["update_backbone"] = counter
    before = [p.detach().clone() for p in agent.perturbation.parameters()]
    out = agent.update(_batch(agent, obs))
    assert counter.calls == ([32] if shared else [32, 32])
    assert np.isfinite(out["actor_loss"]) and "lambda" in out
    assert any(not torch.equal(p, q) for p, q in zip(before, agent.perturbation.parameters()))  # Δθ stepped


def test_frozen_critic_pass_gives_input_gradients_only():
    q = TwinQ(3, 4, (8,))
    x = torch.randn(5, 4, requires_grad=True)
    q1, q2 = q.frozen(torch.randn(5, 3), x)
    (q1 + q2).sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert all(p.grad is None for p in q.online_parameters())
    assert all(p.requires_grad for p in q.online_parameters())  # restored for the critic's own step


def test_dsrl_na_distils_from_one_batched_decode():
    """Q^A does not change during the distillation, so its k targets come from one decode of k·B rows (plus the
    TD target's decode of B): two decoder passes per update instead of k + 1."""
    from lpds_sim.benchmarks.gym_bases import shipped_base

    _, env, obs = _hopper()
    bb = load_backbone(str(shipped_base("hopper", "flow"))).freeze()
    h, a = bb.noise_shape
    space = gym.spaces.Box(np.tile(env.action_space.low, (h, 1)), np.tile(env.action_space.high, (h, 1)))
    agent = make_agent("dsrl-na", bb, env.observation_space, dict(hidden=(32,), critic_hidden=(32,),
                                                                  noise_critic_steps=3), space)
    counter = _CountingDecoder(agent.update_backbone)  # what every decode inside an update runs
    agent.__dict__["update_backbone"] = counter
    before = [p.detach().clone() for p in agent.noise_critic.online_parameters()]
    out = agent.update(_batch(agent, obs))
    assert counter.calls == [32, 3 * 32] and np.isfinite(out["distill_loss"])
    assert any(not torch.equal(p, q) for p, q in zip(before, agent.noise_critic.online_parameters()))


class _Count(gym.Env):
    observation_space = gym.spaces.Box(-1, 1, (1,), np.float32)
    action_space = gym.spaces.Box(-1, 1, (2,), np.float32)

    def reset(self, *, seed=None, options=None):
        self.t = 0
        return np.zeros(1, np.float32), {}

    def step(self, a):
        self.t += 1
        return np.zeros(1, np.float32), 1.0, False, False, {}


def test_chunk_wrapper_executes_the_first_k_actions():
    env = ActionChunkWrapper(_Count(), horizon=4, gamma=0.5, exec_steps=2)
    env.reset()
    _, r, *_, info = env.step(np.zeros((4, 2), np.float32))
    assert env.env.unwrapped.t == 2 and info["chunk_steps"] == 2
    assert r == pytest.approx(1 + 0.5) and info["chunk_discount"] == pytest.approx(0.25)
    assert env.action_space.shape == (4, 2)  # the policy still proposes whole chunks
    for bad in (0, 5):
        with pytest.raises(ValueError, match="exec_steps"):
            ActionChunkWrapper(_Count(), horizon=4, exec_steps=bad)
