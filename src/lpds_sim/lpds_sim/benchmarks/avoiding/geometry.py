"""D3IL Avoiding's obstacle field, its mode code and its diversity metric (pure numpy, no simulator).

Geometry (ALRhub/d3il `gym_avoiding/envs/objects/avoiding_objects.py` and `avoiding.py`): mid x = 0.5, lateral
offset 0.075, first row at y = −0.10, row spacing 0.18; row 1 one cylinder (r = 0.03), row 2 two and row 3 three
(r = 0.025); finish line y = −0.10 + 2.5·0.18 = 0.35; the rod end effector has radius 0.01 (`panda_rod.xml`).

Mode code (D3IL's `check_mode`): per row, the gap the end effector is in at the FIRST step it is inside that row's
band (rows 1, 2: |y − y_row| ≤ 0.03; row 3: y ≥ 0.26) fixes that row's bit of a 9-bit one-hot (2 + 3 + 4 gaps);
later steps do not change it. The 24 collision-free paths are the gap triples, numbered 0..23 here
(12·row1 + 4·row2 + row3). D3IL's diversity is the entropy of the distribution of the codes of the SUCCESSFUL
rollouts, normalised by log 24 (`mode_decoding` in avoiding.py, used by `simulation/avoiding_sim.py`).
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Hashable, Iterable
from dataclasses import dataclass, field

import numpy as np

MID_X, OFFSET, ROW1_Y, ROW_SPACING = 0.5, 0.075, -0.10, 0.18
ROW_Y = (ROW1_Y, ROW1_Y + ROW_SPACING, ROW1_Y + 2 * ROW_SPACING)  # -0.10, 0.08, 0.26
FINISH_Y = ROW1_Y + 2.5 * ROW_SPACING  # 0.35
# (x, y, radius) of the six cylinders, row by row
OBSTACLES = np.array([
    [MID_X, ROW_Y[0], 0.03],
    [MID_X - OFFSET, ROW_Y[1], 0.025], [MID_X + OFFSET, ROW_Y[1], 0.025],
    [MID_X - 2 * OFFSET, ROW_Y[2], 0.025], [MID_X, ROW_Y[2], 0.025], [MID_X + 2 * OFFSET, ROW_Y[2], 0.025],
])
ROW_OF_OBSTACLE = (0, 1, 1, 2, 2, 2)
EE_RADIUS = 0.01  # the rod's radius (panda_rod.xml: cylinder size 0.01)
START_XY = (0.525, -0.28)  # init_end_eff_pos[:2]
BAND = 0.03  # rows 1 and 2: a row's gap is read while |y - y_row| <= BAND; row 3: while y >= y_row
N_GAPS = (2, 3, 4)
N_MODES = 24
BIT_OFFSET = (0, 2, 5)  # first bit of each row in the 9-bit code


def gap_of(row: int, x: float) -> int:
    """Index of the gap of `row` that x lies in (left to right), as D3IL's check_mode reads it; −1 where D3IL sets
    no bit (x exactly on a cylinder's centre line, measure zero)."""
    cx = OBSTACLES[[i for i, r in enumerate(ROW_OF_OBSTACLE) if r == row], 0]
    if np.any(x == cx):
        # D3IL's row-3 chain ends in `elif x > l3_top_xpos` (meant l3_bottom_xpos): x == 0.5 or 0.65 there gets
        # the right-most bit; rows 1 and 2 set none. Only exact equality differs from the clean rule below.
        return N_GAPS[row] - 1 if row == 2 else -1
    return int(np.searchsorted(cx, x))


@dataclass
class ModeTracker:
    """The 9-bit code of one path, built step by step (the env's info["mode"]) or over a whole path (path_mode)."""

    gaps: list[int] = field(default_factory=lambda: [-1, -1, -1])
    passed: list[bool] = field(default_factory=lambda: [False, False, False])

    def update(self, x: float, y: float) -> None:
        for row, y_row in enumerate(ROW_Y):
            if self.passed[row]:
                continue
            inside = y >= y_row if row == 2 else abs(y - y_row) <= BAND
            if inside:
                self.gaps[row] = gap_of(row, x)
                self.passed[row] = True

    @property
    def bits(self) -> np.ndarray:
        b = np.zeros(sum(N_GAPS), dtype=np.int8)
        for row, g in enumerate(self.gaps):
            if g >= 0:
                b[BIT_OFFSET[row] + g] = 1
        return b

    @property
    def mode(self) -> int:
        """0..23 when every row has a gap, else −1 (the path has not crossed all three rows)."""
        return mode_index(self.gaps) if min(self.gaps) >= 0 else -1


def mode_index(gaps: Iterable[int]) -> int:
    """(row-1 gap, row-2 gap, row-3 gap) → 0..23."""
    g1, g2, g3 = (int(g) for g in gaps)
    if not (0 <= g1 < 2 and 0 <= g2 < 3 and 0 <= g3 < 4):
        raise ValueError(f"gaps must be in [0,2)x[0,3)x[0,4), got {(g1, g2, g3)}")
    return 12 * g1 + 4 * g2 + g3


def mode_gaps(mode: int) -> tuple[int, int, int]:
    """0..23 → (row-1 gap, row-2 gap, row-3 gap)."""
    if not 0 <= int(mode) < N_MODES:
        raise ValueError(f"mode must be in 0..23, got {mode}")
    m = int(mode)
    return m // 12, (m // 4) % 3, m % 4


def mode_bits(mode: int) -> np.ndarray:
    """0..23 → D3IL's 9-bit one-hot."""
    b = np.zeros(sum(N_GAPS), dtype=np.int8)
    for row, g in enumerate(mode_gaps(mode)):
        b[BIT_OFFSET[row] + g] = 1
    return b


def segment_clearance(p0: np.ndarray, p1: np.ndarray) -> np.ndarray:
    """Distance from each cylinder's centre to the segment p0→p1, minus its radius and the rod's: < 0 is a
    collision anywhere along the step (so a fast step cannot tunnel through a cylinder)."""
    p0, p1 = np.asarray(p0, float), np.asarray(p1, float)
    d = p1 - p0
    c = OBSTACLES[:, :2]
    L2 = float(d @ d)
    t = np.clip(((c - p0) @ d) / L2, 0.0, 1.0) if L2 > 0 else np.zeros(len(c))
    closest = p0 + t[:, None] * d
    return np.linalg.norm(c - closest, axis=1) - OBSTACLES[:, 2] - EE_RADIUS


def path_collides(path: np.ndarray) -> bool:
    """Whether a path (T, 2) of end-effector positions touches a cylinder at a point or along a step."""
    p = np.asarray(path, float)
    if len(p) == 1:
        return bool(np.any(segment_clearance(p[0], p[0]) < 0))
    return any(np.any(segment_clearance(a, b) < 0) for a, b in zip(p[:-1], p[1:]))


@dataclass(frozen=True)
class PathResult:
    mode: int  # 0..23, or −1 when not every row was crossed
    bits: np.ndarray  # D3IL's 9-bit code
    collided: bool
    success: bool  # crossed the finish line before any collision


def path_mode(path: np.ndarray) -> PathResult:
    """A rollout's path (T, 2) of end-effector xy, judged as the env judges it step by step: the mode code, a
    collision, success (y > 0.35 reached at a step up to which nothing was hit)."""
    p = np.asarray(path, float)
    tracker = ModeTracker()
    tracker.update(*p[0])
    collided, success = bool(np.any(segment_clearance(p[0], p[0]) < 0)), False
    for a, b in zip(p[:-1], p[1:]):
        if collided or success:
            break
        collided = bool(np.any(segment_clearance(a, b) < 0))
        tracker.update(*b)
        success = not collided and b[1] > FINISH_Y
    return PathResult(tracker.mode, tracker.bits, collided, success)


def mode_entropy(codes: Iterable[Hashable]) -> float:
    """D3IL's diversity: entropy of the empirical distribution of the given codes (the modes or 9-bit codes of the
    SUCCESSFUL rollouts) in units of log 24, so 1.0 = all 24 paths equally often, 0.0 = one path. No codes
    (no success): 0.0."""
    keys = [tuple(np.asarray(c).ravel().tolist()) if isinstance(c, np.ndarray) else c for c in codes]
    if not keys:
        return 0.0
    p = np.array(list(Counter(keys).values()), dtype=float) / len(keys)
    return max(0.0, float(-(p * np.log(p)).sum() / np.log(N_MODES)))  # one mode: 0.0, not -0.0
