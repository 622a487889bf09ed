"""The long-run variance of a least-squares slope under noise of unknown colour.

Why this estimator (measured in bench/validate_analysis.py, table in bench/RESULTS.md):
- A barometer's noise is white plus slow components (thermal wander, AR(1)-like, flicker,
  random walk). The lag-1 AR(1) correction sees only the white part when both are present
  (coverage 58 % on white + slow AR(1), 20 % with flicker). HAC kernels with a data-driven
  bandwidth and AR(p) prewhitening both fail the same way on slow components, and are not
  expressible in the prefix sums that make every sliding window O(1).
- A slope over T seconds is disturbed by the noise at periods near T: exactly what a single
  window cannot observe directly, because the fitted line absorbs it. So the window is cut into
  BATCHES equal batches (by sample index); the batch means of the residuals are projected on
  cosine modes k = 2..BATCHES-1 (orthogonal to the fitted level and line), whose powers P_k
  sample the noise spectrum from about 1/T to BATCHES/(2T).
- The spectrum fitted to them is a white floor plus a power law f^-beta (SHAPE_EXPONENTS,
  with the floor holding SHAPE_FLOORS of mode 2's power), by Whittle's likelihood profiled
  over the scale, on a grid of shapes. One pure power law (the estimator before 2026-12-01)
  cannot bend: a random walk that rises above the white noise only at modes 2..4 was fitted
  as a shallow law and extrapolated short (random-walk coverage 83-87 %); the floor lets the
  low modes rise steeply while the high ones stay flat. Each shape's expected mode powers
  and slope variance are its exact spectral integrals over the mode and slope weights
  (`_shape_table`), not the k^-beta extrapolation to "mode 1": the model itself says what
  the slope's variance is once its mode powers are fitted.
- Everything needs only batch sums of t and y, so the one-shot fit, every sliding window
  (prefix sums) and the live tracker compute the same number to rounding.
- The interval is T_QUANTILE * (HW_BASE + HW_WIDEN * log2 V) standard errors, where V is the
  fitted shape's slope variance over white noise of the same mode-2 power (V = 1 white,
  1.7 flicker, 3.9 random walk): the more the variance rests on an extrapolation from 14
  chi-square(1) powers to the slope's own scale, the less the fitted shape is to be trusted,
  and the wider the interval. HW_WIDEN = 2 HW_BASE (steeper buys little coverage for much
  width); HW_BASE puts white noise at 95.5 %, mid-band of 93-97 % (measured on 6000 drawn
  white records, seeds apart from the CI test's and the bench's).
- Not identifiable from one window: a random walk or flicker can hide under the white floor
  at modes 2..15 (each mode's power is one chi-square(1) draw: a mode-2 power ten times the
  floor on average comes out below it a quarter of the time) and still dominate at the
  slope's own scale. Windows fitted as white then hold a walk's slope in about 70 % of
  cases, against 95 % for white noise, and widening white-looking windows until white noise
  reaches 97 % lifts random walk only to about 88 % (bench/RESULTS.md, 2026-12-01). Where
  the window shows the slow component (exponent > 0) coverage is 92-98 %.
Below MIN_SAMPLES samples there is too little to see correlation; the textbook white-noise
interval is used and noise_exponent is NaN.
"""

from __future__ import annotations

import math
from typing import Final

import numpy as np
import numpy.typing as npt

from leakmon.analysis.student_t import student_t_ppf

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

BATCHES: Final = 16
MIN_SAMPLES: Final = 2 * BATCHES
# The lack-of-fit path (first_mode > 2, analysis/decay.py) keeps one pure power law over
# this grid of exponents, its interval widened by BASE + WIDEN * beta (calibrated on Gaussian
# power-law noise of exact covariance; decay.py uses the two constants itself).
EXPONENTS: Final = np.linspace(0.0, 2.5, 11)
BASE: Final = 0.9
WIDEN: Final = 0.5
# The slope's path (first_mode = 2): white, or a white floor holding SHAPE_FLOORS of mode 2's
# power under a power law f^-beta. 16 shapes: per-window cost about 1.45x the 11 of a pure
# law, the budget (bench/RESULTS.md); a finer grid of floors measured no better.
SHAPE_EXPONENTS: Final = (0.5, 1.0, 1.5, 2.0, 2.5)
SHAPE_FLOORS: Final = (0.0, 0.4, 0.7)
# Interval: T_QUANTILE * (HW_BASE + HW_WIDEN * log2 V) standard errors (see the module
# docstring): white noise at 95.5 %, widening with how far the slope's variance is extrapolated.
HW_BASE: Final = 0.91
HW_WIDEN: Final = 1.82
CONFIDENCE: Final = 0.95


def _modes() -> FloatArray:
    """Cosine modes k = 2..BATCHES-1 over the batches, orthonormal and orthogonal to a
    constant and a line (which the fit has removed)."""
    j = np.arange(BATCHES) + 0.5
    one = np.full(BATCHES, 1.0 / math.sqrt(BATCHES))
    line = j - BATCHES / 2.0
    line /= np.linalg.norm(line)
    rows = []
    for k in range(2, BATCHES):
        u = np.cos(math.pi * k * j / BATCHES)
        u -= (u @ one) * one + (u @ line) * line
        rows.append(u / np.linalg.norm(u))
    return np.array(rows)


MODES: Final = _modes()  # (BATCHES - 2, BATCHES)
_K: Final = np.arange(2, BATCHES, dtype=np.float64)
_MATMUL_FLOPS: Final = 200_000  # m * n * k per chunk; OpenBLAS threads above 262,144
T_QUANTILE: Final = student_t_ppf(0.5 + CONFIDENCE / 2.0, BATCHES - 3.0)


def batch_edges(n: int) -> IntArray:
    """Sample indices where the BATCHES batches of an n-sample window start (and its end)."""
    return (np.arange(BATCHES + 1, dtype=np.int64) * n + BATCHES // 2) // BATCHES


def small_matmul(a: FloatArray, b: FloatArray, out: FloatArray | None = None) -> FloatArray:
    """a @ b for a small a and a wide b, in column chunks: below OpenBLAS's threading
    threshold, so it never wakes threads that spin (on a busy machine they cost 3x the CPU)."""
    out = np.empty((a.shape[0], b.shape[1])) if out is None else out
    step = max(1, _MATMUL_FLOPS // max(a.size, 1))
    for i in range(0, b.shape[1], step):
        np.matmul(a, b[:, i : i + step], out=out[:, i : i + step])
    return out


def modes_of_sums(resid_sums: FloatArray, n: int) -> FloatArray:
    """Cosine-mode amplitudes (BATCHES - 2, ...) of the batch means, from the residuals'
    batch sums (BATCHES, ...) of n-sample windows."""
    lengths = np.diff(batch_edges(n)).astype(np.float64)
    means = resid_sums / lengths.reshape((BATCHES,) + (1,) * (resid_sums.ndim - 1))
    return np.tensordot(MODES, means, axes=1)


def edge_modes(n: int) -> FloatArray:
    """(BATCHES - 2, BATCHES + 1): the modes as weights on prefix sums at the batch edges,
    so that modes = edge_modes(n) @ (prefix sums at the edges) (the sliding path)."""
    lengths = np.diff(batch_edges(n)).astype(np.float64)
    w = MODES / lengths
    out = np.zeros((MODES.shape[0], BATCHES + 1))
    out[:, 1:] += w
    out[:, :-1] -= w
    return out


def _shape_table(n: int = 256, pad: int = 32) -> tuple[FloatArray, FloatArray, FloatArray]:
    """(exponent (shapes,), expected mode powers (shapes, BATCHES - 2), slope variance
    (shapes,)) of each spectral shape, mode 2's power = 1 and the slope's variance in units
    of mode power times BATCHES / (n Sxx) (white noise: every entry 1). Exact spectral
    integrals over the weights the modes and the slope put on the samples (after the OLS
    line is removed); a power law is self-similar, so one n serves every window (n = 128
    and 1024 agree to 3 digits)."""
    edges = batch_edges(n)
    lengths = np.diff(edges).astype(np.float64)
    batch = np.repeat(np.arange(BATCHES), np.diff(edges))
    x = np.arange(n) - (n - 1) / 2.0
    sxx = float(x @ x)
    w = MODES[:, batch] / lengths[batch]
    w -= w.mean(axis=1, keepdims=True) + np.outer(w @ x / sxx, x)  # acts on the residuals
    w = np.vstack([w, x * math.sqrt(BATCHES / (n * sxx))])  # the slope, white = mode power
    gain = np.abs(np.fft.rfft(w, pad * n, axis=1)) ** 2
    f = np.arange(gain.shape[1]) / (pad * n)
    white = gain.sum(axis=1)
    exps, powers, slopes = [0.0], [white[:-1] / white[0]], [1.0]
    for beta in SHAPE_EXPONENTS:
        law = gain[:, 1:] @ f[1:] ** -beta
        law /= law[0]
        for floor in SHAPE_FLOORS:
            mix = floor * white / white[0] + (1.0 - floor) * law
            exps.append(beta)
            powers.append(mix[:-1])
            slopes.append(float(mix[-1]))
    return np.array(exps), np.array(powers), np.array(slopes)


_SHAPE_LAW, _SHAPE_POWER, _SHAPE_SLOPE = _shape_table()
# The exponent reported (noise_exponent) is the effective one at the slope's scale: that of
# the pure power law with the same slope variance. A steep law under a 70 % floor is mostly
# white where the slope lives, and white noise picks such shapes by chance.
_PURE_LAWS = np.r_[0, 1 + len(SHAPE_FLOORS) * np.arange(len(SHAPE_EXPONENTS))]  # floor 0
_SHAPE_BETA: Final = np.interp(
    np.log2(_SHAPE_SLOPE), np.log2(_SHAPE_SLOPE[_PURE_LAWS]), _SHAPE_LAW[_PURE_LAWS]
)
# Whittle, profiled over the scale c (P_k ~ c m_k chi-square(1)): the best shape minimizes
# mean(P_k / m_k) * geomean(m_k); c = mean(P_k / m_k) and the slope variance c V.
# A floor under a law is one parameter more: Akaike's 2 per parameter on the deviance
# (K log score), or white noise whose mode 2 comes out large by chance reads as a steep law
# under a floor 25 % of the time (9 % with it; slow-drift warnings key on the exponent).
_SHAPE_FLOOR: Final = np.r_[0.0, np.tile(SHAPE_FLOORS, len(SHAPE_EXPONENTS))]
_SHAPE_AIC: Final = np.exp(2.0 / _K.size * (_SHAPE_FLOOR > 0.0))
_SHAPE_GEO: Final = np.exp(np.log(_SHAPE_POWER).mean(axis=1))
_SHAPE_SCORE: Final = _SHAPE_AIC[:, None] * _SHAPE_GEO[:, None] / _SHAPE_POWER / _K.size
_SHAPE_VAR: Final = _SHAPE_SLOPE / _SHAPE_GEO / _SHAPE_AIC  # the slope variance per unit score
_SHAPE_HALF_WIDTH: Final = T_QUANTILE * (HW_BASE + HW_WIDEN * np.log2(_SHAPE_SLOPE))


def spectral_variance(
    modes: FloatArray, n: int, sxx: FloatArray | float, first_mode: int = 2
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Slope variance, noise exponent (the fitted shape's, effective at the slope's scale;
    0 white) and interval half-width factor (times the standard error) of n-sample windows
    from their mode amplitudes (BATCHES - 2, ...) and Sxx.
    first_mode > 2 fits one pure power law on modes first_mode.. only (a lack-of-fit test
    keeps the lowest modes, where a smooth misfit lives, out of the noise estimate)."""
    flat = modes.reshape(modes.shape[0], -1)
    shape = modes.shape[1:]
    if first_mode == 2:
        score = small_matmul(_SHAPE_SCORE, np.square(flat))  # (shapes, windows)
    else:
        k = _K[first_mode - 2 :]
        penalty = np.exp(-EXPONENTS * float(np.log(k).mean()))
        weights = k[None, :] ** EXPONENTS[:, None] / k.size * penalty[:, None]
        score = weights @ np.square(flat[first_mode - 2 :])
    low = score.min(axis=0)
    best = np.zeros(low.shape, np.intp)
    for g in range(1, score.shape[0]):  # argmin along axis 0, without its strided reduction
        best[score[g] == low] = g
    if first_mode == 2:
        var = (low * _SHAPE_VAR[best] * (n / BATCHES)).reshape(shape) / sxx
        return var, _SHAPE_BETA[best].reshape(shape), _SHAPE_HALF_WIDTH[best].reshape(shape)
    var = (low / penalty[best] * (n / BATCHES)).reshape(shape) / sxx
    beta = EXPONENTS[best].reshape(shape)
    return var, beta, T_QUANTILE * (BASE + WIDEN * beta)


def white_quantile(n: int) -> float:
    """The textbook interval's t quantile for a short window (n - 2 degrees of freedom)."""
    return student_t_ppf(0.5 + CONFIDENCE / 2.0, max(n - 2.0, 1.0))
