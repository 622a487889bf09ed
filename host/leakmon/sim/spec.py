"""What a scenario is, once read (leakmon.sim.schema reads it): the segments, links
(hatches, valves, leaks), sensors and faults the virtual board simulates, and the
configuration its physics (leakmon.sim.vboard.physics) is built from.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from leakmon.errors import ConfigError
from leakmon.sim.vboard import physics
from leakmon.sim.vboard.chamber import Chamber

if TYPE_CHECKING:
    import numpy as np

SECONDS_PER_DAY = 86400.0


@dataclass(frozen=True)
class SensorSpec:
    chip: str
    bus: int
    addr: int
    noise_pa: float
    noise_k: float
    segment: str = ""
    mux_addr: int | None = None
    mux_channel: int = 0
    offset_pa: float = 0.0
    tempco_pa_per_k: float = 0.0
    faults: tuple[tuple[str, float], ...] = ()  # injected on the virtual board: nack_prob, remove_at_s ...


@dataclass(frozen=True)
class WallSpec:
    """Temperature the gas relaxes toward: base (or a piecewise-linear schedule) + drift + sinusoid."""

    temperature_k: float
    swing_k: float = 0.0
    period_s: float = 3600.0
    drift_k_per_s: float = 0.0
    schedule: tuple[tuple[float, float], ...] = ()


@dataclass(frozen=True)
class SegmentSpec:
    name: str
    volume_m3: float
    pressure_pa: float
    temperature_k: float  # initial gas temperature
    wall: WallSpec
    thermal_tau_s: float  # 0: the gas is always at the wall temperature


@dataclass(frozen=True)
class LinkSpec:
    """A hatch, valve or leak between two nodes (segment or boundary names).

    Orifice links have cda_m2 (Cd times area); fixed-rate leaks have kg_per_s.
    schedule: (t_s, open fraction) changes; initially is the fraction before the first.
    """

    kind: str  # "hatch", "valve" or "leak"
    name: str
    a: str
    b: str
    cda_m2: float | None
    kg_per_s: float | None
    initially: float
    schedule: tuple[tuple[float, float], ...]


@dataclass(frozen=True)
class Phase:
    name: str
    start_s: float
    end_s: float


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    segments: tuple[SegmentSpec, ...]
    links: tuple[LinkSpec, ...]
    sensors: tuple[SensorSpec, ...]
    boundaries: tuple[tuple[str, float, float], ...]  # (name, pressure_pa, temperature_k)
    phases: tuple[Phase, ...] = ()
    step_s: float = 1.0
    duration_s: float = 3600.0
    path: str = ""
    bus_faults: tuple[tuple[int, float], ...] = ()  # (bus, stuck_from_s): held stuck until recovered
    board_faults: tuple[tuple[str, float], ...] = ()  # reset_at_s, disconnect_at_s, disconnect_s

    # -- single-chamber view, kept for the tests and tools written against it --

    @property
    def volume_m3(self) -> float:
        return self.segments[0].volume_m3

    def segment_index(self, name: str) -> int:
        for i, s in enumerate(self.segments):
            if s.name == name:
                return i
        raise ConfigError(f"scenario {self.name}: no segment {name!r} (segments: "
                          f"{', '.join(s.name for s in self.segments)})")

    def chamber(self) -> Chamber:
        """The closed form of a one-segment scenario with fixed-rate leaks and the gas at
        the wall temperature (steady_leak, sealed): n falls linearly, P = n R T(t) / V."""
        seg = self.segments[0]
        ok = (len(self.segments) == 1 and seg.thermal_tau_s == 0 and not seg.wall.schedule
              and all(ln.kg_per_s is not None and ln.initially == 1.0 and not ln.schedule for ln in self.links))
        if not ok:
            raise ConfigError(f"scenario {self.name} has no closed form: use leakmon.sim.truth.truth_table()")
        return Chamber(seg.volume_m3, seg.pressure_pa, seg.wall.temperature_k,
                       sum(ln.kg_per_s or 0.0 for ln in self.links), seg.wall.swing_k, seg.wall.period_s,
                       seg.wall.drift_k_per_s)

    def truth(self, t_s: np.ndarray) -> dict[str, np.ndarray]:
        """Ground truth per segment at times t_s (see leakmon.sim.truth.truth_table)."""
        from leakmon.sim.truth import truth_table

        return truth_table(self, t_s)

    # -- what the simulator reads --

    def physics_config(self) -> dict[str, Any]:
        """The config leakmon.sim.vboard.physics.Plant is built from (JSON-ready)."""
        nodes = {s.name: i for i, s in enumerate(self.segments)}
        nodes.update({b[0]: -1 - k for k, b in enumerate(self.boundaries)})
        links = []
        for ln in self.links:
            d: dict[str, Any] = {"name": ln.name, "a": nodes[ln.a], "b": nodes[ln.b],
                                 "schedule": [[0.0, ln.initially]] + [[t, f] for t, f in ln.schedule]}
            if ln.kind == "leak":
                d["leak"] = True
            if ln.kg_per_s is not None:
                d["kg_per_s"] = ln.kg_per_s
            else:
                d["cda_m2"] = ln.cda_m2
            links.append(d)
        return {
            "step_s": self.step_s,
            "segments": [
                {"name": s.name, "volume_m3": s.volume_m3, "p0_pa": s.pressure_pa, "t0_k": s.temperature_k,
                 "tau_s": s.thermal_tau_s,
                 "wall": {"t_k": s.wall.temperature_k, "swing_k": s.wall.swing_k, "period_s": s.wall.period_s,
                          "drift_k_per_s": s.wall.drift_k_per_s, "schedule": [list(p) for p in s.wall.schedule]}}
                for s in self.segments
            ],
            "boundaries": [{"name": b[0], "p_pa": b[1], "t_k": b[2]} for b in self.boundaries],
            "links": links,
        }

    def plant(self) -> physics.Plant:
        """A fresh instance of the physics the virtual board runs."""
        return physics.Plant(self.physics_config())

    def sim_config(self, seed: int, speed: float) -> dict[str, Any]:
        """The sim.json the virtual board reads from its flash folder."""
        sensors = []
        for s in self.sensors:
            d: dict[str, Any] = {"chip": s.chip, "bus": s.bus, "addr": s.addr, "noise_pa": s.noise_pa,
                                 "noise_k": s.noise_k, "offset_pa": s.offset_pa,
                                 "tempco_pa_per_k": s.tempco_pa_per_k,
                                 "segment": self.segment_index(s.segment) if s.segment else 0}
            if s.mux_addr is not None:
                d.update(mux_addr=s.mux_addr, mux_channel=s.mux_channel)
            d.update(s.faults)
            sensors.append(d)
        cfg: dict[str, Any] = {"seed": seed, "speed": speed, "physics": self.physics_config(), "sensors": sensors}
        if self.bus_faults:
            cfg["buses"] = {str(bus): {"stuck_from_s": t_s} for bus, t_s in self.bus_faults}
        if self.board_faults:
            cfg["board"] = dict(self.board_faults)
        return cfg


def choked_tau_s(volume_m3: float, cda_m2: float, temperature_k: float) -> float:
    """REFERENCE section 2: tau of an isothermal choked leak into vacuum."""
    return float(physics.choked_tau_s(volume_m3, cda_m2, temperature_k))


def hole_cda_m2(diameter_mm: float, cd: float) -> float:
    return cd * math.pi * (diameter_mm * 1e-3) ** 2 / 4.0
