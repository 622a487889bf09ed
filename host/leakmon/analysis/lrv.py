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
  sample the noise spectrum from about 1/T to BATCHES/(2T). A power law A k^-beta is fitted to
  them by Whittle's likelihood over a grid of beta in [0, 2.5] (0 white or short memory, 1
  flicker, 2 random walk) and extrapolated to the slope's mode k = 1. White noise gives the
  textbook variance; long memory is extrapolated rather than missed.
- Everything needs only batch sums of t and y, so the one-shot fit, every sliding window
  (prefix sums) and the live tracker compute the same number to rounding.
- The interval is t(BATCHES - 3) times the standard error times BASE + WIDEN * beta: with
  14 modes the fitted exponent is uncertain, and the extrapolation with it (calibrated on
  Gaussian power-law noise of known covariance; validated on the noise battery).
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
EXPONENTS: Final = np.linspace(0.0, 2.5, 11)
# Interval: T_QUANTILE * (BASE + WIDEN * beta) times the standard error, calibrated on
# Gaussian power-law noise of exact covariance (beta 0 to 2), not on the battery: below 1 at
# beta 0 because the choice of exponent already errs high on white noise (the mean variance
# comes out 2.3x, the median 1.2x); growing with beta because 14 modes pin the exponent
# loosely and the extrapolation with it.
BASE: Final = 0.9
WIDEN: Final = 0.5
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
_POWER: Final = _K[None, :] ** EXPONENTS[:, None] / _K.size  # A_g = P . k^beta_g / K
# Whittle: maximizing -K log A_g + beta_g sum(log k) is minimizing A_g exp(-beta_g mean log k).
_PENALTY: Final = np.exp(-EXPONENTS * float(np.log(_K).mean()))
_MATMUL_FLOPS: Final = 200_000  # m * n * k per chunk; OpenBLAS threads above 262,144
_SCORE: Final = _POWER * _PENALTY[:, None]
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


def spectral_variance(
    modes: FloatArray, n: int, sxx: FloatArray | float, first_mode: int = 2
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Slope variance, fitted exponent and interval half-width factor (times the standard
    error) of n-sample windows from their mode amplitudes (BATCHES - 2, ...) and Sxx.
    first_mode > 2 fits the power law on modes first_mode.. only (a lack-of-fit test keeps
    the lowest modes, where a smooth misfit lives, out of the noise estimate)."""
    flat = modes.reshape(modes.shape[0], -1)
    if first_mode == 2:
        score = small_matmul(_SCORE, np.square(flat))  # (exponents, windows)
        penalty = _PENALTY
    else:
        k = _K[first_mode - 2 :]
        penalty = np.exp(-EXPONENTS * float(np.log(k).mean()))
        weights = k[None, :] ** EXPONENTS[:, None] / k.size * penalty[:, None]
        score = weights @ np.square(flat[first_mode - 2 :])
    low = score.min(axis=0)
    best = np.zeros(low.shape, np.intp)
    for g in range(1, EXPONENTS.size):  # argmin along axis 0, without its strided reduction
        best[score[g] == low] = g
    shape = modes.shape[1:]
    var = (low / penalty[best] * (n / BATCHES)).reshape(shape) / sxx
    beta = EXPONENTS[best].reshape(shape)
    return var, beta, T_QUANTILE * (BASE + WIDEN * beta)


def white_quantile(n: int) -> float:
    """The textbook interval's t quantile for a short window (n - 2 degrees of freedom)."""
    return student_t_ppf(0.5 + CONFIDENCE / 2.0, max(n - 2.0, 1.0))
