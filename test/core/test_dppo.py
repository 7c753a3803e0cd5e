"""DPPO's maths against hand computations (denoising-step log-probability, clipped objective, GAE), the frozen base
left untouched, learning on a 1-D bandit, and checkpoint/resume through the one steering loop. Tiny networks;
seconds each."""
from __future__ import annotations

import copy
import hashlib
import io
import math

import gymnasium as gym
import numpy as np
import pytest
import torch

from lpds_core.agents import make_agent
from lpds_core.agents.dppo import clipped_policy_loss, gae
from lpds_core.bc import train_bc
from lpds_core.diffusion import DiffusionPolicy
from lpds_core.errors import ConfigError
from lpds_core.flow_matching import FlowMatchingPolicy
from lpds_core.replay import ReplayBuffer
from lpds_core.training import LoopConfig, LoopState, run_steering, train_steering

TARGET = 0.6  # the bandit's best action


class Bandit(gym.Env):
    """One step per episode, reward −(a − 0.6)²: the optimum is known, the base (BC on a ≈ −0.3) is far from it."""

    observation_space = gym.spaces.Box(-1, 1, (1,), np.float32)
    action_space = gym.spaces.Box(-1, 1, (1,), np.float32)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        return np.array([self.np_random.uniform(-1, 1)], np.float32), {}

    def step(self, a):
        return np.zeros(1, np.float32), float(-(a[0] - TARGET) ** 2), True, False, {}


def _bandit_base() -> DiffusionPolicy:
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    bb = DiffusionPolicy(1, 1, 1, num_train_steps=10, num_steps=5, hidden=32, n_layers=2)
    obs = rng.uniform(-1, 1, (512, 1)).astype(np.float32)
    acts = np.clip(rng.normal(-0.3, 0.25, (512, 1, 1)), -1, 1).astype(np.float32)
    train_bc(bb, obs, acts, steps=300, batch_size=128, lr=3e-3, progress=False)
    return bb.freeze()


@pytest.fixture(scope="module")
def bandit_base() -> DiffusionPolicy:
    return _bandit_base()


BANDIT_CFG = dict(ft_denoising_steps=5, rollout_steps=64, ppo_batch_size=64, lr_actor=1e-3, lr_critic=1e-3,
                  critic_hidden=[32, 32], clip_ploss_coef=0.1, clip_ploss_coef_base=0.1)


def _tiny_base(horizon: int = 1, act_dim: int = 2, num_train_steps: int = 4, num_steps: int = 4) -> DiffusionPolicy:
    torch.manual_seed(1)
    bb = DiffusionPolicy(3, act_dim, horizon, num_train_steps=num_train_steps, num_steps=num_steps, hidden=16,
                         n_layers=2)
    bb.fit_normalizers(torch.randn(64, 3), torch.rand(64, horizon, act_dim) * 2 - 1)
    return bb.freeze()


def _weights_hash(model: torch.nn.Module) -> str:
    h = hashlib.sha256()
    for k, v in sorted(model.state_dict().items()):
        h.update(k.encode())
        h.update(v.detach().cpu().numpy().tobytes())
    return h.hexdigest()


def _hand_logprob(x_next, mu, std) -> float:
    """Per-dimension mean of the Gaussian log-density, each entry clamped to [−5, 2] (the reference's)."""
    vals = [min(2.0, max(-5.0, -0.5 * ((xn - m) / std) ** 2 - math.log(std) - 0.5 * math.log(2 * math.pi)))
            for xn, m in zip(x_next, mu)]
    return sum(vals) / len(vals)


@pytest.mark.parametrize("sampler", ["ddpm", "ddim"])
def test_step_logprob_equals_a_hand_computation(sampler):
    """T = 4, last 2 steps fine-tuned: step j = 0 is chain step i = 2. DDPM: train step t = 1, posterior
    μ = β_t√ᾱ_{t−1}/(1−ᾱ_t)·x̂0 + (1−ᾱ_{t−1})√α_t/(1−ᾱ_t)·x_t, σ² = β_t(1−ᾱ_{t−1})/(1−ᾱ_t). DDIM (eta 1, 4 of 4
    steps, the same t): μ = √ᾱ_prev·x̂0 + √(1−ᾱ_prev−σ²)·ε, σ = η√((1−ᾱ_prev)/(1−ᾱ_t)·(1−ᾱ_t/ᾱ_prev))."""
    bb = _tiny_base()
    agent = make_agent("dppo", bb, None, dict(ft_denoising_steps=2, dppo_sampler=sampler, ddim_eta=1.0,
                                              min_logprob_std=0.05, critic_hidden=[8]))
    acp = [float(v) for v in bb.alphas_cumprod]
    t = 1
    ab, ab_prev = acp[t], acp[t - 1]
    feats = torch.tensor([[0.3, -0.2, 0.5]])
    x = torch.tensor([[0.4, -0.7]])
    with torch.no_grad():
        eps = agent.actor_ft(feats, x, torch.tensor([t / 4.0]))[0].tolist()
    x0 = [max(-1.0, min(1.0, (xi - math.sqrt(1 - ab) * ei) / math.sqrt(ab))) for xi, ei in zip(x[0].tolist(), eps)]
    if sampler == "ddpm":
        beta = 1 - ab / ab_prev
        mu = [beta * math.sqrt(ab_prev) / (1 - ab) * x0i + (1 - ab_prev) * math.sqrt(1 - beta) / (1 - ab) * xi
              for x0i, xi in zip(x0, x[0].tolist())]
        sigma = math.sqrt(beta * (1 - ab_prev) / (1 - ab))
    else:
        sigma = math.sqrt((1 - ab_prev) / (1 - ab) * (1 - ab / ab_prev))
        mu = [math.sqrt(ab_prev) * x0i + math.sqrt(1 - ab_prev - sigma**2) * ei for x0i, ei in zip(x0, eps)]
    std = max(sigma, 0.05)
    # one entry near the mean, one far out (its log-density is clamped at −5)
    x_next = [mu[0] + 0.7 * std, mu[1] - 6.0 * std]
    got = agent.step_logprob(feats, x, torch.tensor([x_next]), torch.tensor([0]))
    assert float(got.detach()) == pytest.approx(_hand_logprob(x_next, mu, std), abs=1e-5)


def test_ddim_chain_without_noise_is_the_base_decode():
    """The chain (eta 0, deterministic) from x_K reproduces the base's own DDIM decode: same coefficients, and the
    fine-tuned copy starts equal to the base's network."""
    bb = _tiny_base(horizon=2, act_dim=2, num_train_steps=20, num_steps=5)
    agent = make_agent("dppo", bb, None, dict(ft_denoising_steps=3, dppo_sampler="ddim", ddim_eta=0.0,
                                              critic_hidden=[8]))
    obs = torch.randn(6, 3)
    feats = agent.features(obs)
    actions, x_start, chain = agent.sample_chain(feats, deterministic=True)
    assert chain.shape == (6, 4, 4)
    with torch.no_grad():
        expected = bb.decode(obs, x_start)
    assert torch.allclose(actions, expected, atol=1e-5)


def test_clipped_objective_has_zero_gradient_outside_the_clip_range():
    c = 0.1
    adv = torch.tensor([1.0, -1.0, 1.0, -1.0, 1.0, -1.0])
    # ratio:            1.3 (A>0, clipped)  0.7 (A<0, clipped)  1.05, 0.95 (inside)  0.7 (A>0)  1.3 (A<0): unclipped side
    ratio = torch.tensor([1.3, 0.7, 1.05, 0.95, 0.7, 1.3])
    logratio = ratio.log().clone().requires_grad_(True)
    clipped_policy_loss(logratio, adv, c).backward()
    g = logratio.grad
    assert g[0] == 0 and g[1] == 0  # outside the range on the side the clip binds: no gradient
    n = len(adv)
    inside = -adv * ratio / n  # d/dlogratio of −A·r / n
    assert torch.allclose(g[2:], inside[2:], atol=1e-6)  # inside, and the pessimistic unclipped side, move
    assert (g[2:] != 0).all()


def test_gae_against_a_hand_computation_with_a_terminal_and_a_truncation():
    """Env 0 terminates at t = 1 (no bootstrap, recursion cut); env 1 is truncated at t = 1 (bootstraps from V of
    its final observation, recursion cut). γ^n discounts per chunk: 0.9, 0.81 (a short chunk), 0.9; λ = 0.5."""
    r = torch.tensor([[1.0, 1.0], [2.0, 2.0], [3.0, 3.0]])
    v = torch.tensor([[0.5, 0.5], [0.4, 0.4], [0.3, 0.3]])
    nv = torch.tensor([[0.4, 0.4], [9.0, 1.0], [0.2, 0.2]])
    d = torch.tensor([[0.9, 0.9], [0.81, 0.81], [0.9, 0.9]])
    term = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 0.0]])
    ended = torch.tensor([[0.0, 0.0], [1.0, 1.0], [0.0, 0.0]])
    adv, ret = gae(r, v, nv, d, term, ended, 0.5)
    # env 0: δ2 = 3 + .9·.2 − .3 = 2.88; δ1 = 2 − .4 = 1.6 (terminal); A0 = (1 + .9·.4 − .5) + .9·.5·1.6 = 1.58
    # env 1: δ1 = 2 + .81·1 − .4 = 2.41 (truncated: bootstraps); A0 = .86 + .45·2.41 = 1.9445
    expected = torch.tensor([[1.58, 1.9445], [1.6, 2.41], [2.88, 2.88]])
    assert torch.allclose(adv, expected, atol=1e-6)
    assert torch.allclose(ret, expected + v, atol=1e-6)


def test_denoising_discount_and_clip_schedule_follow_the_reference():
    agent = make_agent("dppo", _tiny_base(num_train_steps=10, num_steps=5), None,
                       dict(ft_denoising_steps=4, gamma_denoising=0.9, clip_ploss_coef=0.01,
                            clip_ploss_coef_base=0.001, clip_ploss_coef_rate=3.0, critic_hidden=[8]))
    assert torch.allclose(agent.denoising_discounts(), torch.tensor([0.729, 0.81, 0.9, 1.0]))
    t = torch.tensor([0.0, 1 / 3, 2 / 3, 1.0], dtype=torch.float64)
    want = 0.001 + 0.009 * (torch.exp(3 * t) - 1) / (math.exp(3) - 1)
    assert torch.allclose(agent.clip_coefs().double(), want, atol=1e-7)


@pytest.mark.parametrize("sampler", ["ddpm", "ddim"])
def test_training_moves_the_bandit_return_up_and_never_touches_the_base(bandit_base, sampler):
    """DDPM: the last 5 of the base's 10 training steps; DDIM (eta 1): all 5 of its DDIM steps."""
    env = Bandit()
    before_hash = _weights_hash(bandit_base)
    agent = make_agent("dppo", bandit_base, env.observation_space, dict(BANDIT_CFG, dppo_sampler=sampler),
                       env.action_space)
    assert agent.actor_ft is not bandit_base.net
    probe = np.random.default_rng(5).uniform(-1, 1, (2000, 1)).astype(np.float32)

    def mean_return() -> float:
        torch.manual_seed(3)
        a = agent.act(probe)[:, 0, 0]
        return float(np.mean(-(a - TARGET) ** 2))

    ret0 = mean_return()
    ft0 = _weights_hash(agent.actor_ft)
    hist = train_steering(env, agent, 8 * 64, seed=0, progress=False, verbose=False)
    ret1 = mean_return()
    assert len(hist["pg_loss"]) == 8  # one update per rollout of 64 chunks
    print(f"bandit mean return {ret0:.3f} -> {ret1:.3f}")
    assert ret1 > ret0 + 0.1, (ret0, ret1)
    assert _weights_hash(agent.actor_ft) != ft0  # the copy learned ...
    assert _weights_hash(bandit_base) == before_hash  # ... the base did not
    assert all(not p.requires_grad for p in bandit_base.parameters())


class _MemorySink:
    def __init__(self, agent):
        self.agent, self.ckpts, self.rows = agent, [], []

    def log(self, step, group, values):
        self.rows.append((step, group, dict(values)))

    def checkpoint(self, st):
        self.ckpts.append((st.env_steps, st.updates, copy.deepcopy(self.agent.state_dict())))


def _vec(env):
    from lpds_core.chunking import ActionChunkWrapper
    return gym.vector.SyncVectorEnv([lambda: ActionChunkWrapper(env, 1, 0.99)] * 2,
                                    autoreset_mode=gym.vector.AutoresetMode.SAME_STEP)


def test_checkpoints_fall_on_rollout_boundaries_and_resume(bandit_base):
    env = Bandit()
    cfg = dict(BANDIT_CFG, rollout_steps=16, ppo_batch_size=32)
    agent = make_agent("dppo", bandit_base, env.observation_space, cfg, env.action_space)
    loop = LoopConfig(env_steps=96, warmup_steps=0, n_envs=2, ckpt_every=40, eval_every=1000, seed=0)
    sink = _MemorySink(agent)
    st = run_steering(_vec(env), agent, loop, ReplayBuffer(8, (1, 1)), sink=sink, progress=False)
    assert st.env_steps == 96 and st.updates == 3  # 2 envs × 16 chunks × 1 step per rollout
    assert [c[0] for c in sink.ckpts] == [64, 96, 96]  # first boundary after 40 and after 80; then the final one
    assert [r[0] for r in sink.rows if r[1] == "train"] == [32, 64, 96]
    # resume from the mid-run checkpoint: the restored agent equals the saved one, optimisers and reward scale too
    step, updates, saved = sink.ckpts[0]
    agent2 = make_agent("dppo", bandit_base, env.observation_space, cfg, env.action_space)
    agent2.load_state_dict(saved)
    ft_saved = {k[len("actor_ft."):]: v for k, v in saved["modules"].items() if k.startswith("actor_ft.")}
    assert all(torch.equal(v, ft_saved[k]) for k, v in agent2.actor_ft.state_dict().items())
    assert _weights_hash(agent2.actor_ft) != _weights_hash(agent.actor_ft)  # a mid-run state, not the final one
    assert agent2.reward_scale.state() == saved["reward_scale"]
    assert agent2.optimizers["actor"].state_dict()["state"]  # Adam moments came back
    buf = io.BytesIO()  # what a run checkpoint holds must load with torch's safe unpickler
    torch.save(saved, buf)
    agent2.load_state_dict(torch.load(io.BytesIO(buf.getvalue()), weights_only=True))
    st2 = run_steering(_vec(env), agent2, loop, ReplayBuffer(8, (1, 1)), sink=_MemorySink(agent2),
                       state=LoopState(step, updates=updates), progress=False)
    assert st2.env_steps == 96 and st2.updates == 3


def test_clear_errors_for_a_flow_base_and_too_many_fine_tuned_steps():
    flow = FlowMatchingPolicy(3, 2, 1, hidden=8, n_layers=1, num_steps=2)
    with pytest.raises(ConfigError, match="diffusion base"):
        make_agent("dppo", flow, None, dict(critic_hidden=[8]))
    with pytest.raises(ConfigError, match="ft-denoising-steps"):
        make_agent("dppo", _tiny_base(num_train_steps=4), None, dict(ft_denoising_steps=5, critic_hidden=[8]))
    with pytest.raises(ConfigError, match="ft-denoising-steps"):
        make_agent("dppo", _tiny_base(num_train_steps=10, num_steps=3), None,
                   dict(ft_denoising_steps=4, dppo_sampler="ddim", critic_hidden=[8]))


def test_running_reward_scale_divides_by_the_std_of_discounted_returns_reset_at_episode_starts():
    from lpds_core.agents.dppo import RunningRewardScale

    r = np.array([[1.0, 2.0], [0.5, -1.0], [2.0, 0.0]])
    ended = np.array([[0, 1], [1, 0], [0, 0]])
    # env 0: 1, .9·1 + .5 = 1.4, (new episode) 2;  env 1: 2, (new) −1, .9·(−1) + 0 = −.9
    rets = np.array([1.0, 1.4, 2.0, 2.0, -1.0, -0.9])
    out = RunningRewardScale()(r, ended, 0.9)
    # one batch after the prior (mean 0, var 1, count 1e-4): var ≈ the batch's sample variance
    assert np.allclose(out, r / np.sqrt(np.var(rets, ddof=1)), rtol=1e-3)


def test_target_kl_stops_the_epochs_early(bandit_base):
    env = Bandit()
    cfg = dict(BANDIT_CFG, target_kl=1e-9)  # 64 chunks × 5 steps = 5 minibatches of 64 pairs per epoch
    agent = make_agent("dppo", bandit_base, env.observation_space, cfg, env.action_space)
    hist = train_steering(env, agent, 64, seed=0, progress=False, verbose=False)
    # the first minibatch has ratio 1 (KL 0); after one step the KL is positive: stop in epoch 1
    assert hist["epochs"] == [1.0] and agent.updates == 2
