"""Leak-rate estimator core: least-squares slopes with an honest uncertainty.

A leak shows as a slope of pressure (or P/T) against time. Sensor noise is seldom white
(thermal drift, IIR filters), and serially correlated residuals make the textbook OLS standard
error far too small. Here it is inflated by the AR(1) factor (1 + rho) / (1 - rho) of the
residuals' lag-1 autocorrelation, and the 95 % interval uses a Student-t quantile on the
effective sample size. `fit_slope` fits one window, `sliding_slopes` every window of a record
in O(N), `IncrementalSlope` a live stream in O(batch) per update; all three agree to rounding.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from functools import lru_cache
from statistics import NormalDist
from typing import Any, Final, Generic, TypeVar, cast, overload

import numpy as np
import numpy.typing as npt
from numpy.polynomial import chebyshev

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
V = TypeVar("V", float, FloatArray)

CONFIDENCE: Final = 0.95
RHO_MAX: Final = 0.99  # caps the AR(1) variance inflation at 199x
_MIN_BLOCK: Final = 64
_PASS_ELEMENTS: Final = 1 << 17  # samples per pass of sliding_slopes: sized for the cache

# ---------------------------------------------------------------- Student's t quantile
_P_RANGE: Final = "p must lie strictly between 0 and 1"
_DOF_RANGE: Final = "dof must be >= 1"
_LGAMMA = np.vectorize(math.lgamma, otypes=[np.float64])  # used on a few dozen values only
_NORM_PPF = np.vectorize(NormalDist().inv_cdf, otypes=[np.float64])  # on p, not on samples


def _lgamma(x: FloatArray) -> FloatArray:
    return np.asarray(_LGAMMA(x), dtype=np.float64)


def _norm_ppf(p: FloatArray) -> FloatArray:
    if np.ndim(p) == 0:  # np.vectorize costs ~20 us even for one value
        return cast(FloatArray, np.float64(NormalDist().inv_cdf(float(p))))
    return np.asarray(_NORM_PPF(p), dtype=np.float64)


def _betacf(a: FloatArray, b: FloatArray, x: FloatArray) -> FloatArray:
    """Continued fraction of the regularized incomplete beta I_x(a, b) (modified Lentz)."""
    tiny = 1e-300
    c, d = np.ones_like(x), 1.0 - (a + b) * x / (a + 1.0)
    d = 1.0 / np.where(np.abs(d) < tiny, tiny, d)
    h = d.copy()
    for m in range(1, 400):
        even = m * (b - m) * x / ((a + 2 * m - 1.0) * (a + 2 * m))
        odd = -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1.0))
        for coef in (even, odd):
            d = 1.0 + coef * d
            d = 1.0 / np.where(np.abs(d) < tiny, tiny, d)
            c = 1.0 + coef / c
            c = np.where(np.abs(c) < tiny, tiny, c)
            h = h * (c * d)
        if np.all(np.abs(c * d - 1.0) < 1e-15):
            break
    return h


def _t_sf(q: FloatArray, nu: FloatArray) -> FloatArray:
    """P(T > q) for q >= 0: 0.5 I_x(nu/2, 1/2) with x = nu / (nu + q^2)."""
    a, half = 0.5 * nu, np.full_like(nu, 0.5)
    x, x_c = nu / (nu + q * q), q * q / (nu + q * q)  # x_c = 1 - x without cancellation
    lbeta = _lgamma(a) + 0.5 * math.log(math.pi) - _lgamma(a + 0.5)
    front = np.exp(a * np.log(x) + 0.5 * np.log(x_c) - lbeta)
    direct = x < (a + 1.0) / (a + 2.5)  # else use I_x(a, b) = 1 - I_(1-x)(b, a)
    cf = _betacf(np.where(direct, a, half), np.where(direct, half, a), np.where(direct, x, x_c))
    return 0.5 * np.where(direct, front * cf / a, 1.0 - front * cf / 0.5)


def _t_pdf(q: FloatArray, nu: FloatArray) -> FloatArray:
    log_norm = _lgamma(0.5 * (nu + 1.0)) - _lgamma(0.5 * nu) - 0.5 * np.log(nu * math.pi)
    return np.exp(log_norm - 0.5 * (nu + 1.0) * np.log1p(q * q / nu))


# Each branch takes pu (upper-half probability, >= 0.5) and dof; returns q >= 0.
def _t_1(pu: FloatArray, nu: FloatArray) -> FloatArray:
    return np.tan(math.pi * (pu - 0.5)) + np.zeros_like(nu)


def _t_2(pu: FloatArray, nu: FloatArray) -> FloatArray:
    return (2.0 * pu - 1.0) / np.sqrt(2.0 * pu * (1.0 - pu)) + np.zeros_like(nu)


def _t_inf(pu: FloatArray, nu: FloatArray) -> FloatArray:
    return -_norm_ppf(1.0 - pu) + np.zeros_like(nu)


def _t_hill(pu: FloatArray, nu: FloatArray) -> FloatArray:
    """Hill (1970), CACM Algorithm 396; better than 1e-5 relative for dof >= 3."""
    two_tail, x = 2.0 * (1.0 - pu), _norm_ppf(1.0 - pu)  # x < 0, as in R's qt()
    a = 1.0 / (nu - 0.5)
    b = 48.0 / (a * a)
    c = ((20700.0 * a / b - 98.0) * a - 16.0) * a + 96.36
    d = ((94.5 / (b + c) - 3.0) / b + 1.0) * np.sqrt(a * math.pi / 2.0) * nu
    y = (d * two_tail) ** (2.0 / nu)
    # Expansion about the normal quantile (all but the far tails) ...
    c_n = np.where(nu < 5.0, c + 0.3 * (nu - 4.5) * (x + 0.6), c)
    c_n = (((0.05 * d * x - 5.0) * x - 7.0) * x - 2.0) * x + b + c_n
    x2 = x * x
    y_n = (((((0.4 * x2 + 6.3) * x2 + 36.0) * x2 + 94.5) / c_n - x2 - 3.0) / b + 1.0) * x
    y_n = np.expm1(a * y_n * y_n)
    # ... and the far-tail expansion.
    y_t = ((1.0 / (((nu + 6.0) / (nu * y) - 0.089 * d - 0.822) * (nu + 2.0) * 3.0)
            + 0.5 / (nu + 4.0)) * y - 1.0) * (nu + 1.0) / (nu + 2.0) + 1.0 / y  # fmt: skip
    return np.sqrt(nu * np.where(y > 0.05 + a, y_n, y_t))


def _t_newton(pu: FloatArray, nu: FloatArray) -> FloatArray:
    """1 < dof < 3: log q interpolated in 1/dof (~1 %), then Newton on the exact CDF."""
    nodes = (1.0, 2.0, 3.0, 4.0)
    branches = (_t_1, _t_2, _t_hill, _t_hill)
    logs = [np.log(f(pu, np.asarray(k, dtype=np.float64))) for f, k in zip(branches, nodes)]
    log_q = np.zeros_like(nu)
    for i, (n_i, log_i) in enumerate(zip(nodes, logs)):
        weight = np.ones_like(nu)
        for n_j in nodes[:i] + nodes[i + 1 :]:
            weight *= (1.0 / nu - 1.0 / n_j) / (1.0 / n_i - 1.0 / n_j)
        log_q += weight * log_i
    q = np.exp(log_q)
    for _ in range(4):  # quadratic convergence: 1e-2 -> 1e-4 -> 1e-8 -> 1e-16
        q = q + (_t_sf(q, nu) - (1.0 - pu)) / _t_pdf(q, nu)
    return q


@lru_cache(maxsize=16)
def _t_fractional_coef(pu: float) -> FloatArray:
    """Chebyshev series of log q(dof) on [1, 3] for one p, from 41 Newton solves."""

    def log_q(z: FloatArray) -> Any:
        return np.log(_t_newton(np.asarray(pu, dtype=np.float64), z + 2.0))

    return np.asarray(chebyshev.chebinterpolate(log_q, 40), dtype=np.float64)


def _t_fractional(pu: FloatArray, nu: FloatArray) -> FloatArray:
    if pu.ndim == 0:  # the usual case (one confidence level, many dof): interpolate
        return np.exp(chebyshev.chebval(nu - 2.0, _t_fractional_coef(float(pu))))
    return _t_newton(pu, nu)


@overload
def student_t_ppf(p: float, dof: float) -> float: ...
@overload
def student_t_ppf(p: float | FloatArray, dof: FloatArray) -> FloatArray: ...
@overload
def student_t_ppf(p: FloatArray, dof: float | FloatArray) -> FloatArray: ...
def student_t_ppf(p: npt.ArrayLike, dof: npt.ArrayLike) -> float | FloatArray:
    """Quantile of Student's t for real `dof` >= 1, without scipy; vectorized over both.

    Exact for dof 1, 2 and inf; Hill's algorithm for other dof >= 3 (better than 1e-5
    relative); Newton on the incomplete-beta CDF for 1 < dof < 3 (about 1e-12).
    """
    p_arr, nu = np.asarray(p, dtype=np.float64), np.asarray(dof, dtype=np.float64)
    if p_arr.ndim == 0 and nu.ndim == 0:
        return _t_ppf_one(float(p_arr), float(nu))
    if np.any((p_arr <= 0.0) | (p_arr >= 1.0)):
        raise ValueError(_P_RANGE)
    if np.any(nu < 1.0):
        raise ValueError(_DOF_RANGE)
    shape = np.broadcast_shapes(p_arr.shape, nu.shape)
    pu = np.maximum(p_arr, 1.0 - p_arr)  # work in the upper half, restore the sign last
    nu_b, q = np.broadcast_to(nu, shape), np.full(shape, np.nan)  # NaN dof stays NaN
    branches = (
        (nu_b == 1.0, _t_1), (nu_b == 2.0, _t_2), (nu_b == np.inf, _t_inf),
        ((nu_b >= 3.0) & (nu_b < np.inf), _t_hill),
        ((nu_b > 1.0) & (nu_b < 3.0) & (nu_b != 2.0), _t_fractional),
    )  # fmt: skip
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):  # p = 0.5 patched below
        for mask, branch in branches:
            if mask.any():
                pu_m = pu if pu.ndim == 0 else np.broadcast_to(pu, shape)[mask]
                q[mask] = branch(pu_m, nu_b[mask])
    return np.where(pu == 0.5, 0.0, np.where(p_arr < 0.5, -q, q))


def _t_ppf_one(p: float, nu: float) -> float:
    """student_t_ppf of one value, in numpy scalars: 0-d array operations cost ~10x more."""
    if not 0.0 < p < 1.0:
        raise ValueError(_P_RANGE)
    if nu < 1.0:
        raise ValueError(_DOF_RANGE)
    if p == 0.5 or math.isnan(nu):
        return 0.0 if p == 0.5 else math.nan
    branch = (_t_1 if nu == 1.0 else _t_2 if nu == 2.0 else _t_inf if nu == math.inf else
              _t_hill if nu >= 3.0 else _t_fractional)  # fmt: skip
    with np.errstate(over="ignore"):
        q = float(branch(np.asarray(max(p, 1.0 - p))[()], np.asarray(nu)[()]))
    return q if p > 0.5 else -q


# ---------------------------------------------------------------- slope fits
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


_FIELDS: Final = tuple(SlopeFit.__dataclass_fields__)


def _finish(
    n: int | IntArray, slope: FloatArray, sxx: FloatArray, sse: FloatArray,
    lag: FloatArray, t_mid: FloatArray, y_mid: FloatArray, t_end: FloatArray,
) -> SlopeFit[FloatArray]:  # fmt: skip
    """Centred sums -> fit: AR(1)-inflated standard error, t interval on n_eff."""
    n_f = np.asarray(n, dtype=np.float64)
    sse = np.maximum(sse, 0.0)
    sigma = np.sqrt(sse / (n_f - 2.0))
    with np.errstate(divide="ignore", invalid="ignore"):
        rho1 = np.where(sse > 0.0, lag / sse, 0.0)
        rho = np.clip(rho1, 0.0, RHO_MAX)
        inflation = (1.0 + rho) / (1.0 - rho)
        stderr = sigma * np.sqrt(inflation / sxx)
    n_eff = n_f / inflation
    half = student_t_ppf(0.5 + CONFIDENCE / 2.0, np.maximum(n_eff - 2.0, 1.0)) * stderr
    return SlopeFit(slope, y_mid, stderr, slope - half, slope + half, sigma, n, n_eff, rho1,
                    t_mid, t_end)  # fmt: skip


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


def _window_sums(a: FloatArray, m: int, block: int, n_out: int) -> FloatArray:
    """Sums of m consecutive entries along each row, for the first `block` start points."""
    c = np.zeros((a.shape[0], a.shape[1] + 1))
    np.cumsum(a, axis=1, out=c[:, 1:])
    return (c[:, m : m + block] - c[:, :block]).ravel()[:n_out]


def _sliding_pass(
    t: FloatArray, y: FloatArray, w: int, block: int, start: int, stop: int
) -> SlopeFit[FloatArray]:
    """Windows start..stop-1, as rows of block + w - 1 samples (overlapping by w - 1). Each row
    is taken relative to its first sample and its chord, so that its prefix sums stay near a
    window's size and the sums of squares do not cancel."""
    n_out = stop - start
    row0 = start + block * np.arange(-(-n_out // block))
    idx = np.minimum(row0[:, None] + np.arange(block + w - 1), t.size - 1)  # last row clips
    tt, yy = t[idx] - t[row0][:, None], y[idx] - y[row0][:, None]
    span = tt[:, -1]
    chord = np.divide(yy[:, -1], span, out=np.zeros_like(span), where=span != 0.0)
    yy -= chord[:, None] * tt
    ta, tb, ya, yb = tt[:, :-1], tt[:, 1:], yy[:, :-1], yy[:, 1:]
    sums = tuple(
        _window_sums(a, m, block, n_out)
        for a, m in ((tt, w), (yy, w), (tt * tt, w), (tt * yy, w), (yy * yy, w),
                     (ta * tb, w - 1), (ta * yb, w - 1), (ya * tb, w - 1), (ya * yb, w - 1))
    )  # fmt: skip
    ends = [a[:, k : k + block].ravel()[:n_out] for k in (0, w - 1) for a in (tt, yy)]
    b, sxx, sse, lag, tm, ym = _from_sums(float(w), sums, (ends[0], ends[1]), (ends[2], ends[3]))
    chord_w = np.repeat(chord, block)[:n_out]
    t_mid = np.repeat(t[row0], block)[:n_out] + tm
    y_mid = np.repeat(y[row0], block)[:n_out] + (ym + chord_w * tm)
    n = np.full(n_out, w, dtype=np.int64)
    return _finish(n, b + chord_w, sxx, sse, lag, t_mid, y_mid, t[start + w - 1 : stop + w - 1])


def sliding_slopes(t_s: npt.ArrayLike, y: npt.ArrayLike, window_n: int) -> SlopeFit[FloatArray]:
    """`fit_slope` of every run of window_n consecutive samples, O(N) by prefix sums.

    Entry i covers samples i .. i+window_n-1, so there are len(t_s) - window_n + 1 entries.
    A window whose samples all share one time gives NaN.
    """
    if window_n < 3:
        raise ValueError(f"window_n must be >= 3, got {window_n}")
    t, v = _as_series(t_s, y, 0)
    n_win = max(t.size - window_n + 1, 0)
    block = max(2 * window_n, _MIN_BLOCK)
    per_pass = block * max(1, _PASS_ELEMENTS // (block + window_n))
    out: dict[str, npt.NDArray[Any]] = {
        f: np.empty(n_win, np.int64 if f == "n" else np.float64) for f in _FIELDS
    }
    for start in range(0, n_win, per_pass):  # passes over blocks of windows bound the memory
        stop = min(start + per_pass, n_win)
        part = _sliding_pass(t, v, window_n, block, start, stop)
        for f in _FIELDS:
            out[f][start:stop] = getattr(part, f)
    return SlopeFit(**out)


# ---------------------------------------------------------------- live stream
def _run_sums(tt: FloatArray, yy: FloatArray) -> FloatArray:
    """The nine window sums of one contiguous run of samples (pairs inside the run only)."""
    ta, tb, ya, yb = tt[:-1], tt[1:], yy[:-1], yy[1:]
    return np.array([tt.sum(), yy.sum(), tt @ tt, tt @ yy, yy @ yy,
                     ta @ tb, ta @ yb, ya @ tb, ya @ yb])  # fmt: skip


def _pair_sums(t_a: float, y_a: float, t_b: float, y_b: float) -> FloatArray:
    """The pair terms of two neighbouring samples that lie in different runs."""
    return np.array([0.0, 0.0, 0.0, 0.0, 0.0, t_a * t_b, t_a * y_b, y_a * t_b, y_a * y_b])


class IncrementalSlope:
    """`fit_slope` over a trailing time window of a live stream, O(batch) per `add`.

    Keeps the window's samples (a deque of batches) and their sums taken from an origin near
    the window, so adding and dropping samples never re-sums history. Once as many samples
    have arrived as the window holds, it is re-summed from its first sample (amortized O(1)
    per sample), which keeps rounding and cancellation from building up over long runs.
    """

    def __init__(self, window_s: float | None = None) -> None:
        """window_s: keep the samples with t >= t_latest - window_s; None keeps them all."""
        if window_s is not None and not (window_s > 0.0 and math.isfinite(window_s)):
            raise ValueError(f"window_s must be a positive finite number or None, got {window_s}")
        self.window_s = window_s
        self._batches: deque[tuple[FloatArray, FloatArray]] = deque()
        self._head = 0  # samples of the first batch already dropped
        self._n = 0
        self._origin = (0.0, 0.0)
        self._first = (np.float64(0.0), np.float64(0.0))  # the window's first sample
        self._sums = np.zeros(9)
        self._since_rebase = 0

    def __len__(self) -> int:
        return self._n

    def add(self, t_s: npt.ArrayLike, y: npt.ArrayLike) -> None:
        """Append a batch of finite samples; times must not go backwards."""
        t, v = _as_series(t_s, y, 0)
        if t.size == 0:
            return
        t, v = t.copy(), v.copy()  # the caller may reuse its buffers
        if not (np.all(np.isfinite(t)) and np.all(np.isfinite(v))):
            raise ValueError("samples must be finite (a NaN would poison the running sums)")
        if np.any(np.diff(t) < 0.0) or (self._n and t[0] < self._batches[-1][0][-1]):
            raise ValueError("sample times must not decrease")
        if self._n == 0:
            self._origin, self._first = (float(t[0]), float(v[0])), (t[0], v[0])
        t0, y0 = self._origin
        self._sums += _run_sums(t - t0, v - y0)
        if self._n:
            lt, ly = self._batches[-1][0][-1], self._batches[-1][1][-1]
            self._sums += _pair_sums(lt - t0, ly - y0, t[0] - t0, v[0] - y0)
        self._batches.append((t, v))
        self._n += t.size
        self._since_rebase += t.size
        if self.window_s is None:  # growing forever: only the newest sample is needed
            while len(self._batches) > 1:
                self._batches.popleft()
        else:
            self._drop_before(float(t[-1]) - self.window_s)
            if self._since_rebase >= max(self._n, _MIN_BLOCK):
                self._rebase()

    def _drop_before(self, cutoff_s: float) -> None:
        t0, y0 = self._origin
        while True:  # whole batches, then part of one; the newest sample always stays
            bt, by = self._batches[0]
            h = self._head
            k = int(np.searchsorted(bt[h:], cutoff_s, side="left"))
            if k == 0:
                return
            gone_t, gone_y = bt[h : h + k] - t0, by[h : h + k] - y0
            whole = h + k == bt.size
            nb, j = (self._batches[1], 0) if whole else ((bt, by), h + k)  # first kept sample
            nt, ny = self._first = nb[0][j], nb[1][j]
            self._sums -= _run_sums(gone_t, gone_y)
            self._sums -= _pair_sums(gone_t[-1], gone_y[-1], nt - t0, ny - y0)
            self._n -= k
            if not whole:
                self._head += k
                return
            self._batches.popleft()
            self._head = 0

    def _rebase(self) -> None:
        """Re-sum the window exactly from its first sample, merging the batches into one."""
        t = np.concatenate([b[0] for b in self._batches])[self._head :]
        v = np.concatenate([b[1] for b in self._batches])[self._head :]
        self._batches, self._head, self._since_rebase = deque([(t, v)]), 0, 0
        self._origin, self._first = (float(t[0]), float(v[0])), (t[0], v[0])
        self._sums = _run_sums(t - t[0], v - v[0])

    def fit(self) -> SlopeFit[float] | None:
        """The fit of the current window; None below 3 samples or if all share one time."""
        if self._n < 3:
            return None
        # numpy float64 scalars throughout: a zero Sxx divides to inf instead of raising.
        t0, y0 = self._origin
        first = (self._first[0] - t0, self._first[1] - y0)
        t_end, y_end = self._batches[-1][0][-1], self._batches[-1][1][-1]
        last = (t_end - t0, y_end - y0)
        b, sxx, sse, lag, tm, ym = _from_sums(self._n, tuple(self._sums), first, last)
        if not sxx > 0.0:
            return None
        return _finish_one(self._n, b, sxx, sse, lag, tm + t0, ym + y0, t_end)
