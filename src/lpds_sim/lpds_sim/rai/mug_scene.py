"""Mug-hanging scene for RAI: a mug whose handle is a closed loop, and a holder post with a horizontal peg.

The geometry follows the verified recipe in `shared/reference/mug_hanging.md` (47/50 hang in PhysX): a Ø6 cm x 9 cm
mug with a 30 x 50 mm handle hole, a Ø12 mm peg 14 cm long, 22 cm above the table, pointing at the robot. The handle
is three capsules (two radial bars and an outer bar) so that the hole is really closed: a peg through it cannot slip
out sideways, only back along the peg axis, which is what holds a mug on a real mug tree.

Everything here only builds frames; physics, control and the success rule live elsewhere.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .scene import TABLE_TOP_Z

# names of the frames this module adds (the env and the operator refer to them)
MUG = "mug"
MUG_HANDLE_FRAMES = ("mug_hTop", "mug_hBot", "mug_hOut")
MUG_HANDLE_CENTRE = "mug_handle_centre"  # marker at the centre of the handle hole
HOLDER_POST = "holder_post"
PEG = "peg"
PEG_TIP = "peg_tip"
# mug target poses, per hanging side (+1: body at -x of the peg, handle pointing +x; -1: mirrored, handle -x)
HANG_IN = {1: "hang_in", -1: "hang_in_mirror"}  # the peg through the handle, 0.7 L deep
HANG_PRE = {1: "hang_pre", -1: "hang_pre_mirror"}  # the same pose 5 cm in front of the peg tip
STATIC_FRAMES = (HOLDER_POST, PEG)


def axis_angle_quat(axis: np.ndarray | list[float], angle: float) -> np.ndarray:
    """Quaternion (w, x, y, z) for a rotation by `angle` about `axis` (RAI's convention)."""
    a = np.asarray(axis, float)
    a = a / np.linalg.norm(a)
    return np.r_[np.cos(angle / 2), np.sin(angle / 2) * a]


@dataclass(frozen=True)
class MugSpec:
    """Mug body and handle loop, metres. The hole is `hole_w` radially by `hole_h` vertically."""

    radius: float = 0.03
    height: float = 0.09
    bar_radius: float = 0.005
    hole_w: float = 0.03
    hole_h: float = 0.05
    mass: float = 0.2

    @property
    def handle_offset(self) -> float:
        """Distance from the mug axis to the centre of the handle hole (along the mug's local x)."""
        return self.radius + self.hole_w / 2


@dataclass(frozen=True)
class HolderSpec:
    """Holder post with one peg pointing at the robot (-y), metres. Placed like a mug tree at the table's right rear."""

    xy: tuple[float, float] = (0.3, 0.42)  # world x y (= relative to the table centre); bench profile: holder_xy
    peg_height: float = 0.22  # peg axis above the table top
    base_z: float = TABLE_TOP_Z  # world z of the table top the post stands on (bench profile: table_height)
    peg_radius: float = 0.006
    peg_length: float = 0.14
    post_width: float = 0.03
    insert_depth: float = 0.7  # fraction of the peg length the mug slides on (the hand must stay clear of the post)
    pre_insert_gap: float = 0.05  # hang_pre is this far beyond the peg tip

    @property
    def axis(self) -> np.ndarray:
        """Unit vector along the peg from its root at the post to its tip."""
        return np.array([0.0, -1.0, 0.0])

    @property
    def root(self) -> np.ndarray:
        """World position of the peg's root (1 mm off the post face: statics must not overlap, see the reference)."""
        return np.array([*self.xy, self.base_z + self.peg_height]) + self.axis * (self.post_width / 2 + 0.001)

    @property
    def tip(self) -> np.ndarray:
        return self.root + self.axis * self.peg_length


@dataclass(frozen=True)
class MugScene:
    """Dimensions of the whole task; `build` adds it to a Config that already holds pandaSingle.g."""

    mug: MugSpec = field(default_factory=MugSpec)
    holder: HolderSpec = field(default_factory=HolderSpec)

    @classmethod
    def from_profile(cls, bench, mug: MugSpec | None = None) -> "MugScene":
        """The scene on a calibrated bench (`lpds_core.bench_profile.BenchProfile`: table height, holder place)."""
        holder = HolderSpec(xy=tuple(bench.holder.holder_xy), peg_height=bench.holder.peg_height,
                            base_z=bench.table.table_height)
        return cls(mug=mug or MugSpec(), holder=holder)

    @property
    def table_z(self) -> float:
        """World z of the table top (the mug stands on it, the holder post too)."""
        return self.holder.base_z

    def mug_rest_z(self) -> float:
        """Height of the mug centre when it stands on the table (1 mm above it, so it settles without a jump)."""
        return self.table_z + self.mug.height / 2 + 0.001

    def hang_offset(self, depth: float, side: int = 1) -> np.ndarray:
        """Mug-centre position relative to the peg root when the peg passes `depth` m deep through the handle.

        The peg runs through the upper half of the hole (a quarter of the hole height above the mug centre), so
        when released the mug drops a little, tilts and rests with the handle's top bar on the peg.
        """
        return self.holder.axis * depth + np.array([-side * self.mug.handle_offset, 0.0, -self.mug.hole_h / 4])

    def hang_pose(self, pre: bool = False, side: int = 1) -> tuple[np.ndarray, np.ndarray]:
        """World (position, quaternion) of the mug, upright, at the inserted (`pre=False`) or pre-insert pose.

        side=+1: handle pointing +x, body on the robot's side of the peg; side=-1: mirrored (yaw pi). Offering both
        means a mug never has to turn more than 90 degrees in yaw on the way, which keeps every start plannable.
        """
        if side not in (1, -1):
            raise ValueError(f"side must be +1 or -1, got {side}")
        h = self.holder
        depth = h.peg_length + h.pre_insert_gap if pre else h.insert_depth * h.peg_length
        return h.root + self.hang_offset(depth, side), axis_angle_quat([0, 0, 1], 0.0 if side == 1 else np.pi)

    def build(self, C, mug_xy: tuple[float, float] | np.ndarray, mug_yaw: float) -> None:
        """Add mug, holder post, peg and the hang marker frames to `C` (a Config with pandaSingle.g loaded)."""
        import robotic as ry

        m, h = self.mug, self.holder
        C.addFrame(MUG).setShape(ry.ST.ssCylinder, [m.height, m.radius, 0.002]).setContact(1).setMass(m.mass) \
            .setPosition([float(mug_xy[0]), float(mug_xy[1]), self.mug_rest_z()]) \
            .setQuaternion(axis_angle_quat([0, 0, 1], mug_yaw)).setColor([0.85, 0.85, 0.9])
        # closed loop: two radial bars (top, bottom) reaching 4 mm into the body + the outer vertical bar
        xo, zb = m.radius + m.hole_w + m.bar_radius, m.hole_h / 2 + m.bar_radius
        for name, z in ((MUG_HANDLE_FRAMES[0], zb), (MUG_HANDLE_FRAMES[1], -zb)):
            C.addFrame(name, MUG).setShape(ry.ST.capsule, [xo - m.radius + 0.004, m.bar_radius]) \
                .setRelativePosition([(xo + m.radius - 0.004) / 2, 0, z]) \
                .setRelativeQuaternion(axis_angle_quat([0, 1, 0], np.pi / 2)).setContact(1).setColor([0.2, 0.4, 0.8])
        C.addFrame(MUG_HANDLE_FRAMES[2], MUG).setShape(ry.ST.capsule, [2 * zb, m.bar_radius]) \
            .setRelativePosition([xo, 0, 0]).setContact(1).setColor([0.2, 0.4, 0.8])
        C.addFrame(MUG_HANDLE_CENTRE, MUG).setShape(ry.ST.marker, [0.02]).setRelativePosition([m.handle_offset, 0, 0])

        # static parts are children of the table without mass
        post_h = h.peg_height + 0.015
        C.addFrame(HOLDER_POST, "table").setShape(ry.ST.ssBox, [h.post_width, h.post_width, post_h, 0.003]) \
            .setRelativePosition([*h.xy, 0.05 + post_h / 2]).setContact(1).setColor([0.55, 0.35, 0.2])
        table_pos = C.getFrame("table").getPosition()
        peg_centre = h.root + h.axis * h.peg_length / 2
        C.addFrame(PEG, "table").setShape(ry.ST.cylinder, [h.peg_length, h.peg_radius]) \
            .setRelativePosition(peg_centre - table_pos) \
            .setRelativeQuaternion(axis_angle_quat([1, 0, 0], np.pi / 2)).setContact(1).setColor([0.55, 0.35, 0.2])
        C.addFrame(PEG_TIP, PEG).setShape(ry.ST.marker, [0.02]).setRelativePosition([0, 0, h.peg_length / 2])
        for side in (1, -1):
            for name, pre in ((HANG_IN[side], False), (HANG_PRE[side], True)):
                pos, quat = self.hang_pose(pre, side)
                C.addFrame(name, "table").setShape(ry.ST.marker, [0.05]).setRelativePosition(pos - table_pos) \
                    .setRelativeQuaternion(quat)
