"""One-window least-squares slope with an honest uncertainty, and the pieces it shares.

A leak shows as a slope of pressure (or P/T) against time. Sensor noise is seldom white
(thermal wander, flicker, slow random walks), and correlated residuals make the textbook OLS
standard error far too small. The point estimate stays OLS (within a few % of the GLS bound
on every noise family of the battery, and it is what prefix sums give); its variance is the
long-run variance of `lrv`, from the residuals' batch sums, with an interval widened for what
that estimate cannot know. `sliding` and `incremental` compute the same fit over every window
of a record and over a live stream; all three agree to rounding.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final, Generic, TypeVar

import numpy as np
import numpy.typing as npt

from leakmon.analysis import lrv

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
V = TypeVar("V", float, FloatArray)

CONFIDENCE: Final = lrv.CONFIDENCE


@dataclass(frozen=True)
class SlopeFit(Generic[V]):
    """Least-squares slope of one window (floats) or of many windows (equal-length arrays)."""

    slope: V  # y units per second
    intercept: V  # fitted y at t_mid_s, i.e. the window's mean of y
    stderr: V  # standard error of the slope from the long-run variance (lrv)
    ci95_low: V
    ci95_high: V
    residual_sigma: V  # RMS residual on n - 2 degrees of freedom
    n: int | IntArray  # samples in the window
    n_eff: V  # independent samples worth of information: n * (white-noise var / var), <= n
    noise_exponent: V  # fitted spectral exponent of the noise (0 white, 1 flicker, 2 walk)
    t_mid_s: V  # mean time of the window
    t_end_s: V  # time of the window's last sample


FIELDS: Final = tuple(SlopeFit.__dataclass_fields__)


def _as_series(t_s: npt.ArrayLike, y: npt.ArrayLike, min_n: int) -> tuple[FloatArray, FloatArray]:
    t, v = np.asarray(t_s, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if t.ndim != 1 or t.shape != v.shape:
        raise ValueError(f"t_s and y must be 1-D of equal length, got {t.shape} and {v.shape}")
    if t.size < min_n:
        raise ValueError(f"need at least {min_n} samples, got {t.size}")
    return t, v


def spread(n: int, sxx: V, sse: V, modes: FloatArray | None) -> tuple[V, V, V, V]:
    """(stderr, half-width of the 95 % interval, n_eff, noise exponent) of windows of n
    samples, from Sxx, the SSE and the residuals' batch modes (lrv; None below
    lrv.MIN_SAMPLES).
    The one place the three paths turn sums into an interval."""
    sigma2 = np.maximum(sse, 0.0) / (n - 2.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        white = sigma2 / sxx
        q: float | FloatArray
        if modes is None:
            var, beta, q = white, np.full_like(white, math.nan), lrv.white_quantile(n)
        else:
            var, beta, q = lrv.spectral_variance(modes, n, sxx)
        stderr = np.sqrt(var)
        n_eff = np.where(var > 0.0, np.minimum(n * white / var, float(n)), float(n))
    return stderr, q * stderr, n_eff, beta  # type: ignore[return-value]


@dataclass(frozen=True)
class RowSums:
    """Least-squares pieces of each row of (windows, n) arrays: what `fit_rows` and the
    CUSUM's pooled noise estimate share."""

    n: int
    slope: FloatArray
    sxx: FloatArray
    sse: FloatArray
    t_mid: FloatArray
    y_mid: FloatArray
    modes: FloatArray | None  # (BATCHES - 2, windows): lrv modes of the residual batch means


def row_sums(t_s: npt.ArrayLike, y: npt.ArrayLike) -> RowSums:
    """OLS of each row of two (windows, n) arrays (n >= 3) and its residuals' lrv modes."""
    t, v = np.asarray(t_s, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if t.ndim != 2 or t.shape != v.shape or t.shape[1] < 3:
        raise ValueError(f"t_s and y must be (windows, n >= 3) arrays, got {t.shape}, {v.shape}")
    n = t.shape[1]
    t_mid, y_mid = t.sum(axis=1) / n, v.sum(axis=1) / n  # (np.mean's very operations, less overhead)
    tc, yc = t - t_mid[:, None], v - y_mid[:, None]  # centring keeps t ~ 1e6 s from cancelling
    sxx = np.einsum("ij,ij->i", tc, tc)
    with np.errstate(divide="ignore", invalid="ignore"):
        slope = np.einsum("ij,ij->i", tc, yc) / sxx
    r = yc - slope[:, None] * tc
    r -= r.sum(axis=1, keepdims=True) / n  # drops the rounding of t_mid times the slope
    modes = lrv.modes_of_sums(np.add.reduceat(r, lrv.batch_edges(n)[:-1], axis=1).T, n) \
        if n >= lrv.MIN_SAMPLES else None  # fmt: skip
    return RowSums(n, slope, sxx, np.einsum("ij,ij->i", r, r), t_mid, y_mid, modes)


def fit_rows(t_s: npt.ArrayLike, y: npt.ArrayLike) -> SlopeFit[FloatArray]:
    """`fit_slope` of each row of two (windows, n) arrays (n >= 3), vectorized. A row whose
    samples share one time gives NaN."""
    rs = row_sums(t_s, y)
    n, slope = rs.n, rs.slope
    stderr, half, n_eff, beta = spread(n, rs.sxx, rs.sse, rs.modes)
    t_end = np.asarray(t_s, dtype=np.float64)[:, -1].copy()
    return SlopeFit(slope, rs.y_mid, stderr, slope - half, slope + half,
                    np.sqrt(np.maximum(rs.sse, 0.0) / (n - 2.0)),
                    np.broadcast_to(np.int64(n), slope.shape), n_eff, beta, rs.t_mid,
                    t_end)  # fmt: skip


def fit_slope(t_s: npt.ArrayLike, y: npt.ArrayLike) -> SlopeFit[float]:
    """OLS slope of y against t (>= 3 samples) with a long-run-variance standard error."""
    t, v = _as_series(t_s, y, 3)
    return fit_slopes(t, v[None, :])[0]


def fit_slopes(t_s: npt.ArrayLike, ys: npt.ArrayLike) -> list[SlopeFit[float]]:
    """`fit_slope` of each row of ys (rows, n) against t_s, one time axis (n,) for all or
    one per row (rows, n): several series over the same samples in one vectorized pass."""
    v = np.asarray(ys, dtype=np.float64)
    t = np.broadcast_to(np.asarray(t_s, dtype=np.float64), v.shape)
    if v.ndim != 2 or v.shape[1] < 3:
        raise ValueError(f"ys must be (rows, n >= 3), got {v.shape}")
    if not np.all(t.max(axis=1) > t.min(axis=1)):
        raise ValueError("all samples share one time: the slope is undefined")
    return split_rows(fit_rows(t, v), v.shape[1])


def split_rows(rows: SlopeFit[FloatArray], n: int) -> list[SlopeFit[float]]:
    """One SlopeFit of floats per entry of a fit of many windows of n samples (1-D arrays)."""
    names = [f for f in FIELDS if f != "n"]
    columns = [np.asarray(getattr(rows, f), dtype=np.float64).tolist() for f in names]  # Python floats
    return [SlopeFit(n=n, **dict(zip(names, values))) for values in zip(*columns)]
