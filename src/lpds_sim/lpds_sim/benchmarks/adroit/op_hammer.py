"""Scripted Hammer operator: grasp the hammer by its handle, lift it, and strike the nail in with sideways swings.

Hammer's arm cannot translate: it has only the arm's pitch and yaw (ARRx, ARRy) and the wrist (WRJ1 yaw, WRJ0
pitch). All four are servoed as the arm. The hammer lies along x under the palm, its head on the thumb's side. The
nail sticks out of a vertical board along `nail_dir` (mostly +x), at a height drawn per reset (0.1-0.25 m).
Turning the arm clockwise (ARRy down) sweeps the head along +x, roughly along the nail, so the strike is a yaw swing.

1. Reach: the palm goes behind and just above the handle (arm pitch and yaw by IK, the wrist pitched down).
2. Close: the fingers curl round the handle (Relocate's power grasp, a little stronger), the thumb on its side.
3. Lift: the arm pitches up.
4. Aim: a point of the head (the env's `tool` site) goes 5 cm before the nail's head, along the nail.
5. Strike, repeatedly: a fast clockwise yaw of about 0.35 rad, then aim again from where the nail is now. Once
   the nail is within 9.5 mm of its goal, the hand rests there.

The grasp is loose and the hammer shifts in it, so every aim re-measures where the head is in the palm's frame.
Aiming keeps the wrist's grasp pitch when that reaches the nail, because pitching the wrist tilts the palm and lets
the hammer slide out; low nails need the wrist too. The six constants below were chosen by a random search of
40 settings on seeds 0-15 (direct style), then checked on seeds 100-123 in every style (72 of 72). On held-out
resets (seeds 1000-1199, in each style) it succeeds in 580 of 600 episodes (docs/adroit.md).
"""
from __future__ import annotations

from typing import Iterator

import numpy as np

from .op_relocate import grasp_pose
from .script import Driver, Style

ARM = ("ARR", "WR")  # the arm's pitch/yaw and the wrist, servoed; the fingers and thumb are the hand
STYLES: dict[str, Style] = {
    "direct": Style("direct", (0.85, 1.05), 0.25, (2, 5), 0.0008, "direct"),
    "careful": Style("careful", (1.0, 1.2), 0.5, (3, 8), 0.0004, "direct"),
    "brisk": Style("brisk", (0.75, 0.95), 0.15, (1, 3), 0.001, "direct"),
}
GRIP = (-0.027, 0.014)  # palm behind (-y) / above the handle at the grasp (m)
WRIST = 0.244  # wrist pitch (WRJ0) at the grasp (rad)
STRENGTH = 1.14  # flexion of the grasp, in multiples of Relocate's grasp
LIFT = 0.263  # the arm's pitch-up of the lift (rad)
APPROACH = 0.053  # the head waits this far before the nail's head, along the nail (m)
SWING = 0.346  # the arm's yaw of each strike (rad)
STRIKE_STEPS = 4  # duration of a strike (env steps): fast, so the head carries momentum into the nail
REACH_TOL = 0.01  # an aim that misses by more than this (m) with the wrist's pitch kept uses the wrist too
DONE = 0.0095  # the nail counts as driven this close to its goal (m); the env's goal is 1 cm


def held(drv: Driver, world_pt: np.ndarray) -> np.ndarray:
    """A world point (of the hammer) in the palm's frame, with the hammer where the hand holds it now."""
    pos, rot = drv.hand.body_pose("palm")
    return rot.T @ (world_pt - pos)


def point_ik(drv: Driver, local: np.ndarray, target: np.ndarray, q0: np.ndarray, use: tuple[str, ...],
             iters: int = 40) -> np.ndarray:
    """Arm joints (those named in `use` move, the others stay at `q0`) that put the palm-frame point `local` at
    `target`: damped least squares, with a finite-difference Jacobian, within the joint ranges."""
    h, q = drv.hand, np.array(q0, float)
    names = [h.names[i] for i in drv.arm]
    cols = [names.index(n) for n in use]
    lo, hi = h.jrange[drv.arm, 0], h.jrange[drv.arm, 1]

    def point(qq: np.ndarray) -> np.ndarray:
        pos, rot = h.body_pose_at("palm", drv.arm, qq)
        return rot @ local + pos

    for _ in range(iters):
        p = point(q)
        err = np.asarray(target, float) - p
        if np.linalg.norm(err) < 5e-4:
            break
        J = np.zeros((3, len(q)))
        for k in cols:
            dq = q.copy()
            dq[k] += 1e-4
            J[:, k] = (point(dq) - p) / 1e-4
        q = np.clip(q + J.T @ np.linalg.solve(J @ J.T + 1e-3 * np.eye(3), err), lo, hi)
    return q


def aim(drv: Driver, local: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Joints that put the head point `local` at `target`, keeping the wrist's grasp pitch if that reaches (pitching
    the wrist tilts the palm and the loose grasp lets the hammer slide out); low nails need the wrist, though."""
    q = point_ik(drv, local, target, drv.arm_q, use=("ARRx", "ARRy", "WRJ1"))
    pos, rot = drv.hand.body_pose_at("palm", drv.arm, q)
    if np.linalg.norm(rot @ local + pos - target) > REACH_TOL:
        q = point_ik(drv, local, target, q, use=("ARRx", "ARRy", "WRJ1", "WRJ0"))
    return q


def operator(drv: Driver, rng: np.random.Generator, style: Style) -> Iterator[np.ndarray]:
    h = drv.hand
    names = [h.names[i] for i in drv.arm]
    yaw = names.index("ARRy")  # turning the arm clockwise (down) sweeps the head along +x, into the nail
    open_hand = np.zeros(len(drv.fingers))
    grip = h.body("Object") + np.array([rng.uniform(-0.01, 0.01), GRIP[0] + rng.uniform(-0.01, 0.01),
                                        GRIP[1] + rng.uniform(-0.003, 0.003)])
    approach, swing = APPROACH * rng.uniform(0.9, 1.1), SWING * rng.uniform(0.9, 1.1)
    q = drv.arm_q.copy()
    q[names.index("WRJ0")] = WRIST
    q = point_ik(drv, held(drv, h.site("S_grasp")), grip, q, use=("ARRx", "ARRy"))
    yield from drv.move(q, open_hand, drv.steps(20))
    yield from drv.move(q, grasp_pose(drv, STRENGTH), steps=drv.steps(10), pause=False)
    yield from drv.hold(3)
    head = held(drv, h.site("tool"))
    nail, goal = h.site("S_target"), h.site("nail_goal")
    along = (goal - nail) / np.linalg.norm(goal - nail)  # the nail's axis, into the board
    up = drv.arm_q.copy()
    up[names.index("ARRx")] -= LIFT
    yield from drv.move(up, steps=drv.steps(15), pause=False)
    yield from drv.move(aim(drv, head, nail - approach * along), steps=drv.steps(15), pause=False)
    while True:
        nail = h.site("S_target")
        if np.linalg.norm(goal - nail) < DONE:  # driven: rest the head on it
            yield from drv.hold(4)
            continue
        qa = aim(drv, held(drv, h.site("tool")), nail - approach * along)
        yield from drv.move(qa, steps=6, pause=False)
        strike = qa.copy()
        strike[yaw] = max(strike[yaw] - swing, h.jrange[drv.arm[yaw], 0])
        yield from drv.move(strike, steps=STRIKE_STEPS, pause=False)
