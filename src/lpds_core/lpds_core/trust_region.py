"""The Lagrangian trust region of LP-DS: E_s ‖Δθ(s)‖² ≤ δ held by a multiplier λ ≥ 0.

The actor minimises `−E[Q] + λ·(E‖Δ‖² − δ)`; λ follows projected dual ascent
`λ ← max(0, λ + η_λ·(E‖Δ‖² − δ))`, so it grows while the constraint is violated and
decays back to 0 once there is slack. This module is the *only* place that defines
the norm, so every agent (noise or action space) measures δ the same way.
"""
from __future__ import annotations

import torch
from torch import nn

NORMS = ("sum", "per_dim")


class LagrangianTrustRegion(nn.Module):
    """Constraint `mean_s ‖Δ(s)‖² ≤ δ` with a dual variable λ.

    norm="sum" (default, the paper's): the squared norm summed over all noise dimensions.
    norm="per_dim": the same divided by the number of dimensions, so δ means the same for any
    chunk size (H·A).
    """

    def __init__(self, delta: float, dim: int, eta: float = 1.0, lambda_init: float = 0.0, norm: str = "sum"):
        super().__init__()
        if not delta > 0:
            raise ValueError(f"trust-region delta must be > 0, got {delta}")
        if norm not in NORMS:
            raise ValueError(f"trust-region norm must be one of {NORMS}, got {norm!r}")
        if eta < 0 or lambda_init < 0:
            raise ValueError("trust-region eta and lambda_init must be >= 0")
        self.delta = float(delta)
        self.dim = int(dim)
        self.eta = float(eta)
        self.norm = norm
        self.register_buffer("lam", torch.tensor(float(lambda_init)))

    def sq_norm(self, delta: torch.Tensor) -> torch.Tensor:
        """Per-sample squared norm (B,) of a perturbation (B, ...)."""
        sq = delta.reshape(delta.shape[0], -1).pow(2).sum(dim=1)
        return sq / self.dim if self.norm == "per_dim" else sq

    def constraint(self, delta: torch.Tensor) -> torch.Tensor:
        """E_s ‖Δ‖², the batch mean (differentiable)."""
        return self.sq_norm(delta).mean()

    def penalty(self, delta: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(λ·(E‖Δ‖² − δ), E‖Δ‖²): the term to add to the actor loss, and the constraint value."""
        c = self.constraint(delta)
        return self.lam.detach() * (c - self.delta), c

    @torch.no_grad()
    def dual_step(self, constraint_value: float | torch.Tensor) -> float:
        """Projected dual ascent on λ; returns the new λ."""
        gap = float(constraint_value) - self.delta
        self.lam.fill_(max(0.0, float(self.lam) + self.eta * gap))
        return float(self.lam)

    def describe(self) -> str:
        norm = "sum over all dims" if self.norm == "sum" else f"mean over {self.dim} dims"
        return (f"trust region: E_s||Delta(s)||^2 ({norm}) <= delta={self.delta:g}, "
                f"dual ascent eta_lambda={self.eta:g}, lambda0={float(self.lam):g}")
