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
    n_eff: V  # independent samples worth of information: n * (white-noise var / var)
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
        if modes is None:
            var, beta, q = white, np.full_like(white, math.nan), lrv.white_quantile(n)
        else:
            var, beta, q = lrv.spectral_variance(modes, n, sxx)
        stderr = np.sqrt(var)
        n_eff = np.where(var > 0.0, n * white / var, float(n))
    return stderr, q * stderr, n_eff, beta  # type: ignore[return-value]


def fit_slope(t_s: npt.ArrayLike, y: npt.ArrayLike) -> SlopeFit[float]:
    """OLS slope of y against t (>= 3 samples) with a long-run-variance standard error."""
    t, v = _as_series(t_s, y, 3)
    n = t.size
    t_mid, y_mid = float(t.mean()), float(v.mean())
    tc, yc = t - t_mid, v - y_mid  # centring keeps t ~ 1e6 s from cancelling
    sxx = float(tc @ tc)
    if not sxx > 0.0:
        raise ValueError("all samples share one time: the slope is undefined")
    slope = float(tc @ yc) / sxx
    r = yc - slope * tc
    r -= r.mean()  # OLS residuals sum to 0; this drops the rounding of t_mid times the slope
    modes = lrv.modes_of_sums(np.add.reduceat(r, lrv.batch_edges(n)[:-1]), n) \
        if n >= lrv.MIN_SAMPLES else None  # fmt: skip
    stderr, half, n_eff, beta = spread(n, np.float64(sxx), np.float64(r @ r), modes)
    return SlopeFit(slope, y_mid, float(stderr), slope - float(half), slope + float(half),
                    math.sqrt(max(float(r @ r), 0.0) / (n - 2.0)), n, float(n_eff), float(beta),
                    t_mid, float(t[-1]))  # fmt: skip
