"""Large leaks: model choice, tau, hole size and time to limit against known holes."""

from __future__ import annotations

import math

import numpy as np
import pytest
from leakmon import units
from leakmon.analysis.decay import choose_model, hole_from_tau, time_to_limit
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
