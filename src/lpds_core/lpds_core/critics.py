"""Twin Q critics with target networks, and the chunk-level TD target.

One transition is one chunk of n ≤ H env steps; its reward and its bootstrap discount `γ^n` follow the one
convention of `lpds_core.chunking.chunk_discounting` (γ per env step) and are stored per transition, so the
target is `r + γ^n (1 − done) min(Q1', Q2')` (done = termination only: a truncated chunk still bootstraps).
"""
from __future__ import annotations

import copy

import torch
from torch import nn

from .perturbation import mlp


def td_target(reward: torch.Tensor, discount: torch.Tensor, done: torch.Tensor, next_q1: torch.Tensor,
              next_q2: torch.Tensor, next_entropy_bonus: torch.Tensor | float = 0.0) -> torch.Tensor:
    """y = r + discount·(1 − done)·(min(Q1', Q2') + bonus); all (B,). `bonus` is −α·log π for SAC."""
    for name, t in (("reward", reward), ("discount", discount), ("done", done), ("next_q1", next_q1),
                    ("next_q2", next_q2)):
        if t.ndim != 1:
            raise ValueError(f"td_target: {name} must be 1-D (B,), got shape {tuple(t.shape)}")
    return reward + discount * (1.0 - done) * (torch.min(next_q1, next_q2) + next_entropy_bonus)


@torch.no_grad()
def polyak_(average: nn.Module, online: nn.Module, rate: float) -> None:
    """average ← (1 − rate)·average + rate·online, parameter by parameter (target critics, averaged actors)."""
    for p, avg in zip(online.parameters(), average.parameters()):
        avg.lerp_(p, rate)


class TwinQ(nn.Module):
    """Q1, Q2 (features, input) → (B,), plus frozen target copies updated by Polyak averaging.

    `input` is an action chunk (action critic) or a noise chunk (noise critic), flattened.
    `input_scale`/`input_offset` map raw actions into roughly [−1, 1] before the network.
    """

    def __init__(self, feature_dim: int, input_dim: int, hidden: tuple[int, ...] = (256, 256),
                 input_offset: torch.Tensor | None = None, input_scale: torch.Tensor | None = None):
        super().__init__()
        self.feature_dim, self.input_dim = int(feature_dim), int(input_dim)
        self.q1 = mlp(self.feature_dim + self.input_dim, 1, hidden, layer_norm=True)
        self.q2 = mlp(self.feature_dim + self.input_dim, 1, hidden, layer_norm=True)
        off = torch.zeros(self.input_dim) if input_offset is None else input_offset.reshape(-1).float()
        scale = torch.ones(self.input_dim) if input_scale is None else input_scale.reshape(-1).float()
        if off.numel() != self.input_dim or scale.numel() != self.input_dim:
            raise ValueError(f"TwinQ: input_offset/input_scale must have {self.input_dim} elements")
        if not torch.all(scale > 0):
            raise ValueError("TwinQ: input_scale must be > 0 everywhere")
        self.register_buffer("input_offset", off)
        self.register_buffer("input_scale", scale)
        self.target_q1 = copy.deepcopy(self.q1).requires_grad_(False)
        self.target_q2 = copy.deepcopy(self.q2).requires_grad_(False)

    def _x(self, features: torch.Tensor, inp: torch.Tensor) -> torch.Tensor:
        flat = inp.reshape(inp.shape[0], -1)
        if flat.shape[1] != self.input_dim or features.shape[1:] != (self.feature_dim,) \
                or features.shape[0] != flat.shape[0]:
            raise ValueError(f"TwinQ expects features (B, {self.feature_dim}) and input with {self.input_dim} "
                             f"values per sample; got {tuple(features.shape)} and {tuple(inp.shape)}")
        return torch.cat([features, (flat - self.input_offset) / self.input_scale], dim=1)

    def forward(self, features: torch.Tensor, inp: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self._x(features, inp)
        return self.q1(x).squeeze(-1), self.q2(x).squeeze(-1)

    def target(self, features: torch.Tensor, inp: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self._x(features, inp)
        return self.target_q1(x).squeeze(-1), self.target_q2(x).squeeze(-1)

    def frozen(self, features: torch.Tensor, inp: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Q1, Q2 for an actor's loss: differentiable in the inputs, not in the critic's weights (the backward
        pass then skips the critics' weight gradients, which the actor step would only throw away)."""
        params = [p for p in self.online_parameters() if p.requires_grad]
        for p in params:
            p.requires_grad_(False)
        try:
            return self(features, inp)
        finally:
            for p in params:
                p.requires_grad_(True)

    def online_parameters(self) -> list[nn.Parameter]:
        return [*self.q1.parameters(), *self.q2.parameters()]

    def polyak(self, tau: float) -> None:
        """target ← (1 − τ)·target + τ·online."""
        polyak_(self.target_q1, self.q1, tau)
        polyak_(self.target_q2, self.q2, tau)

    def loss(self, features: torch.Tensor, inp: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        q1, q2 = self(features, inp)
        return 0.5 * ((q1 - y).pow(2).mean() + (q2 - y).pow(2).mean())
