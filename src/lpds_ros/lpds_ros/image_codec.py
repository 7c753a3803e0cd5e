"""sensor_msgs/Image <-> numpy without cv_bridge (no wheel): row padding (`step`), endianness, common encodings."""
from __future__ import annotations

from typing import Any

import numpy as np

from lpds_core.image_preprocess import depth_to_metres

# encoding -> (dtype, channels)
ENCODINGS: dict[str, tuple[str, int]] = {
    "rgb8": ("uint8", 3), "bgr8": ("uint8", 3), "rgba8": ("uint8", 4), "bgra8": ("uint8", 4),
    "mono8": ("uint8", 1), "8UC1": ("uint8", 1), "8UC3": ("uint8", 3),
    "mono16": ("uint16", 1), "16UC1": ("uint16", 1), "32FC1": ("float32", 1),
}

DEPTH_ENCODINGS = ("16UC1", "mono16", "32FC1")


def image_to_numpy(msg: Any) -> np.ndarray:
    """(h, w, c) array (c kept even when 1) from a sensor_msgs/Image-like object; ValueError on inconsistent size."""
    enc = msg.encoding
    if enc not in ENCODINGS:
        raise ValueError(f"unsupported image encoding {enc!r}; supported: {sorted(ENCODINGS)}")
    dtype_name, ch = ENCODINGS[enc]
    dtype = np.dtype(dtype_name).newbyteorder(">" if msg.is_bigendian else "<")
    h, w, step = int(msg.height), int(msg.width), int(msg.step)
    row = w * ch * dtype.itemsize
    buf = bytes(msg.data) if not isinstance(msg.data, (bytes, bytearray, memoryview)) else msg.data
    if h <= 0 or w <= 0 or step < row or len(buf) < step * h:
        raise ValueError(f"image {w}x{h} {enc} needs step >= {row} and {row * h} bytes; got step={step}, "
                         f"{len(buf)} bytes")
    raw = np.frombuffer(buf, dtype=np.uint8, count=step * h).reshape(h, step)[:, :row]
    arr = np.ascontiguousarray(raw).view(dtype).reshape(h, w, ch)
    arr = arr.astype(dtype.newbyteorder("="), copy=False)
    if enc in ("bgr8", "bgra8"):
        arr = arr[..., [2, 1, 0] + ([3] if ch == 4 else [])]
    return arr


def rgb_from_image(msg: Any) -> np.ndarray:
    """(h, w, 3) uint8 RGB from any colour encoding (alpha dropped, mono replicated)."""
    arr = image_to_numpy(msg)
    if arr.dtype != np.uint8:
        raise ValueError(f"expected an 8-bit colour image, got {msg.encoding}")
    if arr.shape[2] == 1:
        arr = np.repeat(arr, 3, axis=2)
    return arr[..., :3]


def depth_metres_from_image(msg: Any, depth_unit: float = 0.001) -> np.ndarray:
    """(h, w) float32 metres; 16UC1 is scaled by `depth_unit` (RealSense: mm), 32FC1 is already metres."""
    if msg.encoding not in DEPTH_ENCODINGS:
        raise ValueError(f"depth image encoding {msg.encoding!r} is not a depth encoding; use one of {DEPTH_ENCODINGS}")
    return depth_to_metres(image_to_numpy(msg)[..., 0], depth_unit)


def numpy_to_image(arr: np.ndarray, encoding: str, stamp: Any = None, frame_id: str = "") -> Any:
    """A sensor_msgs/msg/Image (imported here so the rest of the module stays ROS-free)."""
    from sensor_msgs.msg import Image

    if encoding not in ENCODINGS:
        raise ValueError(f"unsupported image encoding {encoding!r}; supported: {sorted(ENCODINGS)}")
    dtype_name, ch = ENCODINGS[encoding]
    a = np.asarray(arr)
    if a.ndim == 2:
        a = a[..., None]
    if a.ndim != 3 or a.shape[2] != ch:
        raise ValueError(f"{encoding} needs an (h, w, {ch}) array, got shape {np.shape(arr)}")
    a = np.ascontiguousarray(a.astype(dtype_name, copy=False))
    msg = Image()
    if stamp is not None:
        msg.header.stamp = stamp
    msg.header.frame_id = frame_id
    msg.height, msg.width = int(a.shape[0]), int(a.shape[1])
    msg.encoding = encoding
    msg.is_bigendian = 0
    msg.step = int(a.shape[1] * ch * a.dtype.itemsize)
    msg.data = a.tobytes()
    return msg
