"""The vocabulary of scenario and site files (hardware/scenarios/*.toml): one model of
the whole document, so a site file and a scenario file are checked by the same
rules and every scenario is a valid site.

Keys only the simulator needs (pressures, walls, leaks, noise, faults) are optional
here; the scenario reader (leakmon.sim.schema) requires what it needs. Checks across
tables (a name that must exist elsewhere) are made by the readers, in
leakmon.config.site and leakmon.sim.schema.
"""

from __future__ import annotations

from typing import Any, Literal, get_args

from pydantic import Field

from leakmon.config.loader import (
    Count,
    I2cAddress,
    Model,
    MuxAddress,
    NonNegative,
    Positive,
    Probability,
)

Chip = Literal["BMP388", "BMP390", "BMP280", "BME280", "DPS310", "LPS22HB", "LPS22HH", "MS5611"]
SUPPORTED_CHIPS: tuple[str, ...] = get_args(Chip)
BOUNDARIES = ("vacuum", "ambient")
LINK_STATES = {"open": 1.0, "closed": 0.0}


class Simulation(Model):
    step_s: Positive | None = None  # default: small against the scenario's time constants
    duration_s: Positive | None = None


class Ambient(Model):
    pressure_pa: NonNegative = 101325.0
    temperature_k: Positive = 293.15


class Supply(Model):
    name: str
    pressure_pa: NonNegative
    temperature_k: Positive | None = None  # default: the ambient's


class Wall(Model):
    temperature_k: Positive | None = None
    swing_k: NonNegative = 0.0
    period_s: Positive = 3600.0
    drift_k_per_h: float = 0.0
    schedule: list[list[Any]] = []  # [t_s, temperature_k] points, piecewise linear


class Segment(Model):
    name: str | None = None  # default "chamber" for the first
    volume_m3: Positive  # free (gas) volume
    pressure_pa: NonNegative | None = None  # at t = 0; the simulator needs it
    temperature_k: Positive | None = None  # of the gas at t = 0; default: the wall's
    thermal_tau_s: NonNegative = 0.0
    wall: Wall = Wall()


class Link(Model):
    """[[hatches]] and [[valves]]: an orifice between two segments, or a segment and a boundary."""

    name: str | None = None  # default "<a>-<b>"
    between: list[str]
    area_m2: Positive | None = None
    diameter_mm: Positive | None = None
    cd: Positive = 0.8
    initially: str | float | None = None  # "open", "closed" or a fraction; default open
    schedule: list[list[Any]] = []  # [t_s, state] changes
    open_during: list[str] | None = None  # phase names (then initially closed)


class Leak(Model):
    name: str | None = None
    segment: str | None = None
    to: str = "vacuum"
    start_s: NonNegative = 0.0
    area_m2: Positive | None = None
    diameter_mm: Positive | None = None
    cd: Positive = 0.6
    mass_kg_per_day: NonNegative | None = None


class Phase(Model):
    name: str
    duration_s: Positive


class Faults(Model):
    """Injected on the virtual board (host/leakmon/sim/vboard/vhw.py)."""

    nack_prob: Probability | None = None
    remove_at_s: NonNegative | None = None
    replug_at_s: NonNegative | None = None
    stuck_from_s: NonNegative | None = None
    stuck_until_s: NonNegative | None = None


class Sensor(Model):
    chip: Chip
    bus: Count = 0
    addr: I2cAddress = 0x77
    mux_addr: MuxAddress | None = None  # a TCA9548A
    mux_channel: Count = 0
    segment: str | None = None  # required where there are several segments
    node: str | None = None  # the fleet node it is wired to, where a site spans several (docs/fleet.md)
    noise_pa: NonNegative = 0.3
    noise_k: NonNegative = 0.002
    offset_pa: float = 0.0
    tempco_pa_per_k: float = 0.0
    faults: Faults = Faults()


class Bus(Model):
    bus: Count
    stuck_from_s: NonNegative


class Board(Model):
    reset_at_s: NonNegative | None = None
    disconnect_at_s: NonNegative | None = None
    disconnect_s: NonNegative | None = None


class Document(Model):
    """A scenario or site file."""

    name: str | None = None  # default: the file's stem
    description: str = ""
    total_volume_m3: Positive | None = None  # the segments' free volumes add up to it
    simulation: Simulation = Simulation()
    ambient: Ambient = Ambient()
    supplies: list[Supply] = []
    segments: list[Segment] = []
    hatches: list[Link] = []
    valves: list[Link] = []
    leaks: list[Leak] = []
    phases: list[Phase] = []
    sensors: list[Sensor] = []
    buses: list[Bus] = []
    board: Board = Board()
    # The old single-chamber format: refused with a pointer to the new one (excluded: not offered as allowed).
    chamber: Any = Field(default=None, exclude=True)
