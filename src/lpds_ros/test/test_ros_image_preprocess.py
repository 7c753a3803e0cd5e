import numpy as np
import pytest

from lpds_ros.image_codec import depth_metres_from_image, image_to_numpy, numpy_to_image, rgb_from_image
from lpds_ros.preprocess import PreprocessConfig, Preprocessor, resize_bilinear, resize_nearest


class Msg:  # duck-typed sensor_msgs/Image for the ROS-free decoder
    def __init__(self, arr, encoding, pad=0, bigendian=False):
        a = np.asarray(arr)
        if a.ndim == 2:
            a = a[..., None]
        if bigendian:
            a = a.astype(a.dtype.newbyteorder(">"))
        self.height, self.width = a.shape[:2]
        self.encoding, self.is_bigendian = encoding, int(bigendian)
        row = a.shape[1] * a.shape[2] * a.dtype.itemsize
        self.step = row + pad
        rows = [a[i].tobytes() + b"\0" * pad for i in range(a.shape[0])]
        self.data = b"".join(rows)


def test_decode_rgb_bgr_mono_with_row_padding():
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 255, (5, 7, 3), dtype=np.uint8)
    np.testing.assert_array_equal(image_to_numpy(Msg(rgb, "rgb8", pad=3)), rgb)
    np.testing.assert_array_equal(rgb_from_image(Msg(rgb[..., ::-1], "bgr8", pad=1)), rgb)
    mono = rgb[..., 0]
    assert rgb_from_image(Msg(mono, "mono8")).shape == (5, 7, 3)


def test_depth_16uc1_millimetres_and_big_endian():
    mm = np.array([[1000, 250], [0, 65535]], dtype=np.uint16)
    np.testing.assert_allclose(depth_metres_from_image(Msg(mm, "16UC1")), mm / 1000.0, rtol=1e-6)
    np.testing.assert_allclose(depth_metres_from_image(Msg(mm, "16UC1", bigendian=True)), mm / 1000.0, rtol=1e-6)
    m = np.array([[0.5, 1.25]], dtype=np.float32)
    np.testing.assert_array_equal(depth_metres_from_image(Msg(m, "32FC1")), m)


def test_decode_rejects_bad_encoding_and_short_buffer():
    m = Msg(np.zeros((4, 4, 3), np.uint8), "rgb8")
    m.data = m.data[:-5]
    with pytest.raises(ValueError, match="needs step"):
        image_to_numpy(m)
    m2 = Msg(np.zeros((2, 2), np.uint8), "yuv422")
    with pytest.raises(ValueError, match="unsupported"):
        image_to_numpy(m2)


def test_numpy_to_image_round_trip():
    pytest.importorskip("sensor_msgs")
    rgb = np.random.default_rng(1).integers(0, 255, (6, 9, 3), dtype=np.uint8)
    np.testing.assert_array_equal(image_to_numpy(numpy_to_image(rgb, "rgb8")), rgb)
    d = np.random.default_rng(2).random((6, 9)).astype(np.float32)
    np.testing.assert_array_equal(image_to_numpy(numpy_to_image(d, "32FC1"))[..., 0], d)
    with pytest.raises(ValueError, match="needs an"):
        numpy_to_image(rgb, "mono8")


def test_resize_identity_and_constant():
    img = np.random.default_rng(0).integers(0, 255, (84, 84, 3), dtype=np.uint8)
    np.testing.assert_array_equal(resize_bilinear(img, 84, 84), img)
    const = np.full((480, 640, 3), 77, np.uint8)
    assert np.all(resize_bilinear(const, 84, 84) == 77)
    np.testing.assert_array_equal(resize_nearest(np.arange(16.0).reshape(4, 4), 2, 2), [[5, 7], [13, 15]])


def test_preprocessor_crops_to_aspect_resizes_and_cleans_depth():
    pre = Preprocessor(PreprocessConfig(84, 84, depth_min=0.1, depth_max=2.0))
    rgb = np.zeros((480, 640, 3), np.uint8)
    rgb[:, :80] = 255  # left band is cropped away by the centre square crop (640 -> 480 wide)
    depth = np.full((480, 640), 1.0, np.float32)
    depth[0, 80:] = np.nan
    depth[100:120, 300:340] = 5.0  # beyond depth_max -> hole
    r, d = pre(rgb, depth)
    assert r.shape == (3, 84, 84) and r.dtype == np.uint8 and r.max() == 0
    assert d.shape == (1, 84, 84) and d.dtype == np.float32
    assert np.all(np.isfinite(d)) and np.any(d == 0.0) and np.all((d == 0) | (d == 1.0))
    with pytest.raises(ValueError, match="align_depth"):
        pre(rgb, depth[:240])
    with pytest.raises(ValueError, match="uint8"):
        pre.rgb(rgb.astype(np.float32))
