"""Evaluation metrics: Kozachenko–Leonenko entropy (diversity of behaviour) and goal/mode coverage."""
from __future__ import annotations

import math

import numpy as np
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
