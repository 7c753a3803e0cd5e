"""The contract every frozen generative policy (flow matching, diffusion) fulfils.

Steering (LP-DS, DSRL, ...) only ever sees this interface, so any backbone
can be steered and any steering algorithm works with any backbone.

Shapes: a batch of B observations, an action chunk of `horizon` (H) steps of
`act_dim` (A) dimensions, and a noise tensor of the same shape (B, H, A).
Observations are either a float tensor (B, obs_dim) ("state") or a dict of
tensors ("image": {"rgb": uint8 (B,3,h,w), "depth": float (B,1,h,w) metres,
"proprio": float (B,P)}). Everything in and out is in *raw* env units: the
backbone normalises observations and un-normalises actions itself.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Union

import torch
from torch import nn

Obs = Union[torch.Tensor, dict[str, torch.Tensor]]


class FrozenDecoder(nn.Module, ABC):
    """a = Φ(s, w): deterministic given the noise w, differentiable in w."""

    obs_dim: int  # size of a state observation (or of the proprio part for image obs)
    horizon: int  # H: steps in an action chunk
    act_dim: int  # A: action dimensions per step
    feature_dim: int  # size of `encode(obs)`, the input the perturbation network sees

    @property
    def noise_shape(self) -> tuple[int, int]:
        return (self.horizon, self.act_dim)

    @abstractmethod
    def encode(self, obs: Obs) -> torch.Tensor:
        """Normalised observation features (B, feature_dim); for images, the CNN embedding + proprio."""

    @abstractmethod
    def decode_features(self, features: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """Raw actions (B, H, A) from features and noise; no randomness inside."""

    def decode(self, obs: Obs, noise: torch.Tensor) -> torch.Tensor:
        return self.decode_features(self.encode(obs), noise)

    def sample(self, obs: Obs, generator: torch.Generator | None = None) -> torch.Tensor:
        feats = self.encode(obs)
        noise = torch.randn((feats.shape[0], *self.noise_shape), generator=generator, device=feats.device)
        return self.decode_features(feats, noise)

    def low_precision(self) -> "FrozenDecoder | None":
        """A frozen copy whose decoder network computes in bfloat16 (the sampler's state and the output stay
        float32), for the decodes inside gradient updates; None where a backbone has none or must not (agents then
        decode in float32)."""
        return None

    def freeze(self) -> "FrozenDecoder":
        """Steering never trains the backbone: no grads on its weights, eval mode."""
        for p in self.parameters():
            p.requires_grad_(False)
        return self.eval()
