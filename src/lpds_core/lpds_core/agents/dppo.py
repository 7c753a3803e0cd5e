"""DPPO (Ren et al. 2024, "Diffusion Policy Policy Optimization"): PPO over the denoising chain of a diffusion base.

The K steps of the chain x_K → … → x_0 (DDPM over the base's T training steps, or its K DDIM steps with eta > 0)
are an inner MDP: each step is a Gaussian x_{i+1} ~ N(μ_θ(x_i, s), σ_i²), so its log-probability is exact and PPO
applies. The last `ft_denoising_steps` steps run a deep copy of the base's network, which is what is trained; the
earlier ones, the encoder and the frozen base object itself never change. Facts taken from the reference
(irom-lab/dppo): σ floored at `min_sampling_std` when sampling (the exploration floor, every step) and at
`min_logprob_std` in log-probabilities; N(0, I) draws clipped to ±`randn_clip`; a step's log-probability is the
per-dimension mean of the Gaussian log-density, each entry clamped to [−5, 2]; PPO minibatches of (chunk,
denoising step) pairs; the chunk's advantage, normalised per minibatch, times `gamma_denoising**(k−1−j)` at
fine-tuned step j; ratio clip growing exponentially from `clip_ploss_coef_base` (first fine-tuned step) to
`clip_ploss_coef` (last); a value net V(s) (Mish MLP); running reward scaling; early stop at `target_kl`.

Ours (stated, not the reference's): γ is per env step and a chunk of n steps bootstraps with γ^n
(lpds_core.chunking, like every agent); GAE's λ is per chunk; a truncated episode bootstraps from V of its final
observation and the GAE recursion stops at every episode end; old log-probabilities are computed right before
the update with the network that sampled the chain (the policy has not changed since), as the reference does.
"""
from __future__ import annotations

import copy
import math
from typing import Any

import numpy as np
import torch
from torch import nn

from ..backbone import Obs
from ..errors import ConfigError
from ..rollout import Rollout
from .base import Agent

LOGPROB_CLAMP = (-5.0, 2.0)  # the reference clamps every per-entry log-density to this range
OLD_LOGPROB_BATCH = 65_536  # pairs per forward pass when the rollout's old log-probabilities are computed


class DenoisingSchedule(nn.Module):
    """Per chain step i (0 = noisiest): the train timestep t_i and the coefficients of
    x̂0 = (x − √(1−ᾱ_t)·ε)/√ᾱ_t (clamped to [−1, 1] like the base), μ = a_i·x̂0 + b_i·x + c_i·ε, and σ_i."""

    def __init__(self, backbone: Any, sampler: str, eta: float):
        super().__init__()
        acp = backbone.alphas_cumprod.double()
        if sampler == "ddpm":
            ts = torch.arange(backbone.num_train_steps - 1, -1, -1)
            ab = acp[ts]
            ab_prev = torch.cat([acp[ts[1:]], torch.ones(1, dtype=torch.float64)])
            beta = 1 - ab / ab_prev
            a = beta * ab_prev.sqrt() / (1 - ab)
            b = (1 - ab_prev) * (1 - beta).sqrt() / (1 - ab)
            c = torch.zeros_like(ab)
            sigma = (beta * (1 - ab_prev) / (1 - ab)).clamp(min=0).sqrt()
        elif sampler == "ddim":
            ts = backbone.ddim_timesteps.clone()
            ab = acp[ts]
            ab_prev = torch.cat([acp[ts[1:]], torch.ones(1, dtype=torch.float64)])
            sigma = eta * ((1 - ab_prev) / (1 - ab) * (1 - ab / ab_prev)).clamp(min=0).sqrt()
            a = ab_prev.sqrt()
            b = torch.zeros_like(ab)
            c = (1 - ab_prev - sigma**2).clamp(min=0).sqrt()
        else:
            raise ConfigError(f"dppo_sampler must be 'ddpm' or 'ddim', got {sampler!r}")
        self.clip_sample = bool(backbone.clip_sample)
        self.num_train_steps = int(backbone.num_train_steps)
        for name, v in (("t", ts.long()), ("ab", ab), ("a", a), ("b", b), ("c", c), ("sigma", sigma)):
            self.register_buffer(name, v if name == "t" else v.float(), persistent=False)

    def __len__(self) -> int:
        return int(self.t.shape[0])

    def mean(self, i: torch.Tensor, x: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
        """μ of step(s) `i` (a (N,) index tensor) from x_i and the network's ε prediction, both (N, D)."""
        ab = self.ab[i][:, None]
        x0 = (x - (1 - ab).sqrt() * eps) / ab.sqrt()
        if self.clip_sample:
            x0 = x0.clamp(-1.0, 1.0)
        return self.a[i][:, None] * x0 + self.b[i][:, None] * x + self.c[i][:, None] * eps

    def time_input(self, i: torch.Tensor) -> torch.Tensor:
        return self.t[i].float() / self.num_train_steps  # the base's time input (DiffusionPolicy._time_input)


def gae(rewards: torch.Tensor, values: torch.Tensor, next_values: torch.Tensor, discounts: torch.Tensor,
        terminated: torch.Tensor, ended: torch.Tensor, lam: float) -> tuple[torch.Tensor, torch.Tensor]:
    """(advantages, returns) over a rollout, all (T, E). δ_t = r_t + d_t·(1−term_t)·V(s'_t) − V(s_t);
    A_t = δ_t + d_t·λ·(1−end_t)·A_{t+1}, with d_t = γ^n the chunk's bootstrap discount, s'_t the chunk's next
    observation (the final one of a finished episode) and end_t = terminated or truncated."""
    adv = torch.zeros_like(rewards)
    last = torch.zeros_like(rewards[0])
    for t in reversed(range(rewards.shape[0])):
        delta = rewards[t] + discounts[t] * (1 - terminated[t]) * next_values[t] - values[t]
        last = delta + discounts[t] * lam * (1 - ended[t]) * last
        adv[t] = last
    return adv, adv + values


def clipped_policy_loss(logratio: torch.Tensor, adv: torch.Tensor, clip: torch.Tensor | float) -> torch.Tensor:
    """PPO's clipped surrogate, to minimise: mean(max(−A·r, −A·clamp(r, 1−c, 1+c))), r = exp(logratio)."""
    ratio = logratio.exp()
    clip_t = torch.as_tensor(clip, dtype=ratio.dtype)
    return torch.max(-adv * ratio, -adv * torch.clamp(ratio, 1 - clip_t, 1 + clip_t)).mean()


class RunningRewardScale:
    """Rewards divided by the running std of the discounted return (reference: reward_scale_running), clipped."""

    def __init__(self, clip: float = 10.0):
        self.clip = clip
        self.mean, self.var, self.count = 0.0, 1.0, 1e-4
        self.ret: np.ndarray | None = None  # running discounted return per env
        self.first: np.ndarray | None = None  # whether each env's next chunk starts an episode

    def __call__(self, rewards: np.ndarray, ended: np.ndarray, gamma: float) -> np.ndarray:
        n_envs = rewards.shape[1]
        if self.ret is None or self.ret.shape[0] != n_envs:
            self.ret, self.first = np.zeros(n_envs), np.ones(n_envs)
        rets = np.zeros_like(rewards, dtype=np.float64)
        for t in range(rewards.shape[0]):
            self.ret = rewards[t] + (1 - self.first) * gamma * self.ret
            rets[t] = self.ret
            self.first = ended[t].astype(np.float64)
        b_mean, b_var, b_n = rets.mean(), rets.var(), rets.size
        delta, tot = b_mean - self.mean, self.count + b_n
        m2 = self.var * self.count + b_var * b_n + delta**2 * self.count * b_n / tot
        self.mean, self.var, self.count = self.mean + delta * b_n / tot, m2 / (tot - 1), tot
        return np.clip(rewards / math.sqrt(self.var + 1e-8), -self.clip, self.clip)

    def state(self) -> dict[str, Any]:
        """Plain python floats and lists: a run checkpoint loads with torch's safe (weights_only) unpickler."""
        return {"mean": float(self.mean), "var": float(self.var), "count": float(self.count),
                "ret": None if self.ret is None else [float(v) for v in self.ret],
                "first": None if self.first is None else [float(v) for v in self.first]}

    def load(self, st: dict[str, Any]) -> None:
        self.mean, self.var, self.count = float(st["mean"]), float(st["var"]), float(st["count"])
        self.ret = None if st["ret"] is None else np.asarray(st["ret"], dtype=np.float64)
        self.first = None if st["first"] is None else np.asarray(st["first"], dtype=np.float64)


def _value_net(in_dim: int, hidden: tuple[int, ...]) -> nn.Sequential:
    layers: list[nn.Module] = []
    for h in hidden:
        layers += [nn.Linear(in_dim, h), nn.Mish()]
        in_dim = h
    return nn.Sequential(*layers, nn.Linear(in_dim, 1))


class DPPOAgent(Agent):
    """PPO on the last `ft_denoising_steps` of the base's denoising chain; acts with the whole stochastic chain."""

    name = "dppo"
    on_policy = True

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        c = self.config
        bb = self.backbone
        if getattr(bb, "kind", "") != "diffusion":
            raise ConfigError(f"dppo fine-tunes a diffusion base's denoising chain; this base is "
                              f"{getattr(bb, 'kind', type(bb).__name__)!r}: train a diffusion base")
        if c.critic_obs:
            raise ConfigError("dppo's value net reads the backbone features: critic_obs applies to lpds/lpds-a; "
                              "remove it")
        self.schedule = DenoisingSchedule(bb, c.dppo_sampler, c.ddim_eta)
        self.n_chain = len(self.schedule)
        if c.ft_denoising_steps > self.n_chain:
            raise ConfigError(f"ft_denoising_steps={c.ft_denoising_steps} exceeds the {self.n_chain} steps of the "
                              f"base's {c.dppo_sampler} chain; lower --ft-denoising-steps")
        self.ft_steps = int(c.ft_denoising_steps)
        # the fine-tuned network: a deep copy; the base object (and its .net) stays frozen and untouched
        self.actor_ft = copy.deepcopy(bb.net)
        self.actor_ft.requires_grad_(True)
        self.value = _value_net(self.feature_dim, tuple(c.critic_hidden))
        self.reward_scale = RunningRewardScale()
        self.optimizers = {"actor": torch.optim.Adam(self.actor_ft.parameters(), lr=c.lr_actor),
                           "critic": torch.optim.Adam(self.value.parameters(), lr=c.lr_critic)}

    @property
    def rollout_steps(self) -> int:
        return int(self.config.rollout_steps)

    def describe(self) -> str:
        c = self.config
        return (f"{super().describe()}, on-policy PPO on the last {self.ft_steps}/{self.n_chain} {c.dppo_sampler} "
                f"denoising steps, sampling std >= {c.min_sampling_std:g}, {c.rollout_steps} chunks per env per "
                f"update (warm-up, utd and the replay batch do not apply)")

    # ---- the chain ------------------------------------------------------------------------------
    def clip_coefs(self) -> torch.Tensor:
        """The ratio clip of each fine-tuned step j = 0..k−1: base → coef, exponentially (reference schedule)."""
        c = self.config
        if self.ft_steps == 1:
            return torch.tensor([c.clip_ploss_coef])
        t = torch.arange(self.ft_steps, dtype=torch.float64) / (self.ft_steps - 1)
        r = c.clip_ploss_coef_rate
        return (c.clip_ploss_coef_base + (c.clip_ploss_coef - c.clip_ploss_coef_base)
                * (torch.exp(r * t) - 1) / (math.exp(r) - 1)).float()

    def denoising_discounts(self) -> torch.Tensor:
        """gamma_denoising**(k−1−j) for fine-tuned step j: the step that makes the action gets 1."""
        k = self.ft_steps
        return torch.tensor([self.config.gamma_denoising ** (k - 1 - j) for j in range(k)])

    def _eps(self, net: nn.Module, feats: torch.Tensor, x: torch.Tensor, i: torch.Tensor) -> torch.Tensor:
        return net.step(net.condition(feats), x, net.time_term(self.schedule.time_input(i)))

    @torch.no_grad()
    def sample_chain(self, feats: torch.Tensor, deterministic: bool = False
                     ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(actions (B, H, A) raw and clipped, x_K (B, H, A), chain (B, k+1, D) normalised: the input of the first
        fine-tuned step and the output of each). Deterministic: no exploration floor (σ = 0 for DDIM; DDPM keeps
        its own σ, which is 0 at the last step)."""
        c = self.config
        n = feats.shape[0]
        d = self.noise_dim
        x = torch.randn(n, d)
        x_start = x.clone()
        first_ft = self.n_chain - self.ft_steps
        chain = [x] if first_ft == 0 else []
        for i in range(self.n_chain):
            net = self.actor_ft if i >= first_ft else self.backbone.net
            idx = torch.full((n,), i, dtype=torch.long)
            mu = self.schedule.mean(idx, x, self._eps(net, feats, x, idx))
            sigma = float(self.schedule.sigma[i])
            if deterministic:
                std = 0.0 if c.dppo_sampler == "ddim" else sigma
            else:
                std = max(sigma, c.min_sampling_std)
            x = mu + std * torch.randn(n, d).clamp(-c.randn_clip, c.randn_clip)
            if i >= first_ft - 1:  # the input of the first fine-tuned step, then each one's output
                chain.append(x)
        h, a = self.noise_shape
        actions = self.clip(self.backbone.action_norm.unnormalize(x.reshape(n, h, a)))
        return actions, x_start.reshape(n, h, a), torch.stack(chain, 1)

    def step_logprob(self, feats: torch.Tensor, x_prev: torch.Tensor, x_next: torch.Tensor, j: torch.Tensor
                     ) -> torch.Tensor:
        """log π(x_next | x_prev, s) of fine-tuned step j (N,) — per-dimension mean of the clamped Gaussian
        log-density with σ floored at min_logprob_std; differentiable in the fine-tuned network."""
        i = j + (self.n_chain - self.ft_steps)
        mu = self.schedule.mean(i, x_prev, self._eps(self.actor_ft, feats, x_prev, i))
        std = self.schedule.sigma[i].clamp(min=self.config.min_logprob_std)[:, None]
        logp = -0.5 * ((x_next - mu) / std) ** 2 - std.log() - 0.5 * math.log(2 * math.pi)
        return logp.clamp(*LOGPROB_CLAMP).mean(-1)

    # ---- acting ---------------------------------------------------------------------------------
    def _act_batch(self, obs: Obs, deterministic: bool, eps_scale: torch.Tensor | None = None
                   ) -> tuple[torch.Tensor, torch.Tensor]:
        if eps_scale is not None:
            raise ValueError("dppo samples its own denoising chain: eps_scale exploration applies only to agents "
                             "that decode ε + Δ (base, lpds, lpds-a)")
        actions, x_start, _ = self.sample_chain(self.features(obs), deterministic)
        return actions, x_start

    @torch.no_grad()
    def act_on_policy(self, obs: Any) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """A batch of chunks (B, H, A) and what the rollout keeps for the update: {"chain": (B, k+1, D)}."""
        t, _ = self.obs_to_tensor(obs)
        actions, _, chain = self.sample_chain(self.features(t))
        return actions.numpy(), {"chain": chain.numpy()}

    # ---- learning -------------------------------------------------------------------------------
    def update(self, batch: dict[str, Any]) -> dict[str, float]:
        raise TypeError("dppo is on-policy: the loop calls update_on_policy(rollout), never update(replay batch)")

    def update_on_policy(self, rollout: Rollout) -> dict[str, float]:
        """PPO epochs over one rollout (T chunks × E envs × k denoising steps); returns mean stats."""
        c = self.config
        r = rollout.arrays()
        t_len, n_envs = r["reward"].shape
        flat = lambda o: ({k: v.reshape(t_len * n_envs, *v.shape[2:]) for k, v in o.items()}  # noqa: E731
                          if isinstance(o, dict) else o.reshape(t_len * n_envs, *o.shape[2:]))
        feats = self.features(self.obs_to_tensor(flat(r["obs"]))[0])
        nfeats = self.features(self.obs_to_tensor(flat(r["next_obs"]))[0])
        chain = torch.as_tensor(r["chain"], dtype=torch.float32).reshape(t_len * n_envs, self.ft_steps + 1, -1)
        rewards = r["reward"]
        if c.reward_scale_running:
            rewards = self.reward_scale(rewards, r["ended"], c.gamma ** self.noise_shape[0])
        as_t = lambda a: torch.as_tensor(np.asarray(a), dtype=torch.float32)  # noqa: E731
        with torch.no_grad():
            values = self.value(feats).reshape(t_len, n_envs)
            next_values = self.value(nfeats).reshape(t_len, n_envs)
            adv, returns = gae(as_t(rewards), values, next_values, as_t(r["discount"]), as_t(r["terminated"]),
                               as_t(r["ended"]), c.gae_lambda)
            adv, returns = adv.reshape(-1), returns.reshape(-1)
            n = t_len * n_envs
            b_all = torch.arange(n).repeat_interleave(self.ft_steps)
            j_all = torch.arange(self.ft_steps).repeat(n)
            old_logp = torch.cat([self.step_logprob(feats[bb], chain[bb, jj], chain[bb, jj + 1], jj)
                                  for bb, jj in zip(b_all.split(OLD_LOGPROB_BATCH), j_all.split(OLD_LOGPROB_BATCH))])
        clip_j, disc_j = self.clip_coefs(), self.denoising_discounts()
        total = n * self.ft_steps
        bs = min(c.ppo_batch_size, total)
        stats: dict[str, list[float]] = {k: [] for k in ("pg_loss", "v_loss", "approx_kl", "clipfrac", "ratio")}
        epochs_done = 0
        stop = False
        for _ in range(c.ppo_epochs):
            perm = torch.randperm(total)
            for k in range(max(1, total // bs)):
                ids = perm[k * bs:(k + 1) * bs]
                b, j = b_all[ids], j_all[ids]
                logp = self.step_logprob(feats[b], chain[b, j], chain[b, j + 1], j)
                logratio = logp - old_logp[ids]
                a = adv[b]
                a = (a - a.mean()) / (a.std() + 1e-8) if a.numel() > 1 else a - a.mean()
                pg_loss = clipped_policy_loss(logratio, a * disc_j[j], clip_j[j])
                v_loss = 0.5 * (self.value(feats[b]).squeeze(-1) - returns[b]).pow(2).mean()
                for opt in self.optimizers.values():
                    opt.zero_grad(set_to_none=True)
                (pg_loss + v_loss).backward()
                for opt in self.optimizers.values():
                    opt.step()
                with torch.no_grad():
                    ratio = logratio.exp()
                    approx_kl = float(((ratio - 1) - logratio).mean())
                    stats["clipfrac"].append(float(((ratio - 1).abs() > clip_j[j]).float().mean()))
                stats["pg_loss"].append(float(pg_loss.detach()))
                stats["v_loss"].append(float(v_loss.detach()))
                stats["approx_kl"].append(approx_kl)
                stats["ratio"].append(float(ratio.mean()))
                self.updates += 1
                if c.target_kl is not None and approx_kl > c.target_kl:
                    stop = True
                    break
            epochs_done += 1
            if stop:
                break
        out = {k: float(np.mean(v)) for k, v in stats.items() if v}
        var_y = float(returns.var())
        out.update(epochs=float(epochs_done), value_mean=float(values.mean()),
                   explained_var=float("nan") if var_y == 0 else 1 - float((returns - values.reshape(-1)).var()) / var_y,
                   reward_std=math.sqrt(self.reward_scale.var) if c.reward_scale_running else 1.0)
        return out

    # ---- checkpoints ----------------------------------------------------------------------------
    def state_dict(self, *args: Any, **kwargs: Any) -> dict[str, Any]:  # type: ignore[override]
        st = super().state_dict(*args, **kwargs)
        st["reward_scale"] = self.reward_scale.state()
        return st

    def load_state_dict(self, state: dict[str, Any], strict: bool = True) -> Any:  # type: ignore[override]
        res = super().load_state_dict(state, strict=strict)
        if "reward_scale" in state:
            self.reward_scale.load(state["reward_scale"])
        return res
