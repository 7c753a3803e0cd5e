"""Observation and action normalisers that live inside the model as buffers.

Keeping the statistics as module buffers means they are saved with the weights, move with `.to()`, and end up
inside the exported ONNX graph, so the robot never needs a separate statistics file.
"""
from __future__ import annotations

from typing import Literal

import torch
from torch import nn

# Dimensions whose spread is below this are treated as constant: they are centred but not scaled,
# so a constant gripper command or a fixed target coordinate never divides by ~0.
CONSTANT_DIM_EPS = 1e-6

Mode = Literal["minmax", "meanstd"]


class Normalizer(nn.Module):
    """Affine map `y = (x - shift) / scale` over the last dimension (size `dim`).

    mode "minmax" maps the data range to [-1, 1] (used for actions, so the generative model works in a box);
    mode "meanstd" standardises (used for observations). Fit once from data with `fit`; until then it is the
    identity and `fitted` is False.
    """

    def __init__(self, dim: int, mode: Mode = "meanstd") -> None:
        super().__init__()
        if mode not in ("minmax", "meanstd"):
            raise ValueError(f"unknown normaliser mode {mode!r}; use 'minmax' or 'meanstd'")
        self.dim = int(dim)
        self.mode = mode
        self.register_buffer("shift", torch.zeros(self.dim))
        self.register_buffer("scale", torch.ones(self.dim))
        # data range, kept for the action spec (low/high) and for clipping decisions downstream
        self.register_buffer("low", torch.full((self.dim,), -1.0))
        self.register_buffer("high", torch.full((self.dim,), 1.0))
        self.register_buffer("fitted", torch.zeros((), dtype=torch.bool))

    @torch.no_grad()
    def fit(self, data: torch.Tensor) -> "Normalizer":
        """Statistics over every leading dimension of `data` (..., dim)."""
        data = torch.as_tensor(data, dtype=torch.float32)
        if data.ndim < 1 or data.shape[-1] != self.dim:
            raise ValueError(f"normaliser expects data with last dimension {self.dim}, got shape {tuple(data.shape)}")
        flat = data.reshape(-1, self.dim)
        if flat.shape[0] == 0:
            raise ValueError("cannot fit a normaliser on an empty data set")
        if not torch.isfinite(flat).all():
            raise ValueError("cannot fit a normaliser on data with NaN/inf values; clean the data set first")
        lo, hi = flat.min(0).values, flat.max(0).values
        if self.mode == "minmax":
            shift, scale = (hi + lo) / 2, (hi - lo) / 2
        else:
            shift, scale = flat.mean(0), flat.std(0, unbiased=False)
        constant = scale < CONSTANT_DIM_EPS
        scale = torch.where(constant, torch.ones_like(scale), scale)
        self.shift.copy_(shift)
        self.scale.copy_(scale)
        self.low.copy_(lo)
        self.high.copy_(hi)
        self.fitted.fill_(True)
        return self

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.shift) / self.scale

    def unnormalize(self, y: torch.Tensor) -> torch.Tensor:
        return y * self.scale + self.shift

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.normalize(x)

    def extra_repr(self) -> str:
        return f"dim={self.dim}, mode={self.mode}"
