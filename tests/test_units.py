"""Unit conversions, checked against the figures in REFERENCE.md and against each other."""

from __future__ import annotations

import math

import numpy as np
import pytest
from leakmon import units


def test_one_kg_per_day_on_the_iss_is_about_92_pa_per_day() -> None:
    # REFERENCE 1: on 916 m3, 1 kg/day is about 92 Pa/day = 0.69 mmHg/day (at about 293 K).
    rate_pa_per_s = units.leak_rate_pa_per_s_from_kg_per_day(1.0, 916.0, 293.0)
    assert units.pa_per_s_to_pa_per_day(rate_pa_per_s) == pytest.approx(92.0, abs=0.5)
    assert units.pa_per_s_to_mmhg_per_day(rate_pa_per_s) == pytest.approx(0.69, abs=0.005)
    # The ideal-gas formula written out: dP/dt = mdot R T / (V M).
    by_hand = (1.0 / 86400.0) * 8.314462 * 293.0 / (916.0 * 0.028965)
    assert rate_pa_per_s == pytest.approx(by_hand, rel=1e-12)
    assert units.mass_rate_kg_per_day(rate_pa_per_s, 916.0, 293.0) == pytest.approx(1.0, rel=1e-12)


def test_mass_rate_scales_with_volume_and_inverse_temperature() -> None:
    base = units.mass_rate_kg_per_day(1e-3, 75.0, 293.0)
    assert units.mass_rate_kg_per_day(1e-3, 150.0, 293.0) == pytest.approx(2 * base)
    assert units.mass_rate_kg_per_day(1e-3, 75.0, 586.0) == pytest.approx(base / 2)
    assert units.mass_rate_kg_per_day(-1e-3, 75.0, 293.0) == pytest.approx(-base)


def test_pound_and_the_2024_leak() -> None:
    # REFERENCE 1: 3.7 lb/day = 1.7 kg/day.
    assert 3.7 * units.KG_PER_LB == pytest.approx(1.7, abs=0.03)


@pytest.mark.parametrize(
    ("value", "unit", "pa"),
    [(760.0, "mmHg", 101324.72), (14.6959, "psi", 101325.0), (1013.25, "hPa", 101325.0),
     (1013.25, "mbar", 101325.0), (101.325, "kPa", 101325.0), (101325.0, "Pa", 101325.0)],
)  # fmt: skip
def test_pressure_units_round_trip(value: float, unit: str, pa: float) -> None:
    assert units.pressure_to_pa(value, unit) == pytest.approx(pa, rel=1e-5)
    assert units.pressure_from_pa(units.pressure_to_pa(value, unit), unit) == pytest.approx(
        value, rel=1e-14
    )
    arr = np.array([0.5, 1.0, 2.0]) * value
    back = units.pressure_from_pa(units.pressure_to_pa(arr, unit), unit)
    assert isinstance(back, np.ndarray)
    np.testing.assert_allclose(back, arr, rtol=1e-14)
    assert units.pressure_to_pa(value, unit.upper()) == units.pressure_to_pa(value, unit)


def test_unknown_pressure_unit_names_the_allowed_ones() -> None:
    with pytest.raises(ValueError, match="torr") as info:
        units.pressure_from_pa(1.0, "torr")
    for allowed in ("Pa", "hPa", "kPa", "mmHg", "psi", "mbar"):
        assert allowed in str(info.value)


def test_rates_per_day() -> None:
    rate = units.PA_PER_MMHG / 86400.0  # exactly 1 mmHg per day
    assert units.pa_per_s_to_mmhg_per_day(rate) == pytest.approx(1.0, rel=1e-14)
    rate = units.PA_PER_PSI / 86400.0
    assert units.pa_per_s_to_psi_per_day(rate) == pytest.approx(1.0, rel=1e-14)
    arr = units.pa_per_s_to_mmhg_per_day(np.array([0.0, rate]))
    assert isinstance(arr, np.ndarray) and arr.shape == (2,)


def test_seconds_per_mmhg() -> None:
    assert units.seconds_per_mmhg(units.PA_PER_MMHG / 60.0) == pytest.approx(60.0)
    assert units.seconds_per_mmhg(0.0) == math.inf
    assert units.seconds_per_mmhg(-1.0) == math.inf
    assert isinstance(units.seconds_per_mmhg(1.0), float)
    got = units.seconds_per_mmhg(np.array([units.PA_PER_MMHG, 0.0, -2.0, 2 * units.PA_PER_MMHG]))
    np.testing.assert_array_equal(got, [1.0, math.inf, math.inf, 0.5])


def test_throughput_units() -> None:
    # REFERENCE 2: 1 sccm = 1.689e-3 Pa.m3/s; 1 mbar.L/s = 0.1 Pa.m3/s = about 59.2 sccm.
    assert units.to_sccm(1.689e-3) == pytest.approx(1.0, rel=1e-14)
    assert units.to_mbar_l_per_s(0.1) == pytest.approx(1.0, rel=1e-14)
    assert units.to_sccm(0.1) == pytest.approx(59.2, abs=0.05)
    q = units.pa_m3_per_s(2e-3, 0.5)  # 2 mPa/s in half a cubic metre
    assert q == pytest.approx(1e-3)
    got = units.to_sccm(np.array([q, 2 * q]))
    np.testing.assert_allclose(got, [q / 1.689e-3, 2 * q / 1.689e-3], rtol=1e-14)


def test_gas_mass_and_choked_flow_speed() -> None:
    # 1 m3 of air at 1 atm and 20 C weighs about 1.204 kg.
    assert units.gas_mass_kg(101325.0, 293.15, 1.0) == pytest.approx(1.204, abs=0.001)
    arr = units.gas_mass_kg(np.array([101325.0, 50662.5]), np.array([293.15, 293.15]), 2.0)
    np.testing.assert_allclose(arr, [2.408, 1.204], atol=0.002)
    # REFERENCE 2: c* is about 199 m/s for air at 20 C.
    assert units.choked_flow_speed_m_per_s(293.15) == pytest.approx(199.0, abs=0.5)
    # sccm: 1 sccm of air is 1 cm3/min at 0 C, 1 atm.
    kg_per_s = 1e-6 / 60 * 101325.0 * units.M / (units.R * 273.15)
    assert units.kg_per_s_to_sccm(kg_per_s) == pytest.approx(1.0, rel=2e-4)
