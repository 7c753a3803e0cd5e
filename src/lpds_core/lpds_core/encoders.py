"""Observation encoders: raw observation → normalised feature vector.

The encoder is part of the frozen backbone, so its features are also what the steering perturbation sees.
Both encoders check their input (`forward`) and give a `ValueError` that names the problem; `features` is the
unchecked path used inside exported graphs, where data-dependent checks cannot run.
"""
from __future__ import annotations

from typing import Any, Mapping

import torch
from torch import nn

from .normalization import Mode, Normalizer

IMAGE_KEYS = ("rgb", "depth", "proprio")


def _require_float(name: str, x: Any, shape: tuple[int | None, ...]) -> torch.Tensor:
    if not isinstance(x, torch.Tensor):
        raise ValueError(f"observation '{name}' must be a torch.Tensor, got {type(x).__name__}")
    if not x.is_floating_point():
        raise ValueError(f"observation '{name}' must be a float tensor, got dtype {x.dtype}")
    _require_shape(name, x, shape)
    if not torch.isfinite(x).all():
        raise ValueError(f"observation '{name}' contains NaN or inf values; check the sensor/env that produced it")
    return x.to(torch.float32)  # float64 from numpy envs is fine, the weights are float32


def _require_shape(name: str, x: torch.Tensor, shape: tuple[int | None, ...]) -> None:
    ok = x.ndim == len(shape) and all(s is None or s == d for s, d in zip(shape, x.shape))
    if not ok:
        want = "(" + ", ".join("B" if s is None else str(s) for s in shape) + ")"
        hint = " (add a batch dimension, e.g. obs[None])" if x.ndim == len(shape) - 1 else ""
        raise ValueError(f"observation '{name}' has shape {tuple(x.shape)}, expected {want}{hint}")


class StateEncoder(nn.Module):
    """State vector (B, obs_dim) → normalised state (B, obs_dim). The features *are* the normalised state.
    `norm`: "meanstd" (default) or "minmax" (to [-1, 1])."""

    def __init__(self, obs_dim: int, norm: Mode = "meanstd") -> None:
        super().__init__()
        self.obs_dim = int(obs_dim)
        self.feature_dim = self.obs_dim
        self.norm = Normalizer(self.obs_dim, mode=norm)

    def spec(self) -> dict[str, dict[str, Any]]:
        """Per-sample input spec (no batch dimension); also the ONNX input names."""
        return {"state": {"shape": [self.obs_dim], "dtype": "float32"}}

    def check(self, obs: Any) -> torch.Tensor:
        if isinstance(obs, Mapping):
            raise ValueError("this backbone takes state observations: pass a (B, obs_dim) tensor, not a dict")
        return _require_float("state", obs, (None, self.obs_dim))

    def fit(self, obs: torch.Tensor) -> None:
        self.norm.fit(self.check(torch.as_tensor(obs, dtype=torch.float32)))

    def features(self, state: torch.Tensor) -> torch.Tensor:
        return self.norm(state)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.features(self.check(obs))

    def inputs(self, obs: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """The observation as the ordered tuple of tensors that `features` (and the ONNX graph) take."""
        return (obs,)


class ImageEncoder(nn.Module):
    """RGB-D image + proprioception → (B, embed_dim + proprio_dim).

    rgb uint8 (B,3,h,w) and depth metres (B,1,h,w) are stacked into 4 channels in [-1, 1] (depth clipped to
    `max_depth`; 0 = missing depth maps to -1, though lpds_core.image_preprocess fills holes before they get here),
    run through a small strided CNN and a LayerNorm'd linear head;
    the standardised proprio vector is appended so the decoder keeps exact robot state.
    """

    def __init__(
        self,
        proprio_dim: int,
        image_size: tuple[int, int] = (84, 84),
        channels: tuple[int, ...] = (16, 32, 32),
        embed_dim: int = 64,
        max_depth: float = 2.0,
        norm: Mode = "meanstd",
    ) -> None:
        super().__init__()
        self.proprio_dim = int(proprio_dim)
        self.image_size = (int(image_size[0]), int(image_size[1]))
        self.embed_dim = int(embed_dim)
        self.max_depth = float(max_depth)
        self.feature_dim = self.embed_dim + self.proprio_dim
        layers: list[nn.Module] = []
        c_in = 4
        for c in channels:
            layers += [nn.Conv2d(c_in, c, kernel_size=3, stride=2, padding=1), nn.ReLU()]
            c_in = c
        layers.append(nn.Flatten())
        self.cnn = nn.Sequential(*layers)
        with torch.no_grad():
            n_flat = self.cnn(torch.zeros(1, 4, *self.image_size)).shape[1]
        self.head = nn.Sequential(nn.Linear(n_flat, self.embed_dim), nn.LayerNorm(self.embed_dim))
        self.norm = Normalizer(self.proprio_dim, mode=norm)

    def spec(self) -> dict[str, dict[str, Any]]:
        h, w = self.image_size
        return {
            "rgb": {"shape": [3, h, w], "dtype": "uint8"},
            "depth": {"shape": [1, h, w], "dtype": "float32"},
            "proprio": {"shape": [self.proprio_dim], "dtype": "float32"},
        }

    def check(self, obs: Any) -> dict[str, torch.Tensor]:
        if not isinstance(obs, Mapping):
            raise ValueError(f"this backbone takes image observations: pass a dict with keys {IMAGE_KEYS}")
        missing = [k for k in IMAGE_KEYS if k not in obs]
        if missing:
            raise ValueError(f"image observation is missing key(s) {missing}; expected keys {IMAGE_KEYS}")
        h, w = self.image_size
        rgb = obs["rgb"]
        if not isinstance(rgb, torch.Tensor) or rgb.dtype != torch.uint8:
            got = rgb.dtype if isinstance(rgb, torch.Tensor) else type(rgb).__name__
            raise ValueError(f"observation 'rgb' must be a uint8 tensor (B,3,{h},{w}), got {got}")
        _require_shape("rgb", rgb, (None, 3, h, w))
        depth = _require_float("depth", obs["depth"], (None, 1, h, w))
        proprio = _require_float("proprio", obs["proprio"], (None, self.proprio_dim))
        if not rgb.shape[0] == depth.shape[0] == proprio.shape[0]:
            raise ValueError(
                f"image observation parts disagree on batch size: rgb {rgb.shape[0]}, depth {depth.shape[0]}, "
                f"proprio {proprio.shape[0]}"
            )
        return {"rgb": rgb, "depth": depth, "proprio": proprio}

    def fit(self, obs: Mapping[str, torch.Tensor]) -> None:
        self.norm.fit(self.check(obs)["proprio"])

    def features(self, rgb: torch.Tensor, depth: torch.Tensor, proprio: torch.Tensor) -> torch.Tensor:
        img = torch.cat(
            [rgb.to(torch.float32) * (2.0 / 255.0) - 1.0, depth.clamp(0.0, self.max_depth) * (2.0 / self.max_depth) - 1.0],
            dim=1,
        )
        return torch.cat([self.head(self.cnn(img)), self.norm(proprio)], dim=-1)

    def forward(self, obs: Mapping[str, torch.Tensor]) -> torch.Tensor:
        return self.features(*self.inputs(self.check(obs)))

    def inputs(self, obs: Mapping[str, torch.Tensor]) -> tuple[torch.Tensor, ...]:
        return tuple(obs[k] for k in IMAGE_KEYS)
