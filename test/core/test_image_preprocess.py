"""lpds_core.image_preprocess, the one camera-frame -> observation transform (training and robot): crop, area
resize, nearest depth sampling, depth units, holes and hole filling, checked against plain-numpy references."""
from __future__ import annotations

import numpy as np
import pytest

from lpds_core.image_preprocess import (PreprocessConfig, Preprocessor, crop_box, depth_to_metres, fill_holes,
                                        mark_holes, metres_to_depth_units, resize_depth, resize_rgb)


def area_weights(n_in: int, n_out: int) -> np.ndarray:
    """(n_out, n_in): the fraction of each source pixel inside each output pixel, rows normalised (exact area)."""
    edges = np.arange(n_out + 1) * (n_in / n_out)
    lo, hi = edges[:-1, None], edges[1:, None]
    px = np.arange(n_in)[None, :]
    w = np.clip(np.minimum(hi, px + 1) - np.maximum(lo, px), 0, None)
    return w / w.sum(1, keepdims=True)


def test_area_resize_is_the_exact_area_mean():
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (480, 480, 3), dtype=np.uint8)
    # integer factor (480 -> 80: 6x6 blocks): the block mean, rounded
    blocks = img.reshape(80, 6, 80, 6, 3).astype(np.float64).mean((1, 3))
    assert np.abs(resize_rgb(img, 80, 80).astype(int) - np.rint(blocks)).max() <= 1
    # the policy's 480 -> 84 (5.71 source pixels per output pixel): fractional area weights
    wy = area_weights(480, 84)
    ref = np.stack([wy @ img[..., c].astype(np.float64) @ wy.T for c in range(3)], -1)
    out = resize_rgb(img, 84, 84)
    assert out.dtype == np.uint8 and out.shape == (84, 84, 3)
    assert np.abs(out.astype(int) - np.rint(ref)).max() <= 1  # cv2's fixed-point weights: ±1 grey level
    assert np.mean(out.astype(int) != np.rint(ref)) < 0.2
    np.testing.assert_array_equal(resize_rgb(img[:84, :84], 84, 84), img[:84, :84])  # same size: untouched


def test_depth_resize_samples_the_source_pixel_under_each_output_centre():
    h, w = 480, 480
    ramp = (np.arange(h)[:, None] * 1000 + np.arange(w)[None, :]).astype(np.float32)
    out = resize_depth(ramp, 84, 84)
    rows, cols = out // 1000, out % 1000
    centre = (np.arange(84) + 0.5) * (h / 84)
    # the source pixel k covers [k, k + 1): it contains the output centre (either side on an exact boundary)
    assert np.all(np.abs(rows + 0.5 - centre[:, None]) <= 0.5 + 1e-6)
    assert np.all(np.abs(cols + 0.5 - centre[None, :]) <= 0.5 + 1e-6)
    assert set(np.unique(out)) <= set(np.unique(ramp))  # never a blend of two depths


def test_centre_crop_and_roi():
    assert crop_box(480, 640, PreprocessConfig(84, 84)) == (0, 480, 80, 560)
    assert crop_box(480, 640, PreprocessConfig(84, 168)) == (80, 400, 0, 640)  # wider output: crop top/bottom
    assert crop_box(480, 640, PreprocessConfig(84, 84, roi=(0.25, 0.75, 0.5, 1.0))) == (120, 360, 320, 640)
    with pytest.raises(ValueError, match="roi must be"):
        crop_box(480, 640, PreprocessConfig(roi=(0.5, 0.2, 0.0, 1.0)))


def test_depth_units_round_to_the_nearest_unit_and_back():
    m = np.array([[0.0, 0.8, 0.80049, 0.80051, np.nan, -1.0, 70.0]])
    mm = metres_to_depth_units(m, 0.001)
    assert mm.dtype == np.uint16 and mm.tolist() == [[0, 800, 800, 801, 0, 0, 65535]]
    np.testing.assert_allclose(depth_to_metres(mm, 0.001), mm * 0.001, rtol=1e-6)
    np.testing.assert_allclose(depth_to_metres(np.array([8000], np.uint16), 1e-4), [0.8], rtol=1e-6)
    f = np.array([0.5], np.float32)
    assert depth_to_metres(f, 123.0)[0] == 0.5  # float input is metres already: the scale does not apply
    with pytest.raises(ValueError, match="depth scale"):
        depth_to_metres(mm, 0.0)


def test_holes_are_filled_from_the_nearest_valid_pixel():
    rng = np.random.default_rng(3)
    d = rng.uniform(0.3, 2.0, (40, 50)).astype(np.float32)
    d[rng.random(d.shape) < 0.3] = 0.0
    d[10:20, 5:25] = 0.0  # a large hole too
    out = fill_holes(d)
    valid = np.argwhere(d > 0)
    assert np.all(out > 0) and np.array_equal(out[d > 0], d[d > 0])
    for y, x in np.argwhere(d == 0):
        dist = np.hypot(*(valid - (y, x)).T)
        src = np.isclose(d[valid[:, 0], valid[:, 1]], out[y, x]) & (dist <= dist.min() + 1.0)
        assert src.any(), (y, x)  # the value of a (near-)nearest valid pixel (cv2's 5x5 distance mask)
    np.testing.assert_array_equal(fill_holes(np.zeros((5, 5), np.float32)), 0.0)  # nothing to fill from


def test_preprocessor_crops_resizes_and_cleans_depth():
    pre = Preprocessor(PreprocessConfig(84, 84, depth_min=0.1, depth_max=2.0))
    rgb = np.zeros((480, 640, 3), np.uint8)
    rgb[:, :80] = 255  # left band is cropped away by the centre square crop (640 -> 480 wide)
    depth = np.full((480, 640), 1.0, np.float32)
    depth[:, 320:] = 1.5
    depth[0:40, 80:] = np.nan
    depth[200:260, 300:340] = 5.0  # beyond depth_max -> hole
    depth[300:330, 100:130] = 0.0  # the sensor's no-data
    r, d = pre(rgb, depth)
    assert r.shape == (3, 84, 84) and r.dtype == np.uint8 and r.max() == 0
    assert d.shape == (1, 84, 84) and d.dtype == np.float32
    assert set(np.unique(d)) == {1.0, 1.5}  # every hole filled from its neighbours, nothing invented
    np.testing.assert_array_equal(d[0, :, :40], 1.0)
    np.testing.assert_array_equal(d[0, :, 44:], 1.5)
    raw = Preprocessor(PreprocessConfig(84, 84, depth_min=0.1, depth_max=2.0, fill_holes=False)).depth(depth)
    assert np.any(raw == 0.0) and np.array_equal(raw[raw > 0], d[raw > 0])
    np.testing.assert_array_equal(raw[0], resize_depth(mark_holes(depth[:, 80:560], 0.1, 2.0), 84, 84))
    with pytest.raises(ValueError, match="align_depth"):
        pre(rgb, depth[:240])
    with pytest.raises(ValueError, match="uint8"):
        pre.rgb(rgb.astype(np.float32))
    with pytest.raises(ValueError, match="depth_min < depth_max"):
        Preprocessor(PreprocessConfig(depth_min=2.0, depth_max=1.0))
