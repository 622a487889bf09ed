"""Pressure-decay recipes: verdicts on synthetic parts with known leaks and fill transients."""

from __future__ import annotations

import tomllib

import numpy as np
import pytest
from leakmon.analysis.recipe import (
    ResultCode,
    calibrate_reference_leak,
    evaluate,
    learn_transient,
    load_recipe,
    recipe_from_dict,
)
from conftest import ROOT
from leakmon.errors import ConfigError

RECIPE_TOML = """
[recipe]
name = "housing-A"
fill_s = 5
stabilize_s = 20
measure_s = 20
vent_s = 3
test_pressure_pa = 120000
pressure_tolerance_pa = 3000
gross_leak_pa = 500
leak_limit = 0.05
leak_unit = "Pa/s"
volume_m3 = 0.0005
"""
RECIPE = recipe_from_dict(tomllib.loads(RECIPE_TOML))


def part(leak_pa_per_s: float, seed: int, target_pa: float = 120000.0, heat_pa: float = 40.0,
         gain: float = 1.0, t_end_s: float = 48.0):  # fmt: skip
    """Fill ramp, then an adiabatic-heating excess decaying with tau 8 s that the wall
    temperature sensor does not see, a steady leak, and 0.05 Pa of noise at 10 Hz."""
    t = np.arange(0.0, t_end_s, 0.1)
    after = np.clip(t - RECIPE.fill_s, 0.0, None)
    p = np.where(t < RECIPE.fill_s, 101325 + (target_pa - 101325) * t / RECIPE.fill_s,
                 target_pa + heat_pa * np.exp(-after / 8.0) - leak_pa_per_s * after)
    p = target_pa + gain * (p - target_pa) + np.random.default_rng(seed).normal(0, 0.05, t.size)
    return t, p, np.full(t.size, 293.15)


def test_learned_transient_turns_a_good_part_from_fail_to_pass() -> None:
    assert evaluate(RECIPE, *part(0.0, 1)).code is ResultCode.FAIL_LEAK  # the cooling fill gas
    cal = learn_transient(RECIPE, *part(0.0, 2))
    v = evaluate(RECIPE, *part(0.0, 3), calibration=cal)
    assert v.code is ResultCode.PASS, v.message
    assert v.leak_rate_ci95_low_pa_per_s <= 0.0 <= v.leak_rate_ci95_high_pa_per_s


def test_leaky_part_fails_with_the_true_rate_inside_its_interval() -> None:
    covered = 0
    for seed in range(40):  # fresh master and part each time: the interval holds both noises
        cal = learn_transient(RECIPE, *part(0.0, 1000 + seed))
        v = evaluate(RECIPE, *part(0.2, seed), calibration=cal)
        assert v.code is ResultCode.FAIL_LEAK
        covered += v.leak_rate_ci95_low_pa_per_s <= 0.2 <= v.leak_rate_ci95_high_pa_per_s
    assert covered >= 34, f"95% interval covered the true rate {covered}/40 times"
    assert v.measure_drop_pa == pytest.approx(0.2 * 20, rel=0.05)
    # sccm: 0.2 Pa/s in 0.5 L is 1e-4 Pa.m3/s at 20 C, i.e. 1e-4 * 273.15/293.15 / 1.689e-3.
    assert v.leak_sccm == pytest.approx(1e-4 * 273.15 / 293.15 / 1.689e-3, rel=0.05)


def test_reference_leak_calibrates_a_low_gain_sensor() -> None:
    master = learn_transient(RECIPE, *part(0.0, 5, gain=0.8))
    cal = calibrate_reference_leak(RECIPE, master, *part(0.1, 6, gain=0.8), 0.1)
    assert cal.scale == pytest.approx(1.25, rel=0.05)
    v = evaluate(RECIPE, *part(0.2, 7, gain=0.8), calibration=cal)
    assert v.leak_rate_pa_per_s == pytest.approx(0.2, rel=0.05)


def test_gross_pressure_and_aborted_codes() -> None:
    assert evaluate(RECIPE, *part(50.0, 1)).code is ResultCode.FAIL_GROSS
    assert evaluate(RECIPE, *part(0.0, 1, target_pa=110000.0)).code is ResultCode.FAIL_PRESSURE_LOW
    assert evaluate(RECIPE, *part(0.0, 1, target_pa=125000.0)).code is ResultCode.FAIL_PRESSURE_HIGH
    assert evaluate(RECIPE, *part(0.0, 1, t_end_s=30.0)).code is ResultCode.ABORTED
    t, p, tk = part(0.0, 1)
    p[100] = np.nan
    assert evaluate(RECIPE, t, p, tk).code is ResultCode.ABORTED


@pytest.mark.parametrize("unit", ["Pa", "sccm"])
def test_limits_in_other_units(unit: str) -> None:
    limit = {"Pa": 1.0, "sccm": 0.02}[unit]  # 0.2 Pa/s: 4 Pa over 20 s, ~0.05 sccm
    r = recipe_from_dict({**tomllib.loads(RECIPE_TOML)["recipe"], "leak_unit": unit,
                          "leak_limit": limit})  # fmt: skip
    cal = learn_transient(r, *part(0.0, 2))
    assert evaluate(r, *part(0.2, 4), calibration=cal).code is ResultCode.FAIL_LEAK
    assert evaluate(r, *part(0.0, 4), calibration=cal).code is ResultCode.PASS


def test_recipe_errors_list_the_allowed_values() -> None:
    base = tomllib.loads(RECIPE_TOML)["recipe"]
    with pytest.raises(ValueError, match="'leak_unit' = 'mbar' is not one of Pa, Pa/s, sccm"):
        recipe_from_dict({**base, "leak_unit": "mbar"})
    with pytest.raises(ValueError, match="unknown key 'fil_s' \\(allowed: fill_s"):
        recipe_from_dict({**base, "fil_s": 3})
    with pytest.raises(ValueError, match="missing 'measure_s'"):
        recipe_from_dict({k: v for k, v in base.items() if k != "measure_s"})
    with pytest.raises(ValueError, match="'fill_s' must be positive, got -1"):
        recipe_from_dict({**base, "fill_s": -1})
    with pytest.raises(ValueError, match="'sccm' needs 'volume_m3' > 0"):
        recipe_from_dict({**{k: v for k, v in base.items() if k != "volume_m3"},
                          "leak_unit": "sccm"})  # fmt: skip


def test_the_shipped_recipes_load() -> None:
    for path in sorted((ROOT / "hardware" / "recipes").glob("*.toml")):
        r = load_recipe(path)
        assert r.measure_end_s > r.measure_start_s > 0 and r.leak_unit in ("Pa", "Pa/s", "sccm")


@pytest.mark.parametrize("edit, where, message", [
    (("fill_s = 5", "fill_s = 0"), "[recipe]", "'fill_s' must be positive, got 0"),
    (("fill_s = 5", 'fill_s = "5"'), "[recipe]", "'fill_s' must be a finite number, got '5'"),
    (("leak_limit = 0.05", "leak_limit = nan"), "[recipe]", "'leak_limit' must be a finite number, got nan"),
    (("[recipe]", "[recipe]\nvent = 3"), "[recipe]", "unknown key 'vent' (allowed: fill_s, stabilize_s"),
    (("fill_s = 5", "fill_s = [5"), "", "is not valid TOML"),
])
def test_a_broken_recipe_file_names_the_file_table_and_key(tmp_path, edit, where, message) -> None:
    path = tmp_path / "part.toml"
    path.write_text(RECIPE_TOML.replace(*edit))
    with pytest.raises(ConfigError) as e:
        load_recipe(path)
    msg = str(e.value)
    assert str(path) in msg and where in msg and message in msg and "\n" not in msg, msg


def test_a_recipe_that_is_not_a_table() -> None:
    with pytest.raises(ConfigError, match=r"part.toml \(top level\): 'recipe' must be a table, got 3"):
        recipe_from_dict({"recipe": 3}, "part.toml")


def test_a_missing_recipe_file_is_one_line(tmp_path) -> None:
    with pytest.raises(ConfigError, match="cannot read recipe .*nothing.toml: No such file"):
        load_recipe(tmp_path / "nothing.toml")
