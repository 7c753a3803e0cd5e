"""Pieces shared by the DSRL baselines: a tanh-bounded Gaussian actor in noise space, and α tuning."""
from __future__ import annotations

import math

import torch
from torch import nn

from ..perturbation import mlp

LOG_STD_MIN, LOG_STD_MAX = -5.0, 2.0


class TanhNoiseActor(nn.Module):
    """π(w|s): w = m·tanh(u), u ~ N(μ(s), σ(s)); m = action_magnitude bounds the noise (DSRL's knob)."""

    def __init__(self, feature_dim: int, noise_shape: tuple[int, int], hidden: tuple[int, ...], magnitude: float):
        super().__init__()
        if not magnitude > 0:
            raise ValueError(f"action_magnitude must be > 0, got {magnitude}")
        self.noise_shape = tuple(noise_shape)
        self.dim = self.noise_shape[0] * self.noise_shape[1]
        self.magnitude = float(magnitude)
        self.net = mlp(feature_dim, 2 * self.dim, hidden)

    def forward(self, features: torch.Tensor, deterministic: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """(w (B, H, A), log π(w|s) (B,))."""
        mu, log_std = self.net(features).chunk(2, dim=-1)
        log_std = log_std.clamp(LOG_STD_MIN, LOG_STD_MAX)
        u = mu if deterministic else mu + log_std.exp() * torch.randn_like(mu)
        t = torch.tanh(u)
        # log N(u) − log|d w/d u|, with d w/d u = m (1 − tanh² u)
        logp = (-0.5 * ((u - mu) / log_std.exp()).pow(2) - log_std - 0.5 * math.log(2 * math.pi)).sum(-1)
        logp = logp - (math.log(self.magnitude) + torch.log1p(-t.pow(2) + 1e-6)).sum(-1)
        return (self.magnitude * t).reshape(-1, *self.noise_shape), logp


class EntropyTemperature(nn.Module):
    """α = exp(log α), tuned so that E[−log π] tracks the target entropy."""

    def __init__(self, init: float, target_entropy: float):
        super().__init__()
        self.log_alpha = nn.Parameter(torch.tensor(math.log(init)))
        self.target_entropy = float(target_entropy)

    @property
    def alpha(self) -> torch.Tensor:
        return self.log_alpha.exp().detach()

    def loss(self, logp: torch.Tensor) -> torch.Tensor:
        return -(self.log_alpha * (logp.detach() + self.target_entropy)).mean()
