"""The mug-hanging success rule on hand-made poses (no simulator)."""
import numpy as np
import pytest

from lpds_sim.rai.mug_scene import TABLE_TOP_Z, MugScene
from lpds_sim.rai.mug_success import HangTimer, handle_on_peg, mug_is_hanging, mug_lowest_z

SC = MugScene()


def rot_x(a: float) -> np.ndarray:
    c, s = np.cos(a), np.sin(a)
    return np.array([[1, 0, 0], [0, c, -s], [0, s, c]])


def rot_y(a: float) -> np.ndarray:
    c, s = np.cos(a), np.sin(a)
    return np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])


def rot_z(a: float) -> np.ndarray:
    c, s = np.cos(a), np.sin(a)
    return np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])


def resting_on_peg(tilt: float, side: int = 1, depth: float = 0.08) -> tuple[np.ndarray, np.ndarray]:
    """Mug hanging with the handle's top bar resting on the peg, swung by `tilt` about the peg axis (world y)."""
    m, h = SC.mug, SC.holder
    R = rot_y(tilt) @ rot_z(0.0 if side == 1 else np.pi)
    top_bar_inner = np.array([m.handle_offset, 0.0, m.hole_h / 2])  # mug frame: underside of the top bar
    peg_point = h.root + h.axis * depth + np.array([0, 0, h.peg_radius])  # the bar's underside on the peg's top
    return peg_point - R @ top_bar_inner, R


@pytest.mark.parametrize("tilt", [0.0, 0.5, 1.2, -0.4])
@pytest.mark.parametrize("side", [1, -1])
def test_mug_hanging_by_its_handle_counts(tilt, side):
    pos, R = resting_on_peg(tilt, side)
    assert handle_on_peg(pos, R, SC)
    assert mug_lowest_z(pos, R, SC) > TABLE_TOP_Z + 0.05
    assert mug_is_hanging(pos, R, SC, touching_table=False, held=False)


def test_hang_pose_of_the_plan_has_the_peg_through_the_loop():
    for side in (1, -1):
        for pre, expect in ((False, True), (True, False)):  # pre-insert: the mug is in front of the tip
            pos, quat = SC.hang_pose(pre=pre, side=side)
            assert handle_on_peg(pos, np.eye(3) if side == 1 else rot_z(np.pi), SC) is expect


def test_mug_standing_on_the_table_does_not_count():
    for xy in [(0.0, 0.3), (SC.holder.xy[0] - SC.mug.handle_offset, 0.3)]:  # anywhere, also right under the peg
        pos = np.array([*xy, SC.mug_rest_z()])
        assert mug_lowest_z(pos, np.eye(3), SC) < TABLE_TOP_Z + 0.005
        assert not mug_is_hanging(pos, np.eye(3), SC, touching_table=True, held=False)
        assert not mug_is_hanging(pos, np.eye(3), SC, touching_table=False, held=False)


def test_dropped_mug_lying_on_its_side_does_not_count():
    R = rot_x(np.pi / 2)
    pos = np.array([0.25, 0.3, TABLE_TOP_Z + SC.mug.radius])
    assert not mug_is_hanging(pos, R, SC, touching_table=True, held=False)
    assert not mug_is_hanging(pos, R, SC, touching_table=False, held=False)


def test_mug_still_in_the_gripper_does_not_count():
    pos, R = resting_on_peg(0.0)
    assert not mug_is_hanging(pos, R, SC, touching_table=False, held=True)


def test_peg_beside_the_handle_or_beyond_the_tip_does_not_count():
    pos, R = resting_on_peg(0.0)
    beside = pos + np.array([SC.mug.hole_w + 0.01, 0, 0])  # the peg would run through the body
    assert not handle_on_peg(beside, R, SC)
    above = pos - np.array([0, 0, SC.mug.hole_h])  # the peg passes above the top bar
    assert not handle_on_peg(above, R, SC)
    past_tip = pos + SC.holder.axis * (SC.holder.peg_length + 0.02)
    assert not handle_on_peg(past_tip, R, SC)
    assert not mug_is_hanging(past_tip, R, SC, touching_table=False, held=False)


def test_handle_plane_parallel_to_the_peg_is_not_a_crossing():
    pos, _ = resting_on_peg(0.0)
    assert not handle_on_peg(pos, rot_z(np.pi / 2), SC)


def test_hang_timer_needs_consecutive_steps():
    timer = HangTimer(hold_steps=3)
    assert [timer.update(h) for h in (True, True, False, True, True, True, True)] == \
        [False, False, False, False, False, True, True]
    timer.reset()
    assert not timer.update(True)
    with pytest.raises(ValueError, match="hold_steps"):
        HangTimer(hold_steps=0)
