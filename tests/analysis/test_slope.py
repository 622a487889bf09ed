"""The slope estimator: exactness against references, and honest uncertainty by simulation."""

from __future__ import annotations

import math
from statistics import NormalDist

import numpy as np
import numpy.typing as npt
import pytest
from numpy.lib.stride_tricks import sliding_window_view

from leakmon.analysis import lrv
from leakmon.analysis.fit import fit_rows
from leakmon.analysis.slope import (
    IncrementalSlope,
    SlopeFit,
    fit_slope,
    sliding_slopes,
    student_t_ppf,
)

FloatArray = npt.NDArray[np.float64]
FIELDS = tuple(SlopeFit.__dataclass_fields__)


# ---------------------------------------------------------------- Student's t
def t_cdf(q: float, dof: float) -> float:
    """Independent reference: integrate the density after s = sqrt(dof) tan(phi).

    F(q) = 1/2 + C sqrt(dof) * integral_0^atan(q/sqrt(dof)) cos(phi)^(dof-1) dphi, where the
    integrand is smooth and bounded; composite Simpson with 20,000 intervals.
    """
    log_c = math.lgamma((dof + 1) / 2) - math.lgamma(dof / 2) - 0.5 * math.log(dof * math.pi)
    theta = math.atan(abs(q) / math.sqrt(dof))
    phi = np.linspace(0.0, theta, 20_001)
    f = np.cos(phi) ** (dof - 1.0)
    simpson = (f[0] + f[-1] + 4 * f[1:-1:2].sum() + 2 * f[2:-1:2].sum()) * (theta / 20_000) / 3
    return 0.5 + math.copysign(math.exp(log_c) * math.sqrt(dof) * simpson, q)


def t_pdf(q: float, dof: float) -> float:
    log_c = math.lgamma((dof + 1) / 2) - math.lgamma(dof / 2) - 0.5 * math.log(dof * math.pi)
    return math.exp(log_c - (dof + 1) / 2 * math.log1p(q * q / dof))


@pytest.mark.parametrize("p", [0.6, 0.9, 0.975, 0.995, 0.9995])
def test_student_t_ppf_inverts_the_cdf(p: float) -> None:
    dofs = np.array([1, 1.02, 1.3, 1.5, 2, 2.5, 2.97, 3, 3.7, 4, 5, 8.5, 12, 19.99, 20, 20.01,
                     30, 120, 499, 501, 1e3, 1e5])  # fmt: skip
    q = student_t_ppf(p, dofs)
    for dof, qi in zip(dofs, q):
        # Error in p, turned into a relative error of the quantile.
        rel = abs(t_cdf(qi, dof) - p) / (t_pdf(qi, dof) * qi)
        limit = 1e-9 if p <= 0.995 else 1e-8  # the Simpson reference's own accuracy
        assert rel < limit, f"p={p} dof={dof}: q={qi}, relative error {rel:.2e}"


def test_student_t_ppf_published_values() -> None:
    table = {1: 12.7062047, 2: 4.30265273, 3: 3.18244631, 4: 2.77644511, 10: 2.22813885,
             30: 2.04227246, 100: 1.98397152}  # fmt: skip
    got = student_t_ppf(0.975, np.array(list(table), dtype=float))
    np.testing.assert_allclose(got, list(table.values()), rtol=1e-8)
    assert student_t_ppf(0.995, 5.0) == pytest.approx(4.03214298, rel=1e-8)


def test_student_t_ppf_shapes_symmetry_and_limits() -> None:
    assert isinstance(student_t_ppf(0.975, 7.0), float)
    assert student_t_ppf(0.5, 2.5) == 0.0
    dofs = np.array([1.0, 1.7, 2.0, 2.4, 3.0, 6.5, 40.0])
    np.testing.assert_allclose(student_t_ppf(0.1, dofs), -student_t_ppf(0.9, dofs), rtol=1e-12)
    # Array p runs the direct Newton solve, scalar p the cached interpolant: they must agree.
    p = np.full(dofs.shape, 0.99)
    np.testing.assert_allclose(student_t_ppf(p, dofs), student_t_ppf(0.99, dofs), rtol=1e-10)
    z = NormalDist().inv_cdf(0.975)
    assert student_t_ppf(0.975, math.inf) == pytest.approx(z, rel=1e-12)
    assert student_t_ppf(0.975, 1e9) == pytest.approx(z, rel=1e-8)
    assert np.isnan(student_t_ppf(0.975, np.array([np.nan]))[0])
    # Monotone in dof, over the boundaries between branches.
    fine = np.linspace(1.0, 40.0, 4001)
    assert np.all(np.diff(student_t_ppf(0.975, fine)) < 0)


def test_student_t_tables_match_the_exact_solve() -> None:
    """The fast path (series in 1/dof, Chebyshev for dof < 20) against Newton on the CDF."""
    from leakmon.analysis.student_t import exact_t_ppf

    dofs = np.concatenate([np.linspace(1.0, 25.0, 300), np.geomspace(25.0, 1e8, 200)])
    for p in (0.6, 0.9, 0.975, 0.995):
        got, want = student_t_ppf(p, dofs), exact_t_ppf(p, dofs)
        np.testing.assert_allclose(got, want, rtol=2e-12, err_msg=str(p))
        one = [student_t_ppf(p, float(d)) for d in dofs[::37]]
        np.testing.assert_allclose(one, got[::37], rtol=1e-14)


@pytest.mark.parametrize(("p", "dof"), [(0.0, 3.0), (1.0, 3.0), (0.975, 0.5), (1.2, 10.0)])
def test_student_t_ppf_rejects_bad_arguments(p: float, dof: float) -> None:
    with pytest.raises(ValueError):
        student_t_ppf(p, dof)


# ---------------------------------------------------------------- fit_slope
def expected_fit(t: FloatArray, y: FloatArray) -> dict[str, float]:
    """The recipe of analysis/lrv.py, written out independently, one window, plain loops:
    16 equal batches, cosine modes k = 2..15 of the residual batch means (made orthogonal to
    a constant and a line), a spectral shape (white floor + power law) fitted to their powers
    by Whittle's likelihood profiled over the scale, the slope's variance from that shape.
    The shapes' expected powers come from lrv's table (checked against exact covariances in
    test_lrv_shapes_match_exact_covariances)."""
    slope, intercept0 = np.polyfit(t - t[0], y, 1)
    r = y - (intercept0 + slope * (t - t[0]))
    r = r - r.mean()
    n = t.size
    sxx = float(np.sum((t - t.mean()) ** 2))
    sigma = math.sqrt(float(r @ r) / (n - 2))
    if n < 32:
        se, beta, half = sigma / math.sqrt(sxx), math.nan, 0.0
        half = student_t_ppf(0.975, n - 2.0) * se
    else:
        edges = [(j * n + 8) // 16 for j in range(17)]
        means = [float(np.mean(r[edges[j] : edges[j + 1]])) for j in range(16)]
        jj = np.arange(16) + 0.5
        basis = [np.ones(16) / 4.0, (jj - 8) / np.linalg.norm(jj - 8)]
        powers = []
        for k in range(2, 16):
            u = np.cos(math.pi * k * jj / 16)
            for v in basis:
                u = u - (u @ v) * v
            powers.append(float(u @ means / np.linalg.norm(u)) ** 2)
        best = law = None
        for g in range(lrv._SHAPE_POWER.shape[0]):
            m = lrv._SHAPE_POWER[g]
            c = sum(p / mk for p, mk in zip(powers, m)) / 14
            ll = -14 * math.log(c) - sum(math.log(mk) for mk in m)
            if best is None or ll > best[0]:
                best = (ll, c, g)
            if lrv._SHAPE_FLOOR[g] == 0.0 and (law is None or ll > law[0]):
                law = (ll, float(lrv._SHAPE_LAW[g]))  # the exponent: the best pure law's
        _, c, g = best
        v = float(lrv._SHAPE_SLOPE[g])
        beta = law[1]
        se = math.sqrt(c * v * n / 16 / sxx)
        half = student_t_ppf(0.975, 13.0) * (lrv.HW_BASE + lrv.HW_WIDEN * min(math.log2(v), 1.0)) * se
    n_eff = min(n * sigma**2 / sxx / se**2, n) if se > 0 else float(n)
    return dict(slope=slope, intercept=float(y.mean()), stderr=se, ci95_low=slope - half,
                ci95_high=slope + half, residual_sigma=sigma, n=n, n_eff=n_eff,
                noise_exponent=beta, t_mid_s=float(t.mean()), t_end_s=float(t[-1]))  # fmt: skip


@pytest.mark.parametrize("seed", range(8))
def test_fit_slope_matches_the_textbook(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = int(rng.integers(5, 400))
    t = 1e6 + np.cumsum(rng.uniform(0.05, 0.3, n))
    noise = np.cumsum(rng.normal(size=n)) * 0.05 if seed % 2 else rng.normal(size=n)
    y = 341.0 - 0.02 * (t - t[0]) + noise  # odd seeds: a random walk (long memory)
    got, want = fit_slope(t, y), expected_fit(t, y)
    for field in FIELDS:
        assert getattr(got, field) == pytest.approx(want[field], rel=1e-8, abs=1e-12, nan_ok=True), field
    assert got.ci95_low < got.slope < got.ci95_high


def test_fit_slope_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="at least 3"):
        fit_slope([0.0, 1.0], [1.0, 2.0])
    with pytest.raises(ValueError, match="equal length"):
        fit_slope([0.0, 1.0, 2.0], [1.0, 2.0])
    with pytest.raises(ValueError, match="one time"):
        fit_slope([5.0, 5.0, 5.0], [1.0, 2.0, 3.0])


def test_fit_slope_of_an_exact_line() -> None:
    t = np.linspace(0.0, 10.0, 11)
    fit = fit_slope(t, 2.0 - 0.25 * t)
    assert fit.slope == pytest.approx(-0.25, rel=1e-14)
    assert fit.stderr < 1e-14 and fit.residual_sigma < 1e-13


# ---------------------------------------------------------------- sliding_slopes
@pytest.mark.parametrize(("window_n", "t_offset_s"), [(3, 0.0), (5, 1e6), (64, 1e6), (301, 2e9)])
def test_sliding_slopes_equals_fit_slope_on_every_window(window_n: int, t_offset_s: float) -> None:
    rng = np.random.default_rng(window_n)
    n = 1500
    t = t_offset_s + np.cumsum(rng.uniform(0.5, 1.5, n))
    y = 340.0 - 0.03 * (t - t[0]) + 2.0 * np.sin((t - t[0]) / 200) + rng.normal(0, 0.3, n)
    got = sliding_slopes(t, y, window_n)
    assert got.slope.shape == (n - window_n + 1,)
    fits = [fit_slope(t[i : i + window_n], y[i : i + window_n]) for i in range(got.slope.size)]
    want = {f: np.array([getattr(fit, f) for fit in fits]) for f in FIELDS}
    # Slope: relative to its own size, or to its standard error where it crosses zero.
    scale = np.maximum(np.abs(want["slope"]), want["stderr"])
    err = np.abs(got.slope - want["slope"]) / scale
    assert err.max() < 1e-9, f"worst slope error {err.max():.2e} (relative)"
    # An independent reference on a subset: numpy.polyfit per window.
    for i in range(0, n - window_n + 1, 97):
        ref = np.polyfit(t[i : i + window_n] - t[i], y[i : i + window_n], 1)[0]
        assert abs(got.slope[i] - ref) <= 1e-9 * scale[i]
    for f in ("intercept", "t_mid_s", "t_end_s"):
        np.testing.assert_allclose(getattr(got, f), want[f], rtol=1e-13, err_msg=f)
    # Spreads: 1e-9 relative, or 1e-8 of their typical size where a window's residuals are
    # nearly zero by chance (3-point windows): sums of squares cannot resolve those further.
    for f in ("stderr", "residual_sigma"):
        np.testing.assert_allclose(getattr(got, f), want[f], rtol=1e-9,
                                   atol=1e-8 * np.median(want[f]), err_msg=f)  # fmt: skip
    half = want["ci95_high"] - want["slope"]
    np.testing.assert_allclose(got.ci95_high - got.slope, half, rtol=1e-8,
                               atol=1e-8 * np.median(half))  # fmt: skip
    np.testing.assert_array_equal(got.noise_exponent, want["noise_exponent"])
    np.testing.assert_allclose(got.n_eff, want["n_eff"], rtol=1e-6)
    assert np.all(got.n == window_n)
    # Threads split the passes; the result must not depend on how many.
    one = sliding_slopes(t, y, window_n, workers=1)
    for f in FIELDS:
        np.testing.assert_array_equal(getattr(one, f), getattr(got, f), err_msg=f)


def _jittered_record(n: int, seed: int) -> tuple[FloatArray, FloatArray]:
    rng = np.random.default_rng(seed)
    t = 1e6 + 0.1 * np.arange(n) + rng.uniform(-0.01, 0.01, n)
    y = 340.0 - 2e-3 * (t - t[0]) + 0.05 * np.sin((t - t[0]) / 30.0) + rng.normal(0, 0.02, n)
    return t, y


def test_sliding_slopes_over_many_passes_equals_fit_rows() -> None:
    # Several passes, a last partial one with fewer rows, jittered times and a window that
    # 16 does not divide (unequal batches): every window against the one-window fit.
    w = 100
    t, y = _jittered_record(40_000, 5)
    got = sliding_slopes(t, y, w)
    want = fit_rows(sliding_window_view(t, w), sliding_window_view(y, w))
    scale = np.maximum(np.abs(want.slope), want.stderr)
    for f in ("slope", "ci95_low", "ci95_high"):
        err = np.abs(getattr(got, f) - getattr(want, f)) / scale
        assert err.max() < 1e-9, f"{f}: worst error {err.max():.2e} of the slope or its error"
    for f in ("stderr", "residual_sigma", "n_eff", "intercept", "t_mid_s", "t_end_s"):
        np.testing.assert_allclose(getattr(got, f), getattr(want, f), rtol=1e-9, err_msg=f)
    np.testing.assert_array_equal(got.noise_exponent, want.noise_exponent)
    # Two threads share the passes out; each has its own buffers, and the result is the same.
    two = sliding_slopes(t, y, w, workers=2)
    for f in FIELDS:
        np.testing.assert_array_equal(getattr(two, f), getattr(got, f), err_msg=f)


def test_a_nan_sample_spoils_only_its_own_row() -> None:
    w, p = 100, 20_000
    t, y = _jittered_record(40_000, 6)
    clean = sliding_slopes(t, y, w)
    y[p] = np.nan
    got = sliding_slopes(t, y, w)
    start = np.arange(got.slope.size)
    assert np.all(np.isnan(got.slope[(start <= p) & (start + w > p)]))
    # Windows of the rows before and after the (at most two) rows of 8 windows' lengths that
    # hold it, and of later passes (which reuse its row's buffers), are exactly as without it.
    kept = (start + 9 * w < p) | (start >= p + 8 * w)
    assert kept.sum() > 0.9 * kept.size
    for f in FIELDS:
        np.testing.assert_array_equal(getattr(got, f)[kept], getattr(clean, f)[kept], err_msg=f)


def test_sliding_slopes_keeps_error_bars_on_a_steep_quiet_ramp() -> None:
    # Trend 1e5 times the noise per window: sums of squares of raw y would cancel 10 digits.
    rng = np.random.default_rng(3)
    t = 5e5 + 0.1 * np.arange(4000)
    y = 1e5 - 50.0 * (t - t[0]) + rng.normal(0, 1e-3, t.size)
    got = sliding_slopes(t, y, 64)
    for i in range(0, got.slope.size, 50):
        want = fit_slope(t[i : i + 64], y[i : i + 64])
        assert got.stderr[i] == pytest.approx(want.stderr, rel=1e-9), i
        assert got.noise_exponent[i] == want.noise_exponent, i


def test_sliding_slopes_edges() -> None:
    t = np.arange(10.0)
    assert sliding_slopes(t, t, 11).slope.shape == (0,)
    assert sliding_slopes(t, t, 10).slope.shape == (1,)
    with pytest.raises(ValueError, match="window_n"):
        sliding_slopes(t, t, 2)
    t_dup = np.array([0.0, 1.0, 1.0, 1.0, 2.0, 3.0])
    got = sliding_slopes(t_dup, np.arange(6.0), 3)
    assert np.isnan(got.slope[1]) and np.all(np.isfinite(got.slope[[0, 2, 3]]))


# ---------------------------------------------------------------- honesty by simulation
def test_white_noise_reaches_cramer_rao_and_covers_95_percent() -> None:
    rng = np.random.default_rng(2024)
    runs, n, dt, sigma, b = 1000, 600, 0.5, 1.2, -0.02
    t = 1e6 + dt * np.arange(n)
    ys = 340.0 + b * (t - t[0]) + sigma * rng.normal(size=(runs, n))
    fits = [fit_slope(t, y) for y in ys]
    slopes = np.array([f.slope for f in fits])
    cramer_rao = sigma * math.sqrt(12.0 / (n * (n * n - 1))) / dt
    ratio = slopes.std(ddof=1) / cramer_rao
    assert abs(ratio - 1.0) < 0.10, f"empirical std / Cramer-Rao = {ratio:.3f}"
    covered = sum(f.ci95_low <= b <= f.ci95_high for f in fits)
    assert 0.92 * runs <= covered <= 0.98 * runs, f"95% interval covered {covered}/{runs}"


def ar1_noise(rng: np.random.Generator, runs: int, n: int, rho: float, sigma: float) -> FloatArray:
    """Stationary AR(1) rows with marginal std sigma, as one matrix product (no time loop)."""
    k = np.arange(n)
    lag = k[:, None] - k[None, :]
    mix = np.where(lag >= 0, rho ** np.maximum(lag, 0).astype(float), 0.0)
    mix[:, 0] /= math.sqrt(1.0 - rho * rho)  # the first innovation carries the stationary start
    return (rng.normal(size=(runs, n)) @ mix.T) * sigma * math.sqrt(1.0 - rho * rho)


def test_ar1_noise_plain_ols_under_covers_ours_does_not() -> None:
    rng = np.random.default_rng(7)
    runs, n, rho, sigma, b = 600, 600, 0.8, 1.0, 0.01
    t = np.arange(n, dtype=float)
    ys = 100.0 + b * t + ar1_noise(rng, runs, n, rho, sigma)
    fits = [fit_slope(t, y) for y in ys]
    ours = sum(f.ci95_low <= b <= f.ci95_high for f in fits)
    # The textbook interval: OLS error, t quantile on n - 2 dof, no allowance for correlation.
    q = student_t_ppf(0.975, n - 2.0)
    sxx = float(np.sum((t - t.mean()) ** 2))
    plain = sum(abs(f.slope - b) <= q * f.residual_sigma / math.sqrt(sxx) for f in fits)
    assert plain < 0.75 * runs, f"plain OLS covered {plain}/{runs}: expected far below 95%"
    assert 0.92 * runs <= ours <= 0.98 * runs, f"ours covered {ours}/{runs} (plain {plain})"


# ---------------------------------------------------------------- IncrementalSlope
@pytest.mark.parametrize("window_s", [37.5, None])
def test_incremental_equals_fit_slope_on_the_trailing_window(window_s: float | None) -> None:
    rng = np.random.default_rng(11)
    n = 15_000
    t = 1e6 + np.cumsum(rng.uniform(0.05, 0.15, n))
    t[100:103] = t[100]  # repeated times are allowed
    y = 340.0 - 0.01 * (t - t[0]) + 0.5 * np.sin((t - t[0]) / 300) + rng.normal(0, 0.1, n)
    inc = IncrementalSlope(window_s)
    assert inc.fit() is None
    i = 0
    while i < n:
        k = int(rng.integers(1, 60))
        inc.add(t[i : i + k], y[i : i + k])
        i = min(i + k, n)
        lo = 0 if window_s is None else int(np.searchsorted(t, t[i - 1] - window_s, "left"))
        assert len(inc) == i - lo
        got = inc.fit()
        if i - lo < 3:
            assert got is None
            continue
        assert got is not None
        want = fit_slope(t[lo:i], y[lo:i])
        if window_s is not None and i % 7 == 0:
            wt, wy = inc.window()
            np.testing.assert_array_equal(wt, t[lo:i])
            np.testing.assert_array_equal(wy, y[lo:i])
        for f in FIELDS:  # the same function on the same samples: equal, NaN included
            np.testing.assert_equal(getattr(got, f), getattr(want, f), err_msg=f"{i} {f}")


def test_incremental_stays_exact_over_a_long_run() -> None:
    # 150,000 samples through a 5 s window, far from t = 0 and on a steep ramp: sums kept
    # from one origin would lose ~8 digits of Sxx to cancellation by the end.
    rng = np.random.default_rng(5)
    n, window_s = 150_000, 5.0
    t = 1e9 + 0.1 * np.arange(n)
    y = 1e5 - 1.0 * (t - t[0]) + rng.normal(0, 0.01, n)
    inc = IncrementalSlope(window_s)
    for i in range(0, n, 50):
        inc.add(t[i : i + 50], y[i : i + 50])
        if i % 30_000 == 0 or i + 50 >= n:
            lo = int(np.searchsorted(t, t[min(i + 50, n) - 1] - window_s, "left"))
            got, want = inc.fit(), fit_slope(t[lo : i + 50], y[lo : i + 50])
            assert got is not None
            assert got.slope == pytest.approx(want.slope, rel=1e-9), i
            assert got.stderr == pytest.approx(want.stderr, rel=1e-9), i


def test_incremental_validates() -> None:
    with pytest.raises(ValueError, match="window_s"):
        IncrementalSlope(0.0)
    inc = IncrementalSlope(10.0)
    inc.add(np.array([0.0, 1.0]), np.array([5.0, 5.0]))
    assert inc.fit() is None
    with pytest.raises(ValueError, match="decrease"):
        inc.add(np.array([0.5]), np.array([5.0]))
    with pytest.raises(ValueError, match="decrease"):
        inc.add(np.array([3.0, 2.0]), np.array([5.0, 5.0]))
    with pytest.raises(ValueError, match="finite"):
        inc.add(np.array([3.0]), np.array([np.nan]))
    with pytest.raises(ValueError, match="finite"):
        inc.add(np.array([3.0, 4.0]), np.array([np.inf, -np.inf]))
    inc.add(np.array([], dtype=float), np.array([], dtype=float))
    assert len(inc) == 2
    huge = IncrementalSlope(10.0)  # finite samples near the largest double are taken
    huge.add(np.array([0.0, 1.0, 2.0]), np.array([1e308, 1.5e308, 1.7e308]))
    assert len(huge) == 3
    buf_t, buf_y = np.array([2.0]), np.array([4.0])
    inc.add(buf_t, buf_y)
    buf_t[0], buf_y[0] = 99.0, 99.0  # the caller reuses its buffer
    fit = inc.fit()
    assert fit is not None and fit.t_end_s == 2.0 and fit.slope == pytest.approx(-0.5)


@pytest.mark.parametrize("n", [128, 1000])
def test_lrv_shapes_match_exact_covariances(n: int) -> None:
    # lrv's shape table comes from spectral integrals; here white noise and a random walk
    # (covariance q min(i, j), written in the time domain) give the same mode powers and
    # slope variance, each relative to mode 2, at any window length.
    x = np.arange(n) - (n - 1) / 2.0
    sxx = float(x @ x)
    edges = lrv.batch_edges(n)
    w = np.zeros((14, n))
    for b in range(16):
        w[:, edges[b] : edges[b + 1]] = lrv.MODES[:, b : b + 1] / (edges[b + 1] - edges[b])
    w = w - w.mean(axis=1, keepdims=True) - np.outer(w @ x / sxx, x)
    slope = x / sxx
    k = np.arange(1, n + 1.0)
    for cov, row in ((np.eye(n), 0), (np.minimum(k[:, None], k[None, :]), 4)):
        modes = np.einsum("ki,ij,kj->k", w, cov, w)
        var = float(slope @ cov @ slope) * sxx * 16 / n
        assert lrv._SHAPE_POWER[row] == pytest.approx(modes / modes[0], rel=0.03)
        assert lrv._SHAPE_SLOPE[row] == pytest.approx(var / modes[0], rel=0.03)
    assert lrv._SHAPE_LAW[4] == 2.0 and lrv._SHAPE_FLOOR[4] == 0.0
