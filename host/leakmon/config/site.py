"""The site description: which segments (modules, chambers) a pressurized site has,
their free volumes, the hatches and valves between them with their schedules, and
which sensor sits in which segment. It is what the mass balance and the leak verdict
read. One TOML format with the scenario files (hardware/scenarios/): every scenario
is a valid site file; the simulation-only keys (pressures, walls, leaks, noise,
faults) are checked but not kept.

API (a Site and everything in it is frozen):

    site = load_site("hardware/scenarios/station_hatches.toml")   # or a shipped name
    site.name, site.path                      # str
    site.total_volume_m3                      # float | None: the file's stated total
    site.segments                             # tuple[Segment, ...]: .name, .volume_m3
    site.segment("zvezda")                    # Segment (ConfigError if unknown)
    site.links                                # tuple[Link, ...]: hatches and valves
    #   Link.kind "hatch" | "valve"; .name; .a, .b: the two sides, segment names or a
    #   boundary (site.boundaries: "vacuum", "ambient", [[supplies]] names);
    #   .initially: open fraction before the first change; .schedule:
    #   tuple[(t_s, open fraction 0..1), ...], increasing t_s, piecewise constant
    #   (a change at t_s holds from t_s on, as in the simulator).
    #   Link.open_fraction(t_s) -> np.ndarray of the fraction at each time.
    site.sensors                              # tuple[Sensor, ...]
    #   Sensor: .chip, .bus, .addr (7-bit), .mux_addr (None: no TCA9548A),
    #   .mux_channel, .segment (a segment name: every sensor is in one);
    #   .mux: the mux channel as the node's HELLO reports it (0xFF: none);
    #   .node: the fleet node it is wired to, or None (a site on one node).
    site.sensor_at(bus, mux, addr)            # Sensor | None, keyed like a HELLO channel
    site.sensors_in("zvezda")                 # tuple[Sensor, ...]
    site.link("zarya-zvezda")                 # Link (ConfigError if unknown)
    site.hatch_state(t_s)                     # dict link name -> np.ndarray open fraction
    site.with_changes([(t_s, name, fraction)])  # a new Site: an operator's (or detected)
    #   changes merged into the schedules (Link.with_change: one at the same t_s replaces it)
    site.changes()                            # sorted times (s) at which any link changes
    site.groups(t_s)                          # connected segments at one time: a tuple of
    #   tuples of segment names, joined by links open (fraction > 0) between segments;
    #   links to a boundary join nothing.

Errors are ConfigError (a ValueError) with one line naming the file, the table
(with its entry number) and the key: unknown segment names, non-positive volumes, a
segment larger than total_volume_m3 or segments that do not add up to it, a sensor
with no segment where there are several, two sensors at one bus address.
Hatch state from an operator or detected from the data is not in the file: callers
merge it with site.with_changes().
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from leakmon.config import document as doc
from leakmon.config.loader import fail, parse_toml, read_toml, validate
from leakmon.config.shipped import resolve
from leakmon.errors import ConfigError

NO_MUX = 0xFF  # the mux channel a HELLO reports for a sensor wired without one
VOLUME_TOLERANCE = 0.01  # segments must add up to total_volume_m3 within 1 %


@dataclass(frozen=True)
class Segment:
    name: str
    volume_m3: float


@dataclass(frozen=True)
class Link:
    kind: str  # "hatch" or "valve"
    name: str
    a: str
    b: str
    initially: float
    schedule: tuple[tuple[float, float], ...]

    def open_fraction(self, t_s: npt.ArrayLike) -> npt.NDArray[np.float64]:
        """The open fraction at each time: piecewise constant, a change holds from its t_s on."""
        t = np.asarray(t_s, dtype=np.float64)
        values = np.array([self.initially] + [f for _, f in self.schedule])
        times = np.array([t for t, _ in self.schedule], dtype=np.float64)
        return values[np.searchsorted(times, t, side="right")]

    def with_change(self, t_s: float, fraction: float) -> Link:
        """This link with one more change (an operator's, or one detected in the data)
        merged into its schedule; it replaces a change at the same time."""
        if not (np.isfinite(t_s) and t_s >= 0 and 0.0 <= fraction <= 1.0):
            raise ConfigError(f"{self.kind} {self.name}: a change needs t_s >= 0 and a fraction 0..1, "
                              f"got ({t_s!r}, {fraction!r})")
        sched = sorted({t: f for t, f in (*self.schedule, (float(t_s), float(fraction)))}.items())
        return replace(self, schedule=tuple(sched))


@dataclass(frozen=True)
class Sensor:
    chip: str
    bus: int
    addr: int
    mux_addr: int | None
    mux_channel: int
    segment: str
    node: str | None = None  # the fleet node it is wired to (a site on several nodes)

    @property
    def mux(self) -> int:
        return self.mux_channel if self.mux_addr is not None else NO_MUX


@dataclass(frozen=True)
class Site:
    name: str
    path: str
    segments: tuple[Segment, ...]
    links: tuple[Link, ...]
    sensors: tuple[Sensor, ...]
    boundaries: tuple[str, ...]
    total_volume_m3: float | None = None

    def segment(self, name: str) -> Segment:
        for s in self.segments:
            if s.name == name:
                return s
        raise ConfigError(f"site {self.path or self.name}: no segment {name!r} "
                          f"(segments: {', '.join(s.name for s in self.segments)})")

    def link(self, name: str) -> Link:
        for ln in self.links:
            if ln.name == name:
                return ln
        raise ConfigError(f"site {self.path or self.name}: no hatch or valve {name!r} "
                          f"(have: {', '.join(ln.name for ln in self.links) or 'none'})")

    def with_changes(self, changes: Iterable[tuple[float, str, float]]) -> Site:
        """The site with (t_s, link name, open fraction) changes merged into its schedules."""
        links = {ln.name: ln for ln in self.links}
        for t_s, name, fraction in changes:
            links[name] = (links.get(name) or self.link(name)).with_change(t_s, fraction)
        return replace(self, links=tuple(links.values()))

    def sensors_in(self, segment: str) -> tuple[Sensor, ...]:
        self.segment(segment)
        return tuple(s for s in self.sensors if s.segment == segment)

    def sensor_at(self, bus: int, mux: int, addr: int) -> Sensor | None:
        return next((s for s in self.sensors if (s.bus, s.mux, s.addr) == (bus, mux, addr)), None)

    def hatch_state(self, t_s: npt.ArrayLike) -> dict[str, npt.NDArray[np.float64]]:
        return {ln.name: ln.open_fraction(t_s) for ln in self.links}

    def changes(self) -> tuple[float, ...]:
        return tuple(sorted({t for ln in self.links for t, _ in ln.schedule}))

    def groups(self, t_s: float) -> tuple[tuple[str, ...], ...]:
        """Segments joined by open links at t_s, each group in file order."""
        root = {s.name: s.name for s in self.segments}

        def find(n: str) -> str:
            while root[n] != n:
                n = root[n]
            return n

        for ln in self.links:
            if ln.a in root and ln.b in root and float(ln.open_fraction(t_s)) > 0.0:
                root[find(ln.a)] = find(ln.b)
        out: dict[str, list[str]] = {}
        for s in self.segments:
            out.setdefault(find(s.name), []).append(s.name)
        return tuple(tuple(g) for g in out.values())


def load_site(path: str | Path) -> Site:
    """A site (or scenario) file, or the name of a shipped scenario."""
    p = resolve(path, "site")
    return site_from(validate(doc.Document, read_toml(p, "site"), str(p)), str(p))


def loads_site(text: str, source: str = "<site>") -> Site:
    return site_from(validate(doc.Document, parse_toml(text, source, "site"), source), source)


def site_from(d: doc.Document, source: str) -> Site:
    segs = segment_names(d, source)
    check_volumes(d, source)
    nodes = node_names(d, source, segs)
    rows = links_of(d, source, nodes, segs, phase_spans(d, source))
    links = tuple(Link(kind, name, a, b, initially, sched) for kind, _, _, name, a, b, initially, sched in rows)
    sensors = tuple(Sensor(s.chip, s.bus, s.addr, s.mux_addr, s.mux_channel, seg, s.node)
                    for s, seg in zip(d.sensors, sensor_segments(d, source, segs)))
    return Site(d.name or _stem(source), source, tuple(Segment(n, s.volume_m3) for n, s in zip(segs, d.segments)),
                links, sensors, tuple(nodes[len(segs):]), d.total_volume_m3)


def _stem(source: str) -> str:
    return source.replace("\\", "/").rsplit("/", 1)[-1].removesuffix(".toml")


# -- the checks across tables, shared with the scenario reader (leakmon.sim.schema) --

def segment_names(d: doc.Document, source: str) -> list[str]:
    if not d.segments:
        if d.chamber is not None:
            raise ConfigError(f"{source}: [chamber] is the old format: describe it as [[segments]] "
                              "(name, volume_m3, pressure_pa, wall) with [[leaks]] (see hardware/scenarios/)")
        raise ConfigError(f"{source}: no [[segments]]")
    names = []
    for k, s in enumerate(d.segments):
        if s.name is None and k > 0:
            raise fail(source, f"[[segments]] #{k + 1}",
                       "missing 'name' (only the first segment defaults to 'chamber')")
        names.append(s.name or "chamber")
    return names


def node_names(d: doc.Document, source: str, segs: list[str]) -> list[str]:
    """Segments, then the boundaries: vacuum, ambient and the [[supplies]]."""
    nodes = segs + list(doc.BOUNDARIES) + [s.name for s in d.supplies]
    dup = sorted({n for n in nodes if nodes.count(n) > 1})
    if dup:
        raise ConfigError(f"{source}: names used twice among segments, supplies and {', '.join(doc.BOUNDARIES)}: "
                          f"{', '.join(dup)}")
    return nodes


def check_volumes(d: doc.Document, source: str) -> None:
    total = d.total_volume_m3
    if total is None:
        return
    for k, s in enumerate(d.segments):
        if s.volume_m3 > total:
            raise fail(source, f"[[segments]] #{k + 1}", f"'volume_m3' = {s.volume_m3:g} is larger than "
                                                          f"total_volume_m3 = {total:g}")
    added = sum(s.volume_m3 for s in d.segments)
    if abs(added - total) > VOLUME_TOLERANCE * total:
        raise fail(source, "(top level)", f"'total_volume_m3' = {total:g} but the [[segments]] volumes add up to "
                                          f"{added:g} (they must agree within {VOLUME_TOLERANCE:.0%})")


def phase_spans(d: doc.Document, source: str) -> dict[str, tuple[float, float]]:
    """name -> (start_s, end_s): the [[phases]] run one after another from t = 0."""
    out: dict[str, tuple[float, float]] = {}
    t = 0.0
    for k, ph in enumerate(d.phases):
        if ph.name in out:
            raise fail(source, f"[[phases]] #{k + 1}", f"'name' {ph.name!r} is used by an earlier phase")
        out[ph.name] = (t, t + ph.duration_s)
        t += ph.duration_s
    return out


def _choice(name: str, allowed: list[str], key: str, source: str, table: str) -> str:
    if name not in allowed:
        raise fail(source, table, f"'{key}' = {name!r} is not one of {', '.join(allowed)}")
    return name


def state(v: Any, key: str, source: str, table: str) -> float:
    """An open fraction from "open", "closed" or a number 0..1."""
    if isinstance(v, str) and v in doc.LINK_STATES:
        return doc.LINK_STATES[v]
    if isinstance(v, (int, float)) and not isinstance(v, bool) and 0.0 <= v <= 1.0:
        return float(v)
    raise fail(source, table, f"{key} {v!r} is not one of {', '.join(doc.LINK_STATES)} or an open fraction 0..1")


def _schedule(t: doc.Link, source: str, table: str,
              phases: dict[str, tuple[float, float]]) -> tuple[float, tuple[tuple[float, float], ...]]:
    initially = state(t.initially if t.initially is not None else ("closed" if t.open_during else "open"),
                      "initially", source, table)
    if t.schedule and t.open_during is not None:
        raise fail(source, table, "give one of 'schedule' and 'open_during', not both")
    sched: list[tuple[float, float]] = []
    for n in t.open_during or ():
        if n not in phases:
            known = ", ".join(phases) or "(no [[phases]])"
            raise fail(source, table, f"'open_during' names phase {n!r}, not one of {known}")
        sched += [(phases[n][0], 1.0), (phases[n][1], 0.0)]
    sched.sort()
    for k, p in enumerate(t.schedule):
        if len(p) != 2 or isinstance(p[0], bool) or not isinstance(p[0], (int, float)):
            raise fail(source, table, f"'schedule' entry #{k + 1} must be [t_s, state], got {p!r}")
        if not np.isfinite(p[0]) or p[0] < 0 or (sched and p[0] <= sched[-1][0]):
            raise fail(source, table, f"'schedule' times must be >= 0 and increase (entry #{k + 1})")
        sched.append((float(p[0]), state(p[1], f"schedule entry #{k + 1}", source, table)))
    return initially, tuple(sched)


LinkRow = tuple[str, str, doc.Link, str, str, str, float, tuple[tuple[float, float], ...]]


def links_of(d: doc.Document, source: str, nodes: list[str], segs: list[str],
             phases: dict[str, tuple[float, float]]) -> list[LinkRow]:
    """(kind, table, entry, name, a, b, initially, schedule) of every hatch and valve, checked."""
    out: list[LinkRow] = []
    names: dict[str, str] = {}
    for kind, table, entries in (("hatch", "hatches", d.hatches), ("valve", "valves", d.valves)):
        for k, t in enumerate(entries):
            where = f"[[{table}]] #{k + 1}"
            if len(t.between) != 2:
                raise fail(source, where, f"'between' must be two of {', '.join(nodes)}")
            a = _choice(t.between[0], nodes, "between", source, where)
            b = _choice(t.between[1], nodes, "between", source, where)
            if a == b or (a not in segs and b not in segs):
                raise fail(source, where, "'between' must join two different nodes, at least one of them a segment")
            name = t.name or f"{a}-{b}"
            if name in names:
                raise fail(source, where, f"'name' {name!r} is already the name of {names[name]}")
            names[name] = where
            out.append((kind, where, t, name, a, b, *_schedule(t, source, where, phases)))
    return out


def sensor_segments(d: doc.Document, source: str, segs: list[str]) -> list[str]:
    """Each sensor's segment, checked: one must be named where there are several; and no
    two sensors share a bus, mux channel and address."""
    out: list[str] = []
    seen: dict[tuple[str | None, int, int | None, int, int], int] = {}
    for k, s in enumerate(d.sensors):
        where = f"[[sensors]] #{k + 1}"
        if s.segment is None and len(segs) > 1:
            raise fail(source, where, f"missing 'segment': the sensor is in no segment (one of {', '.join(segs)})")
        out.append(_choice(s.segment or segs[0], segs, "segment", source, where))
        at = (s.node, s.bus, s.mux_addr, s.mux_channel if s.mux_addr is not None else 0, s.addr)
        if at in seen:
            raise fail(source, where, f"'addr' 0x{s.addr:02x} on bus {s.bus}"
                                      + (f" mux channel {s.mux_channel}" if s.mux_addr is not None else "")
                                      + (f" of node {s.node}" if s.node else "")
                                      + f" is already [[sensors]] #{seen[at]}'s")
        seen[at] = k + 1
    if not out:
        raise ConfigError(f"{source}: no [[sensors]]")
    return out
