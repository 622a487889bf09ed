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
- The spectrum fitted to them is white, a power law f^-beta (SHAPE_EXPONENTS), or such a
  law under a white floor holding SHAPE_FLOORS of mode 2's power, by Whittle's likelihood
  profiled over the scale, on that grid of shapes. One pure power law (the estimator before
  2026-12-01) cannot bend: a random walk standing above the white noise at modes 2..5 and
  under it above was fitted as a shallow law and extrapolated short (a walk holding 70 % of
  mode 2's power: coverage 76 %). Each shape's expected mode powers and slope variance are
  its exact spectral integrals over the mode and slope weights (`_shape_table`), not a
  k^-beta extrapolation to "mode 1": once its powers are fitted, the model itself says what
  the slope's variance is.
- The reported noise exponent is the best pure law's (0 white): a floor under a steep law
  also fits white noise whose mode 2 comes out large by chance (a quarter of white
  windows), and the slow-drift warning keyed on the exponent must not fire there (with the
  pure laws: 1 white window in 10, as before).
- Everything needs only batch sums of t and y, so the one-shot fit, every sliding window
  (prefix sums) and the live tracker compute the same number to rounding.
- The interval is T_QUANTILE * (HW_BASE + HW_WIDEN * min(log2 V, HW_CAP)) standard errors,
  where V is the fitted shape's slope variance over white noise of the same mode-2 power
  (V = 1 white, 1.7 flicker, 3.9 random walk): the more the variance rests on an
  extrapolation from 14 chi-square(1) powers to the slope's own scale, the wider. HW_BASE =
  0.9 keeps a window that looks white exactly as wide as before (narrower ones measured more
  misses on the mass-balance test's plant); HW_WIDEN = 2 HW_BASE (steeper buys little
  coverage for much width). Past V = 2 the slow component stands over many modes and its
  steepness is seen: windows fitted that steep were covered 100 %, and the cap takes a
  third off their width at no measured cost in coverage. White noise comes out at 96-96.5 %
  (6000 drawn records, seeds apart from the CI test's and the bench's).
- Hidden in one window, in part: a random walk or flicker can hide under the white floor
  at modes 2..15 (each mode's power is one chi-square(1) draw: a mode-2 power ten times the
  floor on average comes out below it a quarter of the time) and still dominate at the
  slope's own scale. Windows that look white then hold a walk's slope in about 75 % of
  cases, against 95 % for white noise, and widening white-looking windows until white noise
  reaches 97 % does not bring random walk to 93 % (bench/RESULTS.md, 2026-12-01). The best
  rule on these modes that never gives a window less than white noise's textbook interval
  (it even knows the family) covers at most 91 % of short random-walk records with white
  noise at 97 % (bench/coverage_frontier.py); this estimator gives white-looking windows 0.9
  of it, so that frontier does not bound it (88 % with white at 95.2 %, where the frontier
  is 76 %), and coverage alone cannot bound rules that narrow (bench/RESULTS.md,
  2026-12-03). Where the window shows the slow component (exponent > 0) coverage is 95-99 %.
Below MIN_SAMPLES samples there is too little to see correlation; the textbook white-noise
interval is used and noise_exponent is NaN.
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import Final

import numpy as np
import numpy.typing as npt
from numpy.lib.stride_tricks import as_strided

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
# The slope's path (first_mode = 2): white, a power law f^-beta, or the law under a white
# floor holding SHAPE_FLOORS of mode 2's power (per-window cost in
# bench/RESULTS.md, 2026-12-01); three floors (0.1, 0.4, 0.7) cover a walk 0.5 points more
# for 1.3x the cost; finer grids measured no better.
SHAPE_EXPONENTS: Final = (0.5, 1.0, 1.5, 2.0, 2.5)
SHAPE_FLOORS: Final = (0.15, 0.5)
# No f^-2.5 under a floor: that shape is "mode 2 alone is large", which white noise shows by
# chance (13 % of white windows took it, with a slope variance 4-6x white's); a walk (2.0)
# under a floor is what the floors are for. 14 shapes.
FLOORED_MAX_EXPONENT: Final = 2.0
# Interval: T_QUANTILE * (HW_BASE + HW_WIDEN * min(log2 V, HW_CAP)) standard errors (see the
# module docstring): a white-looking window as wide as before, wider the further the slope's
# variance is extrapolated.
HW_BASE: Final = 0.9
HW_WIDEN: Final = 1.8
HW_CAP: Final = 1.0  # log2 V: the widening stops growing at twice the white variance
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
    threshold, so it never wakes threads that spin (on a busy machine they cost 3x the CPU).
    The whole chunks go as one batched matmul over (chunks, rows, step) views, which numpy
    loops over in C, one BLAS call each (the same calls as a Python loop, 15 % faster)."""
    out = np.empty((a.shape[0], b.shape[1])) if out is None else out
    step = max(1, _MATMUL_FLOPS // max(a.size, 1))
    whole = b.shape[1] // step * step
    if whole:
        np.matmul(a, _column_chunks(b[:, :whole], step), out=_column_chunks(out[:, :whole], step))
    if whole < b.shape[1]:
        np.matmul(a, b[:, whole:], out=out[:, whole:])
    return out


def _column_chunks(x: FloatArray, step: int) -> FloatArray:
    """(columns / step, rows, step) view of x's column chunks (columns a multiple of step)."""
    rows_stride, col_stride = x.strides
    return as_strided(x, (x.shape[1] // step, x.shape[0], step),
                      (step * col_stride, rows_stride, col_stride))  # fmt: skip


@lru_cache(maxsize=64)
def batch_lengths(n: int) -> FloatArray:
    """Samples in each of the BATCHES batches of an n-sample window (read-only; a live
    gateway asks for the same few n at every estimate)."""
    out = np.diff(batch_edges(n)).astype(np.float64)
    out.flags.writeable = False
    return out


def modes_of_sums(resid_sums: FloatArray, n: int) -> FloatArray:
    """Cosine-mode amplitudes (BATCHES - 2, ...) of the batch means, from the residuals'
    batch sums (BATCHES, ...) of n-sample windows."""
    means = resid_sums.reshape(BATCHES, -1) / batch_lengths(n)[:, None]
    return (MODES @ means).reshape((BATCHES - 2,) + resid_sums.shape[1:])


def edge_modes(n: int) -> FloatArray:
    """(BATCHES - 2, BATCHES + 1): the modes as weights on prefix sums at the batch edges,
    so that modes = edge_modes(n) @ (prefix sums at the edges) (the sliding path)."""
    w = MODES / batch_lengths(n)
    out = np.zeros((MODES.shape[0], BATCHES + 1))
    out[:, 1:] += w
    out[:, :-1] -= w
    return out


def _shape_table(n: int = 256, pad: int = 32) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
    """(law exponent, floor, expected mode powers (BATCHES - 2), slope variance) of each
    spectral shape: white, the pure laws (floor 0) in SHAPE_EXPONENTS order, then the laws
    under each of SHAPE_FLOORS. Mode 2's power is 1 and the slope's variance is in units of
    mode power times BATCHES / (n Sxx) (white noise: every entry 1). Exact spectral
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
    white = gain.sum(axis=1) / gain[0].sum()
    laws = [gain[:, 1:] @ f[1:] ** -beta for beta in SHAPE_EXPONENTS]
    rows = [(0.0, 0.0, white)]
    for floor in (0.0,) + SHAPE_FLOORS:
        rows += [(beta, floor, floor * white + (1.0 - floor) * law / law[0])
                 for beta, law in zip(SHAPE_EXPONENTS, laws)
                 if floor == 0.0 or beta <= FLOORED_MAX_EXPONENT]  # fmt: skip
    mix = np.array([r[2] for r in rows])
    return np.array([r[0] for r in rows]), np.array([r[1] for r in rows]), mix[:, :-1], mix[:, -1]


_SHAPE_LAW, _SHAPE_FLOOR, _SHAPE_POWER, _SHAPE_SLOPE = _shape_table()
_PURE: Final = 1 + len(SHAPE_EXPONENTS)  # rows 0.._PURE-1: white and the pure laws
# Whittle, profiled over the scale c (P_k ~ c m_k chi-square(1)): the best shape minimizes
# mean(P_k / m_k) * geomean(m_k); c = mean(P_k / m_k) and the slope variance c V.
_SHAPE_GEO: Final = np.exp(np.log(_SHAPE_POWER).mean(axis=1))
_SHAPE_SCORE: Final = _SHAPE_GEO[:, None] / _SHAPE_POWER / _K.size
_SHAPE_VAR: Final = _SHAPE_SLOPE / _SHAPE_GEO  # the slope variance per unit score
_SHAPE_HALF_WIDTH: Final = T_QUANTILE * (HW_BASE + HW_WIDEN * np.minimum(np.log2(_SHAPE_SLOPE), HW_CAP))


_ROW: Final = np.arange(max(len(_SHAPE_LAW), EXPONENTS.size), dtype=np.uint8)[:, None]


def _last_argmin(score: FloatArray, low: FloatArray) -> npt.NDArray[np.uint8]:
    """The last row of score (rows, windows) equal to low, its minimum over the rows, in each
    column; 0 where none is (NaN). Exact ties (all modes zero) take the last row. Each row's
    index where it equals low, maximized over rows, all in uint8 (64 lanes to a vector): an
    argmin along axis 0 is a strided reduction, and a loop of masked assignments per row
    cost twice this (bench/RESULTS.md, 2026-12-01)."""
    hit = np.equal(score, low).view(np.uint8)
    hit *= _ROW[: score.shape[0]]
    out: npt.NDArray[np.uint8] = hit.max(axis=0)
    return out


def spectral_variance(
    modes: FloatArray, n: int, sxx: FloatArray | float, first_mode: int = 2
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Slope variance, noise exponent and interval half-width factor (times the standard
    error) of n-sample windows from their mode amplitudes (BATCHES - 2, ...) and Sxx.
    The variance and interval come from the best shape, floors included; the exponent is the
    best pure power law's (0 white): a floor under a steep law fits white noise whose mode 2
    comes out large by chance (a quarter of white windows), and the slow-drift warning that
    keys on the exponent must not fire there (with pure laws only: 1 in 10).
    first_mode > 2 fits one pure power law on modes first_mode.. only (a lack-of-fit test
    keeps the lowest modes, where a smooth misfit lives, out of the noise estimate)."""
    flat = modes.reshape(modes.shape[0], -1)
    shape = modes.shape[1:]
    if first_mode == 2:
        score = small_matmul(_SHAPE_SCORE, np.square(flat))  # (shapes, windows)
        pure = score[:_PURE].min(axis=0)
        low = np.minimum(pure, score[_PURE:].min(axis=0))
        law, best = _last_argmin(score[:_PURE], pure), _last_argmin(score, low)
        var = (low * np.take(_SHAPE_VAR, best) * (n / BATCHES)).reshape(shape) / sxx
        return (var, np.take(_SHAPE_LAW, law).reshape(shape),
                np.take(_SHAPE_HALF_WIDTH, best).reshape(shape))  # fmt: skip
    weights, penalty = _law_weights(first_mode)
    score = weights @ np.square(flat[first_mode - 2 :])
    low = score.min(axis=0)
    best = _last_argmin(score, low)
    var = (low / penalty[best] * (n / BATCHES)).reshape(shape) / sxx
    beta = EXPONENTS[best].reshape(shape)
    return var, beta, T_QUANTILE * (BASE + WIDEN * beta)


@lru_cache(maxsize=8)
def _law_weights(first_mode: int) -> tuple[FloatArray, FloatArray]:
    """(weights (EXPONENTS, modes), penalty (EXPONENTS,)) of the pure power laws' profile
    Whittle score on modes first_mode..BATCHES-1."""
    k = _K[first_mode - 2 :]
    penalty = np.exp(-EXPONENTS * float(np.log(k).mean()))
    weights = k[None, :] ** EXPONENTS[:, None] / k.size * penalty[:, None]
    weights.flags.writeable = penalty.flags.writeable = False
    return weights, penalty


def white_quantile(n: int) -> float:
    """The textbook interval's t quantile for a short window (n - 2 degrees of freedom)."""
    return student_t_ppf(0.5 + CONFIDENCE / 2.0, max(n - 2.0, 1.0))
