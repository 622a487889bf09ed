"""Scenario TOML -> leakmon.sim.spec.Scenario. The document model and the checks
across tables it shares with site files (leakmon.config.document, leakmon.config.site);
here only what the simulator adds: pressures, walls, leaks, supplies, the step and
faults. Every error names the file, the table (with its entry number) and the key."""

from __future__ import annotations

from typing import Any

from leakmon.config import document as doc
from leakmon.config import site
from leakmon.config.loader import fail, validate
from leakmon.sim.spec import (
    SECONDS_PER_DAY,
    LinkSpec,
    Phase,
    Scenario,
    SegmentSpec,
    SensorSpec,
    WallSpec,
    hole_cda_m2,
)
from leakmon.sim.vboard import physics


def _wall(w: doc.Wall, default_k: float, source: str, table: str) -> WallSpec:
    sched: list[tuple[float, float]] = []
    for k, p in enumerate(w.schedule):
        if len(p) != 2 or not all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in p):
            raise fail(source, table, f"'schedule' entry #{k + 1} must be [t_s, temperature_k], got {p!r}")
        if sched and p[0] <= sched[-1][0]:
            raise fail(source, table, f"'schedule' times must increase (entry #{k + 1})")
        sched.append((float(p[0]), float(p[1])))
    return WallSpec(w.temperature_k or default_k, w.swing_k, w.period_s, w.drift_k_per_h / 3600.0, tuple(sched))


def _segments(d: doc.Document, source: str, names: list[str]) -> list[SegmentSpec]:
    out = []
    for k, (name, s) in enumerate(zip(names, d.segments)):
        if s.pressure_pa is None:
            raise fail(source, f"[[segments]] #{k + 1}", "missing 'pressure_pa' (the simulator starts from it)")
        wall = _wall(s.wall, s.temperature_k or 293.15, source, f"[segments.wall] #{k + 1}")
        gas_k = s.temperature_k or (wall.schedule[0][1] if wall.schedule else wall.temperature_k)
        out.append(SegmentSpec(name, s.volume_m3, s.pressure_pa, gas_k, wall, s.thermal_tau_s))
    return out


def _cda(area_m2: float | None, diameter_mm: float | None, cd: float, source: str, table: str) -> float | None:
    if area_m2 is not None and diameter_mm is not None:
        raise fail(source, table, "give one of 'area_m2' and 'diameter_mm', not both")
    if area_m2 is not None:
        return cd * area_m2
    if diameter_mm is not None:
        return hole_cda_m2(diameter_mm, cd)
    return None


def _links(d: doc.Document, source: str, nodes: list[str], segs: list[str],
           phases: dict[str, tuple[float, float]]) -> list[LinkSpec]:
    out = []
    for kind, table, t, name, a, b, initially, sched in site.links_of(d, source, nodes, segs, phases):
        cda = _cda(t.area_m2, t.diameter_mm, t.cd, source, table)
        if cda is None:
            raise fail(source, table, "missing 'area_m2' (or 'diameter_mm')")
        out.append(LinkSpec(kind, name, a, b, cda, None, initially, sched))
    for k, lk in enumerate(d.leaks):
        table = f"[[leaks]] #{k + 1}"
        seg = lk.segment or segs[0]
        if seg not in segs:
            raise fail(source, table, f"'segment' = {seg!r} is not one of {', '.join(segs)}")
        others = [n for n in nodes if n != seg]
        if lk.to not in others:
            raise fail(source, table, f"'to' = {lk.to!r} is not one of {', '.join(others)}")
        cda = _cda(lk.area_m2, lk.diameter_mm, lk.cd, source, table)
        if (cda is None) == (lk.mass_kg_per_day is None):
            raise fail(source, table, "give either 'mass_kg_per_day' or a hole ('area_m2' or 'diameter_mm', with 'cd')")
        kg_per_s = None if lk.mass_kg_per_day is None else lk.mass_kg_per_day / SECONDS_PER_DAY
        sched = ((lk.start_s, 1.0),) if lk.start_s > 0 else ()
        out.append(LinkSpec("leak", lk.name or f"leak-{seg}", seg, lk.to, cda, kg_per_s,
                            0.0 if lk.start_s > 0 else 1.0, sched))
    return out


def _sensors(d: doc.Document, source: str, segs: list[str]) -> list[SensorSpec]:
    out = []
    for s, seg in zip(d.sensors, site.sensor_segments(d, source, segs)):
        faults = tuple((k, float(v)) for k, v in s.faults.model_dump().items() if v is not None)
        out.append(SensorSpec(s.chip, s.bus, s.addr, s.noise_pa, s.noise_k, seg, s.mux_addr, s.mux_channel,
                              s.offset_pa, s.tempco_pa_per_k, faults))
    return out


def _auto_step(segments: list[SegmentSpec], links: list[LinkSpec], phases: list[Phase]) -> float:
    """Small against the slow time constants; hatch flows need no limit (implicit)."""
    step = 1.0
    for s in segments:
        if s.thermal_tau_s > 0:
            step = min(step, s.thermal_tau_s / 20)
    vol = {s.name: s.volume_m3 for s in segments}
    for ln in links:
        if ln.kind == "leak" and ln.cda_m2 is not None:
            step = min(step, physics.choked_tau_s(vol[ln.a], ln.cda_m2, 293.15) / 200)
    for ph in phases:
        step = min(step, (ph.end_s - ph.start_s) / 20)
    return step


def parse(data: dict[str, Any], source: str) -> Scenario:
    """A parsed TOML document -> Scenario, or ConfigError naming file, table and key."""
    d = validate(doc.Document, data, source)
    names = site.segment_names(d, source)
    site.check_volumes(d, source)
    nodes = site.node_names(d, source, names)
    boundaries = [("vacuum", 0.0, 293.15), ("ambient", d.ambient.pressure_pa, d.ambient.temperature_k)]
    boundaries += [(s.name, s.pressure_pa, s.temperature_k or d.ambient.temperature_k) for s in d.supplies]
    spans = site.phase_spans(d, source)
    phases = [Phase(n, a, b) for n, (a, b) in spans.items()]
    segments = _segments(d, source, names)
    links = _links(d, source, nodes, names, spans)
    sensors = _sensors(d, source, names)
    return Scenario(
        name=d.name or source.replace("\\", "/").rsplit("/", 1)[-1].removesuffix(".toml"),
        description=d.description,
        segments=tuple(segments), links=tuple(links), sensors=tuple(sensors), boundaries=tuple(boundaries),
        phases=tuple(phases), step_s=d.simulation.step_s or _auto_step(segments, links, phases),
        duration_s=d.simulation.duration_s or (phases[-1].end_s if phases else 3600.0), path=source,
        bus_faults=tuple((b.bus, b.stuck_from_s) for b in d.buses),
        board_faults=tuple((k, float(v)) for k, v in d.board.model_dump().items() if v is not None),
    )
