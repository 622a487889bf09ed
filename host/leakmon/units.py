"""Unit constants and conversions for leak rates and pressures.

leakmon computes in SI (Pa, s, m3, K, kg); other units appear only at the edges (CLI flags,
reports). Every function takes a float or a float64 numpy array and returns the same kind.

Sign convention: ``leak_rate_pa_per_s`` is the rate of pressure *loss*, positive when the
pressure falls (``-dP/dt``). Conversions are linear and keep the sign; only
:func:`seconds_per_mmhg` needs a positive rate.
"""

from __future__ import annotations

import math
import re
from typing import Final, TypeVar, overload

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
# A float in, a float out; an array in, an array out.
F = TypeVar("F", float, FloatArray)

PA_PER_MMHG: Final = 133.322
PA_PER_PSI: Final = 6894.76
PA_PER_MBAR: Final = 100.0
KG_PER_LB: Final = 0.45359
SECONDS_PER_DAY: Final = 86400.0
M_AIR_KG_PER_MOL: Final = 0.028965
R_J_PER_MOL_K: Final = 8.314462
PA_M3_PER_S_PER_SCCM: Final = 1.689e-3
PA_M3_PER_S_PER_MBAR_L_PER_S: Final = 0.1  # 1 mbar * 1 L = 100 Pa * 1e-3 m3

# Short aliases used in formulas and the REFERENCE.
M: Final = M_AIR_KG_PER_MOL
R: Final = R_J_PER_MOL_K

PRESSURE_UNITS_PA: Final[dict[str, float]] = {
    "Pa": 1.0,
    "hPa": 100.0,
    "kPa": 1000.0,
    "mbar": PA_PER_MBAR,
    "mmHg": PA_PER_MMHG,
    "psi": PA_PER_PSI,
}
_UNITS_BY_LOWER: Final = {name.lower(): pa for name, pa in PRESSURE_UNITS_PA.items()}


def pa_per_s_to_mmhg_per_day(rate_pa_per_s: F) -> F:
    """Pressure rate in Pa/s -> mmHg/day."""
    return rate_pa_per_s * (SECONDS_PER_DAY / PA_PER_MMHG)


def pa_per_s_to_psi_per_day(rate_pa_per_s: F) -> F:
    """Pressure rate in Pa/s -> psi/day."""
    return rate_pa_per_s * (SECONDS_PER_DAY / PA_PER_PSI)


def pa_per_s_to_pa_per_day(rate_pa_per_s: F) -> F:
    """Pressure rate in Pa/s -> Pa/day."""
    return rate_pa_per_s * SECONDS_PER_DAY


@overload
def seconds_per_mmhg(leak_rate_pa_per_s: float) -> float: ...
@overload
def seconds_per_mmhg(leak_rate_pa_per_s: FloatArray) -> FloatArray: ...
def seconds_per_mmhg(leak_rate_pa_per_s: float | FloatArray) -> float | FloatArray:
    """Seconds for the pressure to fall by 1 mmHg (the crew's readout); inf if not falling."""
    rate = np.asarray(leak_rate_pa_per_s, dtype=np.float64)
    out = np.full(rate.shape, math.inf)
    np.divide(PA_PER_MMHG, rate, out=out, where=rate > 0)
    return float(out) if out.ndim == 0 else out


def mass_rate_kg_per_day(leak_rate_pa_per_s: F, volume_m3: float, temperature_k: float) -> F:
    """Air mass loss rate from a pressure loss rate, ideal gas: mdot = V M / (R T) dP/dt."""
    kg_per_pa = volume_m3 * M_AIR_KG_PER_MOL / (R_J_PER_MOL_K * temperature_k)
    return leak_rate_pa_per_s * (kg_per_pa * SECONDS_PER_DAY)


def leak_rate_pa_per_s_from_kg_per_day(
    mass_rate_kg_per_day: F, volume_m3: float, temperature_k: float
) -> F:
    """Inverse of :func:`mass_rate_kg_per_day`: pressure loss rate for a given mass loss."""
    pa_per_kg = R_J_PER_MOL_K * temperature_k / (volume_m3 * M_AIR_KG_PER_MOL)
    return mass_rate_kg_per_day * (pa_per_kg / SECONDS_PER_DAY)


def pa_m3_per_s(leak_rate_pa_per_s: F, volume_m3: float) -> F:
    """Volumetric (throughput) leak rate Q = V dP/dt in Pa.m3/s."""
    return leak_rate_pa_per_s * volume_m3


def to_mbar_l_per_s(q_pa_m3_per_s: F) -> F:
    """Throughput Pa.m3/s -> mbar.L/s (1 mbar.L/s = 0.1 Pa.m3/s)."""
    return q_pa_m3_per_s / PA_M3_PER_S_PER_MBAR_L_PER_S


def to_sccm(q_pa_m3_per_s: F) -> F:
    """Throughput Pa.m3/s -> standard cm3/min (1 sccm = 1.689e-3 Pa.m3/s)."""
    return q_pa_m3_per_s / PA_M3_PER_S_PER_SCCM


def _pa_per_unit(unit: str) -> float:
    try:
        return _UNITS_BY_LOWER[unit.lower()]
    except KeyError:
        allowed = ", ".join(PRESSURE_UNITS_PA)
        raise ValueError(f"unknown pressure unit {unit!r}; allowed: {allowed}") from None


def pressure_from_pa(value_pa: F, unit: str) -> F:
    """Pressure in Pa -> `unit` (Pa, hPa, kPa, mbar, mmHg, psi; case-insensitive)."""
    return value_pa / _pa_per_unit(unit)


def pressure_to_pa(value: F, unit: str) -> F:
    """Pressure in `unit` -> Pa; the inverse of :func:`pressure_from_pa`."""
    return value * _pa_per_unit(unit)


def parse_pressure(text: str) -> float:
    """'520mmHg', '13.9 psi', '69327' (Pa) -> pascals; ValueError names the units."""
    m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*([A-Za-z]*)\s*", text)
    if not m:
        raise ValueError(f"not a pressure: {text!r} (e.g. 520mmHg, 13.9psi, 69327Pa)")
    return float(pressure_to_pa(float(m.group(1)), m.group(2) or "Pa"))


_TIME_S: Final = {"s": 1.0, "min": 60.0, "h": 3600.0, "day": SECONDS_PER_DAY, "d": SECONDS_PER_DAY}


def parse_rate(text: str) -> float:
    """'1mmHg/day', '0.05 Pa/s', '2 hPa/h' -> a pressure rate in Pa/s; ValueError names the
    units. A bare number is Pa/s."""
    m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*(?:([A-Za-z]+)\s*/\s*([A-Za-z]+))?\s*",
                     text)  # fmt: skip
    if not m:
        raise ValueError(f"not a pressure rate: {text!r} (e.g. 1mmHg/day, 0.05Pa/s)")
    if m.group(2) is None:
        return float(m.group(1))
    per = _TIME_S.get(m.group(3).lower())
    if per is None:
        raise ValueError(f"unknown time unit {m.group(3)!r}; allowed: s, min, h, day")
    return float(pressure_to_pa(float(m.group(1)), m.group(2))) / per


def format_duration(s: float) -> str:
    """Seconds as a person reads them: 42 s, 3.5 min, 2.0 h, 5.1 d, never."""
    if not math.isfinite(s):
        return "never"
    for size, name in ((86400.0, "d"), (3600.0, "h"), (60.0, "min")):
        if s >= size:
            return f"{s / size:.1f} {name}"
    return f"{s:.0f} s"


# ---------------------------------------------------------------- gas amount and flow
T_STD_K: Final = 273.15  # standard conditions of sccm: 0 C ...
P_STD_PA: Final = 101325.0  # ... and 1 atm
GAMMA_AIR: Final = 1.4


def gas_mass_kg(
    pressure_pa: F, temperature_k: F, volume_m3: float, molar_mass_kg_per_mol: float = M
) -> F:
    """Gas mass in a volume, ideal gas: m = P V M / (R T), per sample."""
    return pressure_pa * (volume_m3 * molar_mass_kg_per_mol / R) / temperature_k


def kg_per_s_to_sccm(mass_rate_kg_per_s: F, molar_mass_kg_per_mol: float = M) -> F:
    """Mass flow -> sccm: the flow's volume at 0 C and 1 atm, in cm3 per minute."""
    q_std_pa_m3_per_s = mass_rate_kg_per_s * (R * T_STD_K / molar_mass_kg_per_mol)
    return to_sccm(q_std_pa_m3_per_s)


def choked_flow_speed_m_per_s(
    temperature_k: float, gamma: float = GAMMA_AIR, molar_mass_kg_per_mol: float = M
) -> float:
    """c* = sqrt(gamma R T / M) (2 / (gamma + 1))^((gamma + 1) / (2 (gamma - 1))): the
    volume flow per unit hole area of a choked orifice (about 199 m/s for air at 20 C)."""
    sound = math.sqrt(gamma * R * temperature_k / molar_mass_kg_per_mol)
    return sound * (2.0 / (gamma + 1.0)) ** ((gamma + 1.0) / (2.0 * (gamma - 1.0)))
