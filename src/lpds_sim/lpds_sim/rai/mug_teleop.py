"""Scripted mug-hanging operator: KOMO plans the grasp and the carry, a handle-servo slides the loop over the peg.

Plan (KOMO, following the verified recipe in `shared/reference/mug_hanging.md`, plus two objectives that match the
env's action space: the gripper stays vertical and the mug keeps 2 cm from the peg while it is carried):
  t=1 top-down grasp of the mug body (fingers closing across it, perpendicular to the handle),
  t=2 pre-insert pose 5 cm in front of the peg tip, t=3 the peg 0.7 L deep through the handle loop.
The mug may hang on either side of the peg (`side` +1/-1), so it never has to turn by more than 90 degrees.

Execution, once per control step, in the env's own action format `[dx, dy, dz, dyaw, gripper]`:
approach (KOMO end-effector path) -> vertical descent -> close -> lift and carry (KOMO path) -> align the handle
hole with the peg axis (closed loop on the measured handle pose) -> slide along the peg (closed loop) -> open ->
lift off -> back away. Aligning on the *measured* handle makes the insertion robust to the grasp slipping in the
hand, the main failure of the open-loop recipe.

Human-like variation (`OperatorStyle`, seeded): speed per move, minimum-jerk timing, waypoint offsets on free-space
paths, a detour-then-correct above the mug, pauses at phase changes, hesitations, and hand tremor away from contact.
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Callable

import gymnasium as gym
import numpy as np
import robotic as ry

from ..teleop import CLOSE, OPEN, OperatorStyle, ScriptedOperator
from .mug_scene import HANG_IN, HANG_PRE, MUG, MUG_HANDLE_CENTRE, MUG_HANDLE_FRAMES, PEG
from .scene import EE_FRAME

# one executor of the plan: called once per control step with the operator, returns an action or None when done.
# Executors get the operator as an argument instead of closing over it: a closure over `self` would put operator,
# env and RAI objects in a reference cycle, and freeing RAI objects from the cycle collector segfaults.
Step = Callable[["MugHangOperator"], "np.ndarray | None"]
GRASP_HEIGHT = 0.023  # l_gripper above the mug centre: the palm capsule allows only the top 2 cm (reference note)


@dataclass
class MugOperatorStyle(OperatorStyle):
    """The shared operator style, a little calmer (a mug held by its top 2 cm swings on hard accelerations),
    plus the speed of the slide along the peg. `exact()` switches every variation off."""

    waypoint_std: float = 0.012  # m, amplitude of the smooth offset added to free-space paths
    speed_range: tuple[float, float] = (0.45, 0.85)  # fraction of the env's max speed, drawn per free-space move
    pause_steps: tuple[int, int] = (1, 5)
    detour_prob: float = 0.4  # aim beside the mug first, then correct
    tremor_std: float = 0.03  # action units, free space only
    insert_speed_range: tuple[float, float] = (0.2, 0.4)  # along the peg


def plan_mug_hang(C: ry.Config, side: int, flip: int) -> list[np.ndarray] | None:
    """KOMO joint paths (approach, carry; 50 x 7 each) for the mug in `C`, or None if infeasible.

    `side` picks the hang pose (+1 handle towards +x, -1 mirrored), `flip` (+1/-1) which finger goes where. The
    waypoints include the inserted pose (t=3), so a plan exists only if the straight slide along the peg is
    reachable; the slide itself is executed by the handle servo, so its sub-motion is not solved (it added nothing
    and failed spuriously on ~8 % of starts).
    """
    M = ry.KOMO_ManipulationHelper()
    M.setup_sequence(C, 3, 1e-2, 1e-1, True, True, False)
    M.add_stable_frame(ry.JT.free, EE_FRAME, "obj_grasp", initFrame=MUG)
    M.snap_switch(1.0, "obj_grasp", MUG)
    k = M.komo
    k.addObjective([1.0], ry.FS.positionRel, [EE_FRAME, MUG], ry.OT.eq, np.eye(3) * 1e1, [0, 0, GRASP_HEIGHT])
    k.addObjective([0.8, 1.0], ry.FS.scalarProductZZ, [EE_FRAME, MUG], ry.OT.eq, [1e1], [1.0])
    k.addObjective([0.8, 1.0], ry.FS.scalarProductXX, [EE_FRAME, MUG], ry.OT.eq, [1e1], [0.0])
    k.addObjective([1.0], ry.FS.scalarProductYX, [EE_FRAME, MUG], ry.OT.eq, [1e1], [float(flip)])
    k.addObjective([2.0], ry.FS.poseDiff, [MUG, HANG_PRE[side]], ry.OT.eq, [1e1])
    k.addObjective([3.0], ry.FS.poseDiff, [MUG, HANG_IN[side]], ry.OT.eq, [1e1])

    def keep_clear(kk: ry.KOMO, times: list[float], vertical: bool = True) -> None:
        for f in ("l_palm", "l_finger1", "l_finger2"):  # without it the palm hits the peg (reference note)
            kk.addObjective(times, ry.FS.distance, [f, PEG], ry.OT.ineq, [1e1], [-0.01])
        if vertical:  # the env keeps the gripper vertical; the mug must be carried the way it will be
            kk.addObjective(times, ry.FS.vectorZ, [EE_FRAME], ry.OT.eq, [1e1], [0, 0, 1])

    keep_clear(k, [0.0, 3.0])
    if not M.solve(0).feasible:
        return None
    approach = M.sub_motion(0)
    keep_clear(approach.komo, [0.0, 1.0], vertical=False)  # free space: a vertical constraint only over-constrains
    approach.approach([0.7, 1.0], EE_FRAME, dist=0.05)
    if not approach.solve(0).feasible:
        return None
    carry = M.sub_motion(1)
    keep_clear(carry.komo, [0.0, 1.0])
    carry.retract([0.0, 0.25], EE_FRAME, dist=0.05)
    for f in (MUG, *MUG_HANDLE_FRAMES):  # 2 cm between mug and peg until the pre-insert pose
        carry.komo.addObjective([0.0, 1.0], ry.FS.distance, [f, PEG], ry.OT.ineq, [1e1], [-0.02])
    if not carry.solve(0).feasible:
        return None
    return [approach.path, carry.path]


def wrap_angle(a: float | np.ndarray) -> float | np.ndarray:
    return (np.asarray(a) + np.pi) % (2 * np.pi) - np.pi


def fit_yaw_range(yaw: np.ndarray, limit: float) -> np.ndarray:
    """Shift a gripper-yaw path by a multiple of pi so that it lies in [-limit, limit] (clipped where it cannot).

    The two fingers are symmetric, so yaw and yaw + pi grasp the same way; the env only accepts |yaw| <= limit.
    Shifts are tried smallest first: KOMO's own yaw (k = 0) comes from a joint-feasible path, so it is preferred.
    """
    best, best_excess = yaw, np.inf
    for k in (0, 1, -1, 2, -2, 3, -3):
        y = yaw + k * np.pi
        excess = max(0.0, y.max() - limit) + max(0.0, -limit - y.min())
        if excess < best_excess - 1e-9:
            best, best_excess = y, excess
    return np.clip(best, -limit, limit)


def min_jerk(n: int) -> np.ndarray:
    """n progress values in (0, 1], a minimum-jerk (bell-shaped speed) profile like a human reach."""
    s = np.arange(1, n + 1) / n
    return 10 * s ** 3 - 15 * s ** 4 + 6 * s ** 5


@dataclass
class Move:
    """A reference for the commanded end-effector target: one (position, yaw) per control step."""

    pos: np.ndarray  # (n, 3)
    yaw: np.ndarray  # (n,)
    grip: float
    label: str
    free_space: bool = False  # tremor / hesitation allowed
    settle_tol: float | None = None  # after the last step wait (<= 10 steps) until the measured EE is this close


class MugHangOperator(ScriptedOperator):
    """Closed-loop scripted policy for `MugHangEnv`: `op.reset()` after `env.reset()`, then `action = op(obs)`.

    Shares the policy API, seeding (per episode, from the operator seed and the start position) and style with
    `teleop.ScriptedOperator`; the plan is a queue of per-step executors instead of waypoint segments, because the
    insertion is a closed loop on the measured handle pose.
    """

    max_replans = 1
    sides_flips = ((1, 1), (1, -1), (-1, 1), (-1, -1))

    def __init__(self, env: gym.Env, style: OperatorStyle | None = None, seed: int | None = None) -> None:
        if style is not None and not isinstance(style, MugOperatorStyle):
            style = MugOperatorStyle(**asdict(style))  # a plain OperatorStyle: keep its choices, add the mug's
        super().__init__(env, style or MugOperatorStyle(), seed)
        if not getattr(self.u, "use_yaw", False) or not hasattr(self.u, "mug_pose"):
            raise TypeError(f"MugHangOperator needs a MugHangEnv, got {type(self.u).__name__}")
        self.side = 1
        self.phase = ""
        self._queue: list[tuple[str, Step]] = []
        self._planned_mug = np.zeros(3)
        self.plan_seconds = 0.0  # KOMO planning time summed over all episodes (benchmarks read it)

    def _new_plan(self) -> None:  # called by ScriptedOperator.reset()
        t = time.perf_counter()
        self._make_plan()
        self.plan_seconds += time.perf_counter() - t

    def done(self) -> bool:
        return not self._queue

    def act(self) -> np.ndarray:
        if self._needs_replan():
            self.replans += 1
            self._make_plan()
        while self._queue:
            self.phase, run = self._queue[0]
            a = run(self)
            if a is not None:
                return a
            self._queue.pop(0)
        self.phase = "done"
        return self._action(self.u.ee_target, self.u.ee_target_yaw, OPEN)

    # ------------------------------------------------------------------ planning
    def _komo_paths(self) -> list[np.ndarray] | None:
        u = self.u
        C = ry.Config()
        C.addConfigurationCopy(u.C)
        pos, R = u.mug_pose()
        mug_yaw = np.arctan2(R[1, 0], R[0, 0])
        preferred = 1 if abs(wrap_angle(mug_yaw)) <= np.pi / 2 else -1  # the side needing <= 90 deg of turning
        order = sorted(self.sides_flips, key=lambda sf: sf[0] != preferred)
        for side, flip in order:
            paths = plan_mug_hang(C, side, flip)
            if paths is not None:
                self.side, self.planner = side, f"komo(side={side:+d},flip={flip:+d})"
                return paths
        self.planner = "infeasible"
        return None

    def _ee_path(self, path: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        P, Y = [], []
        for q in path:
            p, R = self.u.ik.forward(q)
            P.append(p)
            Y.append(np.arctan2(R[1, 0], R[0, 0]))
        return np.array(P), np.unwrap(np.array(Y))

    def _make_plan(self) -> None:
        self._queue = []
        self._planned_mug = self.u.mug_pose()[0]
        paths = self._komo_paths()
        if paths is None:
            return  # nothing feasible: hold still (the episode runs out as a failure)
        st, lim = self.style, self.u.yaw_limit
        (P0, Y0), (P1, Y1) = self._ee_path(paths[0]), self._ee_path(paths[1])
        # only the carry's yaw is pinned (grasp -> hang, mod pi); the approach just turns to the grasp yaw
        Y1 = fit_yaw_range(Y1, lim)
        grasp, grasp_yaw = P0[-1], float(Y1[0])
        y_start = self.u.ee_target_yaw
        Y0 = y_start + (grasp_yaw - y_start) * np.linspace(0.0, 1.0, len(P0)) ** 0.5
        above = grasp + [0, 0, 0.05]

        # 1 approach through free space to 5 cm above the grasp (optionally aiming beside it first), 2 descend
        free = P0[:, 2] > above[2] - 0.005
        if free.sum() < 2:
            free[:2] = True
        start = self.u.ee_target
        hover = above.copy()
        if st.enabled and self.rng.random() < st.detour_prob:
            hover[:2] += self.rng.normal(0, st.detour_std, 2)
        path = np.vstack([start, P0[free], hover])
        yaws = np.r_[y_start, Y0[free], grasp_yaw]
        self._pause()
        self._push(self._resample(path, yaws, OPEN, "approach", free_space=True, bump=True))
        if np.linalg.norm(hover - above) > 1e-9:
            self._pause()
            self._push(self._line(hover, above, grasp_yaw, OPEN, "correct", speed=0.3))
        self._push(self._line(above, grasp, grasp_yaw, OPEN, "descend", speed=0.35, settle_tol=0.004))
        # 3 close, 4 lift and carry to the pre-insert pose
        self._push(self._hold(grasp, grasp_yaw, CLOSE, "grasp", 7))
        self._pause(CLOSE)
        self._push(self._resample(P1, Y1, CLOSE, "carry", free_space=True, bump=True, start=grasp))
        # 5 align the hole with the peg axis, 6 slide along the peg (both closed loop on the measured handle)
        h = self.u.scene_spec.holder
        drop = np.array([0, 0, -self.u.scene_spec.mug.hole_h / 4])
        c_pre = h.root + h.axis * (h.peg_length + h.pre_insert_gap) + drop
        c_in = h.root + h.axis * h.insert_depth * h.peg_length + drop
        mug_yaw_goal = 0.0 if self.side == 1 else np.pi
        self._pause(CLOSE)
        self._queue.append(("align", self._servo_align(c_pre, mug_yaw_goal)))
        v = float(self.rng.uniform(*st.insert_speed_range)) if st.enabled else 0.3
        n = int(np.ceil(np.linalg.norm(c_in - c_pre) / (v * self.max_step)))
        self._queue.append(("insert", self._servo_insert(c_pre, c_in, mug_yaw_goal, n)))
        # 7 open, 8 lift off the mug and back away towards the robot
        self._queue.append(("release", self._release()))
        self._pause(OPEN)
        self._queue.append(("retreat", self._retreat()))

    def _pause(self, grip: float = OPEN) -> None:
        st = self.style
        if st.enabled and self.rng.random() < st.pause_prob:
            n = int(self.rng.integers(st.pause_steps[0], st.pause_steps[1] + 1))
            keep_still = lambda op: op._action(op.u.ee_target, op.u.ee_target_yaw, grip)  # noqa: E731
            self._queue.append(("pause", self._counted(keep_still, n)))

    # ------------------------------------------------------------------ references
    def _speed(self) -> float:
        st = self.style
        return float(self.rng.uniform(*st.speed_range)) if st.enabled else 0.7

    def _resample(self, P: np.ndarray, Y: np.ndarray, grip: float, label: str, free_space: bool = False,
                  bump: bool = False, start: np.ndarray | None = None) -> Move:
        """A dense path re-timed at a drawn speed with a minimum-jerk profile, plus a smooth human offset."""
        if start is not None:
            P = np.vstack([start, P])
            Y = np.r_[Y[0], Y]
        seg = np.linalg.norm(np.diff(P, axis=0), axis=1)
        s = np.r_[0.0, np.cumsum(seg)]
        ys = np.r_[0.0, np.cumsum(np.abs(np.diff(Y)))]
        v = self._speed()
        # minimum-jerk peaks at 1.875x the mean speed: size n so that the peak stays under the limit
        n = max(2, int(np.ceil(1.875 * max(s[-1] / (v * self.max_step), ys[-1] / (v * self.max_yaw_step)))))
        u = min_jerk(n)
        key = s / s[-1] if s[-1] > 1e-9 else (ys / ys[-1] if ys[-1] > 1e-9 else np.linspace(0, 1, len(P)))
        pos = np.stack([np.interp(u, key, P[:, i]) for i in range(3)], 1)
        yaw = np.interp(u, key, Y)
        if bump and self.style.enabled:
            off = self.rng.normal(0, self.style.waypoint_std, 3)
            off[2] = abs(off[2])  # humans lift rather than dip when they wander
            pos = pos + np.sin(np.pi * u)[:, None] ** 2 * off
        return Move(pos, yaw, grip, label, free_space)

    def _line(self, a: np.ndarray, b: np.ndarray, yaw: float, grip: float, label: str, speed: float,
              settle_tol: float | None = None) -> Move:
        n = max(2, int(np.ceil(np.linalg.norm(b - a) / (speed * self.max_step))))
        u = np.linspace(0, 1, n + 1)[1:]
        return Move(a + u[:, None] * (b - a), np.full(n, yaw), grip, label, settle_tol=settle_tol)

    def _hold(self, p: np.ndarray, yaw: float, grip: float, label: str, n: int) -> Move:
        return Move(np.repeat(p[None], n, 0), np.full(n, yaw), grip, label)

    # ------------------------------------------------------------------ executors (return None when finished)
    def _push(self, move: Move) -> None:
        state = {"i": 0, "settle": 0}

        def run(op: "MugHangOperator") -> np.ndarray | None:
            i = state["i"]
            if i < len(move.pos):
                st = op.style
                if move.free_space and st.enabled and op.rng.random() < st.hesitate_prob:
                    return op._action(op.u.ee_target, op.u.ee_target_yaw, move.grip)
                state["i"] += 1
                a = op._action(move.pos[i], move.yaw[i], move.grip)
                if move.free_space and st.enabled and st.tremor_std > 0:
                    a[:3] = np.clip(a[:3] + op.rng.normal(0, st.tremor_std, 3), -1, 1)
                return a
            if move.settle_tol is not None and state["settle"] < 10:
                if np.linalg.norm(op.u.ee_pose()[0] - move.pos[-1]) > move.settle_tol:
                    state["settle"] += 1
                    return op._action(move.pos[-1], move.yaw[-1], move.grip)
            return None

        self._queue.append((move.label, run))

    def _counted(self, f: Step, n: int) -> Step:
        state = {"n": n}

        def run(op: "MugHangOperator") -> np.ndarray | None:
            if state["n"] <= 0:
                return None
            state["n"] -= 1
            return f(op)

        return run

    def _handle_error(self, c_goal: np.ndarray, mug_yaw_goal: float) -> tuple[np.ndarray, float]:
        """(position error of the handle-hole centre, yaw error of the mug) measured from the simulator."""
        c = self.u.C.getFrame(MUG_HANDLE_CENTRE).getPosition()
        R = self.u.mug_pose()[1]
        return c_goal - c, float(wrap_angle(mug_yaw_goal - np.arctan2(R[1, 0], R[0, 0])))

    def _servo_target(self, c_goal: np.ndarray, mug_yaw_goal: float, gain: float) -> tuple[np.ndarray, float]:
        """Move the commanded target by `gain` x the measured handle error (integral action: no steady offset).

        A gain of 1 with the arm's one-step lag makes the hole circle around the peg axis; 0.5 settles in ~4 steps.
        """
        e, eyaw = self._handle_error(c_goal, mug_yaw_goal)
        return self.u.ee_target + gain * e, self.u.ee_target_yaw + gain * eyaw

    def _servo_align(self, c_pre: np.ndarray, mug_yaw_goal: float) -> Step:
        state = {"n": 0, "ok": 0}

        def run(op: "MugHangOperator") -> np.ndarray | None:
            e, eyaw = op._handle_error(c_pre, mug_yaw_goal)
            if np.linalg.norm(e) < 0.003 and abs(eyaw) < 0.03:
                state["ok"] += 1
            if state["ok"] >= 2 or state["n"] >= 25:
                return None
            state["n"] += 1
            p, y = op._servo_target(c_pre, mug_yaw_goal, 0.5)
            return op._action(p, y, CLOSE)

        return run

    def _servo_insert(self, c_pre: np.ndarray, c_in: np.ndarray, mug_yaw_goal: float,
                      n: int) -> Step:
        """Slide the hole along the peg in `n` steps, pausing (up to 15 steps in all) while it is off the axis."""
        axis = (c_in - c_pre) / np.linalg.norm(c_in - c_pre)
        state = {"k": 0, "steps": 0, "waits": 0}

        def run(op: "MugHangOperator") -> np.ndarray | None:
            k = state["k"]
            e, _ = op._handle_error(c_pre + (c_in - c_pre) * min(1.0, k / n), mug_yaw_goal)
            lateral = np.linalg.norm(e - axis * (e @ axis))
            if k >= n and (np.linalg.norm(e) < 0.004 or state["steps"] >= n + 15):
                return None
            if lateral < 0.004 or state["waits"] >= 15:
                state["k"] = min(n, k + 1)
            else:  # like a person: stop pushing and line up first
                state["waits"] += 1
            state["steps"] += 1
            c_prev = c_pre + (c_in - c_pre) * min(1.0, k / n)
            c_goal = c_pre + (c_in - c_pre) * min(1.0, state["k"] / n)
            p, y = op._servo_target(c_goal, mug_yaw_goal, 0.5)
            p = p + (c_goal - c_prev) * 0.5  # feed-forward the rest of the goal's own motion along the peg
            return op._action(p, y, CLOSE)

        return run

    def _release(self) -> Step:
        state = {"n": 0}

        def run(op: "MugHangOperator") -> np.ndarray | None:
            if state["n"] == 0:
                state["p"], state["y"] = op.u.ee_target, op.u.ee_target_yaw
            if state["n"] >= 6 and (op.u.gripper_width() > 0.075 or state["n"] >= 15):
                return None
            state["n"] += 1
            return op._action(state["p"], state["y"], OPEN)

        return run

    def _retreat(self) -> Step:
        state: dict = {}

        def run(op: "MugHangOperator") -> np.ndarray | None:
            if "move" not in state:  # built lazily: starts wherever the hand is after releasing
                p, y = op.u.ee_target, op.u.ee_target_yaw
                up = p + [0, 0, 0.08]
                back = up + [0, -0.08, 0.02]
                lift, away = op._line(p, up, y, OPEN, "lift", 0.3), op._line(up, back, y, OPEN, "back", 0.5)
                path = np.vstack([lift.pos, away.pos])
                state["move"], state["i"] = path, 0
            if state["i"] >= len(state["move"]):
                return None
            state["i"] += 1
            return op._action(state["move"][state["i"] - 1], op.u.ee_target_yaw, OPEN)

        return run

    # ------------------------------------------------------------------ helpers
    def _action(self, pos: np.ndarray, yaw: float, grip: float) -> np.ndarray:
        """Env action that moves the commanded target to (pos, yaw) as far as one step allows."""
        d = np.clip((np.asarray(pos) - self.u.ee_target) / self.max_step, -1.0, 1.0)
        # no wrapping: the env's yaw target is a clipped scalar in [-yaw_limit, yaw_limit], not an angle on a circle
        dyaw = np.clip((float(yaw) - self.u.ee_target_yaw) / self.max_yaw_step, -1.0, 1.0)
        return np.r_[d, dyaw, grip].astype(np.float32)

    def _needs_replan(self) -> bool:
        """The mug fell out of the hand on the way and stands on the table again: plan the whole task anew."""
        if self.replans >= self.max_replans or self.planner == "infeasible" or not self._queue:
            return False
        pos, R = self.u.mug_pose()
        upright_on_table = R[2, 2] > 0.95 and pos[2] < self.u.scene_spec.mug_rest_z() + 0.01
        far_from_hand = np.linalg.norm(pos - self.u.ee_pose()[0]) > 0.06
        moved = np.linalg.norm(pos[:2] - self._planned_mug[:2]) > 0.02
        return bool(upright_on_table and far_from_hand and moved)
