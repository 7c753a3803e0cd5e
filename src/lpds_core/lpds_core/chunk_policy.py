"""What flow matching and diffusion share: encoder, action normaliser, conditional network, config, specs.

A subclass only says how noise becomes an action (`_decode`) and how it is trained (`bc_loss`).
"""
from __future__ import annotations

import copy
import math
from abc import abstractmethod
from typing import Any, Literal, Mapping

import torch
from torch import nn

from .backbone import FrozenDecoder, Obs
from .encoders import ImageEncoder, StateEncoder
from .normalization import Mode, Normalizer

ObsType = Literal["state", "image"]


class ConditionalMLP(nn.Module):
    """f(features, x, t) → (B, chunk_dim), an MLP over [features, x, embed(t)].

    The first layer is split into a feature part, an x part and a time part (mathematically the same as one
    Linear over the concatenation), so a K-step sampler projects the features once per decode and the time
    term is a per-step constant: fewer ops per step in torch and in the unrolled ONNX graph.
    """

    def __init__(self, feature_dim: int, chunk_dim: int, hidden: int = 256, n_layers: int = 3, time_dim: int = 32):
        super().__init__()
        if n_layers < 1:
            raise ValueError(f"n_layers must be >= 1, got {n_layers}")
        if time_dim % 2:
            raise ValueError(f"time_dim must be even (sin + cos pairs), got {time_dim}")
        self.time_dim = time_dim
        self.feat_in = nn.Linear(feature_dim, hidden)
        self.x_in = nn.Linear(chunk_dim, hidden, bias=False)
        self.t_in = nn.Linear(time_dim, hidden, bias=False)
        trunk: list[nn.Module] = [nn.SiLU()]
        for _ in range(n_layers - 1):
            trunk += [nn.Linear(hidden, hidden), nn.SiLU()]
        self.trunk = nn.Sequential(*trunk)
        self.out = nn.Linear(hidden, chunk_dim)
        freqs = torch.exp(torch.linspace(0.0, math.log(1000.0), time_dim // 2))
        self.register_buffer("freqs", freqs, persistent=False)

    def time_term(self, t: torch.Tensor) -> torch.Tensor:
        """(N,) times in [0, 1] → (N, hidden) contribution of the time embedding to the first layer."""
        ang = t.to(self.freqs.dtype)[:, None] * self.freqs * (2 * math.pi)
        return self.t_in(torch.cat([torch.sin(ang), torch.cos(ang)], dim=-1))

    def condition(self, features: torch.Tensor) -> torch.Tensor:
        return self.feat_in(features)

    def step(self, cond: torch.Tensor, x: torch.Tensor, t_term: torch.Tensor) -> torch.Tensor:
        return self.out(self.trunk(cond + self.x_in(x) + t_term))

    def forward(self, features: torch.Tensor, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return self.step(self.condition(features), x, self.time_term(t))


class _LowPrecisionNet(nn.Module):
    """A ConditionalMLP's decode interface with its matrix products in bfloat16: weights cast once (a per-call
    autocast recasts every frozen weight at every step); the time embedding stays float32 (its angles reach
    2π·1000, beyond bf16's 8-bit mantissa); what the sampler adds up comes back as float32."""

    def __init__(self, net: ConditionalMLP, dtype: torch.dtype = torch.bfloat16):
        super().__init__()
        self.dtype = dtype
        self.full = net
        self.lowp = copy.deepcopy(net).to(dtype)

    def time_term(self, t: torch.Tensor) -> torch.Tensor:
        return self.full.time_term(t).to(self.dtype)

    def condition(self, features: torch.Tensor) -> torch.Tensor:
        return self.lowp.condition(features.to(self.dtype))

    def step(self, cond: torch.Tensor, x: torch.Tensor, t_term: torch.Tensor) -> torch.Tensor:
        return self.lowp.step(cond, x.to(self.dtype), t_term).float()

    def forward(self, features: torch.Tensor, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return self.step(self.condition(features), x, self.time_term(t))


class ChunkPolicy(FrozenDecoder):
    """Base of the action-chunk backbones: everything except the sampler and the loss."""

    kind: str = ""  # "flow" | "diffusion", written into checkpoints and ONNX metadata

    def __init__(
        self,
        obs_dim: int,
        act_dim: int,
        horizon: int,
        *,
        obs_type: ObsType = "state",
        image_size: tuple[int, int] = (84, 84),
        embed_dim: int = 64,
        hidden: int = 256,
        n_layers: int = 3,
        time_dim: int = 32,
        num_steps: int = 10,
        obs_norm: Mode = "meanstd",
    ) -> None:
        super().__init__()
        if obs_type not in ("state", "image"):
            raise ValueError(f"obs_type must be 'state' or 'image', got {obs_type!r}")
        for name, v in (("obs_dim", obs_dim), ("act_dim", act_dim), ("horizon", horizon), ("num_steps", num_steps)):
            if int(v) < 1:
                raise ValueError(f"{name} must be >= 1, got {v}")
        self.obs_dim, self.act_dim, self.horizon = int(obs_dim), int(act_dim), int(horizon)
        self.obs_type: ObsType = obs_type
        self.num_steps = int(num_steps)
        # constructor arguments, JSON-able: checkpoints rebuild the model from exactly this
        self.config: dict[str, Any] = dict(
            obs_dim=self.obs_dim, act_dim=self.act_dim, horizon=self.horizon, obs_type=obs_type,
            image_size=[int(image_size[0]), int(image_size[1])], embed_dim=int(embed_dim), hidden=int(hidden),
            n_layers=int(n_layers), time_dim=int(time_dim), num_steps=self.num_steps, obs_norm=obs_norm,
        )
        self.encoder: StateEncoder | ImageEncoder
        if obs_type == "state":
            self.encoder = StateEncoder(self.obs_dim, norm=obs_norm)
        else:
            self.encoder = ImageEncoder(self.obs_dim, image_size=tuple(image_size), embed_dim=embed_dim, norm=obs_norm)
        self.feature_dim = self.encoder.feature_dim
        self.action_norm = Normalizer(self.act_dim, mode="minmax")
        self.net = ConditionalMLP(self.feature_dim, self.horizon * self.act_dim, hidden, n_layers, time_dim)

    # ---- data normalisation -------------------------------------------------------------------------------
    def fit_normalizers(self, obs: Obs, actions: torch.Tensor) -> None:
        """Observation statistics from `obs`, action range from `actions` (..., A); call before training."""
        self.encoder.fit(obs)
        self.action_norm.fit(torch.as_tensor(actions, dtype=torch.float32))

    @property
    def normalizers_fitted(self) -> bool:
        return bool(self.action_norm.fitted) and bool(self.encoder.norm.fitted)

    # ---- specs (checkpoints, ONNX metadata, OnnxPolicy checks) --------------------------------------------
    def obs_spec(self) -> dict[str, dict[str, Any]]:
        """Per-sample observation inputs: name → {"shape", "dtype"} (no batch dimension)."""
        return self.encoder.spec()

    def action_spec(self) -> dict[str, Any]:
        return {
            "horizon": self.horizon,
            "act_dim": self.act_dim,
            "low": self.action_norm.low.tolist(),
            "high": self.action_norm.high.tolist(),
        }

    def obs_inputs(self, obs: Obs) -> tuple[torch.Tensor, ...]:
        """A (checked) observation as the ordered tensors named by `obs_spec()`."""
        return self.encoder.inputs(self.encoder.check(obs))

    # ---- FrozenDecoder ------------------------------------------------------------------------------------
    def encode(self, obs: Obs) -> torch.Tensor:
        return self.encoder(obs)

    def decode_features(self, features: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        self._check_noise(features, noise)
        return self._decode(features, noise)

    def low_precision(self) -> "ChunkPolicy":
        lowp = copy.copy(self)  # shares the encoder and normalisers; only the network is swapped
        lowp._modules = dict(self._modules)
        lowp._modules["net"] = _LowPrecisionNet(self.net)
        return lowp.freeze()

    @abstractmethod
    def _decode(self, features: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """Unchecked sampler (also what ONNX export traces): (B, F), (B, H, A) → raw actions (B, H, A)."""

    @abstractmethod
    def bc_loss(self, obs: Obs, actions: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Behaviour-cloning loss on a batch of observations and raw action chunks (B, H, A)."""

    # ---- checks ---------------------------------------------------------------------------------------------
    def _check_noise(self, features: torch.Tensor, noise: torch.Tensor) -> None:
        want = (features.shape[0], self.horizon, self.act_dim)
        if tuple(noise.shape) != want:
            raise ValueError(f"noise has shape {tuple(noise.shape)}, expected (B, H, A) = {want}")

    def _check_actions(self, obs_batch: int, actions: torch.Tensor) -> torch.Tensor:
        actions = torch.as_tensor(actions, dtype=torch.float32)
        want = (obs_batch, self.horizon, self.act_dim)
        if tuple(actions.shape) != want:
            raise ValueError(f"action chunks have shape {tuple(actions.shape)}, expected (B, H, A) = {want}")
        if not torch.isfinite(actions).all():
            raise ValueError("action chunks contain NaN or inf values; clean the demonstrations")
        return actions

    def _normalized_targets(self, obs: Obs, actions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Features (B, F) and normalised flat action chunks (B, H*A) for a BC loss."""
        feats = self.encode(obs)
        actions = self._check_actions(feats.shape[0], actions)
        return feats, self.action_norm.normalize(actions).reshape(feats.shape[0], -1)


def batch_size_of(obs: Obs) -> int:
    if isinstance(obs, Mapping):
        return int(next(iter(obs.values())).shape[0])
    return int(obs.shape[0])
