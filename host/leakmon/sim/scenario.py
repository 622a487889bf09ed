"""Scenario files (hardware/scenarios/*.toml): one testbed description that the
virtual board simulates and the analysis reads (segments, hatches and valves,
leaks, test phases, sensors), and the ground truth the simulator runs on.

This module is where callers load one: load("steady_leak") or load(path). The file's
vocabulary is leakmon.config.document (every scenario is also a site file,
leakmon.config.site); leakmon.sim.schema turns it into the Scenario of
leakmon.sim.spec, whose names are re-exported here. The physics lives in
leakmon.sim.vboard.physics (MicroPython runs the same file).
"""

from __future__ import annotations

from pathlib import Path

from leakmon.config.document import BOUNDARIES, LINK_STATES, SUPPORTED_CHIPS
from leakmon.config.loader import parse_toml, read_toml
from leakmon.config.shipped import resolve, scenarios_dir, shipped
from leakmon.sim.schema import parse
from leakmon.sim.spec import (
    SECONDS_PER_DAY,
    LinkSpec,
    Phase,
    Scenario,
    SegmentSpec,
    SensorSpec,
    WallSpec,
    choked_tau_s,
    hole_cda_m2,
)

__all__ = [
    "BOUNDARIES", "LINK_STATES", "SECONDS_PER_DAY", "SUPPORTED_CHIPS", "LinkSpec", "Phase", "Scenario",
    "SegmentSpec", "SensorSpec", "WallSpec", "choked_tau_s", "hole_cda_m2", "load", "loads", "resolve",
    "scenarios_dir", "shipped",
]


def load(name_or_path: str | Path) -> Scenario:
    """A shipped scenario by name ("steady_leak") or a .toml file, validated."""
    path = resolve(name_or_path)
    return parse(read_toml(path, "scenario"), str(path))


def loads(text: str, source: str = "<scenario>") -> Scenario:
    """Parse and validate a scenario from TOML text; errors name source, table and key."""
    return parse(parse_toml(text, source, "scenario"), source)
