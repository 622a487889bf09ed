"""Leak rates in every unit, against the simulator's truth and against each other."""

from __future__ import annotations

import math

import numpy as np
import pytest
from leakmon import units
from leakmon.analysis.fit import fit_slope
from leakmon.analysis.rates import leak_rates
from leakmon.sim.vboard.chamber import Chamber
from synthetic import add_noise, chamber_truth


def test_leak_rates_recover_the_chamber_truth_through_a_temperature_swing() -> None:
    # 50 L at 1 atm leaking 2.5 g/day, gas swinging 0.5 K over 10 min: REFERENCE 2 says
    # 1 K is ~346 Pa, far above the ~1.5 Pa the leak removes in that time.
    leak_kg_per_s = 2.5e-3 / 86400
    ch = Chamber(0.05, 101325.0, 293.15, leak_kg_per_s, temp_amp_k=0.5, temp_period_s=600.0)
    t = np.arange(0.0, 600.0, 0.1)
    p, tk = add_noise(chamber_truth(ch, t), 0.3, 0.002, np.random.default_rng(4))
    r = leak_rates(fit_slope(t, p / tk), 0.05, 293.15)
    assert r.kg_per_s.ci95_low <= leak_kg_per_s <= r.kg_per_s.ci95_high
    assert r.kg_per_day.value == pytest.approx(2.5e-3, rel=0.02)
    true_pa_per_s = ch.leak_rate_pa_per_s(293.15)
    assert r.pa_per_s.ci95_low <= true_pa_per_s <= r.pa_per_s.ci95_high
    # Uncompensated, the swing's slope swamps the leak.
    raw = -fit_slope(t, p).slope
    assert abs(raw - true_pa_per_s) > 10 * abs(r.pa_per_s.value - true_pa_per_s)


def test_units_agree_with_each_other_and_reference_figures() -> None:
    t = np.arange(100.0)
    y = 345.0 - 1e-4 * t + np.random.default_rng(0).normal(0, 1e-3, t.size)  # Pa/K
    vol, temp = 916.0, 293.0
    r = leak_rates(fit_slope(t, y), vol, temp)
    for rate in (r.kg_per_day, r.pa_per_s, r.sccm, r.mbar_l_per_s):
        assert rate.ci95_low < rate.value < rate.ci95_high
    assert r.pa_per_s.value == pytest.approx(1e-4 * temp, rel=0.05)
    assert r.kg_per_s.value == pytest.approx(r.pa_per_s.value * vol * units.M / (units.R * temp))
    assert r.kg_per_day.value == pytest.approx(r.kg_per_s.value * 86400)
    assert r.lb_per_day.value == pytest.approx(r.kg_per_day.value / 0.45359)
    # REFERENCE 1: on 916 m3, 1 kg/day is about 92 Pa/day = 0.69 mmHg/day.
    per_kg = r.pa_per_day.value / r.kg_per_day.value
    assert per_kg == pytest.approx(92.0, abs=0.5)
    assert r.mmhg_per_day.value / r.kg_per_day.value == pytest.approx(0.69, abs=0.005)
    assert r.psi_per_day.value == pytest.approx(r.pa_per_day.value / 6894.76)
    assert r.pa_m3_per_s.value == pytest.approx(r.pa_per_s.value * vol)
    assert r.mbar_l_per_s.value == pytest.approx(r.pa_m3_per_s.value * 10)
    # sccm: the mass flow's volume at 0 C, 1 atm, in cm3/min.
    by_hand = r.kg_per_s.value / units.M * units.R * 273.15 / 101325.0 * 1e6 * 60
    assert r.sccm.value == pytest.approx(by_hand, rel=2e-4)  # 1.689e-3 is rounded
    assert r.seconds_per_mmhg.value == pytest.approx(133.322 / r.pa_per_s.value)
    assert r.seconds_per_mmhg.ci95_low == pytest.approx(133.322 / r.pa_per_s.ci95_high)


def test_leak_rates_work_on_every_sliding_window_and_reject_bad_volume() -> None:
    from leakmon.analysis.slope import sliding_slopes

    t = np.arange(1000.0)
    fits = sliding_slopes(t, 345.0 - 1e-4 * t + np.sin(t), 100)
    r = leak_rates(fits, 1.0, 293.0)
    assert r.kg_per_day.value.shape == (901,)
    assert np.all(r.seconds_per_mmhg.value > 0)
    with pytest.raises(ValueError, match="positive"):
        leak_rates(fit_slope(t, t), 0.0, 293.0)
    assert math.isinf(leak_rates(fit_slope(t, t), 1.0, 293.0).seconds_per_mmhg.value)
