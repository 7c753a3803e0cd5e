"""The noise perturbation Δθ: a small network that shifts the decoder's input noise.

LP-DS decodes `a = Φ(s, ε + Δθ(s))`. Δθ starts at (almost) zero so that the steered policy
is the frozen base policy at the start of training; the trust region keeps it small after.
"""
from __future__ import annotations

import torch
from torch import nn


def mlp(in_dim: int, out_dim: int, hidden: tuple[int, ...], layer_norm: bool = False,
        activation: type[nn.Module] = nn.SiLU) -> nn.Sequential:
    """Plain MLP used by perturbations, actors and critics (one definition for all of them)."""
    layers: list[nn.Module] = []
    last = in_dim
    for width in hidden:
        layers.append(nn.Linear(last, width))
        if layer_norm:
            layers.append(nn.LayerNorm(width))
        layers.append(activation())
        last = width
    layers.append(nn.Linear(last, out_dim))
    return nn.Sequential(*layers)


EPS_FORMS = ("mlp", "shrink")


class NoisePerturbation(nn.Module):
    """Δθ(features) → (B, H, A), or Δθ(features, ε) with `use_eps=True`.

    Two forms of Δθ(s, ε) (`eps_form`):
    * "mlp": one MLP of (s, ε) — the most general, but free to chase directions the critic only extrapolates on;
    * "shrink": Δθ = h(s) − g(s)⊙ε, a state-dependent shift plus a state-dependent per-dimension noise gain g
      (g = 0 keeps ε, g = 1 removes it; unconstrained, it starts at 0). The decoder input w = (1 − g)⊙ε + h
      stays a scaled, shifted Gaussian — the region the frozen decoder was trained on — and the trust region
      caps how much of the variance may go: E‖Δθ‖² = ‖h‖² + Σ g² for ε ~ N(0, I). The gain's gradient is the
      critic's directional derivative along −ε summed over the batch, so a weak but consistent "less noise is
      better here" signal adds up instead of being lost among the free directions of an MLP of ε.

    The last layer is initialised near zero (uniform ±`init_scale`, zero bias), so the steered policy starts as
    the base policy and the trust region starts slack.
    """

    def __init__(self, feature_dim: int, noise_shape: tuple[int, int], hidden: tuple[int, ...] = (256, 256),
                 use_eps: bool = False, init_scale: float = 1e-3, eps_form: str = "mlp"):
        super().__init__()
        if eps_form not in EPS_FORMS:
            raise ValueError(f"eps_form={eps_form!r} is not valid; choose one of {', '.join(EPS_FORMS)}")
        self.feature_dim = int(feature_dim)
        self.noise_shape = tuple(int(n) for n in noise_shape)
        self.noise_dim = self.noise_shape[0] * self.noise_shape[1]
        self.use_eps = bool(use_eps)
        self.eps_form = eps_form if self.use_eps else "mlp"
        shrink = self.eps_form == "shrink"
        in_dim = self.feature_dim + (self.noise_dim if self.use_eps and not shrink else 0)
        self.net = mlp(in_dim, self.noise_dim * (2 if shrink else 1), hidden)
        last = self.net[-1]
        nn.init.uniform_(last.weight, -init_scale, init_scale)
        nn.init.zeros_(last.bias)

    @property
    def takes_eps(self) -> bool:
        """Read by `lpds_core.export`: whether forward needs ε as its second argument."""
        return self.use_eps

    def forward(self, features: torch.Tensor, eps: torch.Tensor | None = None) -> torch.Tensor:
        if features.ndim != 2 or features.shape[1] != self.feature_dim:
            raise ValueError(f"NoisePerturbation expects features of shape (B, {self.feature_dim}), "
                             f"got {tuple(features.shape)}; pass backbone.encode(obs)")
        x = features
        if self.use_eps:
            if eps is None:
                raise ValueError("this perturbation was built with use_eps=True: call it as forward(features, eps)")
            if eps.shape != (features.shape[0], *self.noise_shape):
                raise ValueError(f"eps must have shape (B, {self.noise_shape[0]}, {self.noise_shape[1]}), "
                                 f"got {tuple(eps.shape)}")
            if self.eps_form == "shrink":
                shift, gain = self.net(x).reshape(features.shape[0], 2, *self.noise_shape).unbind(1)
                return shift - gain * eps
            x = torch.cat([features, eps.reshape(eps.shape[0], -1)], dim=1)
        return self.net(x).reshape(features.shape[0], *self.noise_shape)

    @torch.no_grad()
    def gain(self, features: torch.Tensor) -> torch.Tensor | None:
        """The "shrink" form's per-dimension noise gain g(s), (B, H, A); None for the other forms (for logs)."""
        if self.eps_form != "shrink":
            return None
        return self.net(features).reshape(features.shape[0], 2, *self.noise_shape)[:, 1]
