"""LP-DS and LP-DS-A: a learned perturbation held in a Lagrangian trust region.

LP-DS (noise space):   a = Φ(s, ε + Δθ(s)),    ε ~ N(0, I)
LP-DS-A (action space): a = Φ(s, ε) + Δθ(s)    (Δ in normalised action units)

Both minimise  −E[Q(s, a)] + λ·(E_s‖Δθ(s)‖² − δ)  and raise λ by dual ascent. In LP-DS the
gradient reaches Δθ *through* the frozen decoder; in LP-DS-A it does not need to. The critic
is a twin action-space Q trained by TD on the executed (decoded) chunks with targets
`r + γ^n (1 − done) min Q'(s', a')`, a' drawn from the current steered policy. With `critic_obs` the critic
reads that part of the observation (e.g. the simulator state) instead of the backbone features: an asymmetric
actor-critic, since only Δθ, which keeps reading the backbone features, is deployed.
"""
from __future__ import annotations

import copy
from typing import Any

import torch
from torch import nn

from ..backbone import Obs
from ..critics import TwinQ, polyak_, td_target
from ..normalization import Normalizer
from ..perturbation import NoisePerturbation
from ..trust_region import LagrangianTrustRegion
from .base import Agent


class LPDSAgent(Agent):
    name = "lpds"
    space = "noise"

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        c = self.config
        self.perturbation = NoisePerturbation(self.feature_dim, self.noise_shape, c.hidden, use_eps=c.use_eps,
                                              eps_form=c.eps_form)
        # the deployed perturbation: a Polyak average of the online one (actor_avg_rate > 0), else the online one
        self.perturbation_avg = (copy.deepcopy(self.perturbation).requires_grad_(False)
                                 if c.actor_avg_rate > 0 else None)
        self.trust_region = LagrangianTrustRegion(c.delta, self.noise_dim, c.eta_lambda, c.lambda_init, c.tr_norm)
        critic_in = self.feature_dim
        self.critic_norm: Normalizer | None = None
        if c.critic_obs:
            critic_in = _obs_part_dim(self.obs_space, c.critic_obs)
            self.critic_norm = Normalizer(critic_in)  # fitted on the first update's batch, saved with the agent
        self.critic = TwinQ(critic_in, self.noise_dim, c.critic_hidden, self.action_offset, self.action_scale)
        self.optimizers = {
            "actor": torch.optim.Adam(self.perturbation.parameters(), lr=c.lr_actor),
            "critic": torch.optim.Adam(self.critic.online_parameters(), lr=c.lr_critic),
        }

    def describe(self) -> str:
        critic = f"; critic reads obs[{self.config.critic_obs!r}]" if self.config.critic_obs else ""
        return f"{super().describe()}, perturbation in {self.space} space; {self.trust_region.describe()}{critic}"

    def deployable_perturbation(self) -> tuple[nn.Module, str]:
        """(module, space) for `lpds_core.export.export_onnx`: metadata["perturbation_space"] = space.
        In action space the module outputs raw action units (Δ · action scale), as the exported graph adds it
        to the decoded raw actions."""
        pert = self._perturbation(averaged=True)
        if self.space == "noise":
            return pert, "noise"
        return _RawActionPerturbation(pert, self.action_scale), "action"

    def _perturbation(self, averaged: bool) -> NoisePerturbation:
        """The Polyak-averaged perturbation when asked for and kept, else the online one."""
        return self.perturbation_avg if averaged and self.perturbation_avg is not None else self.perturbation

    def steered(self, features: torch.Tensor, eps: torch.Tensor, averaged: bool = False, for_update: bool = False
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(actions, noise fed to the decoder, Δ) for given features and base noise ε; `averaged`: with the
        Polyak-averaged perturbation where there is one (what evaluation and the robot run); `for_update`: see
        `Agent.decode`."""
        delta = self._perturbation(averaged)(features, eps if self.config.use_eps else None)
        if self.space == "noise":
            w = eps + delta
            return self.decode(features, w, for_update), w, delta
        base = self.decode(features, eps, for_update)
        return self.clip(base + delta * self.action_scale), eps, delta

    def _act_batch(self, obs: Obs, deterministic: bool, eps_scale: torch.Tensor | None = None
                   ) -> tuple[torch.Tensor, torch.Tensor]:
        feats = self.features(obs)
        # eval mode (evaluation, export, deployment) acts with the averaged perturbation, train mode explores
        a, w, _ = self.steered(feats, self.sample_eps(feats.shape[0], deterministic, eps_scale),
                               averaged=not self.training)
        return a, w

    def critic_inputs(self, obs: Obs, features: torch.Tensor) -> torch.Tensor:
        """What the critic reads of an observation batch: the backbone features, or the standardised
        `critic_obs` part of it."""
        if self.critic_norm is None:
            return features
        key = self.config.critic_obs
        if not isinstance(obs, dict) or key not in obs:
            raise ValueError(f"critic_obs={key!r}, but the observation has no such key; the training env must "
                             f"provide it (for the RAI tasks: privileged_state=True adds 'state')")
        x = obs[key].float()
        if not bool(self.critic_norm.fitted):
            self.critic_norm.fit(x)
        return self.critic_norm(x)

    def update(self, batch: dict[str, Any]) -> dict[str, float]:
        c = self.config
        obs, nobs = self._batch_obs(batch)
        feats, nfeats = self.features(obs), self.features(nobs)
        cin, ncin = self.critic_inputs(obs, feats), self.critic_inputs(nobs, nfeats)
        actor_step = self.updates % c.actor_every == 0
        # one decode of the next observations serves the TD target (detached) and, with shared_decode, the actor
        # step (the perturbation has not changed in between; next observations are replay states like any other)
        shared = actor_step and c.shared_decode
        with torch.set_grad_enabled(shared):
            a_next, _, delta_next = self.steered(nfeats, torch.randn(nfeats.shape[0], *self.noise_shape),
                                                 for_update=True)
        with torch.no_grad():
            y = td_target(batch["reward"], batch["discount"], batch["done"],
                          *self.critic.target(ncin, a_next.detach()))
        critic_loss = self.critic.loss(cin, batch["action"], y)
        self.optimizers["critic"].zero_grad(set_to_none=True)
        critic_loss.backward()
        self.optimizers["critic"].step()
        out = {"critic_loss": float(critic_loss.detach()), "q_target": float(y.mean())}

        if actor_step:
            if shared:
                a, delta, actor_feats, actor_cin = a_next, delta_next, nfeats, ncin
            else:
                a, _, delta = self.steered(feats, torch.randn(feats.shape[0], *self.noise_shape), for_update=True)
                actor_feats, actor_cin = feats, cin
            q = torch.min(*self.critic.frozen(actor_cin, a))
            q_term = -q.mean()
            if c.actor_q_normalize:
                q_term = q_term / q.abs().mean().detach().clamp_min(1e-3)
            penalty, constraint = self.trust_region.penalty(delta)
            actor_loss = q_term + penalty
            self.optimizers["actor"].zero_grad(set_to_none=True)
            actor_loss.backward()
            self.optimizers["actor"].step()
            lam = self.trust_region.dual_step(constraint.detach())
            if self.perturbation_avg is not None:
                polyak_(self.perturbation_avg, self.perturbation, c.actor_avg_rate)
            out.update(actor_loss=float(actor_loss.detach()), q_pi=float(q.detach().mean()), **{"lambda": lam},
                       delta_sq=float(constraint.detach()), gap=float(constraint.detach()) - self.trust_region.delta)
            gain = self.perturbation.gain(actor_feats) if self.space == "noise" else None
            if gain is not None:
                out["noise_gain"] = float(gain.mean())
        self.critic.polyak(c.tau)
        self.updates += 1
        return out


def _obs_part_dim(obs_space: Any, key: str) -> int:
    """Size of the flat vector `obs_space[key]`; a clear error when the env does not provide it."""
    spaces = getattr(obs_space, "spaces", None)
    if not isinstance(spaces, dict) or key not in spaces:
        have = sorted(spaces) if isinstance(spaces, dict) else type(obs_space).__name__
        raise ValueError(f"critic_obs={key!r} needs a Dict observation space with that key; the env has {have}. "
                         f"For the RAI image tasks make the training env with privileged_state=True")
    shape = tuple(spaces[key].shape or ())
    if len(shape) != 1:
        raise ValueError(f"critic_obs={key!r} must be a flat vector, the env gives shape {shape}")
    return int(shape[0])


class _RawActionPerturbation(nn.Module):
    """Δθ in raw action units: the normalised LP-DS-A perturbation times the action half-range."""

    def __init__(self, perturbation: NoisePerturbation, scale: torch.Tensor):
        super().__init__()
        self.perturbation = perturbation
        self.register_buffer("scale", scale.detach().clone())

    @property
    def takes_eps(self) -> bool:
        return self.perturbation.takes_eps

    def forward(self, features: torch.Tensor, eps: torch.Tensor | None = None) -> torch.Tensor:
        return self.perturbation(features, eps) * self.scale


class LPDSActionAgent(LPDSAgent):
    """LP-DS-A: the same Lagrangian perturbation, added to the decoded actions instead of the noise."""

    name = "lpds-a"
    space = "action"
