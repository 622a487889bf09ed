"""The sliding path and lrv's spectral fit against references that do not share their tricks:
a plain per-window choice of the spectral shape, and figures frozen from the code before the
fast path (every field's sum over every window, and how many windows took each shape)."""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt
import pytest

from leakmon.analysis import lrv
from leakmon.analysis.slope import SlopeFit, sliding_slopes

FloatArray = npt.NDArray[np.float64]
FIELDS = tuple(SlopeFit.__dataclass_fields__)


def _plain_choice(score: FloatArray, rows: range) -> int:
    """The last of `rows` with the smallest score (argmin's first, scanned from the end);
    the first row where every score is NaN."""
    values = [score[g] for g in rows]
    if all(math.isnan(v) for v in values):
        return rows[0]
    low = min(v for v in values if not math.isnan(v))
    return max(g for g in rows if score[g] == low)


def _modes(windows: int, seed: int) -> FloatArray:
    """Mode amplitudes of white, steep (a walk's k^-2 powers) and floored spectra, each
    window its own scale, plus windows where every shape ties (all zero, all infinite) and
    NaN windows."""
    rng = np.random.default_rng(seed)
    k = np.arange(2, lrv.BATCHES, dtype=np.float64)[:, None]
    colour = rng.choice([0.0, 1.0, 2.0, 3.0], windows)
    floor = rng.choice([0.0, 0.3, 0.8], windows)
    power = floor + (1.0 - floor) * k ** -colour
    modes = rng.normal(size=(k.size, windows)) * np.sqrt(power) * 10.0 ** rng.uniform(-6, 3, windows)
    modes[:, :3] = 0.0
    modes[:, 3:5] = np.inf
    modes[:, 5:7] = np.nan
    modes[4, 7] = np.nan  # one NaN mode spoils its window only
    return modes


@pytest.mark.parametrize("seed", [1, 2])
def test_spectral_variance_chooses_the_shape_a_plain_loop_chooses(seed: int) -> None:
    modes = _modes(5000, seed)
    n = 600
    sxx = np.random.default_rng(seed + 10).uniform(0.5, 2.0, modes.shape[1])
    var, beta, half = lrv.spectral_variance(modes, n, sxx)
    score = lrv._SHAPE_SCORE @ np.square(modes)
    pure, every = range(lrv._PURE), range(lrv._SHAPE_SCORE.shape[0])
    for i in range(modes.shape[1]):
        best, law = _plain_choice(score[:, i], every), _plain_choice(score[:, i], pure)
        assert beta[i] == lrv._SHAPE_LAW[law], f"window {i}: exponent"
        assert half[i] == lrv._SHAPE_HALF_WIDTH[best], f"window {i}: interval factor"
        want = score[best, i] * lrv._SHAPE_VAR[best] * (n / lrv.BATCHES) / sxx[i]
        np.testing.assert_allclose(var[i], want, rtol=1e-13, err_msg=f"window {i}")
    assert np.all(beta[:3] == 2.5) and np.all(half[:3] == lrv._SHAPE_HALF_WIDTH[-1])  # ties: last
    assert np.all(var[:3] == 0.0) and np.all(np.isinf(var[3:5])) and np.all(np.isnan(var[5:8]))
    # Any layout of windows gives the same choices and, to BLAS's rounding (a one-column
    # product is not a wide one's column), the same variance; the one-shot fit passes one.
    cube = lrv.spectral_variance(modes[:, :4000].reshape(-1, 40, 100), n, sxx[:4000].reshape(40, 100))
    for i in (8, 9, 10, 3999):
        one = lrv.spectral_variance(modes[:, i], n, float(sxx[i]))
        assert one[0].shape == () and one[1] == beta[i] and one[2] == half[i]
        assert one[0] == pytest.approx(var[i], rel=1e-14)
    np.testing.assert_allclose(cube[0].reshape(-1), var[:4000], rtol=1e-14)
    np.testing.assert_array_equal(cube[1].reshape(-1), beta[:4000])
    np.testing.assert_array_equal(cube[2].reshape(-1), half[:4000])


def test_spectral_variance_lack_of_fit_path_chooses_as_a_plain_loop() -> None:
    # first_mode > 2 (analysis/decay.py): one pure power law over EXPONENTS on modes 5.. .
    modes = _modes(3000, 3)
    first = 5
    var, beta, _ = lrv.spectral_variance(modes, 600, 1.0, first)
    k = np.arange(first, lrv.BATCHES, dtype=np.float64)
    penalty = np.exp(-lrv.EXPONENTS * np.log(k).mean())
    weights = k[None, :] ** lrv.EXPONENTS[:, None] / k.size * penalty[:, None]
    score = weights @ np.square(modes[first - 2 :])
    for i in range(modes.shape[1]):
        best = _plain_choice(score[:, i], range(lrv.EXPONENTS.size))
        assert beta[i] == lrv.EXPONENTS[best], f"window {i}"
        want = score[best, i] / penalty[best] * (600 / lrv.BATCHES)
        np.testing.assert_allclose(var[i], want, rtol=1e-13, err_msg=f"window {i}")


def _mixed_record(n: int, seed: int) -> tuple[FloatArray, FloatArray]:
    """Jittered 10 Hz times; white noise, then white plus a random walk, then white plus a
    slow AR(1): windows that take every spectral shape."""
    rng = np.random.default_rng(seed)
    t = 1e6 + 0.1 * np.arange(n) + rng.uniform(-0.01, 0.01, n)
    third = n // 3
    y = 340.0 - 2e-3 * (t - t[0]) + rng.normal(0, 0.02, n)
    y[third : 2 * third] += np.cumsum(rng.normal(0, 0.002, third))
    e = rng.normal(0, 0.01, n - 2 * third)
    ar = np.zeros_like(e)
    for i in range(1, e.size):
        ar[i] = 0.97 * ar[i - 1] + e[i]
    y[2 * third :] += ar
    return t, y


# Frozen from sliding.py and lrv.py at commit e585fd7 (before the uint8 shape choice, the
# edge classes and the batched matmuls): per window length, the exact sum of |field| over all
# windows (as float.hex), how many windows took each noise exponent, and how many took each
# interval factor (the half-width over the standard error, to 6 decimals). A window whose
# shape changed would move a sum by ~1e-5 of itself, and the counts.
FROZEN = {
    600: ({"slope": "0x1.ef85456d75e10p+6", "intercept": "0x1.2eaf73d8c7e59p+24",
           "stderr": "0x1.5a82a56c702c4p+5", "ci95_low": "0x1.6292381787c36p+8",
           "ci95_high": "0x1.8e41f81bc1e53p+7", "residual_sigma": "0x1.ab2cec475e226p+10",
           "n_eff": "0x1.c666c8b4ea560p+22", "noise_exponent": "0x1.bb48000000000p+15",
           "t_mid_s": "0x1.bbe64e43b2bfcp+35"},
          {0.0: 13554, 0.5: 11378, 1.0: 12900, 1.5: 12398, 2.0: 6747, 2.5: 2424},
          {1.94434: 10197, 2.60973: 1629, 3.032597: 1598, 3.204503: 4998, 3.588275: 193,
           4.506364: 1044, 4.858065: 9336, 4.972409: 265, 5.832995: 30141}),
    100: ({"slope": "0x1.8d3144ecedf13p+7", "intercept": "0x1.313bcbff382c8p+24",
           "stderr": "0x1.b95df41a244acp+7", "ci95_low": "0x1.478c567858421p+10",
           "ci95_high": "0x1.142627d57eb9dp+10", "residual_sigma": "0x1.66a5b915f6371p+10",
           "n_eff": "0x1.0db9638529e3ap+21", "noise_exponent": "0x1.5437000000000p+15",
           "t_mid_s": "0x1.bfa2d74c8faf2p+35"},
          {0.0: 21749, 0.5: 12551, 1.0: 10741, 1.5: 8251, 2.0: 4736, 2.5: 1873},
          {1.94434: 17553, 2.60973: 1817, 3.032597: 1694, 3.204503: 4394, 3.588275: 270,
           4.506364: 1210, 4.858065: 6767, 4.972409: 460, 5.832995: 25736}),
    97: ({"slope": "0x1.93cf6d7e96811p+7", "intercept": "0x1.313fb60a0bc9fp+24",
          "stderr": "0x1.bd6ab2cf1ea91p+7", "ci95_low": "0x1.497883855cdf5p+10",
          "ci95_high": "0x1.15e059ccb340dp+10", "residual_sigma": "0x1.6583b425c35afp+10",
          "n_eff": "0x1.092f355170805p+21", "noise_exponent": "0x1.4e99000000000p+15",
          "t_mid_s": "0x1.bfa894898adafp+35"},
         {0.0: 22062, 0.5: 12726, 1.0: 10453, 1.5: 8287, 2.0: 4716, 2.5: 1660},
         {1.94434: 17720, 2.60973: 1837, 3.032597: 1718, 3.204503: 4485, 3.588275: 267,
          4.506364: 1228, 4.858065: 6491, 4.972409: 469, 5.832995: 25689}),
    64: ({"slope": "0x1.0226889a00c89p+8", "intercept": "0x1.316ac44976d0ep+24",
          "stderr": "0x1.1d49a75e5c386p+8", "ci95_low": "0x1.8da2a245329b8p+10",
          "ci95_high": "0x1.585d386110a9fp+10", "residual_sigma": "0x1.56c6d45fab1dfp+10",
          "n_eff": "0x1.9005bb993572fp+20", "noise_exponent": "0x1.1600000000000p+15",
          "t_mid_s": "0x1.bfe7b628550c2p+35"},
         {0.0: 25142, 0.5: 13555, 1.0: 10425, 1.5: 7210, 2.0: 2892, 2.5: 713},
         {1.94434: 20219, 2.60973: 2032, 3.032597: 1832, 3.204503: 4723, 3.588275: 296,
          4.506364: 1306, 4.858065: 6101, 4.972409: 546, 5.832995: 22882}),
}  # fmt: skip


def test_sliding_outputs_match_figures_frozen_before_the_fast_path() -> None:
    t, y = _mixed_record(60_000, 11)
    for w, (sums, exponents, factors) in FROZEN.items():
        got = sliding_slopes(t, y, w)
        for f, want in sums.items():
            total = math.fsum(np.abs(getattr(got, f)))
            assert total == pytest.approx(float.fromhex(want), rel=1e-12), f"window {w}: {f}"
        values, counts = np.unique(got.noise_exponent, return_counts=True)
        assert dict(zip(values.tolist(), counts.tolist())) == exponents, f"window {w}"
        half = np.round((got.ci95_high - got.slope) / got.stderr, 6)
        values, counts = np.unique(half, return_counts=True)
        assert dict(zip(values.tolist(), counts.tolist())) == factors, f"window {w}"
