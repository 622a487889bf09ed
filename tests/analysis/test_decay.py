"""Large leaks: model choice, tau, hole size and time to limit against known holes."""

from __future__ import annotations

import math

import numpy as np
import pytest
from leakmon import units
from leakmon.analysis import lrv
from leakmon.analysis.decay import (LOF_DEGREE, LOF_FIRST_MODE, choose_model, hole_from_tau, lack_of_fit_rows,
                                    time_to_limit)
from leakmon.analysis.fit import FIELDS, fit_slope, fit_slopes
from synthetic import choked_record

T_K = 293.15


def test_a_1_mm_hole_in_50_litres_is_exponential_with_the_right_size() -> None:
    # hardware/scenarios/large_leak.toml: tau = V / (Cd A c*) = 534 s.
    t = np.arange(0.0, 600.0, 0.5)
    truth = choked_record(t, 0.05, 1e-3, 101325.0, T_K)
    covered, runs = 0, 60
    for seed in range(runs):
        p = truth + np.random.default_rng(seed).normal(0.0, 0.3, t.size)
        m = choose_model(t, p / T_K)
        assert m.model == "exponential" and m.exponential is not None
        hole = hole_from_tau(m.exponential, 0.05, T_K)
        covered += hole.diameter_ci95_low_m <= 1e-3 <= hole.diameter_ci95_high_m
        assert hole.diameter_m == pytest.approx(1e-3, rel=1e-3)
    assert m.exponential.tau_s == pytest.approx(534.0, rel=0.005)
    assert covered >= 0.88 * runs, f"diameter interval covered {covered}/{runs}"


def test_a_small_leak_over_a_short_window_stays_linear() -> None:
    # 2 mm hole in Zvezda's 75 m3 (tau ~55 h) seen for 10 min: a straight line in the noise.
    t = np.arange(0.0, 600.0, 0.5)
    rng = np.random.default_rng(1)
    p = choked_record(t, 75.0, 2e-3, 101325.0, T_K) + rng.normal(0.0, 0.3, t.size)
    m = choose_model(t, p / T_K)
    assert m.model == "linear", m.curvature_z
    tau = 75.0 / (0.6 * math.pi * 1e-6 * units.choked_flow_speed_m_per_s(T_K))
    assert tau / 3600 == pytest.approx(55.0, rel=0.02)


def test_time_to_limit_brackets_the_truth_for_both_models() -> None:
    floor_pa = 69327.0  # 520 mmHg
    rng = np.random.default_rng(2)
    # Exponential: 0.5 mm hole in 50 L (tau 36 min), forecast from the first 5 minutes.
    t = np.arange(0.0, 300.0, 0.5)
    p = choked_record(t, 0.05, 0.5e-3, 101325.0, T_K) + rng.normal(0.0, 0.3, t.size)
    tau = 0.05 / (0.6 * math.pi * 0.0625e-6 * units.choked_flow_speed_m_per_s(T_K))
    ttl = time_to_limit(choose_model(t, p / T_K), floor_pa / T_K)
    true_t = tau * math.log(101325.0 / floor_pa)
    assert ttl.model == "exponential"
    assert ttl.t_limit_ci95_low_s <= true_t <= ttl.t_limit_ci95_high_s
    assert ttl.remaining_s == pytest.approx(true_t - t[-1], rel=0.01)
    # Linear: 1 Pa/s from 101325 Pa.
    p = 101325.0 - 1.0 * t + rng.normal(0.0, 0.3, t.size)
    ttl = time_to_limit(choose_model(t, p / T_K), floor_pa / T_K)
    assert ttl.model == "linear"
    assert ttl.t_limit_ci95_low_s <= 101325.0 - floor_pa <= ttl.t_limit_ci95_high_s
    # Not falling: never.
    ttl = time_to_limit(choose_model(t, 101325.0 + rng.normal(0, 0.3, t.size)), floor_pa)
    assert ttl.t_limit_ci95_high_s == math.inf


def one_lack_of_fit(t: np.ndarray, v: np.ndarray) -> float:
    """The curvature z written out for one series with np.vander (the form before the
    shared passes): the reference the vectorized test is held to."""
    x = t - t.mean()
    x /= np.abs(x).max()
    vc = v - v.mean()
    design = np.vander(x, LOF_DEGREE + 1, increasing=True)
    gram, moments = design.T @ design, design.T @ vc
    coef = np.linalg.solve(gram[:3, :3], moments[:3])
    r = vc - design @ np.linalg.solve(gram, moments)
    r -= r.mean()
    qq = gram[2, 2] - gram[2, :2] @ np.linalg.solve(gram[:2, :2], gram[:2, 2])
    if t.size >= lrv.MIN_SAMPLES:
        modes = lrv.modes_of_sums(np.add.reduceat(r, lrv.batch_edges(t.size)[:-1]), t.size)
        var, beta, _ = lrv.spectral_variance(modes, t.size, 1.0, LOF_FIRST_MODE)
        omega, widen = float(var), lrv.BASE + lrv.WIDEN * float(beta)
    else:
        omega, widen = float(r @ r) / max(t.size - LOF_DEGREE - 1.0, 1.0), 1.0
    return float(coef[2]) / math.sqrt(omega / qq) / widen


def test_the_shared_passes_equal_one_series_at_a_time() -> None:
    # choose_model fits y and ln y, and a stretch and the one before it, in shared passes:
    # each row must give what the one-series functions give on it.
    rng = np.random.default_rng(3)
    for n in (10, 31, 32, 700, 6000):  # (below 10 the test is off: decay.LOF_MIN_N)
        t = 1e6 + np.cumsum(rng.uniform(0.08, 0.12, n))
        y = 345.0 * np.exp(-(t - t[0]) / 5e4) + rng.normal(0, 0.01, n) + 1e-3 * np.cumsum(rng.normal(0, 1, n))
        rows = np.stack([y, np.log(y)])
        for got, v in zip(fit_slopes(t, rows), rows):
            want = fit_slope(t, v)
            for f in FIELDS:
                assert getattr(got, f) == pytest.approx(getattr(want, f), rel=1e-12, nan_ok=True), (n, f)
        z = lack_of_fit_rows(t, rows)
        for zi, v in zip(z, rows):
            assert zi == pytest.approx(one_lack_of_fit(t, v), rel=1e-9, abs=1e-9), n
        if n >= 6:
            k = n // 2
            a, b = fit_slopes(np.stack([t[k : 2 * k], t[:k]]), np.stack([y[k : 2 * k], y[:k]]))
            assert a.slope == pytest.approx(fit_slope(t[k : 2 * k], y[k : 2 * k]).slope, rel=1e-12)
            assert b.stderr == pytest.approx(fit_slope(t[:k], y[:k]).stderr, rel=1e-12)


def test_a_few_samples_keep_the_line_instead_of_a_curvature_from_rounding() -> None:
    # Through 5-9 samples a quartic leaves rounding for residuals: the z was 1e14 and the
    # first updates of every live channel said "neither".
    rng = np.random.default_rng(8)
    for n in range(5, 12):
        t = 1e5 + 0.1 * np.arange(n)
        y = 345.0 - 1e-3 * (t - t[0]) + rng.normal(0, 0.01, n)
        m = choose_model(t, y)
        assert m.model == "linear" and abs(m.lack_of_fit_linear_z) < 10.0, (n, m.lack_of_fit_linear_z)
