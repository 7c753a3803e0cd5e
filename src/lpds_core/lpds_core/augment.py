"""Image augmentation for behaviour cloning from a few demonstrations.

With ~30 demos an image encoder trained by BC memorises the exact pixels of each demo (the image base reached a
lower BC loss than the state base and still collided in most grid trials). A random shift of a few pixels
(replicate padding, then a random crop back to size; the same shift for RGB and depth of one sample) is the
standard remedy (DrQ, Diffusion Policy's crops): the camera pose on the robot never matches the demos exactly either.
"""
from __future__ import annotations

from collections.abc import Mapping

import torch
import torch.nn.functional as F

IMAGE_KEYS = ("rgb", "depth")


def random_shift(obs: Mapping[str, torch.Tensor], pad: int, generator: torch.Generator | None = None
                 ) -> dict[str, torch.Tensor]:
    """Shift the image entries of a batched dict observation by up to ±`pad` pixels; other entries pass through."""
    out = dict(obs)
    keys = [k for k in IMAGE_KEYS if k in obs]
    if pad <= 0 or not keys:
        return out
    b, _, h, w = obs[keys[0]].shape
    dy = torch.randint(0, 2 * pad + 1, (b,), generator=generator)
    dx = torch.randint(0, 2 * pad + 1, (b,), generator=generator)
    rows = (dy.view(b, 1) + torch.arange(h).view(1, h))  # (b, h) rows of the padded image to keep
    cols = (dx.view(b, 1) + torch.arange(w).view(1, w))  # (b, w)
    for k in keys:
        img = obs[k]
        if img.ndim != 4 or img.shape[0] != b or img.shape[2:] != (h, w):
            raise ValueError(f"random_shift: '{k}' must be (B, C, {h}, {w}) like '{keys[0]}', got {tuple(img.shape)}")
        padded = F.pad(img.float(), (pad, pad, pad, pad), mode="replicate")
        c = img.shape[1]
        idx_r = rows.view(b, 1, h, 1).expand(b, c, h, w + 2 * pad)
        shifted = padded.gather(2, idx_r)
        idx_c = cols.view(b, 1, 1, w).expand(b, c, h, w)
        shifted = shifted.gather(3, idx_c)
        out[k] = shifted.round().to(img.dtype) if not img.is_floating_point() else shifted.to(img.dtype)
    return out
