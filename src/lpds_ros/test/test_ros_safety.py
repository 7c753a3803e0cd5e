import numpy as np
import pytest

from lpds_ros.safety import SafetyFilter, SafetyLimits

LIM = SafetyLimits((0.0, -0.5, 0.1), (1.0, 0.5, 0.9), max_step=0.02)
Q = np.array([1.0, 0.0, 0.0, 0.0])


def test_limits_reject_inverted_or_nonfinite_box():
    with pytest.raises(ValueError, match="below box_max"):
        SafetyLimits((1, 0, 0), (0, 1, 1))
    with pytest.raises(ValueError, match="finite"):
        SafetyLimits((np.nan, 0, 0), (1, 1, 1))
    with pytest.raises(ValueError, match="max_step"):
        SafetyLimits(max_step=0.0)


def test_filter_requires_anchor_and_refuses_bad_anchor():
    f = SafetyFilter(LIM)
    with pytest.raises(RuntimeError, match="anchor"):
        f.filter([0.5, 0, 0.5], Q, 0.0)
    with pytest.raises(ValueError, match="bad pose"):
        f.anchor([np.nan, 0, 0.5], Q)


def test_step_limit_and_box_clip():
    f = SafetyFilter(LIM)
    f.anchor([0.5, 0.0, 0.5], Q)
    out = f.filter([0.6, 0.0, 0.5], Q, 0.0)
    assert out.accepted and np.isclose(np.linalg.norm(out.position - [0.5, 0, 0.5]), 0.02)
    assert any("limited" in r for r in out.reasons)
    f.anchor([0.99, 0.0, 0.5], Q)
    out = f.filter([5.0, 0.0, 0.5], Q, 0.0)
    assert out.position[0] <= 1.0 and any("clipped" in r for r in out.reasons)


@pytest.mark.parametrize("bad", [[np.nan, 0, 0.5], [np.inf, 0, 0.5], [0.5, -np.inf, 0.5]])
def test_nonfinite_target_holds_last_safe(bad):
    f = SafetyFilter(LIM)
    f.anchor([0.5, 0.0, 0.5], Q)
    good = f.filter([0.51, 0.0, 0.5], Q, 1.0)
    out = f.filter(bad, Q, 0.0)
    assert not out.accepted and "non-finite" in out.reasons[0]
    np.testing.assert_array_equal(out.position, good.position)
    assert f.last.position is good.position  # the held target is still the last safe one


def test_random_fuzz_never_leaves_box_or_exceeds_step():
    rng = np.random.default_rng(0)
    f = SafetyFilter(LIM)
    prev = f.anchor([0.5, 0.0, 0.5], Q).position
    for _ in range(5000):
        t = rng.normal(0.5, 10.0, 3) * rng.choice([1, 1e6])
        if rng.random() < 0.1:
            t[rng.integers(3)] = rng.choice([np.nan, np.inf, -np.inf])
        out = f.filter(t, Q, float(rng.normal()))
        assert np.all(out.position >= np.array(LIM.box_min) - 1e-12)
        assert np.all(out.position <= np.array(LIM.box_max) + 1e-12)
        assert np.linalg.norm(out.position - prev) <= LIM.max_step + 1e-12
        assert 0.0 <= out.gripper <= 1.0
        prev = out.position
