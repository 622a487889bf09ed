"""Pressure-decay test recipes (hardware/recipes/*.toml): the [recipe] table, checked.
leakmon.analysis.recipe turns it into a Recipe and judges tests against it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from leakmon.config.loader import Model, NonNegative, Positive, fail, validate

LEAK_UNITS = ("Pa", "Pa/s", "sccm")


class RecipeTable(Model):
    """Times from the start of fill, pressures absolute; the limit is in leak_unit."""

    fill_s: Positive
    stabilize_s: Positive
    measure_s: Positive
    test_pressure_pa: Positive  # target at the end of fill
    pressure_tolerance_pa: Positive  # allowed +- around the target
    gross_leak_pa: Positive  # largest drop allowed during stabilize
    leak_limit: Positive
    leak_unit: Literal["Pa", "Pa/s", "sccm"] = "Pa/s"
    vent_s: NonNegative = 0.0
    volume_m3: NonNegative = 0.0  # needed for sccm
    name: str = ""


class RecipeFile(Model):
    recipe: RecipeTable


def check_recipe(table: Mapping[str, Any], source: str = "recipe") -> RecipeTable:
    """A recipe file's document ([recipe] table) or the table itself, validated."""
    if "recipe" in table:
        r, where = validate(RecipeFile, dict(table), source).recipe, "[recipe]"
    else:
        r, where = validate(RecipeTable, dict(table), source), "(top level)"
    if r.leak_unit == "sccm" and not r.volume_m3 > 0.0:
        raise fail(source, where, "leak_unit 'sccm' needs 'volume_m3' > 0 (the part's free volume)")
    return r
