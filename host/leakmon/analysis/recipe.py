"""Industrial pressure-decay test: a recipe, calibration, and a pass/fail verdict.

A test runs fill, stabilize, measure, vent (ASTM E2930 style). The verdict checks, in
order: the record covers the test and is finite (else ABORTED), the pressure reached at the
end of fill (FAIL_PRESSURE_LOW / HIGH), the drop during stabilize (FAIL_GROSS), then the
leak over the measure phase against the limit in Pa (drop), Pa/s or sccm (FAIL_LEAK) or PASS.
The measured pressure is P/T times the phase's mean temperature, minus the fill transient
learned on a known-good master part, and the rate is scaled by the factor learned on a
calibrated reference leak. Pure functions; recipes come from a TOML table.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from leakmon import units
from leakmon.analysis.fit import FloatArray, fit_slope
from leakmon.analysis.rates import loss
from leakmon.config.loader import read_toml
from leakmon.config.recipe import check_recipe


class ResultCode(enum.Enum):
    PASS = "PASS"
    FAIL_LEAK = "FAIL_LEAK"
    FAIL_GROSS = "FAIL_GROSS"
    FAIL_PRESSURE_LOW = "FAIL_PRESSURE_LOW"
    FAIL_PRESSURE_HIGH = "FAIL_PRESSURE_HIGH"
    ABORTED = "ABORTED"


@dataclass(frozen=True)
class Recipe:
    """One test program; times from the start of fill, pressures absolute."""

    fill_s: float
    stabilize_s: float
    measure_s: float
    test_pressure_pa: float  # target at the end of fill
    pressure_tolerance_pa: float  # allowed +- around the target
    gross_leak_pa: float  # largest drop allowed during stabilize
    leak_limit: float  # in leak_unit
    leak_unit: str = "Pa/s"
    vent_s: float = 0.0
    volume_m3: float = 0.0  # needed for sccm
    name: str = ""

    @property
    def measure_start_s(self) -> float:
        return self.fill_s + self.stabilize_s

    @property
    def measure_end_s(self) -> float:
        return self.fill_s + self.stabilize_s + self.measure_s


def recipe_from_dict(table: Mapping[str, Any], source: str = "recipe") -> Recipe:
    """A Recipe from a parsed TOML table (its [recipe] table or the table itself);
    ConfigError (a ValueError) naming source, table and key if it is not one."""
    return Recipe(**check_recipe(table, source).model_dump())


def load_recipe(path: str | Path) -> Recipe:
    """A recipe file (hardware/recipes/*.toml)."""
    return recipe_from_dict(read_toml(path, "recipe"), str(path))


@dataclass(frozen=True)
class TransientCalibration:
    """Learned on good parts: the fill transient of the measure phase and a rate scale."""

    transient_t_s: FloatArray  # from the start of measure
    transient_pa: FloatArray  # compensated pressure minus its value at that start
    scale: float = 1.0  # true / measured rate, from a calibrated reference leak


@dataclass(frozen=True)
class Verdict:
    """The outcome of one test."""

    code: ResultCode
    message: str
    fill_pressure_pa: float = math.nan
    stabilize_drop_pa: float = math.nan
    leak_rate_pa_per_s: float = math.nan  # compensated, calibrated; positive = losing
    leak_rate_ci95_low_pa_per_s: float = math.nan
    leak_rate_ci95_high_pa_per_s: float = math.nan
    measure_drop_pa: float = math.nan  # the rate times measure_s
    leak_sccm: float = math.nan  # NaN without a volume
    value: float = math.nan  # the figure compared with the limit, in leak_unit
    limit: float = math.nan
    unit: str = ""


def _series(
    t_s: npt.ArrayLike, p: npt.ArrayLike, temp: npt.ArrayLike
) -> tuple[FloatArray, FloatArray, FloatArray]:
    t, pp, tk = (np.asarray(a, dtype=np.float64) for a in (t_s, p, temp))
    if not (t.ndim == 1 and t.shape == pp.shape == tk.shape):
        raise ValueError("t_s, pressure_pa and temperature_k must be 1-D of equal length")
    return t - (t[0] if t.size else 0.0), pp, tk


def _measure_curve(recipe: Recipe, t: FloatArray, p: FloatArray, tk: FloatArray,
                   cal: TransientCalibration | None) -> tuple[FloatArray, FloatArray, float]:  # fmt: skip
    """(t from measure start, compensated pressure minus the learned transient, mean T)."""
    sel = (t >= recipe.measure_start_s) & (t <= recipe.measure_end_s)
    tm, t_mean = t[sel] - recipe.measure_start_s, float(np.mean(tk[sel]))
    pc = p[sel] / tk[sel] * t_mean
    if cal is not None:
        pc = pc - np.interp(tm, cal.transient_t_s, cal.transient_pa)
    return tm, pc, t_mean


def learn_transient(recipe: Recipe, t_s: npt.ArrayLike, pressure_pa: npt.ArrayLike,
                    temperature_k: npt.ArrayLike) -> TransientCalibration:  # fmt: skip
    """The measure-phase curve of a known-good (leak-free) master part."""
    tm, pc, _ = _measure_curve(recipe, *_series(t_s, pressure_pa, temperature_k), None)
    if tm.size < 3:
        raise ValueError("the master record does not cover the measure phase")
    return TransientCalibration(tm, pc - pc[0])


def calibrate_reference_leak(recipe: Recipe, cal: TransientCalibration, t_s: npt.ArrayLike,
                             pressure_pa: npt.ArrayLike, temperature_k: npt.ArrayLike,
                             true_leak_pa_per_s: float) -> TransientCalibration:  # fmt: skip
    """TransientCalibration with its scale set from a master part fitted with a calibrated leak."""
    tm, pc, _ = _measure_curve(recipe, *_series(t_s, pressure_pa, temperature_k), cal)
    measured = -fit_slope(tm, pc).slope
    if not measured > 0.0:
        raise ValueError(f"the reference leak measured {measured:.3g} Pa/s: not a leak")
    return TransientCalibration(cal.transient_t_s, cal.transient_pa, true_leak_pa_per_s / measured)


def evaluate(
    recipe: Recipe, t_s: npt.ArrayLike, pressure_pa: npt.ArrayLike,
    temperature_k: npt.ArrayLike, calibration: TransientCalibration | None = None,
) -> Verdict:  # fmt: skip
    """Run the checks of one recorded test (times from the start of fill) -> Verdict."""
    t, p, tk = _series(t_s, pressure_pa, temperature_k)
    if t.size < 3 or t[-1] < recipe.measure_end_s:
        return Verdict(ResultCode.ABORTED, "the record ends before the measure phase does")
    if not (np.all(np.isfinite(p)) and np.all(np.isfinite(tk)) and np.all(tk > 0)):
        return Verdict(ResultCode.ABORTED, "non-finite or non-positive samples")
    stab = (t >= recipe.fill_s) & (t <= recipe.measure_start_s)
    if np.count_nonzero(stab) < 1:
        return Verdict(ResultCode.ABORTED, "no samples in the stabilize phase")
    p_fill, drop = float(p[stab][0]), float(p[stab][0] - p[stab][-1])
    base: dict[str, Any] = {"fill_pressure_pa": p_fill, "stabilize_drop_pa": drop}
    if p_fill < recipe.test_pressure_pa - recipe.pressure_tolerance_pa:
        return Verdict(ResultCode.FAIL_PRESSURE_LOW, f"fill reached {p_fill:.0f} Pa", **base)
    if p_fill > recipe.test_pressure_pa + recipe.pressure_tolerance_pa:
        return Verdict(ResultCode.FAIL_PRESSURE_HIGH, f"fill reached {p_fill:.0f} Pa", **base)
    if drop > recipe.gross_leak_pa:
        return Verdict(ResultCode.FAIL_GROSS, f"dropped {drop:.1f} Pa while stabilizing", **base)
    return _judge_leak(recipe, t, p, tk, calibration, base)


def _judge_leak(recipe: Recipe, t: FloatArray, p: FloatArray, tk: FloatArray,
                cal: TransientCalibration | None, base: dict[str, Any]) -> Verdict:  # fmt: skip
    tm, pc, t_mean = _measure_curve(recipe, t, p, tk, cal)
    if tm.size < 3:
        return Verdict(ResultCode.ABORTED, "fewer than 3 samples in the measure phase", **base)
    f = fit_slope(tm, pc)
    scale = cal.scale if cal is not None else 1.0
    r = loss(f.slope, f.ci95_low, f.ci95_high, scale)
    rate, lo, hi = r.value, r.ci95_low, r.ci95_high
    sccm = math.nan
    if recipe.volume_m3 > 0.0:
        sccm = float(units.kg_per_s_to_sccm(
            units.mass_rate_kg_per_day(rate, recipe.volume_m3, t_mean) / units.SECONDS_PER_DAY))
    value = {"Pa": rate * recipe.measure_s, "Pa/s": rate, "sccm": sccm}[recipe.leak_unit]
    code = ResultCode.FAIL_LEAK if value > recipe.leak_limit else ResultCode.PASS
    msg = f"leak {value:.4g} {recipe.leak_unit} against a limit of {recipe.leak_limit:g}"
    return Verdict(code, msg, leak_rate_pa_per_s=rate, leak_rate_ci95_low_pa_per_s=lo,
                   leak_rate_ci95_high_pa_per_s=hi, measure_drop_pa=rate * recipe.measure_s,
                   leak_sccm=sccm, value=value, limit=recipe.leak_limit, unit=recipe.leak_unit,
                   **base)  # fmt: skip
