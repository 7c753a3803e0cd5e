"""Camera frame -> policy image observation: the ONE transform shared by training (simulator) and the robot.

The simulated camera (lpds_sim.rai.camera) renders at the policy resolution and the real D435i delivers 640x480;
both go through `Preprocessor`, so a policy sees the same kind of pixels in training and on the robot:

1. crop: centre crop to the output aspect ratio, or a region of interest given as frame fractions;
2. resize: RGB with cv2.INTER_AREA (an area average: no aliasing when shrinking 480 -> 84); depth with
   cv2.INTER_NEAREST_EXACT (the source pixel under each output centre, the way a renderer samples depth): averaging
   would invent "flying pixels" between an object and the table and blend holes (0) into valid depth;
3. depth in metres (`depth_to_metres`: sensor units x the device's depth scale); values that are non-finite or
   outside [depth_min, depth_max] are holes;
4. hole filling (`fill_holes`): each hole takes the depth of its nearest valid pixel (cv2 distance transform), so
   the network never sees the sensor's 0-holes as a 0 m surface; a frame with no valid pixel stays all 0.

Output: rgb uint8 (3, h, w), depth float32 metres (1, h, w). Needs only numpy and OpenCV (robot PC: no torch).
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np


@dataclass(frozen=True)
class PreprocessConfig:
    out_height: int = 84
    out_width: int = 84
    # region of interest as fractions of the frame (top, bottom, left, right); None = centre crop to aspect ratio
    roi: tuple[float, float, float, float] | None = None
    depth_min: float = 0.05
    depth_max: float = 3.0  # = the simulated camera's far plane (CameraSpec.z_range)
    fill_holes: bool = True


def crop_box(h: int, w: int, cfg: PreprocessConfig) -> tuple[int, int, int, int]:
    """(top, bottom, left, right) pixel bounds of the region that is resized to the output."""
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


def resize_rgb(img: np.ndarray, out_h: int, out_w: int) -> np.ndarray:
    """Area-average resize (cv2.INTER_AREA); the same size is returned unchanged (a copy)."""
    if img.shape[:2] == (out_h, out_w):
        return img.copy()
    return cv2.resize(np.ascontiguousarray(img), (out_w, out_h), interpolation=cv2.INTER_AREA)


def resize_depth(depth: np.ndarray, out_h: int, out_w: int) -> np.ndarray:
    """Nearest-sample resize (cv2.INTER_NEAREST_EXACT: pixel-centre aligned); never blends two depths."""
    if depth.shape[:2] == (out_h, out_w):
        return depth.copy()
    return cv2.resize(np.ascontiguousarray(depth), (out_w, out_h), interpolation=cv2.INTER_NEAREST_EXACT)


def depth_to_metres(raw: np.ndarray, depth_scale: float) -> np.ndarray:
    """Integer sensor depth (z16 / 16UC1) x metres per unit -> float32 metres; float input is already metres."""
    a = np.asarray(raw)
    if np.issubdtype(a.dtype, np.floating):
        return a.astype(np.float32, copy=False)
    if not depth_scale > 0:
        raise ValueError(f"depth scale must be > 0 metres per unit, got {depth_scale}")
    return a.astype(np.float32) * np.float32(depth_scale)


def metres_to_depth_units(depth_m: np.ndarray, depth_scale: float) -> np.ndarray:
    """float metres -> uint16 sensor units (rounded; non-finite or <= 0 -> 0 = no data), as a z16 camera reports."""
    if not depth_scale > 0:
        raise ValueError(f"depth scale must be > 0 metres per unit, got {depth_scale}")
    d = np.nan_to_num(np.asarray(depth_m, np.float64), nan=0.0, posinf=0.0, neginf=0.0)
    return np.clip(np.rint(d / depth_scale), 0, np.iinfo(np.uint16).max).astype(np.uint16)


def mark_holes(depth_m: np.ndarray, depth_min: float, depth_max: float) -> np.ndarray:
    """float32 copy with non-finite and out-of-range values set to 0 (a hole, as RealSense reports no data)."""
    d = np.array(depth_m, dtype=np.float32)
    with np.errstate(invalid="ignore"):
        d[~np.isfinite(d) | (d < depth_min) | (d > depth_max)] = 0.0
    return d


def fill_holes(depth_m: np.ndarray) -> np.ndarray:
    """Each 0 pixel takes the value of its nearest non-zero pixel (L2 distance transform with pixel labels)."""
    holes = depth_m == 0
    if not holes.any() or holes.all():
        return depth_m.copy()
    _, labels = cv2.distanceTransformWithLabels(holes.astype(np.uint8), cv2.DIST_L2, 5,
                                                labelType=cv2.DIST_LABEL_PIXEL)
    valid = ~holes
    value_of = np.zeros(int(labels.max()) + 1, np.float32)
    value_of[labels[valid]] = depth_m[valid]  # every valid pixel carries its own label
    return value_of[labels].astype(np.float32)


class Preprocessor:
    """crop -> resize -> depth holes -> hole filling, for one output size (see the module docstring)."""

    def __init__(self, cfg: PreprocessConfig = PreprocessConfig()):
        if cfg.out_height < 8 or cfg.out_width < 8:
            raise ValueError(f"output size {cfg.out_height}x{cfg.out_width} is too small (min 8x8)")
        if not 0 <= cfg.depth_min < cfg.depth_max:
            raise ValueError(f"need 0 <= depth_min < depth_max, got {cfg.depth_min}, {cfg.depth_max}")
        self.cfg = cfg

    def rgb(self, rgb: np.ndarray) -> np.ndarray:
        """(h, w, 3) uint8 -> (3, out_h, out_w) uint8."""
        if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
            raise ValueError(f"expected an (h, w, 3) uint8 RGB frame, got {rgb.shape} {rgb.dtype}")
        t, b, l, r = crop_box(rgb.shape[0], rgb.shape[1], self.cfg)
        out = resize_rgb(rgb[t:b, l:r], self.cfg.out_height, self.cfg.out_width)
        return np.ascontiguousarray(out.transpose(2, 0, 1))

    def depth(self, depth_m: np.ndarray) -> np.ndarray:
        """(h, w) metres -> (1, out_h, out_w) float32 metres, holes filled (or 0 with fill_holes off)."""
        if depth_m.ndim != 2:
            raise ValueError(f"expected an (h, w) depth frame in metres, got shape {depth_m.shape}")
        c = self.cfg
        t, b, l, r = crop_box(depth_m.shape[0], depth_m.shape[1], c)
        d = mark_holes(resize_depth(depth_m[t:b, l:r].astype(np.float32), c.out_height, c.out_width),
                       c.depth_min, c.depth_max)
        return (fill_holes(d) if c.fill_holes else d)[None]

    def __call__(self, rgb: np.ndarray, depth_m: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if rgb.shape[:2] != depth_m.shape[:2]:
            raise ValueError(f"colour {rgb.shape[:2]} and depth {depth_m.shape[:2]} frames differ in size: "
                             "enable align_depth on the camera so depth is registered to colour")
        return self.rgb(rgb), self.depth(depth_m)
