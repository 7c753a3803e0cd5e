"""Steering core: perturbation, trust region, critics/TD target, replay, chunk wrapper, agents, frozen backbone."""
from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch

from lpds_core.agents import AGENTS, AgentConfig, make_agent
from lpds_core.chunking import ActionChunkWrapper
from lpds_core.critics import TwinQ, td_target
from lpds_core.perturbation import NoisePerturbation
from lpds_core.replay import ReplayBuffer
from lpds_core.training import train_steering
from lpds_core.trust_region import LagrangianTrustRegion
from steering_helpers import TinyDecoder

SMALL = dict(hidden=(32, 32), critic_hidden=(32, 32))  # agent settings
LOOP = dict(batch_size=32, utd=2, warmup_steps=40)  # loop settings (lpds_core.training.LoopConfig)


class LineEnv(gym.Env):
    """1-step-reward env for the chunk wrapper: reward = step index, terminates at `stop`."""

    def __init__(self, stop: int = 100):
        self.observation_space = gym.spaces.Box(-10, 10, (2,), np.float32)
        self.action_space = gym.spaces.Box(-1, 1, (2,), np.float32)
        self.stop, self.t, self.seen = stop, 0, []

    def reset(self, *, seed=None, options=None):
        self.t = 0
        return np.zeros(2, np.float32), {}

    def step(self, a):
        self.seen.append(np.array(a))
        self.t += 1
        return np.full(2, self.t, np.float32), float(self.t), self.t >= self.stop, False, {"t": self.t}


def _toy_env():
    from lpds_sim.toy import MultiGoalEnv
    return MultiGoalEnv(max_steps=16)


# ---- perturbation ----------------------------------------------------------------------------------------
def test_perturbation_starts_near_zero_and_has_noise_shape():
    p = NoisePerturbation(3, (4, 2), hidden=(16,))
    out = p(torch.randn(5, 3))
    assert out.shape == (5, 4, 2)
    assert out.abs().max() < 0.05
    pe = NoisePerturbation(3, (4, 2), hidden=(16,), use_eps=True)
    assert pe(torch.randn(5, 3), torch.randn(5, 4, 2)).shape == (5, 4, 2)
    with pytest.raises(ValueError, match="use_eps=True"):
        pe(torch.randn(5, 3))
    with pytest.raises(ValueError, match="features of shape"):
        p(torch.randn(5, 7))


def test_shrink_form_is_shift_minus_gain_times_noise_and_learns_to_shrink():
    torch.manual_seed(0)  # independent of which tests ran before in this process
    p = NoisePerturbation(3, (4, 2), hidden=(16,), use_eps=True, eps_form="shrink")
    feats, eps = torch.randn(256, 3), torch.randn(256, 4, 2)
    g0 = p.gain(feats)
    assert g0.shape == (256, 4, 2) and g0.abs().max() < 0.05  # starts as the base policy
    with torch.no_grad():
        for prm in p.net[-1].parameters():
            prm.normal_(0, 0.3)
    shift = p(feats, torch.zeros_like(eps))  # ε = 0 leaves only h(s)
    assert torch.allclose(p(feats, eps), shift - p.gain(feats) * eps, atol=1e-6)
    # an objective that prefers less noise in the first action dim raises that dim's gain only (ignoring h)
    opt = torch.optim.Adam(p.parameters(), lr=1e-2)
    for _ in range(100):
        eps = torch.randn(256, 4, 2)
        w = eps + p(feats, eps)
        loss = (w[..., 0] - p(feats, torch.zeros_like(eps))[..., 0]).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    g = p.gain(feats).mean(dim=(0, 1))
    assert 0.9 < g[0] < 1.1 and g[0] > g[1] + 0.5
    with pytest.raises(ValueError, match="eps_form"):
        NoisePerturbation(3, (4, 2), use_eps=True, eps_form="bogus")


# ---- trust region -----------------------------------------------------------------------------------------
def test_lambda_rises_while_violated_and_returns_to_zero_when_slack():
    tr = LagrangianTrustRegion(delta=0.05, dim=8, eta=0.5)
    lams = [tr.dual_step(0.30) for _ in range(10)]  # violated by 0.25 each step
    assert all(b > a for a, b in zip(lams, lams[1:]))
    assert lams[-1] == pytest.approx(10 * 0.5 * 0.25)
    slack = [tr.dual_step(0.0) for _ in range(200)]  # slack: -0.05 per step
    assert all(b <= a for a, b in zip(slack, slack[1:]))
    assert slack[-1] == 0.0  # projected onto λ ≥ 0, never negative


def test_trust_region_norms_and_penalty_gradient():
    d = torch.full((3, 4, 2), 0.5, requires_grad=True)
    tr = LagrangianTrustRegion(0.1, 8, lambda_init=2.0)
    pen, c = tr.penalty(d)
    assert float(c.detach()) == pytest.approx(8 * 0.25)  # squared norm summed over all 8 dims, batch mean
    assert float(pen.detach()) == pytest.approx(2.0 * (2.0 - 0.1))
    pen.backward()
    assert torch.allclose(d.grad, torch.full_like(d, 2.0 * 2 * 0.5 / 3))
    assert float(LagrangianTrustRegion(0.1, 8, norm="per_dim").constraint(d).detach()) == pytest.approx(0.25)
    assert "sum over all dims" in tr.describe() and "delta=0.1" in tr.describe()
    with pytest.raises(ValueError, match="norm"):
        LagrangianTrustRegion(0.1, 8, norm="l1")
    with pytest.raises(ValueError, match="delta"):
        LagrangianTrustRegion(0.0, 8)


# ---- critics ----------------------------------------------------------------------------------------------
def test_td_target_matches_hand_computation():
    r = torch.tensor([1.0, 2.0, 0.5])
    disc = torch.tensor([0.99**4, 0.99**4, 0.99**2])  # last chunk ended after 2 steps (truncation)
    done = torch.tensor([0.0, 1.0, 0.0])
    q1, q2 = torch.tensor([10.0, 5.0, 3.0]), torch.tensor([8.0, 6.0, 4.0])
    y = td_target(r, disc, done, q1, q2, next_entropy_bonus=torch.tensor([-1.0, 0.0, 0.5]))
    expected = [1.0 + 0.99**4 * (8.0 - 1.0), 2.0, 0.5 + 0.99**2 * (3.0 + 0.5)]
    assert y.shape == (3,)
    assert torch.allclose(y, torch.tensor(expected))
    with pytest.raises(ValueError, match="1-D"):
        td_target(r[:, None], disc, done, q1, q2)


def test_twin_q_shapes_polyak_and_errors():
    q = TwinQ(3, 8, hidden=(16,))
    q1, q2 = q(torch.randn(5, 3), torch.randn(5, 4, 2))
    assert q1.shape == q2.shape == (5,)
    with torch.no_grad():
        for p in q.q1.parameters():
            p.add_(1.0)
    t_before = [p.clone() for p in q.target_q1.parameters()]
    q.polyak(0.25)
    for tb, tp, p in zip(t_before, q.target_q1.parameters(), q.q1.parameters()):
        assert torch.allclose(tp, 0.75 * tb + 0.25 * p)
    with pytest.raises(ValueError, match="TwinQ expects"):
        q(torch.randn(5, 3), torch.randn(5, 3))


# ---- replay ------------------------------------------------------------------------------------------------
def test_replay_buffer_ring_and_sample():
    buf = ReplayBuffer(5, (4, 2), seed=0)
    with pytest.raises(ValueError, match="empty"):
        buf.sample(2)
    for i in range(7):
        buf.add(np.full(2, i), np.full((4, 2), i), np.full((4, 2), -i), float(i), np.full(2, i + 1), 0.9, i == 6)
    assert len(buf) == 5 and buf.pos == 2
    assert sorted(buf.reward.tolist()) == [2, 3, 4, 5, 6]  # the two oldest were overwritten
    b = buf.sample(64)
    assert b["obs"].shape == (64, 2) and b["action"].shape == (64, 4, 2) and b["reward"].shape == (64,)
    assert torch.all(b["next_obs"][:, 0] == b["obs"][:, 0] + 1)
    assert torch.all(b["action"][:, 0, 0] == b["reward"]) and torch.all(b["noise"][:, 0, 0] == -b["reward"])
    assert torch.all(b["done"] == (b["reward"] == 6).float())
    with pytest.raises(ValueError, match="shape"):
        buf.add(np.zeros(3), np.zeros((4, 2)), np.zeros((4, 2)), 0.0, np.zeros(3), 0.9, False)
    with pytest.raises(ValueError, match="non-finite"):
        buf.add(np.zeros(2), np.full((4, 2), np.nan), np.zeros((4, 2)), 0.0, np.zeros(2), 0.9, False)
    dbuf = ReplayBuffer(4, (1, 1))
    dbuf.add({"rgb": np.zeros((3, 2, 2), np.uint8), "p": np.ones(2)}, [[0]], [[0]], 1.0,
             {"rgb": np.ones((3, 2, 2), np.uint8), "p": np.ones(2)}, 1.0, False)
    s = dbuf.sample(2)
    assert s["obs"]["rgb"].dtype == torch.uint8 and s["next_obs"]["rgb"].sum() == 24


# ---- chunk wrapper -----------------------------------------------------------------------------------------
def test_chunk_wrapper_runs_open_loop_with_discounted_reward_and_stops_at_termination():
    env = ActionChunkWrapper(LineEnv(stop=6), horizon=4, gamma=0.5)
    env.reset()
    chunk = np.arange(8, dtype=np.float32).reshape(4, 2) / 10
    obs, r, term, trunc, info = env.step(chunk)
    assert r == pytest.approx(1 + 0.5 * 2 + 0.25 * 3 + 0.125 * 4)
    assert info["chunk_steps"] == 4 and info["chunk_discount"] == pytest.approx(0.5**4)
    assert info["chunk_return_undiscounted"] == 10 and not term
    assert np.allclose(np.stack(env.unwrapped.seen), chunk)  # executed in order, open loop
    obs, r, term, trunc, info = env.step(chunk)  # steps 5, 6 then termination
    assert term and info["chunk_steps"] == 2 and r == pytest.approx(5 + 0.5 * 6)
    assert env.action_space.shape == (4, 2)
    with pytest.raises(ValueError, match=r"\(H, A\)"):
        env.step(np.zeros(2))
    with pytest.raises(ValueError, match="NaN"):
        env.step(np.full((4, 2), np.nan))


# ---- agents ------------------------------------------------------------------------------------------------
def test_gradient_reaches_perturbation_but_backbone_stays_bit_identical():
    dec = TinyDecoder()
    env = _toy_env()
    before = {k: v.clone() for k, v in dec.state_dict().items()}
    agent = make_agent("lpds", dec, env.observation_space, dict(SMALL, delta=0.01), env.action_space)
    p_before = [p.clone() for p in agent.perturbation.parameters()]
    # the actor loss's gradient flows through the frozen decoder into Δθ
    feats = torch.randn(16, 2)
    a, _, delta = agent.steered(feats, torch.randn(16, 4, 2))
    torch.min(*agent.critic(feats, a)).mean().backward()
    assert agent.perturbation.net[0].weight.grad is not None
    assert agent.perturbation.net[0].weight.grad.abs().sum() > 0
    assert all(p.grad is None for p in dec.parameters())
    train_steering(env, agent, 200, seed=0, progress=False, **LOOP)
    after = dec.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before), "backbone weights changed"
    assert any(not torch.equal(a, b) for a, b in zip(p_before, agent.perturbation.parameters()))
    assert not any(k.startswith("backbone") for k in agent.state_dict()["modules"])


@pytest.mark.parametrize("name", ["lpds", "lpds-a", "dsrl-na", "dsrl-sac"])
def test_each_agent_trains_on_the_toy_env_and_round_trips(name, tmp_path):
    from lpds_core.flow_matching import FlowMatchingPolicy
    env = _toy_env()
    fm = FlowMatchingPolicy(obs_dim=2, act_dim=2, horizon=4, hidden=32, n_layers=2, num_steps=3)
    fm.fit_normalizers(torch.randn(64, 2), torch.rand(64, 4, 2) * 2 - 1)
    before = [p.clone() for p in fm.parameters()]
    agent = make_agent(name, fm, env.observation_space, dict(SMALL, action_magnitude=1.5), env.action_space)
    hist = train_steering(env, agent, 160, seed=1, progress=False, **LOOP, log_every=16)
    assert hist["env_steps"] and all(np.isfinite(v) for v in hist["critic_loss"])
    assert agent.updates > 0
    assert all(torch.equal(a, b) for a, b in zip(before, fm.parameters()))
    chunk = agent.act(np.zeros(2, np.float32))
    assert chunk.shape == (4, 2) and np.all(np.abs(chunk) <= 1.0)
    assert agent.act(np.zeros((3, 2), np.float32)).shape == (3, 4, 2)
    if name.startswith("dsrl"):
        _, w = agent.act_with_noise(np.zeros((64, 2), np.float32))
        assert np.abs(w).max() <= 1.5 + 1e-5  # action_magnitude honoured
    # checkpoint round trip, including optimisers (resumable)
    torch.save(agent.state_dict(), tmp_path / "agent.pt")
    clone = make_agent(name, fm, env.observation_space, dict(SMALL, action_magnitude=1.5), env.action_space)
    clone.load_state_dict(torch.load(tmp_path / "agent.pt", weights_only=True))
    torch.manual_seed(3)
    a1 = agent.act(np.zeros((5, 2), np.float32), deterministic=True)
    a2 = clone.act(np.zeros((5, 2), np.float32), deterministic=True)
    assert np.allclose(a1, a2) and clone.updates == agent.updates


def test_bad_inputs_give_clear_errors():
    env = _toy_env()
    agent = make_agent("lpds", TinyDecoder(), env.observation_space, SMALL, env.action_space)
    with pytest.raises(ValueError, match="NaN"):
        agent.act(np.array([np.nan, 0.0], np.float32))
    with pytest.raises(ValueError, match=r"expected \(2,\)"):
        agent.act(np.zeros(3, np.float32))
    with pytest.raises(ValueError, match="unknown steering algorithm"):
        make_agent("ppo", TinyDecoder(), env.observation_space)
    with pytest.raises(ValueError, match="agent config: unknown config key .detla."):
        AgentConfig.from_dict({"detla": 0.1})
    with pytest.raises(ValueError, match="missing"):
        agent.update({"obs": torch.zeros(2, 2)})
    with pytest.raises(ValueError, match="checkpoint is for agent"):
        agent.load_state_dict(make_agent("dsrl-sac", TinyDecoder(), env.observation_space, SMALL).state_dict())
    with pytest.raises(TypeError, match="FrozenDecoder"):
        make_agent("lpds", torch.nn.Linear(2, 2), env.observation_space)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="matches neither"):
        train_steering(ActionChunkWrapper(env, 3), agent, 10, progress=False, **LOOP)


def test_agent_registry_complete():
    assert set(AGENTS) == {"base", "lpds", "lpds-a", "dsrl-na", "dsrl-sac", "dppo"}


def test_deployable_perturbation_matches_the_agents_own_actions():
    from lpds_core.export import perturbation_takes_eps
    env = _toy_env()
    dec = TinyDecoder()
    for name, use_eps, form in (("lpds", False, "mlp"), ("lpds", True, "mlp"), ("lpds", True, "shrink"),
                                ("lpds-a", False, "mlp")):
        agent = make_agent(name, dec, env.observation_space, dict(SMALL, use_eps=use_eps, eps_form=form),
                           env.action_space)
        with torch.no_grad():
            for p in agent.perturbation.net[-1].parameters():
                p.normal_(0, 0.1)  # a non-trivial Δ
        module, space = agent.deployable_perturbation()
        assert perturbation_takes_eps(module) == use_eps
        feats, eps = torch.randn(6, 2), torch.randn(6, 4, 2)
        with torch.no_grad():
            want, _, _ = agent.steered(feats, eps)
            d = module(feats, eps) if use_eps else module(feats)
            got = dec.decode_features(feats, eps + d) if space == "noise" else dec.decode_features(feats, eps) + d
        assert torch.allclose(agent.clip(got), want, atol=1e-6), name
    with pytest.raises(NotImplementedError, match="no additive perturbation"):
        make_agent("dsrl-sac", dec, env.observation_space, SMALL).deployable_perturbation()


def test_replay_buffer_save_load_round_trip(tmp_path):
    buf = ReplayBuffer(8, (4, 2), seed=0)
    for i in range(10):
        buf.add(np.full(2, i), np.full((4, 2), i), np.full((4, 2), -i), float(i), np.full(2, i + 1), 0.9, False)
    buf.save(str(tmp_path / "rb.npz"))
    back = ReplayBuffer.load(str(tmp_path / "rb.npz"))
    assert (back.size, back.pos, back.capacity) == (buf.size, buf.pos, buf.capacity)
    assert np.array_equal(back.reward, buf.reward) and np.array_equal(back._obs[""], buf._obs[""])
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="not a readable replay-buffer"):
        ReplayBuffer.load(str(tmp_path / "bad.npz"))


def test_training_resumes_from_agent_and_buffer_checkpoints(tmp_path):
    env = _toy_env()
    dec = TinyDecoder()
    agent = make_agent("lpds", dec, env.observation_space, SMALL, env.action_space)
    buf = ReplayBuffer(1000, (4, 2), seed=0)
    train_steering(env, agent, 96, buffer=buf, progress=False, **LOOP, verbose=False)
    torch.save(agent.state_dict(), tmp_path / "a.pt")
    buf.save(str(tmp_path / "rb.npz"))
    again = make_agent("lpds", dec, env.observation_space, SMALL, env.action_space)
    again.load_state_dict(torch.load(tmp_path / "a.pt", weights_only=True))
    assert float(again.trust_region.lam) == float(agent.trust_region.lam) and again.updates == agent.updates
    rb = ReplayBuffer.load(str(tmp_path / "rb.npz"))
    n0, u0 = len(rb), again.updates
    assert u0 > 0
    hist = train_steering(env, again, 160, buffer=rb, start_env_steps=96, progress=False, **LOOP, verbose=False)
    assert len(rb) == n0 + 16 and again.updates == u0 + 16 * LOOP["utd"]  # 64 more steps = 16 chunks
    assert hist["env_steps"][0] > 96
    with pytest.raises(ValueError, match="must exceed"):
        train_steering(env, again, 96, start_env_steps=96, progress=False, **LOOP)


def test_agent_acts_on_image_observations_single_and_batched():
    from lpds_core.flow_matching import FlowMatchingPolicy
    fm = FlowMatchingPolicy(obs_dim=3, act_dim=2, horizon=4, obs_type="image", image_size=(16, 16), embed_dim=8,
                            hidden=16, n_layers=1, num_steps=2)
    obs = {"rgb": np.zeros((3, 16, 16), np.uint8), "depth": np.ones((1, 16, 16), np.float32),
           "proprio": np.zeros(3, np.float32)}
    agent = make_agent("lpds", fm, None, SMALL)
    assert agent.act(obs).shape == (4, 2)
    batch = {k: np.stack([v, v]) for k, v in obs.items()}
    assert agent.act(batch).shape == (2, 4, 2)
    with pytest.raises(ValueError, match="NaN"):
        agent.act(dict(obs, depth=np.full((1, 16, 16), np.nan, np.float32)))
    with pytest.raises(ValueError, match="'rgb' has shape"):
        agent.act(dict(obs, rgb=np.zeros((3, 8, 8), np.uint8)))


def test_eps_scale_exploration_scales_the_base_noise_per_sample_and_only_where_epsilon_is_sampled():
    env = _toy_env()
    dec = TinyDecoder()
    agent = make_agent("lpds", dec, env.observation_space, SMALL, env.action_space)
    torch.manual_seed(0)
    eps = agent.sample_eps(4, False, torch.tensor([0.0, 0.5, 1.0, 2.0]))
    torch.manual_seed(0)
    raw = torch.randn(4, *agent.noise_shape)
    assert torch.allclose(eps, raw * torch.tensor([0.0, 0.5, 1.0, 2.0]).view(4, 1, 1))
    assert torch.equal(agent.sample_eps(3, True, None), torch.zeros(3, *agent.noise_shape))
    obs = np.stack([env.observation_space.sample() for _ in range(3)])
    _, w = agent.act_with_noise(obs, eps_scale=np.zeros(3))
    assert np.abs(w).max() < 0.05  # ε·0 leaves only the (near-zero) initial Δθ
    with pytest.raises(ValueError, match="eps_scale must hold 3"):
        agent.act_with_noise(obs, eps_scale=np.ones(2))
    dsrl = make_agent("dsrl-na", dec, env.observation_space, SMALL, env.action_space)
    with pytest.raises(ValueError, match="SAC actor"):
        dsrl.act_with_noise(obs, eps_scale=np.ones(3))


def _image_policy_and_obs(b: int = 6):
    from lpds_core.flow_matching import FlowMatchingPolicy
    fm = FlowMatchingPolicy(obs_dim=3, act_dim=2, horizon=4, obs_type="image", image_size=(16, 16), embed_dim=8,
                            hidden=16, n_layers=1, num_steps=2)
    g = np.random.default_rng(0)
    obs = {"rgb": g.integers(0, 255, (b, 3, 16, 16), dtype=np.uint8),
           "depth": g.uniform(0.2, 1.5, (b, 1, 16, 16)).astype(np.float32),
           "proprio": g.normal(size=(b, 3)).astype(np.float32),
           "state": g.normal(0.5, 0.1, size=(b, 5)).astype(np.float32)}
    space = gym.spaces.Dict({"rgb": gym.spaces.Box(0, 255, (3, 16, 16), np.uint8),
                             "depth": gym.spaces.Box(0, 2, (1, 16, 16), np.float32),
                             "proprio": gym.spaces.Box(-np.inf, np.inf, (3,), np.float32),
                             "state": gym.spaces.Box(-np.inf, np.inf, (5,), np.float32)})
    return fm, obs, space


def test_encoded_image_observations_act_exactly_like_the_raw_ones():
    from lpds_core.agents.base import FEATURES_KEY
    fm, obs, space = _image_policy_and_obs()
    agent = make_agent("lpds", fm, space, SMALL)
    enc = agent.encoded(obs, keep=("state",))
    assert set(enc) == {FEATURES_KEY, "state"} and enc[FEATURES_KEY].shape == (6, agent.feature_dim)
    torch.manual_seed(3)
    raw = agent.act(obs)
    torch.manual_seed(3)
    assert np.array_equal(agent.act(enc), raw)  # a frozen encoder: cached features are the same features
    with pytest.raises(ValueError, match="encoded features"):
        agent.act({FEATURES_KEY: np.zeros((2, agent.feature_dim + 1), np.float32)})
    with pytest.raises(ValueError, match="no key 'nope'"):
        agent.encoded(obs, keep=("nope",))


def test_asymmetric_critic_reads_the_privileged_state_and_the_actor_still_learns():
    fm, obs, space = _image_policy_and_obs(b=32)
    agent = make_agent("lpds", fm, space, dict(SMALL, critic_obs="state", use_eps=True, eps_form="shrink"))
    assert agent.critic.feature_dim == 5  # the state, not the 8 + 3 image features
    enc = agent.encoded(obs, keep=("state",))
    g = torch.Generator().manual_seed(0)
    noise = torch.randn(32, 4, 2, generator=g)
    batch = {"obs": enc, "next_obs": enc, "action": fm.decode_features(fm.encode(
        {k: torch.as_tensor(v) for k, v in obs.items() if k != "state"}), noise).detach(),
        "noise": noise, "reward": torch.as_tensor(obs["state"][:, 0]), "discount": torch.full((32,), 0.9),
        "done": torch.zeros(32)}
    assert not bool(agent.critic_norm.fitted)
    before = [p.detach().clone() for p in agent.perturbation.parameters()]
    out = agent.update(batch)
    assert bool(agent.critic_norm.fitted)  # standardised with the first batch, then kept (and saved)
    assert torch.allclose(agent.critic_norm.shift, torch.as_tensor(obs["state"]).mean(0))
    assert np.isfinite(out["critic_loss"]) and "noise_gain" in out
    assert any(not torch.equal(a, p) for a, p in zip(before, agent.perturbation.parameters()))
    state = agent.state_dict()
    again = make_agent("lpds", fm, space, dict(SMALL, critic_obs="state", use_eps=True, eps_form="shrink"))
    again.load_state_dict(state)
    assert torch.equal(again.critic_norm.shift, agent.critic_norm.shift)
    # the deployed perturbation reads only the backbone features: acting needs no state
    no_state = {k: v for k, v in obs.items() if k != "state"}
    assert agent.act(no_state).shape == (32, 4, 2)
    with pytest.raises(ValueError, match="no such key"):
        agent.update(dict(batch, obs={k: v for k, v in enc.items() if k != "state"}))


def test_asymmetric_critic_errors_name_the_fix():
    fm, obs, space = _image_policy_and_obs()
    with pytest.raises(ValueError, match="privileged_state=True"):
        make_agent("lpds", fm, gym.spaces.Dict({k: v for k, v in space.spaces.items() if k != "state"}),
                   dict(SMALL, critic_obs="state"))
    with pytest.raises(ValueError, match="flat vector"):
        make_agent("lpds", fm, space, dict(SMALL, critic_obs="rgb"))
    with pytest.raises(ValueError, match="critic_obs applies to lpds"):
        make_agent("dsrl-na", fm, space, dict(SMALL, critic_obs="state"))


def test_averaged_perturbation_trails_the_online_one_and_is_what_eval_and_export_use():
    env = _toy_env()
    dec = TinyDecoder()
    cfg = dict(SMALL, use_eps=True, eps_form="shrink", actor_avg_rate=0.1)
    agent = make_agent("lpds", dec, env.observation_space, cfg, env.action_space)
    assert make_agent("lpds", dec, env.observation_space, SMALL, env.action_space).perturbation_avg is None
    rb = ReplayBuffer(256, agent.noise_shape, seed=0)
    rng = np.random.default_rng(0)
    for _ in range(64):
        o = env.observation_space.sample()
        chunk, noise = agent.act_with_noise(o)
        rb.add(o, chunk, noise, float(rng.normal()), env.observation_space.sample(), 0.9, False)
    start = [p.detach().clone() for p in agent.perturbation_avg.parameters()]
    for _ in range(20):
        agent.update(rb.sample(16))
    online = list(agent.perturbation.parameters())
    avg = list(agent.perturbation_avg.parameters())
    # after k updates at rate r the average is (1 − r)^k of its start plus the weighted online path: strictly between
    moved = [float((a - s).abs().max()) for a, s in zip(avg, start)]
    assert max(moved) > 0 and not all(torch.equal(a, o) for a, o in zip(avg, online))
    feats, eps = torch.randn(5, 2), torch.randn(5, 4, 2)
    with torch.no_grad():
        want_avg, _, _ = agent.steered(feats, eps, averaged=True)
        want_online, _, _ = agent.steered(feats, eps)
        module, _ = agent.deployable_perturbation()
        assert module is agent.perturbation_avg
    assert not torch.allclose(want_avg, want_online)
    obs = np.stack([env.observation_space.sample() for _ in range(5)])
    agent.eval()
    torch.manual_seed(1)
    a_eval = agent.act(obs)
    agent.train()
    torch.manual_seed(1)
    a_train = agent.act(obs)
    torch.manual_seed(1)
    e = torch.randn(5, 4, 2)
    with torch.no_grad():
        f = agent.features(torch.as_tensor(obs))
        assert np.allclose(a_eval, agent.steered(f, e, averaged=True)[0].numpy(), atol=1e-6)
        assert np.allclose(a_train, agent.steered(f, e)[0].numpy(), atol=1e-6)
    again = make_agent("lpds", dec, env.observation_space, cfg, env.action_space)
    again.load_state_dict(agent.state_dict())  # the average is saved with the agent (resume, export)
    assert all(torch.equal(a, b) for a, b in zip(again.perturbation_avg.parameters(), avg))
