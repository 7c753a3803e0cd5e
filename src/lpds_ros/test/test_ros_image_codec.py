import numpy as np
import pytest

from lpds_ros.image_codec import depth_metres_from_image, image_to_numpy, numpy_to_image, rgb_from_image


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
