"""One-window least-squares slope with an honest uncertainty, and the pieces it shares.

A leak shows as a slope of pressure (or P/T) against time. Sensor noise is seldom white
(thermal drift, IIR filters), and serially correlated residuals make the textbook OLS standard
error far too small. Here it is inflated by the AR(1) factor (1 + rho) / (1 - rho) of the
residuals' lag-1 autocorrelation, and the 95 % interval uses a Student-t quantile on the
effective sample size. `sliding` and `incremental` compute the same fit over every window of
a record and over a live stream; all three agree to rounding.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final, Generic, TypeVar

import numpy as np
import numpy.typing as npt

from leakmon.analysis.student_t import student_t_ppf

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
V = TypeVar("V", float, FloatArray)

CONFIDENCE: Final = 0.95
RHO_MAX: Final = 0.99  # caps the AR(1) variance inflation at 199x


@dataclass(frozen=True)
class SlopeFit(Generic[V]):
    """Least-squares slope of one window (floats) or of many windows (equal-length arrays)."""

    slope: V  # y units per second
    intercept: V  # fitted y at t_mid_s, i.e. the window's mean of y
    stderr: V  # standard error of the slope, inflated for AR(1) residuals
    ci95_low: V
    ci95_high: V
    residual_sigma: V  # RMS residual on n - 2 degrees of freedom
    n: int | IntArray  # samples in the window
    n_eff: V  # n (1 - rho) / (1 + rho), rho = rho1 clipped to [0, RHO_MAX]
    rho1: V  # lag-1 autocorrelation of the residuals, unclipped
    t_mid_s: V  # mean time of the window
    t_end_s: V  # time of the window's last sample


FIELDS: Final = tuple(SlopeFit.__dataclass_fields__)


def _finish_one(
    n: int, slope: float, sxx: float, sse: float, lag: float, t_mid: float, y_mid: float,
    t_end: float,
) -> SlopeFit[float]:  # fmt: skip
    """`_finish` for one window, in floats (fit_slope, IncrementalSlope.fit)."""
    sse = max(float(sse), 0.0)
    sigma = math.sqrt(sse / (n - 2.0))
    rho1 = float(lag) / sse if sse > 0.0 else 0.0
    rho = min(max(rho1, 0.0), RHO_MAX)
    inflation = (1.0 + rho) / (1.0 - rho)
    stderr = sigma * math.sqrt(inflation / sxx)
    n_eff = n / inflation
    half = student_t_ppf(0.5 + CONFIDENCE / 2.0, max(n_eff - 2.0, 1.0)) * stderr
    slope, t_mid, y_mid, t_end = float(slope), float(t_mid), float(y_mid), float(t_end)
    return SlopeFit(slope, y_mid, stderr, slope - half, slope + half, sigma, n, n_eff, rho1,
                    t_mid, t_end)  # fmt: skip


def _as_series(t_s: npt.ArrayLike, y: npt.ArrayLike, min_n: int) -> tuple[FloatArray, FloatArray]:
    t, v = np.asarray(t_s, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if t.ndim != 1 or t.shape != v.shape:
        raise ValueError(f"t_s and y must be 1-D of equal length, got {t.shape} and {v.shape}")
    if t.size < min_n:
        raise ValueError(f"need at least {min_n} samples, got {t.size}")
    return t, v


def fit_slope(t_s: npt.ArrayLike, y: npt.ArrayLike) -> SlopeFit[float]:
    """OLS slope of y against t (>= 3 samples) with an AR(1)-honest standard error."""
    t, v = _as_series(t_s, y, 3)
    t_mid, y_mid = float(t.mean()), float(v.mean())
    tc, yc = t - t_mid, v - y_mid  # centring keeps t ~ 1e6 s from cancelling
    sxx = float(tc @ tc)
    if not sxx > 0.0:
        raise ValueError("all samples share one time: the slope is undefined")
    slope = float(tc @ yc) / sxx
    r = yc - slope * tc
    r -= r.mean()  # OLS residuals sum to 0; this drops the rounding of t_mid times the slope
    return _finish_one(t.size, slope, sxx, float(r @ r), float(r[:-1] @ r[1:]), t_mid, y_mid,
                       float(t[-1]))  # fmt: skip


def _from_sums(
    n: float, sums: tuple[V, ...], first: tuple[V, V], last: tuple[V, V]
) -> tuple[V, V, V, V, V, V]:
    """Slope, Sxx, SSE, lag-1 residual sum, mean t, mean y from raw window sums.

    sums = (St, Sy, Stt, Sty, Syy, Ptt, Pty, Pyt, Pyy), the P* over neighbour pairs, e.g.
    Pty = sum t_j y_(j+1); first and last are (t, y) of the window's end samples.
    """
    st, sy, stt, sty, syy, ptt, pty, pyt, pyy = sums
    tm, ym = st / n, sy / n
    sxx, sxy = stt - st * tm, sty - st * ym
    with np.errstate(divide="ignore", invalid="ignore"):
        b = sxy / sxx
    sse = (syy - sy * ym) - b * sxy
    # r_j = z_j - alpha with z = y - b t and alpha = ym - b tm: expand sum r_j r_(j+1).
    alpha = ym - b * tm
    zz = pyy - b * (pyt + pty) + b * b * ptt
    z_pair_firsts = (sy - last[1]) - b * (st - last[0])
    z_pair_seconds = (sy - first[1]) - b * (st - first[0])
    lag = zz - alpha * (z_pair_firsts + z_pair_seconds) + (n - 1.0) * alpha * alpha
    return b, sxx, sse, lag, tm, ym


