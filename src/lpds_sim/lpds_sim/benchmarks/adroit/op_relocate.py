"""Scripted Relocate operator: grasp the ball from above and carry it into the green target sphere.

The arm's translations are slide joints (ARTx/ARTy/ARTz), so the palm (`S_grasp`) is placed by inverse kinematics
over the slides with the arm pitched down (ARRx, the "tilt" that lets the fingers reach the table) and the other
rotations at zero. Moves: reach a hover point above the ball (some styles pass behind it first), descend until the
ball sits under the fingers, close the hand (fingers curl over the front of the ball, the thumb presses its side)
while the palm follows the ball back by 1-2 cm (the curling fingers push it that way), carry it to the target
(straight, or lifting first) pitching the arm up no more than the target's height needs, then keep correcting the
palm by the ball's remaining error to the target until the episode ends, as a person watching the ball would.
The grasp (finger rest points, palm offset, pitch, the follow-back) was tuned by a small random search and then
the palm's height on seeds 0-216 (the first demo file's resets): a palm 2.3-5 cm above the ball's centre dropped
it in 8 % of episodes, mostly for balls far forward on the +x side, 0.5-3 cm in 1.4 %.
"""
from __future__ import annotations

from typing import Iterator

import numpy as np

from .script import Driver, Style

ARM = ("ART", "ARR")  # the arm actuators the driver servos; everything else is a finger or the wrist
STYLES: dict[str, Style] = {
    "direct": Style("direct", (0.85, 1.05), 0.25, (2, 5), 0.0008, "direct"),
    "lift-first": Style("lift-first", (0.95, 1.2), 0.4, (3, 7), 0.0005, "lift"),
    "behind": Style("behind", (0.8, 1.0), 0.2, (1, 4), 0.001, "behind"),
    "careful": Style("careful", (1.0, 1.2), 0.5, (3, 8), 0.0004, "direct"),
}
# finger rest points of the power grasp, by joint name (or the J-suffix shared by the four fingers)
GRASP = {"J2": 1.03, "J1": 0.86, "J0": 0.53, "THJ4": 0.73, "THJ3": 1.29, "THJ2": 0.1, "THJ1": 0.53, "THJ0": -0.47}
FLEX = ("FF", "MF", "RF", "LF")
GRIP_Y, GRIP_Z = (-0.031, -0.008), (0.005, 0.03)  # palm behind / above the ball's centre at the grasp (m)
TILT = (0.33, 0.4)  # arm pitch at the grasp (rad)
SCOOP = (-0.02, -0.01)  # how far the palm slides forward while the fingers close (m): back, with the ball
MIN_TILT = -0.2  # the most the arm pitches up to reach a high target
CARRY = 0.007  # average carrying speed, m per step (the fingers' springs are weak: faster throws the ball)


def grasp_pose(drv: Driver, strength: float) -> np.ndarray:
    """Finger/wrist rest points of the grasp (wrist and finger abduction at 0), flexion scaled by `strength`."""
    out = np.zeros(len(drv.fingers))
    for k, i in enumerate(drv.fingers):
        n = drv.hand.names[i]
        if n.startswith("TH"):
            out[k] = GRASP[n] * (strength if n in ("THJ3", "THJ1") else 1.0)
        elif n.startswith(FLEX) and n[2:] in GRASP:
            out[k] = GRASP[n[2:]] * strength
    return out


def arm_pose(drv: Driver, palm: np.ndarray, tilt: float) -> np.ndarray:
    """Arm joint positions that put the palm at `palm` with pitch `tilt` (the slides solved by IK)."""
    h, arm = drv.hand, drv.arm
    names = [h.names[i] for i in arm]
    rot = {i: (tilt if h.names[i] == "ARRx" else 0.0) for i in arm if h.names[i].startswith("ARR")}
    slides = np.array([i for i in arm if h.names[i].startswith("ART")])
    q = np.array([rot.get(i, 0.0) for i in arm])
    q[[names.index(h.names[i]) for i in slides]] = h.ik("S_grasp", palm, slides, fixed=rot)
    return q


def reachable_tilt(drv: Driver, palm: np.ndarray, tilt: float) -> float:
    """The largest pitch up to `tilt` at which the palm reaches `palm`: pitching up raises the hand's reach, but
    turning the hand with the ball in it loosens the grasp, so it turns no more than it must."""
    for th in np.linspace(tilt, MIN_TILT, 13):
        if np.linalg.norm(drv.hand.site_at("S_grasp", drv.arm, arm_pose(drv, palm, float(th))) - palm) < 0.005:
            return float(th)
    return MIN_TILT


def operator(drv: Driver, rng: np.random.Generator, style: Style) -> Iterator[np.ndarray]:
    h = drv.hand
    ball, target = h.body("Object"), h.site("target")
    grip = np.array([rng.uniform(-0.01, 0.01), rng.uniform(*GRIP_Y), rng.uniform(*GRIP_Z)])
    tilt = rng.uniform(*TILT)
    hover = rng.uniform(0.05, 0.10)
    open_hand = np.zeros(len(drv.fingers))
    if style.variant == "behind":  # come in low from behind the ball, then over it
        yield from drv.move(arm_pose(drv, ball + grip + [0, -0.08, hover + 0.03], tilt), open_hand, drv.steps(20))
    yield from drv.move(arm_pose(drv, ball + grip + [0, 0, hover], tilt), open_hand,
                        drv.steps(16 if style.variant == "behind" else 26))
    yield from drv.move(arm_pose(drv, ball + grip, tilt), steps=drv.steps(18))
    scoop = arm_pose(drv, ball + grip + [0, rng.uniform(*SCOOP), 0], tilt)  # the palm follows the closing fingers
    yield from drv.move(scoop, grasp_pose(drv, rng.uniform(0.95, 1.05)), steps=drv.steps(12), pause=False)
    if style.variant == "lift":  # straight up first, then across
        up = h.site("S_grasp") + [0, 0, rng.uniform(0.08, 0.14)]
        yield from drv.move(arm_pose(drv, up, reachable_tilt(drv, up, tilt)), steps=drv.steps(14), pause=False)
    offset = h.site("S_grasp") - h.body("Object")  # where the ball sits in the hand
    carry_tilt = reachable_tilt(drv, target + offset, tilt)
    dist = float(np.linalg.norm(target - h.body("Object")))  # carried at ~0.7 m/s on average: a loose grasp
    yield from drv.move(arm_pose(drv, target + offset, carry_tilt), steps=drv.steps(max(25, int(dist / CARRY))),
                        pause=False)
    while True:  # correct by the ball's error, a few cm at a time
        err = h.site("target") - h.body("Object")
        step = err * min(1.0, 0.03 / max(float(np.linalg.norm(err)), 1e-9))
        yield from drv.move(arm_pose(drv, h.site("S_grasp") + step, carry_tilt), steps=8, pause=False)
