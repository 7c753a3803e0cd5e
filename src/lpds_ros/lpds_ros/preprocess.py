"""Camera frame -> policy observation, done the same way the simulated camera observation is made.

The sim env renders RGB-D directly at the policy resolution (84x84 by default) from a camera placed like the
D435i; a real 640x480 frame is first centre-cropped to the sim camera's aspect ratio (optionally a region of
interest) and then resized. RGB: bilinear, uint8 (3, h, w). Depth: nearest (never blend across edges), metres,
float32 (1, h, w), values outside [depth_min, depth_max] or non-finite set to 0 (a hole, like the sensor).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class PreprocessConfig:
    out_height: int = 84
    out_width: int = 84
    # region of interest as fractions of the frame (top, bottom, left, right); None = centre crop to aspect ratio
    roi: tuple[float, float, float, float] | None = None
    depth_min: float = 0.05
    depth_max: float = 3.0


def _crop_box(h: int, w: int, cfg: PreprocessConfig) -> tuple[int, int, int, int]:
    if cfg.roi is not None:
        t, b, l, r = cfg.roi
        if not (0 <= t < b <= 1 and 0 <= l < r <= 1):
            raise ValueError(f"roi must be fractions top<bottom, left<right in [0, 1], got {cfg.roi}")
        return int(round(t * h)), int(round(b * h)), int(round(l * w)), int(round(r * w))
    aspect = cfg.out_width / cfg.out_height
    if w / h > aspect:  # too wide: crop the sides
        cw = int(round(h * aspect))
        x0 = (w - cw) // 2
        return 0, h, x0, x0 + cw
    ch = int(round(w / aspect))
    y0 = (h - ch) // 2
    return y0, y0 + ch, 0, w


def _sample_coords(n_in: int, n_out: int) -> np.ndarray:
    """Pixel-centre aligned source coordinates (the convention of cv2.resize / PIL)."""
    return np.clip((np.arange(n_out) + 0.5) * (n_in / n_out) - 0.5, 0, n_in - 1)


def resize_bilinear(img: np.ndarray, out_h: int, out_w: int) -> np.ndarray:
    h, w = img.shape[:2]
    if (h, w) == (out_h, out_w):
        return img.copy()
    ys, xs = _sample_coords(h, out_h), _sample_coords(w, out_w)
    y0, x0 = np.floor(ys).astype(int), np.floor(xs).astype(int)
    y1, x1 = np.minimum(y0 + 1, h - 1), np.minimum(x0 + 1, w - 1)
    wy, wx = (ys - y0)[:, None, None], (xs - x0)[None, :, None]
    f = img.astype(np.float32).reshape(h, w, -1)
    top = f[y0][:, x0] * (1 - wx) + f[y0][:, x1] * wx
    bot = f[y1][:, x0] * (1 - wx) + f[y1][:, x1] * wx
    out = top * (1 - wy) + bot * wy
    if np.issubdtype(img.dtype, np.integer):
        out = np.clip(np.rint(out), np.iinfo(img.dtype).min, np.iinfo(img.dtype).max)
    return out.astype(img.dtype).reshape(out_h, out_w, *img.shape[2:])


def resize_nearest(img: np.ndarray, out_h: int, out_w: int) -> np.ndarray:
    """The source pixel containing each output pixel's centre (PIL's NEAREST convention)."""
    h, w = img.shape[:2]
    ys = np.minimum(((np.arange(out_h) + 0.5) * h / out_h).astype(int), h - 1)
    xs = np.minimum(((np.arange(out_w) + 0.5) * w / out_w).astype(int), w - 1)
    return img[ys][:, xs].copy()


class Preprocessor:
    def __init__(self, cfg: PreprocessConfig = PreprocessConfig()):
        if cfg.out_height < 8 or cfg.out_width < 8:
            raise ValueError(f"output size {cfg.out_height}x{cfg.out_width} is too small (min 8x8)")
        self.cfg = cfg

    def rgb(self, rgb: np.ndarray) -> np.ndarray:
        """(h, w, 3) uint8 -> (3, out_h, out_w) uint8."""
        if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
            raise ValueError(f"expected an (h, w, 3) uint8 RGB frame, got {rgb.shape} {rgb.dtype}")
        t, b, l, r = _crop_box(rgb.shape[0], rgb.shape[1], self.cfg)
        out = resize_bilinear(rgb[t:b, l:r], self.cfg.out_height, self.cfg.out_width)
        return np.ascontiguousarray(out.transpose(2, 0, 1))

    def depth(self, depth_m: np.ndarray) -> np.ndarray:
        """(h, w) metres -> (1, out_h, out_w) float32 metres, holes = 0."""
        if depth_m.ndim != 2:
            raise ValueError(f"expected an (h, w) depth frame in metres, got shape {depth_m.shape}")
        t, b, l, r = _crop_box(depth_m.shape[0], depth_m.shape[1], self.cfg)
        d = resize_nearest(depth_m[t:b, l:r].astype(np.float32), self.cfg.out_height, self.cfg.out_width)
        d[~np.isfinite(d) | (d < self.cfg.depth_min) | (d > self.cfg.depth_max)] = 0.0
        return d[None]

    def __call__(self, rgb: np.ndarray, depth_m: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if rgb.shape[:2] != depth_m.shape[:2]:
            raise ValueError(f"colour {rgb.shape[:2]} and depth {depth_m.shape[:2]} frames differ in size: "
                             "enable align_depth on the camera so depth is registered to colour")
        return self.rgb(rgb), self.depth(depth_m)
