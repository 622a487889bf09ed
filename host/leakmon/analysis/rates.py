"""A fitted slope of P/T turned into a leak in every unit people ask for, with 95 % intervals.

The slope of P/T is the temperature-compensated gas amount: mdot = (V M / R) d(P/T)/dt, so
a leak in kg/day needs only the volume. Pressure-type rates (Pa/s, psi/day, mmHg/day,
seconds per mmHg) and throughput (Pa.m3/s, mbar.L/s) are quoted at a reference temperature,
the one the volume would sit at; sccm is the mass flow's volume at 0 C and 1 atm.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic

import numpy as np

from leakmon import units
from leakmon.analysis.fit import SlopeFit, V


@dataclass(frozen=True)
class Rate(Generic[V]):
    """One rate with its 95 % interval (value between the bounds)."""

    value: V
    ci95_low: V
    ci95_high: V


@dataclass(frozen=True)
class LeakRates(Generic[V]):
    """A leak, positive when losing gas, in every unit; floats or arrays (many windows)."""

    kg_per_s: Rate[V]
    kg_per_day: Rate[V]
    lb_per_day: Rate[V]
    pa_per_s: Rate[V]  # pressure loss rate at the reference temperature
    pa_per_day: Rate[V]
    psi_per_day: Rate[V]
    mmhg_per_day: Rate[V]
    pa_m3_per_s: Rate[V]  # throughput Q = V dP/dt at the reference temperature
    mbar_l_per_s: Rate[V]
    sccm: Rate[V]  # the mass flow as a volume at 0 C, 1 atm
    seconds_per_mmhg: Rate[V]  # the crew's readout; inf when not falling
    volume_m3: float
    reference_temperature_k: float


def _scaled(loss: Rate[V], factor: float) -> Rate[V]:
    return Rate(loss.value * factor, loss.ci95_low * factor, loss.ci95_high * factor)


def loss(slope: V, ci95_low: V, ci95_high: V, scale: V | float = 1.0) -> Rate[V]:
    """A slope of a series that falls when gas escapes, as a loss (positive when losing),
    times scale: the sign flip and the interval swap, written once for the whole package."""
    return Rate(-slope * scale, -ci95_high * scale, -ci95_low * scale)


def pressure_loss(fit: SlopeFit[V], temperature_k: V | float) -> Rate[V]:
    """The pressure loss rate (Pa/s) at temperature_k from a fit of P/T (Pa/K against s):
    what the volume would lose per second at that gas temperature."""
    return loss(fit.slope, fit.ci95_low, fit.ci95_high, temperature_k)


def leak_rates(
    fit: SlopeFit[V], volume_m3: float, reference_temperature_k: float,
    molar_mass_kg_per_mol: float = units.M,
) -> LeakRates[V]:  # fmt: skip
    """Every leak unit from a SlopeFit of P/T (Pa/K against s); sign flipped: loss > 0."""
    if not (volume_m3 > 0.0 and reference_temperature_k > 0.0):
        raise ValueError("volume_m3 and reference_temperature_k must be positive")
    per_k = pressure_loss(fit, 1.0)  # Pa/K per s
    kg_per_s = _scaled(per_k, volume_m3 * molar_mass_kg_per_mol / units.R)
    pa_per_s = _scaled(per_k, reference_temperature_k)
    q = _scaled(pa_per_s, volume_m3)
    std = units.kg_per_s_to_sccm(1.0, molar_mass_kg_per_mol)
    spm = Rate(units.seconds_per_mmhg(pa_per_s.value), units.seconds_per_mmhg(pa_per_s.ci95_high),
               units.seconds_per_mmhg(pa_per_s.ci95_low))  # fmt: skip
    return LeakRates(
        kg_per_s=kg_per_s,
        kg_per_day=_scaled(kg_per_s, units.SECONDS_PER_DAY),
        lb_per_day=_scaled(kg_per_s, units.SECONDS_PER_DAY / units.KG_PER_LB),
        pa_per_s=pa_per_s,
        pa_per_day=_scaled(pa_per_s, units.SECONDS_PER_DAY),
        psi_per_day=_scaled(pa_per_s, units.SECONDS_PER_DAY / units.PA_PER_PSI),
        mmhg_per_day=_scaled(pa_per_s, units.SECONDS_PER_DAY / units.PA_PER_MMHG),
        pa_m3_per_s=q,
        mbar_l_per_s=_scaled(q, 1.0 / units.PA_M3_PER_S_PER_MBAR_L_PER_S),
        sccm=_scaled(kg_per_s, std),
        seconds_per_mmhg=spm,
        volume_m3=volume_m3,
        reference_temperature_k=reference_temperature_k,
    )


def compensated_series(pressure_pa: np.ndarray, temperature_k: np.ndarray) -> np.ndarray:
    """P/T per sample (Pa/K): the series whose slope is the temperature-free leak."""
    return np.asarray(pressure_pa, dtype=np.float64) / np.asarray(temperature_k, np.float64)
