"""Test-only frozen decoder: tiny, fast, and honours the FrozenDecoder contract (deterministic, differentiable in w)."""
from __future__ import annotations

import torch
from torch import nn

from lpds_core.backbone import FrozenDecoder


class TinyDecoder(FrozenDecoder):
    def __init__(self, obs_dim: int = 2, horizon: int = 4, act_dim: int = 2, steps: int = 3, seed: int = 0):
        super().__init__()
        torch.manual_seed(seed)
        self.obs_dim, self.horizon, self.act_dim, self.feature_dim = obs_dim, horizon, act_dim, obs_dim
        self.steps = steps
        self.net = nn.Sequential(nn.Linear(obs_dim + horizon * act_dim, 32), nn.Tanh(),
                                 nn.Linear(32, horizon * act_dim))

    def encode(self, obs):
        return obs.float()

    def decode_features(self, features, noise):
        x = noise.reshape(noise.shape[0], -1)
        for _ in range(self.steps):
            x = x + self.net(torch.cat([features, x], 1)) / self.steps
        return torch.tanh(x).reshape(-1, self.horizon, self.act_dim)
