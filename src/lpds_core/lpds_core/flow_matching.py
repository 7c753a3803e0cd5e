"""Flow-matching action-chunk policy: a velocity field integrated with K Euler steps from noise to action.

Path (rectified flow / conditional flow matching): x_t = (1 − t)·x0 + t·x1 with x0 ~ N(0, I) the noise at t=0
and x1 the normalised action chunk at t=1; the network regresses the constant velocity x1 − x0. Decoding is a
plain Euler loop, so it is deterministic given the noise and differentiable with respect to it.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .backbone import Obs
from .chunk_policy import ChunkPolicy


class FlowMatchingPolicy(ChunkPolicy):
    """a = Φ(s, w): K Euler steps (default 10) of the learned velocity field, starting from w at t=0."""

    kind = "flow"

    def _decode(self, features: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        b = features.shape[0]
        k = self.num_steps
        dt = 1.0 / k
        cond = self.net.condition(features)
        t_terms = self.net.time_term(torch.arange(k, device=features.device, dtype=features.dtype) * dt)
        x = noise.reshape(b, -1)
        for i in range(k):
            x = x + dt * self.net.step(cond, x, t_terms[i])
        return self.action_norm.unnormalize(x.reshape(b, self.horizon, self.act_dim))

    def bc_loss(self, obs: Obs, actions: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        feats, x1 = self._normalized_targets(obs, actions)
        x0 = torch.randn(x1.shape, generator=generator, device=x1.device)
        t = torch.rand((x1.shape[0],), generator=generator, device=x1.device)
        xt = (1.0 - t)[:, None] * x0 + t[:, None] * x1
        return F.mse_loss(self.net(feats, xt, t), x1 - x0)
