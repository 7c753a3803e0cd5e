import numpy as np
import pytest

from lpds_ros.chunk_scheduler import ChunkScheduler
from lpds_ros.timesync import ApproxTimePairBuffer
from lpds_ros.watchdog import StaleWatchdog


def test_pair_buffer_matches_within_slop_and_prefers_newest():
    b = ApproxTimePairBuffer(slop=0.01)
    assert b.latest_pair() is None
    b.add_a(1.00, "a1")
    b.add_b(1.005, "b1")
    b.add_a(2.00, "a2")  # no partner yet: the older matched pair is returned
    assert b.latest_pair() == (1.00, "a1", 1.005, "b1")
    b.add_b(2.02, "b2")  # outside slop
    assert b.latest_pair()[1] == "a1"
    b.add_b(2.025, "b3")
    b.add_b(2.03, "b4")
    b.add_a(2.028, "a3")
    assert b.latest_pair() == (2.028, "a3", 2.03, "b4") or b.latest_pair()[3] in ("b3", "b4")


def test_pair_buffer_rejects_out_of_order_and_nan_stamps():
    b = ApproxTimePairBuffer(slop=0.01)
    assert b.add_a(1.0, "x")
    assert not b.add_a(1.0, "dup")
    assert not b.add_a(0.5, "old")
    assert not b.add_a(float("nan"), "nan")
    assert not b.add_b(float("inf"), "inf")
    assert b.rejected_out_of_order == 4


def test_watchdog_reports_missing_stale_and_future():
    w = StaleWatchdog(0.1)
    assert any("no observation" in r for r in w.stale(0.0))
    w.feed("observation", 10.0)
    w.feed("robot_state", 10.0)
    assert w.ok(10.05)
    assert any("old" in r for r in w.stale(10.5))
    w.feed("robot_state", 11.0)
    assert any("future" in r for r in w.stale(10.05))
    with pytest.raises(KeyError):
        w.feed("camera", 1.0)
    with pytest.raises(ValueError):
        StaleWatchdog(0)


def test_chunk_scheduler_streams_in_order_and_asks_to_replan():
    s = ChunkScheduler(replan_after=2)
    assert s.needs_plan() and s.pop() is None
    s.set_chunk(np.arange(8).reshape(4, 2))
    assert not s.needs_plan()
    assert s.pop().tolist() == [0, 1]
    assert s.pop().tolist() == [2, 3]
    assert s.needs_plan() and s.remaining == 2
    assert s.pop().tolist() == [4, 5]  # keeps streaming if no new chunk came
    s.set_chunk(np.ones((3, 2)))
    assert s.remaining == 3
    with pytest.raises(ValueError):
        s.set_chunk(np.ones(3))
