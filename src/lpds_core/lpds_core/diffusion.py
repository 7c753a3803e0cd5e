"""Diffusion action-chunk policy: DDPM noise-prediction training, DDIM (eta = 0) decoding in K steps.

eta = 0 makes DDIM a deterministic map from the initial noise x_T = w to the action, so it can be steered
through its noise like the flow policy.
"""
from __future__ import annotations

import math
from typing import Any, Literal

import torch
import torch.nn.functional as F

from .backbone import Obs
from .chunk_policy import ChunkPolicy


def make_alphas_cumprod(num_train_steps: int, schedule: str) -> torch.Tensor:
    """ᾱ_t for t = 0..T-1. "cosine": Nichol & Dhariwal (betas capped at 0.999); "linear": DDPM 1e-4..0.02
    rescaled to T steps so ᾱ_{T-1} is near 0 for any T."""
    t_count = num_train_steps
    if schedule == "cosine":
        s = 0.008
        f = lambda t: math.cos((t / t_count + s) / (1 + s) * math.pi / 2) ** 2  # noqa: E731
        betas = torch.tensor([min(1 - f(i + 1) / f(i), 0.999) for i in range(t_count)], dtype=torch.float64)
    elif schedule == "linear":
        scale = 1000.0 / t_count
        betas = torch.linspace(scale * 1e-4, min(scale * 0.02, 0.999), t_count, dtype=torch.float64)
    else:
        raise ValueError(f"unknown beta schedule {schedule!r}; use 'cosine' or 'linear'")
    return torch.cumprod(1.0 - betas, dim=0).to(torch.float32)


class DiffusionPolicy(ChunkPolicy):
    """a = Φ(s, w): DDIM (eta=0) over K of the T training steps, starting from x_T = w."""

    kind = "diffusion"

    def __init__(
        self,
        obs_dim: int,
        act_dim: int,
        horizon: int,
        *,
        num_train_steps: int = 100,
        beta_schedule: Literal["cosine", "linear"] = "cosine",
        clip_sample: bool = True,
        **chunk_kwargs: Any,
    ) -> None:
        """`chunk_kwargs`: the shared `ChunkPolicy` options (obs_type, hidden, num_steps, ...)."""
        super().__init__(obs_dim, act_dim, horizon, **chunk_kwargs)
        num_steps = self.num_steps
        if num_steps > num_train_steps:
            raise ValueError(f"num_steps ({num_steps}) cannot exceed num_train_steps ({num_train_steps})")
        self.num_train_steps = int(num_train_steps)
        self.clip_sample = bool(clip_sample)
        self.config.update(num_train_steps=self.num_train_steps, beta_schedule=beta_schedule, clip_sample=clip_sample)
        acp = make_alphas_cumprod(self.num_train_steps, beta_schedule)
        self.register_buffer("alphas_cumprod", acp, persistent=False)
        # DDIM schedule: K train steps from T-1 down to 0, evenly spaced; then ᾱ = 1 (the clean action)
        ts = torch.linspace(self.num_train_steps - 1, 0, self.num_steps).round().long()
        self.register_buffer("ddim_timesteps", ts, persistent=False)
        ab = acp[ts].tolist()
        self._ddim_coefs = list(zip(ab, ab[1:] + [1.0]))  # python floats: constants in an exported graph

    def low_precision(self) -> None:
        """None: DDIM divides by √ᾱ_t (≈ 0.08 at the noisiest step) and clamps x̂0, which amplifies bf16's rounding:
        on Hopper states the gradient with respect to the noise through a bf16 copy had a cosine of 0.25 with the
        float32 one (flow matching: > 0.99). Diffusion backbones decode in float32 inside updates too."""
        return None

    def _time_input(self, t: torch.Tensor) -> torch.Tensor:
        return t.to(torch.float32) / self.num_train_steps

    def _decode(self, features: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        b = features.shape[0]
        cond = self.net.condition(features)
        t_terms = self.net.time_term(self._time_input(self.ddim_timesteps))
        x = noise.reshape(b, -1)
        for i, (ab, ab_prev) in enumerate(self._ddim_coefs):
            eps = self.net.step(cond, x, t_terms[i])
            x0 = (x - math.sqrt(1 - ab) * eps) * (1.0 / math.sqrt(ab))
            if self.clip_sample:
                x0 = x0.clamp(-1.0, 1.0)
            x = math.sqrt(ab_prev) * x0 + math.sqrt(1 - ab_prev) * eps
        return self.action_norm.unnormalize(x.reshape(b, self.horizon, self.act_dim))

    def bc_loss(self, obs: Obs, actions: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        feats, x0 = self._normalized_targets(obs, actions)
        eps = torch.randn(x0.shape, generator=generator, device=x0.device)
        t = torch.randint(0, self.num_train_steps, (x0.shape[0],), generator=generator, device=x0.device)
        ab = self.alphas_cumprod[t][:, None]
        xt = ab.sqrt() * x0 + (1 - ab).sqrt() * eps
        return F.mse_loss(self.net(feats, xt, self._time_input(t)), eps)
