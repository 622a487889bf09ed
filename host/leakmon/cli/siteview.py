"""`--site FILE` for the commands that analyse: the station's segments, hatches and sensors,
the mass balance of each connected group, and the verdict on each segment, as text a crew
can act on and as JSON objects.

Sites are read by the one site loader (leakmon.config.site): every scenario file is a site file.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from leakmon import units
from leakmon.analysis.massbalance import (
    Configuration,
    GroupMeasurement,
    Hatch,
    HatchTimeline,
    Station,
    measure,
    segment_series,
)
from leakmon.analysis.planner import Noise, Plan, plan
from leakmon.analysis.verdict import CONFIDENCE, Verdict, judge
from leakmon.errors import ConfigError
from leakmon.wire import messages

DAY = units.SECONDS_PER_DAY
NO_MUX = 0xFF


@dataclass(frozen=True)
class Site:
    """What the analysis needs from a site file."""

    path: str
    station: Station
    timeline: HatchTimeline
    sensors: dict[tuple[int, int, int], int]  # (bus, mux channel or 0xFF, addr) -> segment
    noise_pa: tuple[float, ...]  # per segment, from its sensors (for the planner)
    noise_k: tuple[float, ...]
    evidence: tuple[str, ...] = ()  # hatch states from the data: why each change was seen
    node_sensors: Mapping[tuple[str, int, int, int], int] = field(default_factory=dict)  # sensors naming a node
    nodes: tuple[str, ...] = ()  # the fleet nodes its sensors name, in file order


def load_site(path: str) -> Site:
    """A site (or scenario) file: segments with volumes, hatches with schedules, sensors.

    Read by the one site loader (leakmon.config.site), whose errors name the file, the
    table and the key. A scenario file also tells each hatch's orifice (for the derived
    settling time) and each sensor's noise (for the planner's hold times): those are taken
    when the file is one; a plain site file leaves them to the data and the defaults."""
    from leakmon.config.site import load_site as load_site_file

    cfg = load_site_file(path)
    names = tuple(seg.name for seg in cfg.segments)
    index = {n: i for i, n in enumerate(names)}
    links = [ln for ln in cfg.links if ln.a in index and ln.b in index]
    extra = _scenario_extras(path)
    hatches = tuple(Hatch(ln.name, index[ln.a], index[ln.b], extra.cda_m2.get(ln.name)) for ln in links)
    timeline = HatchTimeline.from_schedules([ln.initially > 0 for ln in links],
                                            [[(t, f > 0) for t, f in ln.schedule] for ln in links])  # fmt: skip
    sensors: dict[tuple[int, int, int], int] = {}
    node_sensors: dict[tuple[str, int, int, int], int] = {}
    noise_pa = [math.inf] * len(names)
    noise_k = [math.inf] * len(names)
    for sensor in cfg.sensors:
        key = (sensor.bus, sensor.mux, sensor.addr)
        seg = index[sensor.segment]
        if sensor.node is not None:
            node_sensors[(sensor.node, *key)] = seg
        sensors.setdefault(key, seg)
        pa, k = extra.noise.get(key, (math.inf, math.inf))
        noise_pa[seg] = min(noise_pa[seg], pa)
        noise_k[seg] = min(noise_k[seg], k)
    station = Station(names, tuple(seg.volume_m3 for seg in cfg.segments), hatches)
    nodes = tuple(dict.fromkeys(sn.node for sn in cfg.sensors if sn.node is not None))
    return Site(str(path), station, timeline, sensors, tuple(noise_pa), tuple(noise_k), (), node_sensors, nodes)


@dataclass(frozen=True)
class _Extras:
    cda_m2: dict[str, float]  # hatch name -> Cd x area
    noise: dict[tuple[int, int, int], tuple[float, float]]  # sensor key -> (noise Pa, noise K)


def _scenario_extras(path: str) -> _Extras:
    """What only a scenario file says: hatch orifices and sensor noise (none for a site file)."""
    from leakmon.sim import (
        scenario as scenario_mod,  # the cli layer may; the analysis may not
    )

    try:
        sc = scenario_mod.load(path)
    except ConfigError:
        return _Extras({}, {})
    cda = {ln.name: ln.cda_m2 for ln in sc.links if ln.cda_m2}
    noise = {(sp.bus, sp.mux_channel if sp.mux_addr is not None else NO_MUX, sp.addr): (sp.noise_pa, sp.noise_k)
             for sp in sc.sensors}
    return _Extras(cda, noise)


def channel_segments(site: Site, hello: messages.Hello | None) -> dict[int, int]:
    """Which segment each of the node's channels sits in; a channel the site does not place
    is an error naming the file."""
    if hello is None:
        raise ConfigError(f"--site {site.path}: the recording has no HELLO: cannot tell which sensor is where")
    out = {}
    for c in hello.channels:
        key = (c.bus, c.mux, c.addr)
        if key not in site.sensors:
            raise ConfigError(f"{site.path} [[sensors]]: no sensor at bus {c.bus} mux "
                              f"{'none' if c.mux == NO_MUX else c.mux} addr 0x{c.addr:02x} "
                              f"(channel {c.channel}, {c.chip_name}): which segment is it in?")  # fmt: skip
        out[c.channel] = site.sensors[key]
    return out


def nodes_segments(site: Site, nodes: list[tuple[str, messages.Hello | None]]) -> dict[int, int]:
    """channel_segments for the nodes of one site read from the fleet's database, keyed
    k * 256 + channel for the k-th node. A sensor whose [[sensors]] entry names its node
    (node = "...") is placed by node and address; one that names none by address alone,
    so two nodes with a sensor at that address are ambiguous: an error naming both."""
    out: dict[int, int] = {}
    owner: dict[tuple[int, int, int], str] = {}
    for k, (node_id, hello) in enumerate(nodes):
        if hello is None:
            raise ConfigError(f"--site {site.path}: node {node_id} sent no HELLO in the range: "
                              "cannot tell which sensor is where")
        for c in hello.channels:
            key = (c.bus, c.mux, c.addr)
            at = (f"bus {c.bus} mux {'none' if c.mux == NO_MUX else c.mux} addr 0x{c.addr:02x} "
                  f"(channel {c.channel}, {c.chip_name})")  # fmt: skip
            if (node_id, *key) in site.node_sensors:
                out[(k << 8) | c.channel] = site.node_sensors[(node_id, *key)]
                continue
            named_elsewhere = any(ns[1:] == key for ns in site.node_sensors)
            if key not in site.sensors or named_elsewhere or node_id in site.nodes:
                raise ConfigError(f"{site.path} [[sensors]]: no sensor of node {node_id} at {at}: "
                                  "which segment is it in?")
            if key in owner and owner[key] != node_id:
                raise ConfigError(f"{site.path} [[sensors]]: nodes {owner[key]} and {node_id} both have a sensor at "
                                  f"{at}: say which is which with node = \"...\" in [[sensors]]")
            owner[key] = node_id
            out[(k << 8) | c.channel] = site.sensors[key]
    return out


@dataclass(frozen=True)
class SiteResult:
    configs: list[Configuration]
    groups: list[GroupMeasurement]
    verdict: Verdict
    t_end_s: float
    pressure_pa: tuple[float, ...]  # latest per segment


def analyse(site: Site, series: Mapping[int, tuple[Any, Any, Any]], segment_of: Mapping[int, int],
            confidence: float = CONFIDENCE) -> SiteResult:  # fmt: skip
    t, p, temp = segment_series(series, segment_of, site.station.n)
    configs, groups = measure(site.station, site.timeline, t, p, temp)
    verdict = judge(groups, site.station.n, confidence, volume_m3=float(sum(site.station.volumes_m3)))
    latest = tuple(float(x) for x in p[:, -1]) if t.size else tuple(math.nan for _ in site.station.names)
    return SiteResult(configs, groups, verdict, float(t[-1]) if t.size else math.nan, latest)


def _num(x: float) -> float | None:
    return float(x) if math.isfinite(x) else None


def json_objects(site: Site, r: SiteResult, limit_pa: float | None = None) -> list[dict[str, Any]]:
    """One object for the station, one per group and configuration, one per segment."""
    names = site.station.names
    v = r.verdict
    q = 1.959964
    out: list[dict[str, Any]] = [{
        "kind": "station", "leak_kg_per_day": _num(v.total_kg_per_s * DAY),
        "leak_kg_per_day_ci95": [_num((v.total_kg_per_s - q * v.total_stderr_kg_per_s) * DAY),
                                 _num((v.total_kg_per_s + q * v.total_stderr_kg_per_s) * DAY)],
        "confidence": v.confidence, "min_leak_kg_per_day": v.min_leak_kg_per_s * DAY,
        "leaking": [names[i] for i in v.leaking],
        "undecided": [names[s.segment] for s in v.segments if s.leaking is None],
        "hatch_states_from": site.timeline.source, "hatch_evidence": list(site.evidence),
    }]
    for m in r.groups:
        c = r.configs[m.config]
        lo, hi = m.ci95_pa_per_s
        obj: dict[str, Any] = {
            "kind": "group", "config": m.config, "segments": [names[i] for i in m.segments],
            "t_start_s": m.t_start_s, "t_stop_s": m.t_stop_s, "settle_s": c.settle_s, "settle_reason": c.settle_reason,
            "volume_m3": m.volume_m3, "leak_kg_per_day": m.leak_kg_per_s * DAY,
            "leak_kg_per_day_ci95": [m.ci95_low_kg_per_s * DAY, m.ci95_high_kg_per_s * DAY],
            "leak_pa_per_day": m.leak_pa_per_s * DAY, "leak_pa_per_day_ci95": [lo * DAY, hi * DAY],
            "leak_mmhg_per_day": float(units.pa_per_s_to_mmhg_per_day(m.leak_pa_per_s)),
        }
        if limit_pa is not None and m.config == len(r.configs) - 1:
            obj["time_to_limit_s"] = _time_to_limit(r, m, limit_pa)
        out.append(obj)
    for s in v.segments:
        ok = math.isfinite(s.leak_kg_per_s)
        out.append({
            "kind": "segment", "segment": names[s.segment],
            "leak_kg_per_day": _num(s.leak_kg_per_s * DAY),
            "leak_kg_per_day_ci95": [_num(s.ci95_low_kg_per_s * DAY), _num(s.ci95_high_kg_per_s * DAY)] if ok
            else [_num(s.lower_kg_per_s * DAY), _num(s.upper_kg_per_s * DAY)],
            "bounds_kg_per_day": [_num(s.lower_kg_per_s * DAY), _num(s.upper_kg_per_s * DAY)],
            "leaking": s.leaking, "confidence": s.confidence, "hold_s": s.hold_s, "reason": s.reason,
            "separated": ok,
        })
    return out


def _time_to_limit(r: SiteResult, m: GroupMeasurement, limit_pa: float) -> float | None:
    p_now = float(np.mean([r.pressure_pa[i] for i in m.segments]))
    rate = m.leak_pa_per_s
    if p_now <= limit_pa:
        return 0.0
    return (p_now - limit_pa) / rate if rate > 0 else None


def _kgd(x: float) -> str:
    return "?" if not math.isfinite(x) else f"{x * DAY:.3f}"


def text_lines(site: Site, r: SiteResult, limit_pa: float | None = None) -> list[str]:
    """The station total, each configuration's groups, and each segment's verdict."""
    names = site.station.names
    v = r.verdict
    q = 1.959964
    out = [f"station: {_kgd(v.total_kg_per_s)} kg/day [{_kgd(v.total_kg_per_s - q * v.total_stderr_kg_per_s)}, "
           f"{_kgd(v.total_kg_per_s + q * v.total_stderr_kg_per_s)}] (all segments together; hatch states from "
           f"the {site.timeline.source})"]  # fmt: skip
    out += [f"hatch evidence: {e}" for e in site.evidence]
    for c in r.configs:
        out.append(f"configuration {c.index}: {c.t_start_s:.0f}..{c.t_stop_s:.0f} s, settle {c.settle_s:.3g} s "
                   f"({c.settle_reason})")  # fmt: skip
        for m in (g for g in r.groups if g.config == c.index):
            lo, hi = m.ci95_pa_per_s
            ttl = ""
            if limit_pa is not None and c.index == len(r.configs) - 1 and m.ci95_low_kg_per_s > 0:
                left = _time_to_limit(r, m, limit_pa)
                ttl = f", to the limit in {units.format_duration(left)}" if left is not None else ""
            out.append(f"  group {'+'.join(names[i] for i in m.segments)}: {_kgd(m.leak_kg_per_s)} kg/day "
                       f"[{_kgd(m.ci95_low_kg_per_s)}, {_kgd(m.ci95_high_kg_per_s)}], "
                       f"{m.leak_pa_per_s * DAY:+.2f} Pa/day [{lo * DAY:+.2f}, {hi * DAY:+.2f}]{ttl}")  # fmt: skip
    out.append(f"verdict at {v.confidence:.0%} (a leak under {v.min_leak_kg_per_s * DAY:.3g} kg/day is not "
               f"worth a hatch):")  # fmt: skip
    for s in v.segments:
        word = {True: "LEAKING", False: "not leaking", None: "undecided"}[s.leaking]
        est = (f"{_kgd(s.leak_kg_per_s)} kg/day [{_kgd(s.ci95_low_kg_per_s)}, {_kgd(s.ci95_high_kg_per_s)}]"
               if math.isfinite(s.leak_kg_per_s) else f"<= {_kgd(s.upper_kg_per_s)} kg/day (never weighed alone)")
        hold = f", hold {units.format_duration(s.hold_s)} more" if s.hold_s is not None else ""
        out.append(f"  {names[s.segment]:<12} {word:<12} {s.confidence:7.2%}  {est}  ({s.reason}{hold})")
    return out


SENSOR_NOTE = ("one sensor's P/T: with a hatch open it is not its segment's gas (gas flows between "
               "modules at different temperatures); see the segment objects")


def label_sensor(obj: dict[str, Any], site: Site, channel: int, segment_of: Mapping[int, int]) -> dict[str, Any]:
    """A per-channel summary object, labelled as what it is."""
    seg = segment_of.get(channel)
    return {"kind": "sensor", **obj, "segment": site.station.names[seg] if seg is not None else None,
            "note": SENSOR_NOTE}


# -- the isolation planner's advice (analysis/planner.py) --

def noise_of(site: Site, sample_period_s: float, thermal_k: float = 0.0) -> Noise:
    """The planner's noise model from the site's sensors (BMP390-like defaults where unknown)."""
    pa = tuple(x if math.isfinite(x) else DEFAULT_NOISE_PA for x in site.noise_pa)
    k = tuple(x if math.isfinite(x) else DEFAULT_NOISE_K for x in site.noise_k)
    return Noise(pa, k, sample_period_s, thermal_k)


DEFAULT_NOISE_PA = 0.3
DEFAULT_NOISE_K = 0.002


def plan_for(site: Site, verdict: Verdict | None, now_open: Any, leak_kg_per_s: float, sample_period_s: float,
             max_closed: int | None = None, closable: Any = None, thermal_k: float = 0.0) -> Plan:  # fmt: skip
    seen = set(site.sensors.values()) | set(site.node_sensors.values())
    measured = [i in seen for i in range(site.station.n)]
    return plan(site.station, verdict, noise_of(site, sample_period_s, thermal_k), leak_kg_per_s, list(now_open),
                closable, max_closed, verdict.confidence if verdict else CONFIDENCE,
                verdict.min_leak_kg_per_s if verdict else None, measured)  # fmt: skip


def plan_text(site: Site, p: Plan) -> list[str]:
    names, hatches = site.station.names, site.station.hatches
    if p.done:
        return ["plan: every segment is decided; no further configuration needed"]
    moves = [f"close {hatches[h].name}" for h in p.close] + [f"open {hatches[h].name}" for h in p.open]
    groups = " | ".join("+".join(names[i] for i in g) for g in p.groups)
    return [f"plan: {', '.join(moves) or 'keep the present configuration'}; hold {units.format_duration(p.hold_s)} "
            f"(groups {groups}); the sequential test may stop sooner (re-run analyze); worst case to a verdict "
            f"{units.format_duration(p.total_s)}"]  # fmt: skip


def plan_object(site: Site, p: Plan) -> dict[str, Any]:
    names, hatches = site.station.names, site.station.hatches
    return {"kind": "plan", "done": p.done, "close": [hatches[h].name for h in p.close],
            "open": [hatches[h].name for h in p.open], "closed": [hatches[h].name for h in p.closed],
            "groups": [[names[i] for i in g] for g in p.groups], "hold_s": p.hold_s,
            "undecided": [names[i] for i in p.suspects], "expected_undecided_after": p.expected_suspects_after,
            "worst_case_total_s": p.total_s}
