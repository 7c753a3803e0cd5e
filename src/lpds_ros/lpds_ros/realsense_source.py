"""RealSense frames for the perception node's `realsense` source, behind a small injectable FrameSource protocol.

`RealSenseCamera` is the robot's source: rs.pipeline (colour rgb8 + depth z16) and rs.align to colour.
`SoftwareRealSense` is the same SDK without a camera: an rs.software_device with colour rgb8 + z16 depth streams
(depth_units set on the depth sensor), frames injected with on_video_frame, paired by rs.syncer — rs.pipeline does
not see software devices, hence the protocol. Both hand out frames through `aligned_arrays` (rs.align to colour)
and read the depth scale from the device's depth sensor, never a constant. pyrealsense2 is imported lazily: the
rest of lpds_ros runs without it.
"""
from __future__ import annotations

from collections import deque
from typing import Any, Protocol

import numpy as np

from lpds_core.errors import ConfigError

# one z16 frame, its colour frame (aligned to colour), and the capture time in seconds (device clock)
Frame = tuple[np.ndarray, np.ndarray, float]


class FrameSource(Protocol):
    depth_scale: float  # metres per z16 unit, read from the device

    def start(self) -> None: ...

    def read(self, timeout_s: float) -> Frame | None:
        """(rgb uint8 (h,w,3), depth z16 uint16 (h,w) aligned to colour, stamp s) or None if no pair in time."""

    def stop(self) -> None: ...


def import_rs() -> Any:
    try:
        import pyrealsense2 as rs
    except ImportError as exc:  # e.g. libusb-1.0-0 missing, or the wheel not installed
        raise ConfigError(f"perception source 'realsense' needs pyrealsense2 ({exc}): pip install pyrealsense2 "
                          "(and apt install libusb-1.0-0), or use source:=topics with realsense2_camera") from exc
    return rs


def aligned_arrays(rs: Any, align: Any, frames: Any) -> Frame | None:
    """Align a frameset to colour and copy out (rgb, z16, stamp s); None when the set lacks one of the two."""
    if frames.size() < 2:
        return None
    out = align.process(frames)
    c, d = out.get_color_frame(), out.get_depth_frame()
    if not c or not d:
        return None
    rgb = np.asanyarray(c.get_data()).copy()
    if rgb.ndim != 3 or rgb.shape[2] != 3 or c.get_profile().format() != rs.format.rgb8:
        raise ConfigError(f"RealSense colour stream is {c.get_profile().format()}, expected rgb8: enable "
                          "rs.stream.color with rs.format.rgb8")
    return rgb, np.asanyarray(d.get_data()).copy(), c.get_timestamp() * 1e-3


class RealSenseCamera:
    """A D4xx through rs.pipeline: colour rgb8 + depth z16 at one resolution, depth aligned to colour."""

    def __init__(self, width: int = 640, height: int = 480, fps: int = 30, serial: str = ""):
        # ROS parses a bare number as an integer parameter: like realsense2_camera's serial_no, take `_<serial>`
        self.width, self.height, self.fps, self.serial = int(width), int(height), int(fps), serial.lstrip("_")
        self.depth_scale = float("nan")
        self._rs = self._pipe = self._align = None

    def start(self) -> None:
        rs = self._rs = import_rs()
        found = [d.get_info(rs.camera_info.serial_number) for d in rs.context().query_devices()]
        if not found or (self.serial and self.serial not in found):  # fail fast: pipe.start() waits ~15 s
            want = f"RealSense camera {self.serial}" if self.serial else "a RealSense camera"
            raise ConfigError(f"{want} is not connected (connected: {found or 'none'}): check the USB 3 cable "
                              "and udev rules, or set realsense_serial:=_<serial> to one of the connected serials")
        cfg = rs.config()
        if self.serial:
            cfg.enable_device(self.serial)
        cfg.enable_stream(rs.stream.color, self.width, self.height, rs.format.rgb8, self.fps)
        cfg.enable_stream(rs.stream.depth, self.width, self.height, rs.format.z16, self.fps)
        self._pipe = rs.pipeline()
        try:
            profile = self._pipe.start(cfg)
        except RuntimeError as exc:
            raise ConfigError(f"RealSense camera {found} did not start ({exc}): check that no other process "
                              "(realsense2_camera, realsense-viewer) holds it") from exc
        self.depth_scale = float(profile.get_device().first_depth_sensor().get_depth_scale())
        self._align = rs.align(rs.stream.color)

    def read(self, timeout_s: float) -> Frame | None:
        ok, frames = self._pipe.try_wait_for_frames(int(timeout_s * 1000))
        return aligned_arrays(self._rs, self._align, frames) if ok else None

    def stop(self) -> None:
        if self._pipe is not None:
            self._pipe.stop()
            self._pipe = None


class SoftwareRealSense:
    """The SDK's software device with colour rgb8 + z16 depth streams; `inject` feeds one frame pair."""

    def __init__(self, width: int = 640, height: int = 480, fps: int = 30, depth_units: float = 0.001,
                 depth_size: tuple[int, int] | None = None, fx: float = 615.0):
        """Colour `width` x `height`; depth `depth_size` (w, h), default the same (a D435 streams 848x480 depth
        too). Both are pinhole cameras with focal `fx` centred on the image and the same pose, so rs.align maps
        depth column u to colour column u - (depth_w - width) / 2."""
        rs = self._rs = import_rs()
        self.width, self.height = int(width), int(height)
        self.depth_w, self.depth_h = (int(depth_size[0]), int(depth_size[1])) if depth_size else (self.width,
                                                                                                   self.height)
        self._dev = rs.software_device()
        self._ds, self._cs = self._dev.add_sensor("Depth"), self._dev.add_sensor("Color")
        self._dp = self._ds.add_video_stream(self._stream(rs.stream.depth, 0, rs.format.z16, 2, fps, fx,
                                                          self.depth_w, self.depth_h))
        self._cp = self._cs.add_video_stream(self._stream(rs.stream.color, 1, rs.format.rgb8, 3, fps, fx,
                                                          self.width, self.height))
        self._ds.add_read_only_option(rs.option.depth_units, float(depth_units))
        ext = rs.extrinsics()
        ext.rotation, ext.translation = [1.0, 0, 0, 0, 1.0, 0, 0, 0, 1.0], [0.0, 0.0, 0.0]
        self._dp.register_extrinsics_to(self._cp, ext)
        self._sync = rs.syncer(8)  # the default queue of 1 drops sets the reader has not taken yet
        self._align = rs.align(rs.stream.color)
        self._n = 0
        self._alive: deque[np.ndarray] = deque(maxlen=16)  # pixel buffers stay valid while frames are queued
        self.depth_scale = float("nan")

    def _stream(self, kind: Any, uid: int, fmt: Any, bpp: int, fps: int, fx: float, w: int, h: int) -> Any:
        rs = self._rs
        intr = rs.intrinsics()
        intr.width, intr.height, intr.ppx, intr.ppy, intr.fx, intr.fy = w, h, w / 2, h / 2, fx, fx
        intr.model, intr.coeffs = rs.distortion.none, [0.0] * 5
        s = rs.video_stream()
        s.type, s.index, s.uid, s.width, s.height, s.fps, s.bpp, s.fmt, s.intrinsics = (
            kind, 0, uid, w, h, fps, bpp, fmt, intr)
        return s

    def start(self) -> None:
        for sensor, prof in ((self._ds, self._dp), (self._cs, self._cp)):
            sensor.open(prof)
            sensor.start(self._sync)
        self.depth_scale = float(self._dev.first_depth_sensor().get_depth_scale())

    def inject(self, rgb: np.ndarray, z16: np.ndarray, stamp_s: float) -> None:
        """Push one colour + depth pair (same device timestamp), as the camera's USB stream would."""
        rs = self._rs
        if np.shape(rgb) != (self.height, self.width, 3) or np.shape(z16) != (self.depth_h, self.depth_w):
            raise ValueError(f"inject needs rgb ({self.height}, {self.width}, 3) and z16 ({self.depth_h}, "
                             f"{self.depth_w}), got {np.shape(rgb)} and {np.shape(z16)}")  # the SDK reads raw memory
        for sensor, prof, px, bpp in ((self._ds, self._dp, np.ascontiguousarray(z16, np.uint16), 2),
                                      (self._cs, self._cp, np.ascontiguousarray(rgb, np.uint8), 3)):
            self._alive.append(px)
            f = rs.software_video_frame()
            f.pixels, f.bpp, f.stride, f.timestamp = px, bpp, bpp * px.shape[1], stamp_s * 1e3
            f.domain, f.frame_number = rs.timestamp_domain.hardware_clock, self._n
            f.profile = prof.as_video_stream_profile()
            sensor.on_video_frame(f)
        self._n += 1

    def read(self, timeout_s: float) -> Frame | None:
        ok, frames = self._sync.try_wait_for_frames(int(timeout_s * 1000))
        return aligned_arrays(self._rs, self._align, frames) if ok else None

    def stop(self) -> None:
        for sensor in (self._ds, self._cs):
            sensor.stop()
            sensor.close()
