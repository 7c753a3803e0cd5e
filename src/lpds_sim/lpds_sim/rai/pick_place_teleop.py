"""Scripted pick-and-place operator: KOMO_ManipulationHelper plans (reach–grasp, lift–carry–place) turned into
end-effector waypoints and executed through the env's action interface by `teleop.ScriptedOperator`."""
from __future__ import annotations

import numpy as np
import robotic as ry

from ..teleop import CLOSE, OPEN, OperatorStyle, ScriptedOperator, Segment, path_to_waypoints
from . import scene


class PickPlaceOperator(ScriptedOperator):
    lift_clearance = 0.12  # m above the table for straight-line fallback carrying
    wall_clearance = 0.03  # m between the held cube's bottom and the tray wall tops while carrying

    def __init__(self, env, style: OperatorStyle | None = None, seed: int | None = None) -> None:
        super().__init__(env, style, seed)
        self._planned_cube = np.zeros(3)

    # ---- planning
    def _komo_paths(self) -> tuple[np.ndarray, np.ndarray] | None:
        """(approach EE path, carry EE path) from KOMO, or None if KOMO finds no feasible plan."""
        u = self.u
        C = ry.Config()
        C.addConfigurationCopy(u.C)
        for direction in ("xz", "yz"):
            M = ry.KOMO_ManipulationHelper()
            M.setup_pick_and_place_waypoints(C, scene.EE_FRAME, "cube", homing_scale=1e-1)
            M.grasp_top_box(1.0, scene.EE_FRAME, "cube", direction)
            M.place_box(2.0, "cube", "tray", "l_palm", "z", margin=0.06)
            if not M.solve(0).feasible:
                continue
            M1 = M.sub_motion(0)
            M1.approach([0.8, 1.0], scene.EE_FRAME)
            M2 = M.sub_motion(1)
            M2.retract([0.0, 0.2], scene.EE_FRAME)
            M2.approach([0.8, 1.0], scene.EE_FRAME)
            if not (M1.solve(0).feasible and M2.solve(0).feasible):
                continue
            fk = lambda path: np.array([u.ik.forward(q)[0] for q in path])  # noqa: E731
            return fk(M1.path), fk(M2.path)
        return None

    def _straight_paths(self, cube: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        u = self.u
        ee = u.ee_target
        t = u._target_pos()
        hi = u.table_z + self.lift_clearance + u.cube_size
        approach = np.array([[cube[0], cube[1], max(ee[2], hi)], cube + [0, 0, 0.06], cube])
        place = np.array([t[0], t[1], t[2]])
        carry = np.array([cube + [0, 0, 0.08], [cube[0], cube[1], hi], [place[0], place[1], hi], place + [0, 0, 0.04],
                          place])
        return approach, carry

    def make_plan(self) -> list[Segment]:
        u = self.u
        cube = u.C.getFrame("cube").getPosition().copy()
        self._planned_cube = cube
        ee = u.ee_target
        segs: list[Segment] = []
        if not u.gripper_open_cmd or ee[2] < cube[2] + 0.04:  # re-plan after a failure: open and back off first
            segs.append(Segment(np.array([ee + [0, 0, 0.06]]), OPEN, "back_off", wait_steps=3))
        paths = None if segs else self._komo_paths()
        self.planner = "komo" if paths is not None else "straight"
        approach, carry = paths if paths is not None else self._straight_paths(cube)
        grasp = approach[-1]
        # free-space approach down to ~5 cm above the grasp, then a slow vertical descent (contact phase)
        above = grasp + [0, 0, 0.05]
        far = approach[approach[:, 2] > grasp[2] + 0.05]
        wps = path_to_waypoints(np.vstack([ee[None], far, above[None]]), 0.04)
        segs.append(Segment(wps, OPEN, "approach", tol=0.015))
        st = self.style
        if st.enabled and self.rng.random() < st.detour_prob:  # aim a little off, then correct
            off = np.r_[self.rng.normal(0, st.detour_std, 2), 0.0]
            # at `above` the fingertips are ~3 cm over the cube top, so the detour never touches it
            segs.append(Segment(np.array([above + off, above]), OPEN, "correct", contact=True))
        segs.append(Segment(np.array([grasp + [0, 0, 0.02], grasp]), OPEN, "descend", contact=True,
                            final_tol=0.005))
        segs.append(Segment(np.array([grasp]), CLOSE, "grasp", contact=True, wait_steps=6))
        place = carry[-1]
        # KOMO keeps the carry path collision-free only by millimetres; tracking error and the operator's
        # variation would clip the tray walls, so a human-like operator lifts higher: the held cube clears the
        # walls by `wall_clearance` until it is straight above the drop point, then goes down vertically.
        z_clear = u._floor_z + u.tray_wall_h + u.cube_size / 2 + self.wall_clearance
        lift_end = int(np.argmax(carry[:, 2] > grasp[2] + 0.03)) if np.any(carry[:, 2] > grasp[2] + 0.03) else 0
        mid = carry[lift_end:].copy()
        mid[:, 2] = np.maximum(mid[:, 2], z_clear)
        above_place = np.array([place[0], place[1], max(z_clear, place[2] + 0.06)])
        carry_wps = path_to_waypoints(np.vstack([carry[:lift_end + 1], mid, above_place[None]]), 0.04)
        segs.append(Segment(carry_wps, CLOSE, "carry", tol=0.015))
        segs.append(Segment(np.array([place + [0, 0, 0.02], place]), CLOSE, "lower", contact=True, final_tol=0.008))
        segs.append(Segment(np.array([place]), OPEN, "release", contact=True, wait_steps=4))
        segs.append(Segment(np.array([place + [0, 0, 0.10]]), OPEN, "retreat"))
        return segs

    # ---- closed-loop checks
    def monitor(self, seg: Segment) -> bool:
        u = self.u
        cube = u.C.getFrame("cube").getPosition()
        if seg.label in ("approach", "correct", "descend"):
            return bool(np.linalg.norm(cube[:2] - self._planned_cube[:2]) > 0.012)  # cube was pushed
        if seg.label in ("carry", "lower"):
            ee = u.ee_pose()[0]
            missed = u.gripper_width() < 0.5 * u.cube_size
            dropped = np.linalg.norm(cube - ee) > 0.05
            return bool(missed or dropped)
        return False
