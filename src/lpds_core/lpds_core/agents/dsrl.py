"""DSRL baselines (Wagenmaker et al. 2025): SAC in the decoder's noise space.

DSRL-SAC: Q(s, w) on the noise the actor chose; the env sees Φ(s, w), decoded once per step.
DSRL-NA ("noise aliasing"): an action critic Q^A(s, a) trained by TD on executed chunks, a
noise critic Q^W(s, w) distilled from it on w ~ N(0, I), and the actor trained on Q^W.
Unlike the reference code, DSRL-NA honours `action_magnitude` (ajwagen/dsrl issue #6).
"""
from __future__ import annotations

from typing import Any

import torch

from ..backbone import Obs
from ..critics import TwinQ, td_target
from .base import Agent
from .sac_common import EntropyTemperature, TanhNoiseActor


class _NoiseSACAgent(Agent):
    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        c = self.config
        if c.critic_obs:
            raise ValueError(f"{self.name} has no asymmetric critic: critic_obs applies to lpds/lpds-a; remove it")
        self.actor = TanhNoiseActor(self.feature_dim, self.noise_shape, c.hidden, c.action_magnitude)
        target = -float(self.noise_dim) if c.target_entropy is None else c.target_entropy
        self.temperature = EntropyTemperature(c.alpha_init, target)

    def describe(self) -> str:
        return (f"{super().describe()}, tanh noise actor |w| <= {self.actor.magnitude:g}, "
                f"target entropy {self.temperature.target_entropy:g}")

    def _act_batch(self, obs: Obs, deterministic: bool, eps_scale: torch.Tensor | None = None
                   ) -> tuple[torch.Tensor, torch.Tensor]:
        if eps_scale is not None:
            raise ValueError(f"{self.name} samples its noise from its SAC actor: eps_scale exploration applies "
                             f"only to agents that decode ε + Δ (base, lpds, lpds-a)")
        feats = self.features(obs)
        w, _ = self.actor(feats, deterministic)
        return self.decode(feats, w), w

    def _critic_step(self, feats: torch.Tensor, nfeats: torch.Tensor, batch: dict[str, Any], stored: str,
                     critic_input: Any) -> dict[str, float]:
        """One soft TD step of the twin critic. Both DSRL variants share it; they differ only in what the critic
        sees: `critic_input(features, w)` maps the actor's next noise to it, `batch[stored]` is the taken one."""
        with torch.no_grad():
            w_next, logp_next = self.actor(nfeats)
            y = td_target(batch["reward"], batch["discount"], batch["done"],
                          *self.critic.target(nfeats, critic_input(nfeats, w_next)),
                          -self.temperature.alpha * logp_next)
        critic_loss = self.critic.loss(feats, batch[stored], y)
        self.optimizers["critic"].zero_grad(set_to_none=True)
        critic_loss.backward()
        self.optimizers["critic"].step()
        return {"critic_loss": float(critic_loss.detach()), "q_target": float(y.mean())}

    def _actor_and_alpha_step(self, feats: torch.Tensor, q_fn: Any) -> dict[str, float]:
        w, logp = self.actor(feats)
        q = q_fn(feats, w)
        actor_loss = (self.temperature.alpha * logp - q).mean()
        self.optimizers["actor"].zero_grad(set_to_none=True)
        actor_loss.backward()
        self.optimizers["actor"].step()
        alpha_loss = self.temperature.loss(logp)
        self.optimizers["alpha"].zero_grad(set_to_none=True)
        alpha_loss.backward()
        self.optimizers["alpha"].step()
        return {"actor_loss": float(actor_loss.detach()), "q_pi": float(q.detach().mean()),
                "alpha": float(self.temperature.alpha),
                "entropy": float(-logp.detach().mean()), "noise_sq": float(w.detach().pow(2).sum((1, 2)).mean())}


class DSRLSACAgent(_NoiseSACAgent):
    name = "dsrl-sac"

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        c = self.config
        # the critic sees the noise in units of the bound
        self.critic = TwinQ(self.feature_dim, self.noise_dim, c.critic_hidden,
                            input_scale=torch.full((self.noise_dim,), c.action_magnitude))
        self.optimizers = {
            "actor": torch.optim.Adam(self.actor.parameters(), lr=c.lr_actor),
            "critic": torch.optim.Adam(self.critic.online_parameters(), lr=c.lr_critic),
            "alpha": torch.optim.Adam(self.temperature.parameters(), lr=c.lr_alpha),
        }

    def update(self, batch: dict[str, Any]) -> dict[str, float]:
        c = self.config
        feats, nfeats = self._batch_features(batch)
        out = self._critic_step(feats, nfeats, batch, "noise", lambda f, w: w)  # Q(s, w): the critic sees the noise
        if self.updates % c.actor_every == 0:
            out.update(self._actor_and_alpha_step(feats, lambda f, w: torch.min(*self.critic.frozen(f, w))))
        self.critic.polyak(c.tau)
        self.updates += 1
        return out


class DSRLNAAgent(_NoiseSACAgent):
    name = "dsrl-na"

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        c = self.config
        self.critic = TwinQ(self.feature_dim, self.noise_dim, c.critic_hidden, self.action_offset, self.action_scale)
        self.noise_critic = TwinQ(self.feature_dim, self.noise_dim, c.critic_hidden,
                                  input_scale=torch.full((self.noise_dim,), max(c.action_magnitude, 1.0)))
        self.optimizers = {
            "actor": torch.optim.Adam(self.actor.parameters(), lr=c.lr_actor),
            "critic": torch.optim.Adam(self.critic.online_parameters(), lr=c.lr_critic),
            "noise_critic": torch.optim.Adam(self.noise_critic.online_parameters(), lr=c.lr_critic),
            "alpha": torch.optim.Adam(self.temperature.parameters(), lr=c.lr_alpha),
        }

    def update(self, batch: dict[str, Any]) -> dict[str, float]:
        c = self.config
        feats, nfeats = self._batch_features(batch)
        # Q^A(s, a) on decoded actions
        out = self._critic_step(feats, nfeats, batch, "action", lambda f, w: self.decode(f, w, for_update=True))

        # distil Q^W(s, w) ≈ Q^A(s, Φ(s, w)) on fresh w ~ N(0, I), head by head. Q^A does not change during the
        # distillation, so all its targets come from one batched decode (one pass of k·B instead of k of B).
        k, b = c.noise_critic_steps, feats.shape[0]
        with torch.no_grad():
            w_all = torch.randn(k * b, *self.noise_shape)
            f_all = feats.repeat(k, 1)
            qa1_all, qa2_all = self.critic(f_all, self.decode(f_all, w_all, for_update=True))
        for i in range(k):
            w, (qa1, qa2) = w_all[i * b:(i + 1) * b], (qa1_all[i * b:(i + 1) * b], qa2_all[i * b:(i + 1) * b])
            qw1, qw2 = self.noise_critic(feats, w)
            distill = 0.5 * ((qw1 - qa1).pow(2).mean() + (qw2 - qa2).pow(2).mean())
            self.optimizers["noise_critic"].zero_grad(set_to_none=True)
            distill.backward()
            self.optimizers["noise_critic"].step()
        out["distill_loss"] = float(distill.detach())

        if self.updates % c.actor_every == 0:
            out.update(self._actor_and_alpha_step(feats, lambda f, w: torch.min(*self.noise_critic.frozen(f, w))))
        self.critic.polyak(c.tau)
        self.updates += 1
        return out
