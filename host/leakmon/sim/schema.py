"""Scenario TOML -> leakmon.sim.scenario.Scenario, validated: every error names the
file, the table (with its entry number) and the key, and lists what is allowed."""

from __future__ import annotations

import math
from typing import Any

from leakmon.errors import ConfigError
from leakmon.sim.scenario import (
    BOUNDARIES,
    LINK_STATES,
    SECONDS_PER_DAY,
    SUPPORTED_CHIPS,
    LinkSpec,
    Phase,
    Scenario,
    SegmentSpec,
    SensorSpec,
    WallSpec,
    hole_cda_m2,
)
from leakmon.sim.vboard import physics

TOP_KEYS = ("name", "description", "simulation", "ambient", "supplies", "segments", "hatches", "valves", "leaks",
            "phases", "sensors", "buses", "board")
KEYS = {
    "simulation": ("step_s", "duration_s"),
    "ambient": ("pressure_pa", "temperature_k"),
    "supplies": ("name", "pressure_pa", "temperature_k"),
    "segments": ("name", "volume_m3", "pressure_pa", "temperature_k", "thermal_tau_s", "wall"),
    "wall": ("temperature_k", "swing_k", "period_s", "drift_k_per_h", "schedule"),
    "hatches": ("name", "between", "area_m2", "diameter_mm", "cd", "initially", "schedule", "open_during"),
    "leaks": ("name", "segment", "to", "start_s", "area_m2", "diameter_mm", "cd", "mass_kg_per_day"),
    "phases": ("name", "duration_s"),
    "sensors": ("chip", "bus", "addr", "mux_addr", "mux_channel", "segment", "noise_pa", "noise_k", "offset_pa",
                "tempco_pa_per_k", "faults"),
    # Fault injection (host/leakmon/sim/vboard/vhw.py): per sensor, and per bus.
    "faults": ("nack_prob", "remove_at_s", "replug_at_s", "stuck_from_s", "stuck_until_s"),
    "buses": ("bus", "stuck_from_s"),
    "board": ("reset_at_s", "disconnect_at_s", "disconnect_s"),
}
KEYS["valves"] = KEYS["hatches"]


class _Where:
    def __init__(self, source: str, table: str) -> None:
        self.source = source
        self.table = table

    def fail(self, msg: str) -> ConfigError:
        return ConfigError(f"{self.source} {self.table}: {msg}")


def _table(data: dict[str, Any], key: str, w: _Where) -> dict[str, Any]:
    v = data.get(key, {})
    if not isinstance(v, dict):
        raise w.fail(f"'{key}' must be a table")
    return v


def _array(data: dict[str, Any], key: str, source: str) -> list[dict[str, Any]]:
    v = data.get(key, [])
    if not isinstance(v, list) or not all(isinstance(x, dict) for x in v):
        raise ConfigError(f"{source}: '{key}' must be an array of tables ([[{key}]])")
    return v


def _keys(t: dict[str, Any], allowed: tuple[str, ...], w: _Where) -> None:
    for k in t:
        if k not in allowed:
            raise w.fail(f"unknown key '{k}' (allowed: {', '.join(allowed)})")


def _num(t: dict[str, Any], key: str, w: _Where, default: float | None = None, *, lo: float | None = None,
         positive: bool = False) -> float:
    v = t.get(key, default)
    if v is None:
        raise w.fail(f"missing '{key}'")
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        raise w.fail(f"'{key}' must be a finite number, got {v!r}")
    if positive and v <= 0:
        raise w.fail(f"'{key}' must be positive, got {v!r}")
    if lo is not None and v < lo:
        raise w.fail(f"'{key}' must be >= {lo:g}, got {v!r}")
    return float(v)


def _str(t: dict[str, Any], key: str, w: _Where, default: str | None = None) -> str:
    v = t.get(key, default)
    if v is None:
        raise w.fail(f"missing '{key}'")
    if not isinstance(v, str) or not v:
        raise w.fail(f"'{key}' must be a non-empty string, got {v!r}")
    return v


def _choice(name: str, allowed: list[str], key: str, w: _Where) -> str:
    if name not in allowed:
        raise w.fail(f"'{key}' = {name!r} is not one of {', '.join(allowed)}")
    return name


def _wall(t: dict[str, Any], default_k: float, w: _Where) -> WallSpec:
    _keys(t, KEYS["wall"], w)
    sched: list[tuple[float, float]] = []
    for k, p in enumerate(t.get("schedule", [])):
        if (not isinstance(p, list) or len(p) != 2
                or not all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in p)):
            raise w.fail(f"'schedule' entry #{k + 1} must be [t_s, temperature_k], got {p!r}")
        if sched and p[0] <= sched[-1][0]:
            raise w.fail(f"'schedule' times must increase (entry #{k + 1})")
        sched.append((float(p[0]), float(p[1])))
    return WallSpec(_num(t, "temperature_k", w, default_k, positive=True), _num(t, "swing_k", w, 0.0, lo=0.0),
                    _num(t, "period_s", w, 3600.0, positive=True), _num(t, "drift_k_per_h", w, 0.0) / 3600.0,
                    tuple(sched))


def _segments(data: dict[str, Any], source: str) -> list[SegmentSpec]:
    out = []
    for k, s in enumerate(_array(data, "segments", source)):
        w = _Where(source, f"[[segments]] #{k + 1}")
        _keys(s, KEYS["segments"], w)
        wall = _wall(_table(s, "wall", w), _num(s, "temperature_k", w, 293.15, positive=True),
                     _Where(source, f"[segments.wall] #{k + 1}"))
        wall0 = wall.schedule[0][1] if wall.schedule else wall.temperature_k
        temp = _num(s, "temperature_k", w, wall0, positive=True)  # the gas at t = 0
        out.append(SegmentSpec(_str(s, "name", w, "chamber" if k == 0 else None), _num(s, "volume_m3", w, positive=True),
                               _num(s, "pressure_pa", w, lo=0.0), temp, wall, _num(s, "thermal_tau_s", w, 0.0, lo=0.0)))
    if not out:
        if "chamber" in data:
            raise ConfigError(f"{source}: [chamber] is the old format: describe it as [[segments]] "
                              "(name, volume_m3, pressure_pa, wall) with [[leaks]] (see hardware/scenarios/)")
        raise ConfigError(f"{source}: no [[segments]]")
    return out


def _cda(t: dict[str, Any], w: _Where, cd_default: float) -> float | None:
    cd = _num(t, "cd", w, cd_default, positive=True)
    if "area_m2" in t and "diameter_mm" in t:
        raise w.fail("give one of 'area_m2' and 'diameter_mm', not both")
    if "area_m2" in t:
        return cd * _num(t, "area_m2", w, positive=True)
    if "diameter_mm" in t:
        return hole_cda_m2(_num(t, "diameter_mm", w, positive=True), cd)
    return None


def _schedule(t: dict[str, Any], w: _Where, phases: dict[str, Phase]) -> tuple[float, tuple[tuple[float, float], ...]]:
    initially = _state(t.get("initially", "closed" if "open_during" in t else "open"), "initially", w)
    if "schedule" in t and "open_during" in t:
        raise w.fail("give one of 'schedule' and 'open_during', not both")
    sched: list[tuple[float, float]] = []
    if "open_during" in t:
        names = t["open_during"]
        if not isinstance(names, list) or not names:
            raise w.fail("'open_during' must be a list of phase names")
        for n in names:
            ph = phases.get(n) if isinstance(n, str) else None
            if ph is None:
                raise w.fail(f"'open_during' names phase {n!r}, not one of {', '.join(phases) or '(no [[phases]])'}")
            sched += [(ph.start_s, 1.0), (ph.end_s, 0.0)]
        sched.sort()
    for k, p in enumerate(t.get("schedule", [])):
        if not isinstance(p, list) or len(p) != 2 or isinstance(p[0], bool) or not isinstance(p[0], (int, float)):
            raise w.fail(f"'schedule' entry #{k + 1} must be [t_s, state], got {p!r}")
        if p[0] < 0 or (sched and p[0] <= sched[-1][0]):
            raise w.fail(f"'schedule' times must be >= 0 and increase (entry #{k + 1})")
        sched.append((float(p[0]), _state(p[1], f"schedule entry #{k + 1}", w)))
    return initially, tuple(sched)


def _state(v: Any, key: str, w: _Where) -> float:
    if isinstance(v, str) and v in LINK_STATES:
        return LINK_STATES[v]
    if isinstance(v, (int, float)) and not isinstance(v, bool) and 0.0 <= v <= 1.0:
        return float(v)
    raise w.fail(f"{key} {v!r} is not one of {', '.join(LINK_STATES)} or an open fraction 0..1")


def _links(data: dict[str, Any], source: str, nodes: list[str], segs: list[str],
           phases: dict[str, Phase]) -> list[LinkSpec]:
    out = []
    for kind, table in (("hatch", "hatches"), ("valve", "valves")):
        for k, t in enumerate(_array(data, table, source)):
            w = _Where(source, f"[[{table}]] #{k + 1}")
            _keys(t, KEYS[table], w)
            between = t.get("between")
            if not isinstance(between, list) or len(between) != 2:
                raise w.fail(f"'between' must be two of {', '.join(nodes)}")
            a = _choice(str(between[0]), nodes, "between", w)
            b = _choice(str(between[1]), nodes, "between", w)
            if a == b or (a not in segs and b not in segs):
                raise w.fail("'between' must join two different nodes, at least one of them a segment")
            cda = _cda(t, w, 0.8)
            if cda is None:
                raise w.fail("missing 'area_m2' (or 'diameter_mm')")
            initially, sched = _schedule(t, w, phases)
            out.append(LinkSpec(kind, _str(t, "name", w, f"{a}-{b}"), a, b, cda, None, initially, sched))
    for k, t in enumerate(_array(data, "leaks", source)):
        w = _Where(source, f"[[leaks]] #{k + 1}")
        _keys(t, KEYS["leaks"], w)
        seg = _choice(_str(t, "segment", w, segs[0]), segs, "segment", w)
        to = _choice(_str(t, "to", w, "vacuum"), [n for n in nodes if n != seg], "to", w)
        cda = _cda(t, w, 0.6)
        rate = t.get("mass_kg_per_day")
        if (cda is None) == (rate is None):
            raise w.fail("give either 'mass_kg_per_day' or a hole ('area_m2' or 'diameter_mm', with 'cd')")
        start = _num(t, "start_s", w, 0.0, lo=0.0)
        kg_per_s = None if rate is None else _num(t, "mass_kg_per_day", w, lo=0.0) / SECONDS_PER_DAY
        sched = ((start, 1.0),) if start > 0 else ()
        out.append(LinkSpec("leak", _str(t, "name", w, f"leak-{seg}"), seg, to, cda, kg_per_s,
                            0.0 if start > 0 else 1.0, sched))
    return out


def _sensors(data: dict[str, Any], source: str, segs: list[str]) -> list[SensorSpec]:
    out = []
    for k, s in enumerate(_array(data, "sensors", source)):
        w = _Where(source, f"[[sensors]] #{k + 1}")
        _keys(s, KEYS["sensors"], w)
        chip = _choice(str(s.get("chip", "")), list(SUPPORTED_CHIPS), "chip", w)
        mux = s.get("mux_addr")
        if mux is not None and not (isinstance(mux, int) and 0x70 <= mux <= 0x77):
            raise w.fail(f"'mux_addr' must be a TCA9548A address 0x70..0x77, got {mux!r}")
        out.append(SensorSpec(
            chip, int(_num(s, "bus", w, 0, lo=0)), int(_num(s, "addr", w, 0x77, lo=0)),
            _num(s, "noise_pa", w, 0.3, lo=0.0), _num(s, "noise_k", w, 0.002, lo=0.0),
            _choice(_str(s, "segment", w, segs[0]), segs, "segment", w), mux,
            int(_num(s, "mux_channel", w, 0, lo=0)), _num(s, "offset_pa", w, 0.0),
            _num(s, "tempco_pa_per_k", w, 0.0), _faults(s, w)))
    if not out:
        raise ConfigError(f"{source}: no [[sensors]]")
    return out


def _faults(s: dict[str, Any], w: _Where) -> tuple[tuple[str, float], ...]:
    f = s.get("faults", {})
    if not isinstance(f, dict):
        raise w.fail("'faults' must be a table, e.g. faults = { nack_prob = 0.01 }")
    _keys(f, KEYS["faults"], w)
    out = tuple((k, _num(f, k, w, lo=0.0)) for k in KEYS["faults"] if k in f)
    if dict(out).get("nack_prob", 0.0) > 1.0:
        raise w.fail("'nack_prob' is a probability: 0..1")
    return out


def _bus_faults(data: dict[str, Any], source: str) -> tuple[tuple[int, float], ...]:
    out = []
    for k, t in enumerate(_array(data, "buses", source)):
        w = _Where(source, f"[[buses]] #{k + 1}")
        _keys(t, KEYS["buses"], w)
        out.append((int(_num(t, "bus", w, lo=0)), _num(t, "stuck_from_s", w, lo=0.0)))
    return tuple(out)


def _board_faults(data: dict[str, Any], source: str) -> tuple[tuple[str, float], ...]:
    t = _table(data, "board", _Where(source, "(top level)"))
    w = _Where(source, "[board]")
    _keys(t, KEYS["board"], w)
    return tuple((k, _num(t, k, w, lo=0.0)) for k in KEYS["board"] if k in t)


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
    top = _Where(source, "(top level)")
    _keys(data, TOP_KEYS + ("chamber",), top)
    sim = _table(data, "simulation", top)
    ws = _Where(source, "[simulation]")
    _keys(sim, KEYS["simulation"], ws)
    amb = _table(data, "ambient", top)
    wa = _Where(source, "[ambient]")
    _keys(amb, KEYS["ambient"], wa)
    boundaries = [("vacuum", 0.0, 293.15),
                  ("ambient", _num(amb, "pressure_pa", wa, 101325.0, lo=0.0),
                   _num(amb, "temperature_k", wa, 293.15, positive=True))]
    for k, t in enumerate(_array(data, "supplies", source)):
        w = _Where(source, f"[[supplies]] #{k + 1}")
        _keys(t, KEYS["supplies"], w)
        boundaries.append((_str(t, "name", w), _num(t, "pressure_pa", w, lo=0.0),
                           _num(t, "temperature_k", w, boundaries[1][2], positive=True)))
    segments = _segments(data, source)
    segs = [s.name for s in segments]
    nodes = segs + [b[0] for b in boundaries]
    dup = sorted({n for n in nodes if nodes.count(n) > 1})
    if dup:
        raise ConfigError(f"{source}: names used twice among segments, supplies and {', '.join(BOUNDARIES)}: "
                          f"{', '.join(dup)}")
    phases: list[Phase] = []
    for k, t in enumerate(_array(data, "phases", source)):
        w = _Where(source, f"[[phases]] #{k + 1}")
        _keys(t, KEYS["phases"], w)
        start = phases[-1].end_s if phases else 0.0
        phases.append(Phase(_str(t, "name", w), start, start + _num(t, "duration_s", w, positive=True)))
    links = _links(data, source, nodes, segs, {p.name: p for p in phases})
    sensors = _sensors(data, source, segs)
    step = _num(sim, "step_s", ws, _auto_step(segments, links, phases), positive=True)
    duration = _num(sim, "duration_s", ws, phases[-1].end_s if phases else 3600.0, positive=True)
    return Scenario(
        name=_str(data, "name", top, source.rsplit("/", 1)[-1].removesuffix(".toml")),
        description=str(data.get("description", "")),
        segments=tuple(segments), links=tuple(links), sensors=tuple(sensors), boundaries=tuple(boundaries),
        phases=tuple(phases), step_s=step, duration_s=duration, path=source,
        bus_faults=_bus_faults(data, source), board_faults=_board_faults(data, source),
    )
