"""Student's t quantile for real degrees of freedom, without scipy, fast on millions of dof.

Every sliding window has its own effective sample size, so the 95 % interval needs the t
quantile at millions of real-valued dof. For one confidence level (the usual case) the
quantile is tabulated once as a function of u = 1/dof from exact solves (Newton on the
incomplete-beta CDF): a polynomial in u for dof >= 20 (a fitted series in 1/dof, a few
multiply-adds per value) and a Chebyshev series of log q for 1 <= dof < 20. Both agree with
the exact quantile to about 1e-12 relative. An array of probabilities takes the exact path.
"""

from __future__ import annotations

import math
from functools import lru_cache
from statistics import NormalDist
from typing import Any, Final, cast, overload

import numpy as np
import numpy.typing as npt
from numpy.polynomial import chebyshev
from numpy.polynomial import polynomial as power

FloatArray = npt.NDArray[np.float64]

_P_RANGE: Final = "p must lie strictly between 0 and 1"
_DOF_RANGE: Final = "dof must be >= 1"
DOF_SERIES_MIN: Final = 20.0  # dof at and above which the series in 1/dof is used
_U_SPLIT: Final = 1.0 / DOF_SERIES_MIN
_SERIES_DEGREE: Final = 10  # at most
_CHEB_DEGREE: Final = 60
_LGAMMA = np.vectorize(math.lgamma, otypes=[np.float64])  # used on a few hundred values only


def _lgamma(x: FloatArray) -> FloatArray:
    return np.asarray(_LGAMMA(x), dtype=np.float64)


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


def t_sf(q: FloatArray, nu: FloatArray) -> FloatArray:
    """P(T > q) for q >= 0: 0.5 I_x(nu/2, 1/2) with x = nu / (nu + q^2)."""
    a, half = 0.5 * nu, np.full_like(nu, 0.5)
    x, x_c = nu / (nu + q * q), q * q / (nu + q * q)  # x_c = 1 - x without cancellation
    lbeta = _lgamma(a) + 0.5 * math.log(math.pi) - _lgamma(a + 0.5)
    front = np.exp(a * np.log(x) + 0.5 * np.log(x_c) - lbeta)
    direct = x < (a + 1.0) / (a + 2.5)  # else use I_x(a, b) = 1 - I_(1-x)(b, a)
    cf = _betacf(np.where(direct, a, half), np.where(direct, half, a), np.where(direct, x, x_c))
    return 0.5 * np.where(direct, front * cf / a, 1.0 - front * cf / 0.5)


@lru_cache(maxsize=1)
def _gauss_legendre() -> tuple[FloatArray, FloatArray]:
    x, w = np.polynomial.legendre.leggauss(64)
    return (x + 1.0) / 2.0, w / 2.0  # on [0, 1]


def _t_sf_quadrature(q: FloatArray, nu: FloatArray) -> FloatArray:
    """P(T > q), q >= 0, for dof >= 8: after s = sqrt(dof) tan(phi) the CDF is
    1/2 + C sqrt(dof) * integral_0^atan(q / sqrt(dof)) cos(phi)^(dof - 1) dphi, a smooth
    bump that 64-point Gauss-Legendre integrates to rounding."""
    x, w = _gauss_legendre()
    theta = np.arctan(q / np.sqrt(nu))
    phi = theta[:, None] * x[None, :]
    integral = theta * (np.exp((nu[:, None] - 1.0) * np.log(np.cos(phi))) @ w)
    return 0.5 - np.exp(_log_gamma_ratio(0.5 * nu) - 0.5 * math.log(math.pi)) * integral


def _log_gamma_ratio(x: FloatArray) -> FloatArray:
    """log(Gamma(x + 1/2) / Gamma(x)); for x >= 10 by its asymptotic series (error < 2e-12;
    a difference of two lgamma values would lose ~x log(x) * 1e-16 to cancellation)."""
    r = 1.0 / (x * x)
    series = 0.5 * np.log(x) - (1.0 / 8.0 - r * (1 / 192 - r * (1 / 640 - r * 17 / 14336))) / x
    return np.where(x >= 10.0, series, _lgamma(x + 0.5) - _lgamma(x))


def _t_pdf(q: FloatArray, nu: FloatArray) -> FloatArray:
    log_norm = _lgamma(0.5 * (nu + 1.0)) - _lgamma(0.5 * nu) - 0.5 * np.log(nu * math.pi)
    return np.exp(log_norm - 0.5 * (nu + 1.0) * np.log1p(q * q / nu))


def _cornish_fisher(pu: float, nu: FloatArray) -> FloatArray:
    """Four terms of the series in 1/dof (Abramowitz & Stegun 26.7.5): a start for Newton."""
    z = NormalDist().inv_cdf(pu)
    z2 = z * z
    g = (
        z * (z2 + 1.0) / 4.0,
        z * ((5.0 * z2 + 16.0) * z2 + 3.0) / 96.0,
        z * (((3.0 * z2 + 19.0) * z2 + 17.0) * z2 - 15.0) / 384.0,
        z * ((((79.0 * z2 + 776.0) * z2 + 1482.0) * z2 - 1920.0) * z2 - 945.0) / 92160.0,
    )
    u = 1.0 / nu
    return z + u * (g[0] + u * (g[1] + u * (g[2] + u * g[3])))


def _exact(pu: float, nu: FloatArray) -> FloatArray:
    """The upper quantile q > 0: Newton on the exact CDF from a rough start; above dof 500
    the four-term series itself (its error, ~dof^-5, is below 1e-14 there)."""
    big = nu > 500.0
    if np.any(big):
        q = _cornish_fisher(pu, nu)
        q[~big] = _exact(pu, nu[~big])
        return q
    q = np.where(nu >= 4.0, _cornish_fisher(pu, np.maximum(nu, 4.0)), 0.0)
    low = nu < 4.0  # start from log q interpolated in 1/dof between dof 1, 2, 4 (~2 %)
    if np.any(low):
        q1, q2 = math.tan(math.pi * (pu - 0.5)), (2 * pu - 1) / math.sqrt(2 * pu * (1 - pu))
        q4 = float(_cornish_fisher(pu, np.array(4.0)))
        nodes, logs = (1.0, 0.5, 0.25), (math.log(q1), math.log(q2), math.log(q4))
        u = 1.0 / nu[low]
        log_q = np.zeros_like(u)
        for i, (u_i, l_i) in enumerate(zip(nodes, logs)):
            w = np.ones_like(u)
            for u_j in nodes[:i] + nodes[i + 1 :]:
                w *= (u - u_j) / (u_i - u_j)
            log_q += w * l_i
        q[low] = np.exp(log_q)
    quad = nu >= 8.0  # there the continued fraction converges slowly
    for _ in range(8):  # quadratic convergence; a few extra steps cost nothing here
        sf = np.empty_like(q)
        sf[quad] = _t_sf_quadrature(q[quad], nu[quad])
        sf[~quad] = t_sf(q[~quad], nu[~quad])
        step = (sf - (1.0 - pu)) / _t_pdf(q, nu)
        q = q + step
        if np.all(np.abs(step) <= 1e-15 * q):
            break
    return q


def _power_series(cheb: FloatArray) -> FloatArray:
    """Chebyshev coefficients in x = 2 u / U_SPLIT - 1 -> coefficients of powers of u."""
    in_x = chebyshev.cheb2poly(cheb)
    series = np.zeros(in_x.size)
    for k, c in enumerate(in_x):  # substitute x = s u - 1
        series[: k + 1] += c * power.polypow([-1.0, 2.0 / _U_SPLIT], k)
    return series


_chebinterpolate: Any = chebyshev.chebinterpolate  # its stubs reject array-valued functions


@lru_cache(maxsize=16)
def _tables(pu: float) -> tuple[FloatArray, FloatArray]:
    """(power-series coefficients of q in u for u <= 1/20, Chebyshev coefficients of log q
    in u for 1/20 <= u <= 1), fitted once per probability on exact solves."""
    z = NormalDist().inv_cdf(pu)

    def q_series(u: FloatArray) -> FloatArray:  # u = 0 is dof = inf: the normal quantile
        nu = 1.0 / np.maximum(u, 1e-300)
        return np.where(u == 0.0, z, _exact(pu, nu))

    # Chebyshev interpolation on [0, 1/20], re-expanded in powers of u; the lowest degree
    # that holds 5e-13 on a check grid (6 at p = 0.975): each degree costs 2 passes per use.
    u_check = np.linspace(0.0, _U_SPLIT, 201)
    q_check = q_series(u_check)
    for degree in range(4, _SERIES_DEGREE + 1):
        series = _power_series(_chebinterpolate(
            lambda x: q_series((x + 1.0) * (_U_SPLIT / 2)), degree))  # fmt: skip
        if np.max(np.abs(power.polyval(u_check, series) / q_check - 1.0)) < 5e-13:
            break
    mid, half = (1.0 + _U_SPLIT) / 2, (1.0 - _U_SPLIT) / 2
    log_cheb = _chebinterpolate(lambda x: np.log(_exact(pu, 1.0 / (mid + half * x))),
                                         _CHEB_DEGREE)  # fmt: skip
    return np.asarray(series, dtype=np.float64), np.asarray(log_cheb, dtype=np.float64)


def _tabulated(pu: float, nu: FloatArray, out: FloatArray | None = None) -> FloatArray:
    """Upper quantile at one probability for an array of dof >= 1 (NaN stays NaN); `out`,
    if given, receives it (and `nu` is overwritten with 1/dof: no temporaries)."""
    series, log_cheb = _tables(pu)
    u = np.divide(1.0, nu) if out is None else np.divide(1.0, nu, out=nu)
    q = np.full_like(u, series[-1]) if out is None else out
    if out is not None:
        q.fill(series[-1])
    for c in series[-2::-1]:  # Horner, in place
        q *= u
        q += c
    small = u > _U_SPLIT
    if np.any(small):
        mid, half = (1.0 + _U_SPLIT) / 2, (1.0 - _U_SPLIT) / 2
        q[small] = np.exp(chebyshev.chebval((u[small] - mid) / half, log_cheb))
    return q


def upper_quantile_into(p: float, dof: FloatArray, out: FloatArray) -> None:
    """out = student_t_ppf(p, dof) for 0.5 < p < 1 and dof >= 1, overwriting dof (hot loops)."""
    _tabulated(p, dof, out)


@overload
def student_t_ppf(p: float, dof: float) -> float: ...
@overload
def student_t_ppf(p: float | FloatArray, dof: FloatArray) -> FloatArray: ...
@overload
def student_t_ppf(p: FloatArray, dof: float | FloatArray) -> FloatArray: ...
def student_t_ppf(p: npt.ArrayLike, dof: npt.ArrayLike) -> float | FloatArray:
    """Quantile of Student's t for real `dof` >= 1 (inf allowed); vectorized over both.

    About 1e-12 relative everywhere. One probability with many dof costs ~15 multiply-adds
    per value (dof >= 20); an array of probabilities is solved exactly, element by element.
    """
    if isinstance(p, (float, int)) and isinstance(dof, (float, int)):
        return _ppf_one(float(p), float(dof))
    p_arr, nu = np.asarray(p, dtype=np.float64), np.asarray(dof, dtype=np.float64)
    if p_arr.ndim == 0 and nu.ndim == 0:
        return _ppf_one(float(p_arr), float(nu))
    if np.any((p_arr <= 0.0) | (p_arr >= 1.0)):
        raise ValueError(_P_RANGE)
    if np.any(nu < 1.0):
        raise ValueError(_DOF_RANGE)
    if p_arr.ndim == 0:
        pf = float(p_arr)
        if pf == 0.5:
            return np.zeros(nu.shape)
        q = _tabulated(max(pf, 1.0 - pf), nu.astype(np.float64, copy=False))
        return -q if pf < 0.5 else q
    shape = np.broadcast_shapes(p_arr.shape, nu.shape)
    flat_p, flat_nu = np.broadcast_to(p_arr, shape).ravel(), np.broadcast_to(nu, shape).ravel()
    out = np.array([_ppf_one(float(a), float(b)) for a, b in zip(flat_p, flat_nu)])
    return out.reshape(shape)


@lru_cache(maxsize=16)
def _tables_py(pu: float) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """_tables as Python floats: scalar arithmetic on numpy scalars costs ~10x more."""
    series, log_cheb = _tables(pu)
    return tuple(float(c) for c in series[::-1]), tuple(float(c) for c in log_cheb)


def _ppf_one(p: float, nu: float) -> float:
    """student_t_ppf of one value in Python floats (IncrementalSlope calls it per update)."""
    if not 0.0 < p < 1.0:
        raise ValueError(_P_RANGE)
    if nu < 1.0:
        raise ValueError(_DOF_RANGE)
    if p == 0.5 or math.isnan(nu):
        return 0.0 if p == 0.5 else math.nan
    series, log_cheb = _tables_py(max(p, 1.0 - p))
    u = 1.0 / nu
    if u <= _U_SPLIT:
        q = 0.0
        for c in series:
            q = q * u + c
    else:  # Clenshaw's recurrence for the Chebyshev series of log q
        x = (u - (1.0 + _U_SPLIT) / 2) / ((1.0 - _U_SPLIT) / 2)
        b1 = b2 = 0.0
        for c in log_cheb[:0:-1]:
            b1, b2 = 2.0 * x * b1 - b2 + c, b1
        q = math.exp(x * b1 - b2 + log_cheb[0])
    return q if p > 0.5 else -q


def exact_t_ppf(p: float, dof: npt.ArrayLike) -> FloatArray:
    """The exact solve behind the tables (for tests and validation): slow, ~1e-14."""
    nu = np.atleast_1d(np.asarray(dof, dtype=np.float64))
    pu = max(p, 1.0 - p)
    q = cast(FloatArray, _exact(pu, nu))
    return -q if p < 0.5 else q
