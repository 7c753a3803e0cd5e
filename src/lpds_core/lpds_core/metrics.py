"""Evaluation metrics: Kozachenko–Leonenko entropy (diversity of behaviour), goal/mode coverage, action entropy of
a policy, and the statistics of benchmark curves (95 % intervals over seeds and over grid trials, area
under the curve)."""
from __future__ import annotations

import math
from typing import Any, Callable

import numpy as np
from numpy.typing import ArrayLike
from scipy.spatial import cKDTree
from scipy.special import digamma, gammaln


def kl_entropy(samples: np.ndarray, k: int = 3, min_dist: float = 1e-10) -> float:
    """Differential entropy in nats of the distribution behind `samples` (N, d), Kozachenko–Leonenko:

        H = ψ(N) − ψ(k) + log V_d + (d/N)·Σ_i log ρ_k(i),   V_d = π^{d/2} / Γ(d/2 + 1)

    with ρ_k(i) the Euclidean distance from sample i to its k-th nearest other sample. Distances are floored at
    `min_dist`, so duplicated samples (e.g. a collapsed policy) give a very low but finite value, never -inf.
    """
    x = np.asarray(samples, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(f"samples must be a 2-D array (N, d), got shape {x.shape}; reshape e.g. x.reshape(len(x), -1)")
    n, d = x.shape
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    if n <= k:
        raise ValueError(f"need more samples than k: N={n}, k={k}")
    if d == 0:
        raise ValueError("samples have 0 dimensions")
    if not np.isfinite(x).all():
        raise ValueError("samples contain NaN or inf values")
    dist, _ = cKDTree(x).query(x, k=k + 1)  # column 0 is the point itself
    rho = np.maximum(dist[:, k], min_dist)
    log_vd = (d / 2) * math.log(math.pi) - gammaln(d / 2 + 1)
    return float(digamma(n) - digamma(k) + log_vd + d * np.mean(np.log(rho)))


def mode_coverage(endpoints: np.ndarray, goals: np.ndarray, radius: float) -> np.ndarray:
    """Fraction of rollouts whose endpoint lies within `radius` of each goal: (N, d), (G, d) → (G,)."""
    e = np.asarray(endpoints, dtype=np.float64)
    g = np.asarray(goals, dtype=np.float64)
    if e.ndim != 2 or g.ndim != 2 or e.shape[1] != g.shape[1]:
        raise ValueError(f"endpoints (N, d) and goals (G, d) must share d; got {e.shape} and {g.shape}")
    if radius <= 0:
        raise ValueError(f"radius must be positive, got {radius}")
    if e.shape[0] == 0:
        raise ValueError("no endpoints given")
    if not (np.isfinite(e).all() and np.isfinite(g).all()):
        raise ValueError("endpoints/goals contain NaN or inf values")
    dists = np.linalg.norm(e[:, None, :] - g[None, :, :], axis=-1)
    return (dists <= radius).mean(axis=0)


def mean_ci95(values: ArrayLike, axis: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(mean, low, high) over `axis` (the seeds) with a two-sided 95 % Student-t interval:
    mean ± t_{0.975, n−1} · s / √n, s the sample standard deviation (ddof=1).

    Why t and not a bootstrap: benchmarks have 3–5 seeds, where a bootstrap interval is too narrow (it cannot be
    wider than the spread of the few values seen) and the t-interval is the usual, honest choice. With one seed the
    interval is undefined: low and high are NaN (plots draw no band, tables print the mean alone)."""
    from scipy.stats import t as student_t

    x = np.asarray(values, dtype=np.float64)
    if x.size == 0 or x.shape[axis] == 0:
        raise ValueError("mean_ci95 needs at least one value")
    n = x.shape[axis]
    mean = x.mean(axis=axis)
    if n < 2:
        nan = np.full_like(mean, np.nan)
        return mean, nan, nan.copy()
    half = student_t.ppf(0.975, n - 1) * x.std(axis=axis, ddof=1) / math.sqrt(n)
    return mean, mean - half, mean + half


def wilson_ci95(successes: int, trials: int) -> tuple[float, float]:
    """Two-sided 95 % Wilson score interval of a success rate from `successes` of `trials` Bernoulli trials.

    Why Wilson and not p ± 1.96·√(p(1−p)/n): a 40-trial grid often sits at 0/40 or 40/40, where the normal
    interval collapses to a point; Wilson's stays inside [0, 1] and keeps a width there."""
    k, n = int(successes), int(trials)
    if n < 1 or not 0 <= k <= n:
        raise ValueError(f"need 0 <= successes <= trials and trials >= 1, got {k} of {n}")
    z = 1.959963984540054
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def curve_auc(steps: ArrayLike, values: ArrayLike) -> float:
    """Area under a learning curve (trapezoid over env steps) divided by the step range: the curve's average
    level over training, in the units of `values`, so runs of different budgets compare. One point: its value."""
    s = np.asarray(steps, dtype=np.float64)
    v = np.asarray(values, dtype=np.float64)
    if s.ndim != 1 or s.shape != v.shape or s.size == 0:
        raise ValueError(f"steps and values must be 1-D of one length >= 1, got {s.shape} and {v.shape}")
    if np.any(np.diff(s) <= 0):
        raise ValueError("steps must be strictly increasing")
    if s.size == 1:
        return float(v[0])
    return float(np.trapezoid(v, s) / (s[-1] - s[0]))


def action_entropy(act_batch: Callable[[Any], np.ndarray], observations: Any, n_samples: int = 512,
                   k: int = 3) -> float:
    """Mean KL entropy (nats) of the first action of a sampled chunk, `n_samples` samples at each observation
    (a batch (N, ...) or a dict of batches); `act_batch(obs batch) → chunks (B, H, A)`. This is the "action
    entropy" every benchmark reports beside success/return: how diverse the policy's behaviour is."""
    obs = observations
    n_obs = len(next(iter(obs.values()))) if isinstance(obs, dict) else len(obs)
    vals = []
    for i in range(n_obs):
        o = ({key: np.repeat(np.asarray(v)[i:i + 1], n_samples, 0) for key, v in obs.items()}
             if isinstance(obs, dict) else np.repeat(np.asarray(obs)[i:i + 1], n_samples, 0))
        chunks = np.asarray(act_batch(o))
        vals.append(kl_entropy(chunks[:, 0].reshape(n_samples, -1), k=k))
    return float(np.mean(vals))
