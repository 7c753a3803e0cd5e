"""Metrics: KL entropy against closed-form Gaussian entropies; mode coverage."""
import numpy as np
import pytest

from lpds_core.metrics import kl_entropy, mode_coverage, wilson_ci95


def _gauss_entropy(cov):
    d = cov.shape[0]
    return 0.5 * d * np.log(2 * np.pi * np.e) + 0.5 * np.linalg.slogdet(cov)[1]


def _rotated_cov(d, rng):
    q, _ = np.linalg.qr(rng.normal(size=(d, d)))
    return q @ np.diag(np.linspace(0.3, 3.0, d)) @ q.T  # correlated, condition number 10


@pytest.mark.parametrize("d", [2, 8])
def test_kl_entropy_matches_gaussian_closed_form(d):
    cov = _rotated_cov(d, np.random.default_rng(d))
    true = _gauss_entropy(cov)
    for seed in range(3):
        x = np.random.default_rng(100 + seed).multivariate_normal(np.ones(d), cov, size=4000)
        est = kl_entropy(x, k=3)
        assert abs(est - true) < 0.1, f"d={d}, draw {seed}: estimate {est:.3f}, closed form {true:.3f}"


def test_kl_entropy_standard_normal_8d_bias_is_small():
    """For N(0, I_8) the estimator is biased low by ~0.07 nats at N=4000 (tail effect); single draws scatter
    ±0.05 around that, so the *mean* of draws is what is held to 0.1."""
    est = [kl_entropy(np.random.default_rng(s).normal(size=(4000, 8))) for s in range(3)]
    assert abs(np.mean(est) - _gauss_entropy(np.eye(8))) < 0.1


def test_kl_entropy_scales_with_spread_and_handles_duplicates():
    x = np.random.default_rng(0).normal(size=(2000, 2))
    # scaling by 2 in d=2 adds exactly 2·log 2 nats (the estimator is equivariant)
    assert kl_entropy(2 * x) - kl_entropy(x) == pytest.approx(2 * np.log(2), abs=1e-9)
    dup = np.zeros((50, 2))
    h = kl_entropy(dup)
    assert np.isfinite(h) and h < kl_entropy(x) - 20
    half = np.concatenate([x[:100], x[:100]])
    assert np.isfinite(kl_entropy(half))


def test_kl_entropy_rejects_bad_input():
    with pytest.raises(ValueError, match="N=3, k=3"):
        kl_entropy(np.zeros((3, 2)))
    with pytest.raises(ValueError, match="NaN"):
        kl_entropy(np.array([[0.0, 1.0], [np.nan, 0.0], [1, 1], [2, 2], [3, 3]]))
    with pytest.raises(ValueError, match="2-D"):
        kl_entropy(np.zeros(10))


def test_mode_coverage_counts_rollouts_near_each_goal():
    goals = np.array([[1.0, 0], [-1, 0], [0, 1], [0, -1]])
    ends = np.array([[1.05, 0], [0.95, 0.05], [-1, 0.02], [0, 0], [0.01, -0.98]])
    np.testing.assert_allclose(mode_coverage(ends, goals, radius=0.1), [0.4, 0.2, 0.0, 0.2])
    with pytest.raises(ValueError, match="share d"):
        mode_coverage(ends, goals[:, :1], 0.1)
    with pytest.raises(ValueError, match="positive"):
        mode_coverage(ends, goals, 0.0)


# ---- benchmark statistics -----------------------------------------------------------------------------------
def test_mean_ci95_is_the_student_t_interval():
    from lpds_core.metrics import mean_ci95

    m, lo, hi = mean_ci95([1.0, 2.0, 3.0])
    half = 4.302652729911275 / np.sqrt(3)  # t_{0.975, 2} · s / √n with s = 1
    assert m == pytest.approx(2.0) and lo == pytest.approx(2.0 - half) and hi == pytest.approx(2.0 + half)
    # over the seed axis of curves (seeds, steps): per step
    m, lo, hi = mean_ci95(np.array([[0.0, 10.0], [2.0, 10.0]]), axis=0)
    assert m.tolist() == [1.0, 10.0] and hi[1] == lo[1] == 10.0
    assert hi[0] - m[0] == pytest.approx(12.706204736174707)  # t_{0.975, 1} · √2 / √2
    # one seed: no interval, never a fake zero-width one
    m, lo, hi = mean_ci95([5.0])
    assert m == 5.0 and np.isnan(lo) and np.isnan(hi)
    with pytest.raises(ValueError):
        mean_ci95([])


def test_mean_ci95_covers_the_true_mean_95_percent_of_the_time():
    from lpds_core.metrics import mean_ci95

    rng = np.random.default_rng(0)
    x = rng.normal(3.0, 2.0, size=(3, 4000))  # 4000 benchmarks of 3 seeds each
    _, lo, hi = mean_ci95(x, axis=0)
    cover = np.mean((lo <= 3.0) & (3.0 <= hi))
    assert 0.935 < cover < 0.965, cover


def test_curve_auc_is_the_time_average_of_the_curve():
    from lpds_core.metrics import curve_auc

    assert curve_auc([0, 1, 3], [0.0, 2.0, 2.0]) == pytest.approx((1.0 + 4.0) / 3.0)
    assert curve_auc([0, 100], [1.0, 1.0]) == pytest.approx(1.0)
    assert curve_auc([5], [0.7]) == pytest.approx(0.7)
    with pytest.raises(ValueError, match="increasing"):
        curve_auc([0, 2, 1], [0.0, 0.0, 0.0])


def test_action_entropy_of_a_gaussian_policy_is_its_closed_form():
    from lpds_core.metrics import action_entropy

    rng = np.random.default_rng(1)
    sigma = np.array([0.5, 2.0])  # first action of each chunk ~ N(obs, diag σ²); later actions ignored

    def act(obs):
        first = obs[:, None, :] + sigma * rng.normal(size=(len(obs), 1, 2))
        return np.concatenate([first, np.full((len(obs), 3, 2), 7.0)], axis=1)  # (B, H=4, A=2)

    est = action_entropy(act, np.zeros((3, 2)), n_samples=4000)
    assert est == pytest.approx(_gauss_entropy(np.diag(sigma ** 2)), abs=0.1)


def test_wilson_interval_matches_the_textbook_values_and_keeps_width_at_the_edges():
    # Wilson score interval, z = 1.96 (e.g. Newcombe 1998, table I: 0/10 → [0, 0.278], 5/10 → [0.237, 0.763])
    assert wilson_ci95(0, 10) == pytest.approx((0.0, 0.2775), abs=5e-4)
    assert wilson_ci95(5, 10) == pytest.approx((0.2366, 0.7634), abs=5e-4)
    assert wilson_ci95(40, 40) == pytest.approx((0.9124, 1.0), abs=5e-4)
    lo, hi = wilson_ci95(33, 40)
    assert lo < 33 / 40 < hi and hi - lo < 0.25
    assert wilson_ci95(3, 40)[1] - wilson_ci95(3, 40)[0] < wilson_ci95(3, 10)[1] - wilson_ci95(3, 10)[0]
    for bad in ((5, 4), (-1, 4), (0, 0)):
        with pytest.raises(ValueError, match="successes <= trials"):
            wilson_ci95(*bad)


def test_wilson_interval_covers_the_true_rate_about_95_percent_of_the_time():
    rng = np.random.default_rng(0)
    for p in (0.1, 0.5, 0.8):
        hits = [lo <= p <= hi for lo, hi in (wilson_ci95(int(k), 40) for k in rng.binomial(40, p, 2000))]
        assert 0.92 <= np.mean(hits) <= 0.99, p
