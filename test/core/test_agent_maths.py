"""Tests that fail when an agent's update is wrong: each checks an update against a known critic or a hand
computation (trust region and dual step, TD targets over chunks, DSRL-NA distillation, the SAC entropy term, the
exported LP-DS-A action). Tiny networks built here; seconds each."""
from __future__ import annotations

import math

import gymnasium as gym
import numpy as np
import pytest
import torch
from torch import nn

from lpds_core.agents import AgentConfig, make_agent
from lpds_core.backbone import FrozenDecoder
from lpds_core.chunking import ActionChunkWrapper, bootstrap_discount, chunk_discounting
from lpds_core.errors import ConfigError

H, A, OBS = 2, 2, 3
# float32 decodes inside updates: these tests compare the updates with hand computations to 1e-5 (bf16 is its own
# test, test_bf16_update_decoder_stays_close_to_float32)
TINY = dict(hidden=(32,), critic_hidden=(32,), threads=1, decoder_precision="float32")


class LinearDecoder(FrozenDecoder):
    """Φ(s, w) = 0.1·w + M s: a known, frozen decoder; a target action far from M s needs a large noise shift."""

    def __init__(self, scale: float = 0.1):
        super().__init__()
        self.obs_dim, self.horizon, self.act_dim, self.feature_dim = OBS, H, A, OBS
        self.scale = scale
        g = torch.Generator().manual_seed(0)
        self.register_buffer("mix", torch.randn(OBS, H * A, generator=g) * 0.05)

    def encode(self, obs):
        return obs.float()

    def decode_features(self, features, noise):
        return self.scale * noise + (features @ self.mix).reshape(-1, H, A)


class FixedCritic(nn.Module):
    """Q(s, a) = −‖a − a*‖² for both heads and both targets: a known critic that no update changes."""

    def __init__(self, a_star: torch.Tensor):
        super().__init__()
        self.register_buffer("a_star", a_star.reshape(1, H, A).float())
        self.dummy = nn.Parameter(torch.zeros(()))  # so that the agent's critic step has something to step

    def forward(self, features, inp):
        q = -(inp.reshape(-1, H, A) - self.a_star).pow(2).sum((1, 2))
        return q, q

    target = forward
    frozen = forward  # the actor's view (TwinQ.frozen): the same values, no weight gradients

    def loss(self, features, inp, y):
        return self.dummy.pow(2)

    def online_parameters(self):
        return [self.dummy]

    def polyak(self, tau):
        pass


def _fix_critic(agent, a_star: torch.Tensor, attr: str = "critic") -> None:
    setattr(agent, attr, FixedCritic(a_star))
    agent.optimizers[attr] = torch.optim.SGD([getattr(agent, attr).dummy], lr=0.0)


def _batch(dec: FrozenDecoder, b: int, gen: torch.Generator) -> dict:
    obs, nobs = torch.randn(b, OBS, generator=gen), torch.randn(b, OBS, generator=gen)
    noise = torch.randn(b, H, A, generator=gen)
    return {"obs": obs, "next_obs": nobs, "noise": noise, "action": dec.decode_features(obs, noise),
            "reward": torch.randn(b, generator=gen), "discount": torch.full((b,), 0.9), "done": torch.zeros(b)}


# ---- LP-DS / LP-DS-A: Δθ climbs a known critic up to the trust-region boundary ---------------------------------
W_STAR = torch.tensor([[1.0, -1.0], [1.0, -1.0]])  # ‖w*‖² = 4


# the dual step and actor rate per agent: λ's equilibrium is ~0.25 for LP-DS and ~25 for LP-DS-A here (Δ enters the
# critic 10× more directly), and a dual step too large for λ's scale makes Δ and λ cycle instead of settle
RATES = {"lpds": dict(lr_actor=3e-3, eta_lambda=0.005), "lpds-a": dict(lr_actor=3e-4, eta_lambda=20.0)}


def _train_on_fixed_critic(name: str, delta: float, lambda_init: float, steps: int = 400):
    torch.manual_seed(0)
    dec = LinearDecoder()
    # LP-DS: a = 0.1(ε + Δ) + M s is best at Δ = w* when a* = 0.1·w* (+ M s ≈ 0, small); LP-DS-A (no action
    # bounds, so Δ is in raw units): a = 0.1ε + M s + Δ is best at Δ = 0.1·w*. Either way ‖Δ*‖² is known.
    target = 0.1 * W_STAR
    opt = W_STAR if name == "lpds" else target
    agent = make_agent(name, dec, None, dict(TINY, delta=delta, lambda_init=lambda_init, **RATES[name]))
    _fix_critic(agent, target)
    gen = torch.Generator().manual_seed(1)
    hist = []
    for _ in range(steps):
        out = agent.update(_batch(dec, 32, gen))
        hist.append((out["lambda"], out["delta_sq"]))
    with torch.no_grad():
        d = agent.perturbation(torch.zeros(64, OBS)).mean(0)
    return agent, opt, d, hist


@pytest.mark.parametrize("name", ["lpds", "lpds-a"])
def test_delta_climbs_a_known_critic_and_settles_on_the_trust_region_boundary(name):
    delta = _boundary(name)
    agent, opt, d, hist = _train_on_fixed_critic(name, delta=delta, lambda_init=0.0)
    lam = np.array([h[0] for h in hist[-100:]])
    sq = np.array([h[1] for h in hist[-100:]])
    cos = float(torch.nn.functional.cosine_similarity(d.flatten(), opt.flatten(), dim=0))
    assert cos > 0.95, f"Δ does not point towards the critic's optimum (cos {cos:.3f})"
    assert abs(sq.mean() - delta) < 0.1 * delta, f"E‖Δ‖² {sq.mean():.4f} is not on the boundary δ={delta}"
    assert float(d.pow(2).sum()) < float(opt.pow(2).sum()) * 0.5, "Δ went past the boundary to the optimum"
    assert lam.min() > 0, "λ must stay > 0 while the optimum lies outside the trust region"


def _boundary(name: str) -> float:
    return 1.0 if name == "lpds" else 0.01  # a quarter of ‖Δ*‖² (4 and 0.04)


@pytest.mark.parametrize("name", ["lpds", "lpds-a"])
def test_lambda_falls_back_to_zero_when_the_optimum_lies_inside(name):
    big = 10.0 if name == "lpds" else 0.1  # 2.5 × ‖Δ*‖²
    agent, opt, d, hist = _train_on_fixed_critic(name, delta=big, lambda_init=2.0)
    assert hist[-1][0] == 0.0 and all(h[0] == 0.0 for h in hist[-100:]), "λ did not fall back to 0"
    assert hist[-1][1] < big
    err = float((d - opt).pow(2).sum() / opt.pow(2).sum())
    assert err < 0.05, f"Δ did not reach the critic's optimum inside the trust region (rel. error {err:.3f})"


# ---- TD targets over a chunk ---------------------------------------------------------------------------------
class StepEnv(gym.Env):
    """Reward k+1 at step k; terminates at `stop` or truncates at `trunc`."""

    def __init__(self, stop: int = 10**6, trunc: int = 10**6):
        self.observation_space = gym.spaces.Box(-10, 10, (OBS,), np.float32)
        self.action_space = gym.spaces.Box(-0.3, 0.3, (A,), np.float32)
        self.stop, self.trunc, self.t = stop, trunc, 0

    def reset(self, *, seed=None, options=None):
        self.t = 0
        return np.zeros(OBS, np.float32), {}

    def step(self, a):
        self.t += 1
        return np.full(OBS, 0.1 * self.t, np.float32), float(self.t), self.t >= self.stop, self.t >= self.trunc, {}


def test_chunk_discounting_is_per_env_step_and_the_wrapper_uses_it():
    g = 0.9
    assert chunk_discounting([1.0, 2.0, 3.0], g) == pytest.approx((1 + 0.9 * 2 + 0.81 * 3, 0.9**3))
    assert bootstrap_discount(g, 0) == 1.0 and bootstrap_discount(g, 4) == pytest.approx(0.9**4)
    cases = {"full": (StepEnv(), 4, False, False), "terminated": (StepEnv(stop=3), 3, True, False),
             "truncated": (StepEnv(trunc=2), 2, False, True)}
    for what, (env, n, term, trunc) in cases.items():
        w = ActionChunkWrapper(env, horizon=4, gamma=g)
        w.reset()
        _, r, te, tr, info = w.step(np.zeros((4, A), np.float32))
        assert (te, tr, info["chunk_steps"]) == (term, trunc, n), what
        assert r == pytest.approx(sum(g**k * (k + 1) for k in range(n))), what
        assert info["chunk_discount"] == pytest.approx(g**n), what
    with pytest.raises(ValueError, match="gamma"):
        chunk_discounting([1.0], 0.0)


def _chunk_transitions(g: float) -> dict:
    """Three chunk transitions through the real wrapper: full (bootstraps γ^H), terminated after 1 step (no
    bootstrap), truncated after 1 step (bootstraps γ^1)."""
    rows = []
    for env in (StepEnv(), StepEnv(stop=1), StepEnv(trunc=1)):
        w = ActionChunkWrapper(env, horizon=H, gamma=g)
        o, _ = w.reset()
        no, r, term, trunc, info = w.step(np.zeros((H, A), np.float32))
        rows.append((o, no, r, info["chunk_discount"], float(term)))
    o, no, r, disc, done = (torch.as_tensor(np.array(x), dtype=torch.float32).repeat_interleave(
        ROWS_PER_CASE, 0) for x in zip(*rows))
    shift = torch.randn(len(r), OBS, generator=torch.Generator().manual_seed(5))  # distinct states per row
    return {"obs": o + shift, "next_obs": no + shift, "reward": r, "discount": disc, "done": done}


ROWS_PER_CASE = 4  # rows 0-3 full chunks, 4-7 terminated, 8-11 truncated


def _capture_target(agent):
    seen = {}
    loss = agent.critic.loss

    def spy(features, inp, y):
        seen["y"] = y.detach().clone()
        return loss(features, inp, y)

    agent.critic.loss = spy
    return seen


def _target_heads(critic, features, inp):
    """min over the two *target* heads, by hand: normalise the input, run target_q1 / target_q2."""
    x = torch.cat([features, (inp.reshape(inp.shape[0], -1) - critic.input_offset) / critic.input_scale], 1)
    return critic.target_q1(x).squeeze(-1), critic.target_q2(x).squeeze(-1)


def _decorrelate_targets(agent):
    """Target heads that disagree, each the smaller one on about half the inputs, so the min matters."""
    g = torch.Generator().manual_seed(11)
    c = agent.critic
    with torch.no_grad():
        for p in c.target_q2.parameters():
            p.add_(0.5 * torch.randn(p.shape, generator=g))
        x = torch.cat([torch.randn(512, c.feature_dim, generator=g),
                       torch.rand(512, c.input_dim, generator=g) * 2 - 1], 1)
        c.target_q2[-1].bias.sub_((c.target_q2(x) - c.target_q1(x)).median())

def _update_on_chunks(agent, dec, g):
    """One update on the three chunk cases (full, terminated, truncated), with the TD target it computed."""
    batch = _chunk_transitions(g)
    batch["noise"] = torch.randn(3 * ROWS_PER_CASE, H, A)
    batch["action"] = dec.decode_features(batch["obs"], batch["noise"]).clamp(-0.3, 0.3)
    seen = _capture_target(agent)
    torch.manual_seed(42)
    agent.update(batch)
    return batch, seen


@pytest.mark.parametrize("name", ["lpds", "lpds-a"])
def test_lpds_td_target_equals_a_hand_computation_over_a_chunk(name):
    g = 0.9
    dec = LinearDecoder(scale=0.3)
    agent = _lpds_for_td(name, dec, g)
    batch, seen = _update_on_chunks(agent, dec, g)
    y_hand = _hand_lpds_target(name, dec, g, batch)  # on a fresh copy: the update has moved Δθ since
    assert torch.allclose(seen["y"], y_hand, atol=1e-5), (seen["y"], y_hand)
    # the cases differ the way the convention says: the terminated chunk is its reward alone
    term = slice(ROWS_PER_CASE, 2 * ROWS_PER_CASE)
    assert torch.allclose(seen["y"][term], batch["reward"][term])
    assert batch["discount"].tolist() == pytest.approx([g**H] * 4 + [g] * 8)


def _lpds_for_td(name, dec, g):
    """The same agent on every call (seeded), with actions bounded to ±0.3 and a Δθ far from 0."""
    torch.manual_seed(0)
    env = StepEnv()
    agent = make_agent(name, dec, env.observation_space, dict(TINY, gamma=g),
                       ActionChunkWrapper(env, H, g).action_space)
    _decorrelate_targets(agent)
    with torch.no_grad():
        for p in agent.perturbation.net[-1].parameters():
            p.normal_(0, 1.0)
    return agent


def _hand_lpds_target(name, dec, g, batch):
    """Rebuild the same agent and compute its TD target by hand:
    y = r + γ^n (1 − done) min(Q1', Q2')(s', a'), a' from ε' (the update's first draw) + Δθ(s')."""
    agent = _lpds_for_td(name, dec, g)
    torch.manual_seed(42)
    eps_next = torch.randn(3 * ROWS_PER_CASE, H, A)
    with torch.no_grad():
        d = agent.perturbation(batch["next_obs"])
        if name == "lpds":
            a_next = dec.decode_features(batch["next_obs"], eps_next + d).clamp(-0.3, 0.3)
        else:  # Δ in normalised action units (half-range 0.3), clipped after adding
            a_next = (dec.decode_features(batch["next_obs"], eps_next).clamp(-0.3, 0.3) + 0.3 * d).clamp(-0.3, 0.3)
        q1, q2 = _target_heads(agent.critic, batch["next_obs"], a_next)
        assert (q1 < q2).any() and (q2 < q1).any(), "the test needs rows where each target head is the min"
        y = batch["reward"] + batch["discount"] * (1 - batch["done"]) * torch.minimum(q1, q2)
    return y


@pytest.mark.parametrize("name", ["dsrl-na", "dsrl-sac"])
def test_dsrl_soft_td_target_equals_a_hand_computation_over_a_chunk(name):
    g = 0.9
    dec = LinearDecoder(scale=0.3)
    env = StepEnv()

    def build():
        torch.manual_seed(0)
        ag = make_agent(name, dec, env.observation_space, dict(TINY, gamma=g, alpha_init=0.5),
                        ActionChunkWrapper(env, H, g).action_space)
        _decorrelate_targets(ag)
        return ag

    agent = build()
    batch, seen = _update_on_chunks(agent, dec, g)

    ref = build()
    m = ref.actor.magnitude
    torch.manual_seed(42)
    with torch.no_grad():
        mu, log_std = ref.actor.net(batch["next_obs"]).chunk(2, dim=-1)
        std = log_std.clamp(-5, 2).exp()
        u = mu + std * torch.randn_like(mu)  # the update's first draw: the actor's sample at s'
        w = m * torch.tanh(u)
        dist = torch.distributions.TransformedDistribution(
            torch.distributions.Normal(mu, std),
            [torch.distributions.TanhTransform(), torch.distributions.AffineTransform(0.0, m)])
        logp = dist.log_prob(w).sum(-1)
        inp = dec.decode_features(batch["next_obs"], w.reshape(-1, H, A)).clamp(-0.3, 0.3) if name == "dsrl-na" \
            else w
        q1, q2 = _target_heads(ref.critic, batch["next_obs"], inp)
        assert (q1 < q2).any() and (q2 < q1).any(), "the test needs rows where each target head is the min"
        y = batch["reward"] + batch["discount"] * (1 - batch["done"]) * (torch.minimum(q1, q2) - 0.5 * logp)
    assert torch.allclose(seen["y"], y, atol=1e-3), (seen["y"], y)  # 1e-6 guard inside the agent's log1p
    term = slice(ROWS_PER_CASE, 2 * ROWS_PER_CASE)
    assert torch.allclose(seen["y"][term], batch["reward"][term])


@pytest.mark.parametrize("name", ["lpds", "lpds-a", "dsrl-na", "dsrl-sac"])
def test_critic_step_fits_terminal_rewards_and_targets_follow_by_polyak(name):
    """On terminated chunks y = r exactly, so the critic step must drive Q(s, a) (Q(s, w) for DSRL-SAC) to r,
    and the target heads must move after the online ones."""
    torch.manual_seed(0)
    dec = LinearDecoder(scale=0.5)
    agent = make_agent(name, dec, None, dict(TINY, lr_critic=1e-2, tau=0.05, actor_every=10**6, noise_critic_steps=1))
    gen = torch.Generator().manual_seed(2)
    batch = _batch(dec, 32, gen)
    batch["done"] = torch.ones(32)
    batch["reward"] = batch["obs"][:, 0] - batch["noise"].sum((1, 2)) * 0.3  # depends on s and on the chunk
    target0 = [p.clone() for p in agent.critic.target_q1.parameters()]
    losses = [agent.update(batch)["critic_loss"] for _ in range(150)]
    assert losses[-1] < 0.1 * losses[0], f"critic loss {losses[0]:.3f} -> {losses[-1]:.3f}"
    inp = batch["noise"] if name == "dsrl-sac" else batch["action"]
    with torch.no_grad():
        q1, q2 = agent.critic(batch["obs"], inp)
    assert torch.allclose(q1, batch["reward"], atol=0.3) and torch.allclose(q2, batch["reward"], atol=0.3)
    assert any(not torch.allclose(a, b) for a, b in zip(target0, agent.critic.target_q1.parameters()))


def test_training_loop_stores_termination_as_done_and_truncation_as_bootstrap():
    from lpds_core.replay import ReplayBuffer
    from lpds_core.training import train_steering

    g = 0.9
    env = StepEnv(stop=10**6, trunc=3)  # chunks of H=2: [2 steps], [1 step, truncated], ...
    agent = make_agent("lpds", LinearDecoder(), env.observation_space, dict(TINY, gamma=g), env.action_space)
    buf = ReplayBuffer(64, (H, A), seed=0)
    train_steering(env, agent, 6, warmup_steps=100, buffer=buf, progress=False, verbose=False)
    assert buf.discount[:4].tolist() == pytest.approx([g**2, g, g**2, g])
    assert buf.reward[:2].tolist() == pytest.approx([1 + g * 2, 3])
    assert not buf.done[:4].any(), "a truncated chunk must bootstrap (done = termination only)"
    term = StepEnv(stop=3)
    buf = ReplayBuffer(64, (H, A), seed=0)
    train_steering(term, agent, 6, warmup_steps=100, buffer=buf, progress=False, verbose=False)
    assert buf.done[:2].tolist() == [0.0, 1.0]


# ---- DSRL-NA: the noise critic is distilled from Q^A(s, Φ(s, w)) on fresh noise ------------------------------
def test_dsrl_na_noise_critic_matches_the_action_critic_on_fresh_noise():
    torch.manual_seed(0)
    dec = LinearDecoder(scale=0.5)  # Φ(s, w) far from w: distilling Q^A(s, w) instead would not match
    agent = make_agent("dsrl-na", dec, None, dict(TINY, critic_hidden=(64, 64), lr_critic=3e-3,
                                                  noise_critic_steps=10, action_magnitude=1.0))
    a_star = torch.tensor([[0.5, -0.5], [0.0, 1.0]])
    _fix_critic(agent, a_star)
    steps = []
    opt = agent.optimizers["noise_critic"]
    step = opt.step
    opt.step = lambda *a, **k: (steps.append(1), step(*a, **k))[1]
    gen = torch.Generator().manual_seed(1)
    batch = _batch(dec, 16, gen)  # the same 16 stored noises every update: only fresh noise covers N(0, I)
    for i in range(40):
        agent.update(batch)
        assert len(steps) == 10 * (i + 1), "noise_critic_steps distillation steps per update"
    s, w = torch.randn(512, OBS), torch.randn(512, H, A)
    with torch.no_grad():
        qa = agent.critic(s, dec.decode_features(s, w))[0]
        for head in agent.noise_critic(s, w):
            r2 = 1 - float((head - qa).pow(2).mean() / qa.var())
            assert r2 > 0.9, f"noise critic explains only R²={r2:.2f} of Q^A(s, Φ(s, w)) on fresh noise"


# ---- DSRL-SAC: the entropy term ------------------------------------------------------------------------------
@pytest.mark.parametrize("target_entropy", [50.0, -50.0])
def test_dsrl_sac_actor_loss_and_alpha_step_match_a_hand_computation(target_entropy):
    dec = LinearDecoder()
    cfg = dict(TINY, alpha_init=0.5, lr_alpha=1e-2, lr_actor=1e-2, target_entropy=target_entropy)

    def build():
        torch.manual_seed(0)
        return make_agent("dsrl-sac", dec, None, cfg)

    agent, ref = build(), build()
    batch = _batch(dec, 16, torch.Generator().manual_seed(3))
    torch.manual_seed(7)
    out = agent.update(batch)
    m, alpha0 = ref.actor.magnitude, 0.5
    torch.manual_seed(7)
    torch.randn(16, H * A)  # first draw: the actor's sample at s' for the TD target
    xi = torch.randn(16, H * A)  # second draw: the actor's sample at s for its own loss

    def actor_loss(actor):
        """α·log π(w|s) − min Q(s, w), w = m·tanh(μ + σξ), log π by the change of variables, by hand."""
        with torch.no_grad():
            mu, log_std = actor.net(batch["obs"]).chunk(2, dim=-1)
            std = log_std.clamp(-5, 2).exp()
            u = mu + std * xi
            w = m * torch.tanh(u)
            logp = (torch.distributions.Normal(mu, std).log_prob(u) - torch.log(m * (1 - torch.tanh(u).pow(2)))).sum(-1)
            q = torch.minimum(*agent.critic(batch["obs"], w.reshape(-1, H, A)))  # the critic after its own step
        return float((alpha0 * logp - q).mean()), logp

    before, logp = actor_loss(ref.actor)
    assert out["actor_loss"] == pytest.approx(before, abs=1e-4)
    assert out["entropy"] == pytest.approx(float(-logp.mean()), abs=1e-4)
    assert actor_loss(agent.actor)[0] < before - 1e-3, "the actor step did not lower its own loss"
    # α's loss −log α·(log π + target): its first Adam step moves log α by lr against the gradient's sign, so
    # α rises when the entropy is below the target and falls when above
    grad = -float((logp + target_entropy).mean())
    want = math.log(alpha0) - 1e-2 * math.copysign(1.0, grad)
    assert float(agent.temperature.log_alpha.detach()) == pytest.approx(want, abs=1e-5)
    assert (out["alpha"] > alpha0) == (target_entropy > -logp.mean().item())


def test_sac_log_prob_is_the_tanh_gaussian_density_and_target_entropy_none_means_minus_dim():
    from lpds_core.agents.sac_common import TanhNoiseActor
    torch.manual_seed(0)
    actor = TanhNoiseActor(OBS, (H, A), (16,), magnitude=1.5)
    f = torch.randn(256, OBS)
    torch.manual_seed(1)
    w, logp = actor(f)
    torch.manual_seed(1)
    mu, log_std = actor.net(f).chunk(2, dim=-1)
    std = log_std.clamp(-5, 2).exp()
    dist = torch.distributions.TransformedDistribution(
        torch.distributions.Normal(mu, std),
        [torch.distributions.TanhTransform(cache_size=1), torch.distributions.AffineTransform(0.0, 1.5)])
    x = dist.rsample()
    assert torch.allclose(w.reshape(256, -1), x, atol=1e-5)
    assert torch.allclose(logp, dist.log_prob(x).sum(-1), atol=1e-3)
    agent = make_agent("dsrl-sac", LinearDecoder(), None, dict(TINY, target_entropy=None))
    assert agent.temperature.target_entropy == -H * A


# ---- LP-DS-A / LP-DS: the deployed (ONNX) action is the agent's own action, clipping included ------------------
@pytest.mark.parametrize("name", ["lpds-a", "lpds"])
def test_exported_policy_acts_exactly_like_the_agent_clipping_included(name, tmp_path):
    pytest.importorskip("onnxruntime")
    from lpds_core.export import export_onnx
    from lpds_core.flow_matching import FlowMatchingPolicy
    from lpds_core.onnx_policy import OnnxPolicy

    torch.manual_seed(0)
    fm = FlowMatchingPolicy(obs_dim=OBS, act_dim=A, horizon=H, hidden=32, n_layers=2, num_steps=3)
    fm.fit_normalizers(torch.randn(64, OBS), torch.rand(64, H, A) * 4 - 2)  # raw actions in ±2
    space = gym.spaces.Box(-0.5, 0.5, (A,), np.float32)  # decoded actions often exceed the bounds
    agent = make_agent(name, fm, gym.spaces.Box(-10, 10, (OBS,), np.float32), TINY, space)
    with torch.no_grad():
        for p in agent.perturbation.net[-1].parameters():
            p.normal_(0, 0.5)
    agent.eval()
    pert, pspace = agent.deployable_perturbation()
    export_onnx(fm, pert, tmp_path, {"perturbation_space": pspace}, action_bounds=agent.action_bounds())
    obs = np.random.default_rng(0).normal(size=(64, OBS)).astype(np.float32)
    eps = np.random.default_rng(1).standard_normal((64, H, A)).astype(np.float32)
    with torch.no_grad():
        f = fm.encode(torch.as_tensor(obs))
        want = agent.steered(f, torch.as_tensor(eps), averaged=True)[0].numpy()
        raw = fm.decode_features(f, torch.as_tensor(eps)).numpy()
    got = OnnxPolicy(tmp_path).act(obs, eps=eps)
    assert np.abs(want).max() <= 0.5 + 1e-6 and (np.abs(want) == 0.5).mean() > 0.1, "the test must clip"
    if name == "lpds-a":  # clip(clip(Φ) + Δ) differs from clip(Φ + Δ) here: the test sees the order
        d = pert(f).detach().numpy()
        assert np.abs(np.clip(raw + d, -0.5, 0.5) - want).max() > 1e-2
    np.testing.assert_allclose(got, want, atol=1e-4)


# ---- settings refused up front -------------------------------------------------------------------------------
@pytest.mark.parametrize("field, value", [
    ("noise_critic_steps", 0), ("noise_critic_steps", 2.5), ("lr_actor", -1e-3), ("lr_critic", 0.0),
    ("lr_alpha", float("nan")), ("action_magnitude", 0.0), ("action_magnitude", -1.0), ("tr_norm", "l1"),
    ("eps_form", "bogus"), ("gamma", 1.5), ("tau", 0.0), ("delta", 0.0), ("eta_lambda", -1.0),
    ("eta_lambda", float("inf")), ("actor_avg_rate", 2.0), ("hidden", ()), ("hidden", (0,)), ("actor_every", 0),
    ("lr_actor", "fast"),
])
def test_bad_agent_settings_are_refused_naming_the_field_and_range(field, value):
    # the loop's settings (utd, batch, warm-up, replay size) are LoopConfig's: test/core/test_config_schema.py
    with pytest.raises(ConfigError, match=rf"{field}(=| must).*(>|<|in |one of|list|number|not )"):
        AgentConfig(**{field: value})
    with pytest.raises(ConfigError, match=field):
        make_agent("dsrl-na", LinearDecoder(), None, {field: value})


def test_every_agent_setting_default_is_valid_and_dsrl_na_distils_like_the_reference():
    c = AgentConfig()
    assert c.check() is c
    assert c.noise_critic_steps == 10  # the DSRL reference's noise_critic_grad_steps
