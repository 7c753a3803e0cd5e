"""One graded trial or deployment episode as a rosbag2 bag in MCAP storage, written and read with `rosbags`.

Plain Python (no rclpy): the recorder (episode_recorder) hands over the CDR bytes that went over DDS, and this
module writes them unchanged, so `ros2 bag info/play` and Foxglove see the messages the graph exchanged. Camera
images are stored the way image_transport publishes them: colour as sensor_msgs/CompressedImage (jpeg for the
camera, png for the policy's 84x84 observation, lossless so the policy can be re-run on it), 16-bit depth as
`compressedDepth` png. The outcome (success, steps, trial, seed, ...) is the last message, a std_msgs/String JSON
on /episode/outcome, and is also in the bag's metadata (custom_data "lpds.outcome", next to "lpds.episode").
Only standard message types are used.
"""
from __future__ import annotations

import json
import struct
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from lpds_core.errors import DataError, RunError

FORMAT = "lpds-episode-bag"
FORMAT_VERSION = 1
OUTCOME_TOPIC = "/episode/outcome"
META_EPISODE = "lpds.episode"  # custom_data keys (JSON strings)
META_OUTCOME = "lpds.outcome"
COMPRESSED_IMAGE = "sensor_msgs/msg/CompressedImage"
# compressed_depth_image_transport's ConfigHeader: int32 format (1 = PNG), float32 depthQuantA, depthQuantB
_DEPTH_HEADER = struct.Struct("<iff")
_DEPTH_PNG = 1


@lru_cache(maxsize=1)
def typestore() -> Any:
    from rosbags.typesys import Stores, get_typestore

    return get_typestore(Stores.ROS2_KILTED)


def free_bag_path(directory: str | Path, name: str) -> Path:
    """directory/name, or directory/name_1, name_2, ... : a bag is never written over an existing path."""
    d = Path(directory)
    path, k = d / name, 0
    while path.exists():
        k += 1
        path = d / f"{name}_{k}"
    return path


# -- images ------------------------------------------------------------------------------------------------------
def encode_color(rgb: np.ndarray, codec: str = "jpeg", quality: int = 90) -> tuple[str, bytes]:
    """(format, data) of a sensor_msgs/CompressedImage for an (h, w, 3) uint8 RGB image (image_transport's
    format string, which Foxglove reads too). png is lossless, jpeg is ~10x smaller."""
    import cv2

    bgr = np.ascontiguousarray(np.asarray(rgb, np.uint8)[..., ::-1])
    if codec == "jpeg":
        ok, buf = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    elif codec == "png":
        ok, buf = cv2.imencode(".png", bgr, [cv2.IMWRITE_PNG_COMPRESSION, 1])
    else:
        raise ValueError(f"colour codec must be jpeg or png, got {codec!r}")
    if not ok:
        raise ValueError(f"OpenCV could not encode a {np.shape(rgb)} image as {codec}")
    return f"rgb8; {codec} compressed bgr8", buf.tobytes()


def encode_depth_mm(depth_mm: np.ndarray) -> tuple[str, bytes]:
    """(format, data) for 16UC1 depth (millimetres) the way compressed_depth_image_transport writes it: a 12-byte
    header, then a 16-bit png (lossless)."""
    import cv2

    ok, buf = cv2.imencode(".png", np.ascontiguousarray(np.asarray(depth_mm, np.uint16)),
                           [cv2.IMWRITE_PNG_COMPRESSION, 1])
    if not ok:
        raise ValueError(f"OpenCV could not encode a {np.shape(depth_mm)} depth image as png")
    return "16UC1; compressedDepth png", _DEPTH_HEADER.pack(_DEPTH_PNG, 0.0, 0.0) + buf.tobytes()


def decode_compressed(fmt: str, data: bytes) -> np.ndarray:
    """An image back from a CompressedImage: (h, w, 3) uint8 RGB for colour, (h, w) uint16 for compressedDepth."""
    import cv2

    raw = bytes(data)
    if "compressedDepth" in fmt:
        raw = raw[_DEPTH_HEADER.size:]
        img = cv2.imdecode(np.frombuffer(raw, np.uint8), cv2.IMREAD_UNCHANGED)
        if img is None:
            raise DataError(f"a compressedDepth image ({fmt!r}) does not decode: the bag is damaged")
        return img
    img = cv2.imdecode(np.frombuffer(raw, np.uint8), cv2.IMREAD_COLOR)
    if img is None:
        raise DataError(f"a compressed image ({fmt!r}) does not decode: the bag is damaged")
    return np.ascontiguousarray(img[..., ::-1])


# -- writing -----------------------------------------------------------------------------------------------------
class EpisodeBagWriter:
    """One bag per episode; `path` must not exist yet (use free_bag_path)."""

    def __init__(self, path: str | Path, meta: dict[str, Any]):
        from rosbags.rosbag2 import StoragePlugin, Writer

        self.path = Path(path)
        if self.path.exists():
            raise RunError(f"bag {self.path} already exists; it is never overwritten: choose another folder")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._writer = Writer(self.path, version=9, storage_plugin=StoragePlugin.MCAP)
        self._writer.open()
        self._conns: dict[str, Any] = {}
        self.counts: dict[str, int] = {}
        self.meta = {"format": FORMAT, "format_version": FORMAT_VERSION, **meta}
        self._writer.set_custom_data(META_EPISODE, json.dumps(self.meta, sort_keys=True))
        self.closed = False

    def _conn(self, topic: str, msgtype: str) -> Any:
        c = self._conns.get(topic)
        if c is None:
            c = self._conns[topic] = self._writer.add_connection(topic, msgtype, typestore=typestore())
        elif c.msgtype != msgtype:
            raise ValueError(f"topic {topic} is recorded as {c.msgtype}, not {msgtype}")
        return c

    def write_cdr(self, topic: str, msgtype: str, data: bytes, t_ns: int) -> None:
        """A message exactly as it went over DDS (CDR with its encapsulation header)."""
        self._writer.write(self._conn(topic, msgtype), int(t_ns), bytes(data))
        self.counts[topic] = self.counts.get(topic, 0) + 1

    def write_msg(self, topic: str, msgtype: str, msg: Any, t_ns: int) -> None:
        """A rosbags message object (built with typestore().types[msgtype])."""
        self.write_cdr(topic, msgtype, typestore().serialize_cdr(msg, msgtype), t_ns)

    def write_outcome(self, outcome: dict[str, Any], t_ns: int) -> None:
        text = json.dumps(outcome, sort_keys=True)
        self.write_msg(OUTCOME_TOPIC, "std_msgs/msg/String", typestore().types["std_msgs/msg/String"](data=text),
                       t_ns)
        self._writer.set_custom_data(META_OUTCOME, text)

    def close(self) -> Path:
        if not self.closed:
            self._writer.close()
            self.closed = True
        return self.path


def compressed_image_msg(stamp_ns: int, frame_id: str, fmt: str, data: bytes) -> Any:
    ts = typestore().types
    sec, nsec = divmod(int(stamp_ns), 1_000_000_000)
    header = ts["std_msgs/msg/Header"](stamp=ts["builtin_interfaces/msg/Time"](sec=sec, nanosec=nsec),
                                       frame_id=frame_id)
    return ts[COMPRESSED_IMAGE](header=header, format=fmt, data=np.frombuffer(data, np.uint8))


# -- reading -----------------------------------------------------------------------------------------------------
@dataclass
class EpisodeBag:
    """Everything in one episode bag: messages per topic as (log time ns, decoded rosbags message), in order."""
    path: Path
    meta: dict[str, Any]
    outcome: dict[str, Any] | None
    messages: dict[str, list[tuple[int, Any]]] = field(default_factory=dict)
    types: dict[str, str] = field(default_factory=dict)

    def topic(self, suffix: str) -> list[tuple[int, Any]]:
        """Messages of the topic named `suffix` under any namespace (the one with the fewest name parts among
        those ending in /suffix: "joint_states" is /ns/joint_states, not /ns/franka_gripper/joint_states)."""
        tail = "/" + suffix.lstrip("/")
        names = sorted((t for t in self.messages if t.endswith(tail)), key=lambda t: t.count("/"))
        if len(names) > 1 and names[0].count("/") == names[1].count("/"):
            raise DataError(f"bag {self.path} has several topics ending in {suffix}: {names}")
        return self.messages[names[0]] if names else []


def _is_bag(path: Path) -> bool:
    return path.is_dir() and (path / "metadata.yaml").is_file()


def _custom_data(path: Path) -> dict[str, str]:
    """rosbag2's custom_data (metadata.yaml, version >= 6), read from the file: rosbags keeps it internal."""
    import yaml

    info = yaml.safe_load((path / "metadata.yaml").read_text()) or {}
    return dict((info.get("rosbag2_bagfile_information") or {}).get("custom_data") or {})


def _damaged(path: Path, exc: Exception) -> DataError:
    why = " ".join(f"{type(exc).__name__}: {exc}".split())[:160]
    return DataError(f"{path} cannot be read as a rosbag2 bag ({why}); is it complete? (a recording that was "
                     "killed leaves no readable bag)")


def read_episode(path: str | Path, topics: tuple[str, ...] | None = None) -> EpisodeBag:
    """Read an episode bag with rosbags; DataError (one line) for anything that is not an LP-DS episode bag."""
    from rosbags.rosbag2 import Reader

    p = Path(path)
    if p.is_file() and p.suffix == ".mcap" and _is_bag(p.parent):
        p = p.parent
    if not p.exists():
        raise DataError(f"no bag at {p}: give an episode bag folder (e.g. runs/ros_sim/bags/trial_000)")
    if not _is_bag(p):
        raise DataError(f"{p} is not a rosbag2 bag (no metadata.yaml): give an episode bag folder such as "
                        "runs/ros_sim/bags/trial_000")
    try:
        reader = Reader(p)
        reader.open()
    except Exception as exc:  # noqa: BLE001 - rosbags raises its own types for damaged metadata/storage
        raise _damaged(p, exc) from exc
    try:
        custom = _custom_data(p)
        if META_EPISODE not in custom:
            raise DataError(f"{p} is a rosbag2 bag but not an LP-DS episode (no {META_EPISODE} metadata): record "
                            "it with `lpds ros-sim --out DIR` or the episode_recorder node")
        meta = json.loads(custom[META_EPISODE])
        if meta.get("format") != FORMAT or int(meta.get("format_version", 0)) > FORMAT_VERSION:
            raise DataError(f"{p} has episode format {meta.get('format')!r} v{meta.get('format_version')}; this "
                            f"version reads {FORMAT} v{FORMAT_VERSION}: update LP-DS")
        store = typestore()
        bag = EpisodeBag(p, meta, json.loads(custom[META_OUTCOME]) if META_OUTCOME in custom else None)
        conns = [c for c in reader.connections if topics is None or any(c.topic.endswith(t) for t in topics)]
        for c in conns:
            bag.messages.setdefault(c.topic, [])
            bag.types[c.topic] = c.msgtype
        for conn, t, raw in reader.messages(connections=conns):
            bag.messages[conn.topic].append((int(t), store.deserialize_cdr(raw, conn.msgtype)))
    except DataError:
        raise
    except Exception as exc:  # noqa: BLE001 - a truncated file fails while reading messages
        raise _damaged(p, exc) from exc
    finally:
        reader.close()
    return bag


def iter_bags(directory: str | Path) -> Iterator[Path]:
    """The episode bags directly under `directory`, sorted by name."""
    for p in sorted(Path(directory).iterdir()):
        if _is_bag(p):
            yield p


def stamp_ns(header: Any) -> int:
    return int(header.stamp.sec) * 1_000_000_000 + int(header.stamp.nanosec)
