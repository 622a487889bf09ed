"""Mass balance per connected group of segments: the leak of every group of modules joined
by open hatches, configuration by configuration.

One sensor's P/T is not one module's gas while a hatch is open: gas flows between
modules at different temperatures. What is conserved is the amount of gas of the whole
group, n = sum_i P_i V_i / (R T_i); its slope is the group's leak, whatever flows inside.
The record is cut at every hatch change into configurations; each configuration's groups
are the connected components of the open hatches. The first moments after an opening are
skipped: while gas rushes through the hatch, a point sensor does not read its module's
mean gas. That settling time is derived, from the orifice flow of the hatch and from the
data (the pressures equalize), never hand-set.

Inputs are plain arrays (segments x samples) so that the same code serves recordings,
the live view and the planner's simulations; nothing here reads files.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from leakmon import units
from leakmon.analysis.fit import FloatArray, fit_slope

BoolArray = npt.NDArray[np.bool_]
KG_PER_PA_M3_PER_K = units.M / units.R  # m = (M/R) P V / T
MIN_SAMPLES = 5  # a configuration shorter than this (after settling) gives no measurement
EQUALIZED_SIGMAS = 3.0  # "equalized": the pressure difference within this many noise sigmas


@dataclass(frozen=True)
class Hatch:
    """A hatch or valve between two segments (indices); cda_m2 = Cd x area if known."""

    name: str
    a: int
    b: int
    cda_m2: float | None = None


@dataclass(frozen=True)
class Station:
    """Segment names and free volumes, and the hatches between them."""

    names: tuple[str, ...]
    volumes_m3: tuple[float, ...]
    hatches: tuple[Hatch, ...]

    def __post_init__(self) -> None:
        if len(self.names) != len(self.volumes_m3) or not self.names:
            raise ValueError(f"need one volume per segment, got {len(self.names)} names and "
                             f"{len(self.volumes_m3)} volumes")  # fmt: skip
        if not all(v > 0 and math.isfinite(v) for v in self.volumes_m3):
            raise ValueError(f"segment volumes must be positive: {list(self.volumes_m3)}")
        for h in self.hatches:
            if not (0 <= h.a < len(self.names) and 0 <= h.b < len(self.names)) or h.a == h.b:
                raise ValueError(f"hatch {h.name!r} must join two different segments of 0..{len(self.names) - 1}")

    @property
    def n(self) -> int:
        return len(self.names)


@dataclass(frozen=True)
class HatchTimeline:
    """Every hatch's state over time: row k of is_open holds from t_s[k] until t_s[k+1]."""

    t_s: FloatArray  # (changes,), increasing; the first row holds from the start of the record
    is_open: BoolArray  # (changes, hatches)
    source: str = "schedule"  # "schedule", "operator" or "data"

    @staticmethod
    def from_schedules(initially_open: Sequence[bool], changes: Sequence[Sequence[tuple[float, bool]]],
                       source: str = "schedule") -> HatchTimeline:
        """From each hatch's initial state and its (t_s, open) changes."""
        times = sorted({float(t) for ch in changes for t, _ in ch})
        rows = [list(initially_open)]
        for t in times:
            row = list(rows[-1])
            for h, ch in enumerate(changes):
                for tc, state in ch:
                    if float(tc) == t:
                        row[h] = bool(state)
            rows.append(row)
        return HatchTimeline(np.array([-math.inf] + times), np.array(rows, dtype=bool).reshape(len(rows), -1),
                             source)  # fmt: skip

    def state_at(self, t_s: float) -> BoolArray:
        k = int(np.searchsorted(self.t_s, t_s, side="right")) - 1
        return self.is_open[max(k, 0)]


@dataclass(frozen=True)
class Configuration:
    """A stretch of the record with one set of groups, and the settling skipped at its start."""

    index: int
    t_start_s: float
    t_stop_s: float
    groups: tuple[tuple[int, ...], ...]
    settle_s: float = 0.0
    settle_reason: str = ""


@dataclass(frozen=True)
class GroupMeasurement:
    """One group's leak over one configuration: positive = losing gas."""

    config: int
    t_start_s: float  # first sample fitted (after settling)
    t_stop_s: float  # last sample fitted
    segments: tuple[int, ...]
    volume_m3: float
    temperature_k: float  # the group's mean gas temperature (volume-weighted)
    mass_kg: float
    leak_kg_per_s: float
    stderr_kg_per_s: float
    ci95_low_kg_per_s: float
    ci95_high_kg_per_s: float
    residual_sigma_kg: float  # scatter of the group's gas mass about its line, per sample
    n_samples: int
    sample_period_s: float
    dof: float = math.inf  # degrees of freedom of the slope's error (effective samples - 2)

    @property
    def pa_per_kg(self) -> float:
        """Pressure the group loses per kg of gas, at its temperature."""
        return self.temperature_k / (KG_PER_PA_M3_PER_K * self.volume_m3)

    @property
    def leak_pa_per_s(self) -> float:
        return self.leak_kg_per_s * self.pa_per_kg

    @property
    def ci95_pa_per_s(self) -> tuple[float, float]:
        return self.ci95_low_kg_per_s * self.pa_per_kg, self.ci95_high_kg_per_s * self.pa_per_kg


def connected_groups(n_segments: int, hatches: Sequence[Hatch], is_open: Sequence[bool] | BoolArray) -> tuple[tuple[int, ...], ...]:
    """Connected components of the segments through open hatches, each sorted, in order of
    their first segment."""
    parent = list(range(n_segments))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for h, op in zip(hatches, is_open):
        if op:
            parent[root(h.a)] = root(h.b)
    comps: dict[int, list[int]] = {}
    for i in range(n_segments):
        comps.setdefault(root(i), []).append(i)
    return tuple(sorted(tuple(c) for c in comps.values()))


def configurations(station: Station, timeline: HatchTimeline, t_start_s: float, t_stop_s: float) -> list[Configuration]:
    """The record [t_start_s, t_stop_s] cut where the groups change (a change that leaves
    the groups as they were, e.g. one of two parallel hatches, does not cut)."""
    if timeline.is_open.shape[1:] != (len(station.hatches),):
        raise ValueError(f"the timeline has {timeline.is_open.shape[1:]} hatches, the station {len(station.hatches)}")
    out: list[Configuration] = []
    for k in range(len(timeline.t_s)):
        start = max(float(timeline.t_s[k]), t_start_s)
        stop = float(timeline.t_s[k + 1]) if k + 1 < len(timeline.t_s) else t_stop_s
        stop = min(stop, t_stop_s)
        if stop <= start:
            continue
        groups = connected_groups(station.n, station.hatches, timeline.is_open[k])
        if out and out[-1].groups == groups:
            prev = out[-1]
            out[-1] = Configuration(prev.index, prev.t_start_s, stop, groups)
        else:
            out.append(Configuration(len(out), start, stop, groups))
    return out


def segment_series(
    series: Mapping[int, tuple[npt.ArrayLike, npt.ArrayLike, npt.ArrayLike]],
    segment_of: Mapping[int, int], n_segments: int,
) -> tuple[FloatArray, FloatArray, FloatArray]:  # fmt: skip
    """Per-channel (t_s, pressure_pa, temperature_k) -> one grid t (the first channel's
    samples inside every channel's span) and P, T per segment (segments x samples), the
    mean of the segment's sensors interpolated onto the grid. A segment without a sensor
    is all NaN: no group holding it can be weighed."""
    chans = [c for c in sorted(series) if c in segment_of]
    if not chans:
        raise ValueError("no channel sits in a segment of the site")
    ts = {c: np.asarray(series[c][0], np.float64) for c in chans}
    lo = max(float(ts[c][0]) for c in chans)
    hi = min(float(ts[c][-1]) for c in chans)
    grid = ts[chans[0]]
    grid = grid[(grid >= lo) & (grid <= hi)]
    p_sum, t_sum = np.zeros((n_segments, grid.size)), np.zeros((n_segments, grid.size))
    count = np.zeros(n_segments)
    for c in chans:
        seg = segment_of[c]
        p_sum[seg] += np.interp(grid, ts[c], np.asarray(series[c][1], np.float64))
        t_sum[seg] += np.interp(grid, ts[c], np.asarray(series[c][2], np.float64))
        count[seg] += 1
    with np.errstate(invalid="ignore", divide="ignore"):
        return grid, p_sum / count[:, None], t_sum / count[:, None]


def equalization_time_s(dp_pa: float, pressure_pa: float, temperature_k: float, volume_a_m3: float,
                        volume_b_m3: float, cda_m2: float) -> float:  # fmt: skip
    """Time for an orifice of effective area cda_m2 to equalize dp_pa between two volumes.

    Subsonic, nearly incompressible flow: mdot = CdA sqrt(2 rho dP), and the difference
    falls as d(dP)/dt = -(R T / M)(1/Va + 1/Vb) mdot, which empties in finite time
    t = 2 sqrt(dP0) / k with k = (R T / M)(1/Va + 1/Vb) CdA sqrt(2 rho).
    """
    if dp_pa <= 0 or cda_m2 <= 0:
        return 0.0
    rho = pressure_pa * units.M / (units.R * temperature_k)
    k = units.R * temperature_k / units.M * (1 / volume_a_m3 + 1 / volume_b_m3) * cda_m2 * math.sqrt(2 * rho)
    return 2.0 * math.sqrt(dp_pa) / k


def _noise_sigma(x: FloatArray) -> float:
    """White-noise sigma of a series from its first differences (robust: MAD)."""
    d = np.diff(x[np.isfinite(x)])
    if d.size < 2:
        return 0.0
    return float(1.4826 * np.median(np.abs(d - np.median(d))) / math.sqrt(2.0))


def settling(station: Station, prev_open: BoolArray, now_open: BoolArray, t: FloatArray, p: FloatArray,
             temp: FloatArray, t_change_s: float, t_stop_s: float) -> tuple[float, str]:  # fmt: skip
    """Seconds to skip after a hatch change, and why.

    Only an opening moves gas: for each hatch that opened, the later of the orifice
    equalization time (if its area is known) and the time the data's pressure difference
    first came within EQUALIZED_SIGMAS noise sigmas of its final level. Closing moves nothing: each new
    group's gas is continuous across the change, so only the sample in flight is skipped.
    """
    dt = float(np.median(np.diff(t))) if t.size > 1 else 1.0
    settle, why = dt, "one sample (no hatch opened)"
    before = (t < t_change_s) & (t >= t_change_s - 10 * dt)
    after = (t >= t_change_s) & (t < t_stop_s)
    for h, (was, now) in enumerate(zip(prev_open, now_open)):
        if was or not now:
            continue
        hatch = station.hatches[h]
        diff = p[hatch.a] - p[hatch.b]
        if not np.any(before) or not np.any(after) or not np.all(np.isfinite(diff[after])):
            continue
        dp0 = abs(float(np.mean(diff[before])))
        t_flow = 0.0
        if hatch.cda_m2:
            t_flow = equalization_time_s(dp0, float(np.mean(p[[hatch.a, hatch.b]][:, before])),
                                         float(np.mean(temp[[hatch.a, hatch.b]][:, before])),
                                         station.volumes_m3[hatch.a], station.volumes_m3[hatch.b], hatch.cda_m2)  # fmt: skip
        d_after, t_after = diff[after], t[after]
        tail = d_after[d_after.size // 2 :]
        level, sigma = float(np.median(tail)), max(_noise_sigma(tail), 1e-9)
        inside = np.flatnonzero(np.abs(d_after - level) <= EQUALIZED_SIGMAS * sigma * math.sqrt(2.0))
        t_data = float(t_after[inside[0]] - t_change_s) if inside.size else float(t_after[-1] - t_change_s)
        here = max(t_flow, t_data, dt)
        if here >= settle:
            settle = here
            why = (f"{hatch.name} opened on {dp0:.1f} Pa: equalizes in {t_flow:.1f} s by its orifice flow, "
                   f"{t_data:.0f} s by the data")  # fmt: skip
    return settle, why


def measure(station: Station, timeline: HatchTimeline, t_s: npt.ArrayLike, pressure_pa: npt.ArrayLike,
            temperature_k: npt.ArrayLike) -> tuple[list[Configuration], list[GroupMeasurement]]:  # fmt: skip
    """Every configuration of the record (with its settling) and every weighable group's
    leak in it. A group holding a segment without a sensor is skipped."""
    t = np.asarray(t_s, np.float64)
    p, temp = np.asarray(pressure_pa, np.float64), np.asarray(temperature_k, np.float64)
    vol = np.asarray(station.volumes_m3, np.float64)
    if p.shape != (station.n, t.size) or temp.shape != p.shape:
        raise ValueError(f"need pressure and temperature of shape (segments, samples) = ({station.n}, {t.size}), "
                         f"got {p.shape} and {temp.shape}")  # fmt: skip
    if t.size < 2:
        return [], []
    mass = KG_PER_PA_M3_PER_K * vol[:, None] * p / temp
    dt = float(np.median(np.diff(t)))
    configs = configurations(station, timeline, float(t[0]), float(t[-1]) + dt / 2)
    out_cfg: list[Configuration] = []
    out: list[GroupMeasurement] = []
    for c in configs:
        if c.t_start_s > float(t[0]):
            prev = timeline.state_at(c.t_start_s - 1e-9)
            settle, why = settling(station, prev, timeline.state_at(c.t_start_s), t, p, temp, c.t_start_s, c.t_stop_s)
        else:
            settle, why = 0.0, "start of the record"
        c = Configuration(c.index, c.t_start_s, c.t_stop_s, c.groups, settle, why)
        out_cfg.append(c)
        sel = (t >= c.t_start_s + settle) & (t < c.t_stop_s)
        if np.count_nonzero(sel) < MIN_SAMPLES:
            continue
        for g in c.groups:
            m = mass[list(g)][:, sel].sum(axis=0)
            if not np.all(np.isfinite(m)):
                continue
            out.append(_group(c.index, g, t[sel], m, vol, temp[list(g)][:, sel], dt))
    return out_cfg, out


def station_loss(series: Mapping[int, tuple[npt.ArrayLike, npt.ArrayLike, npt.ArrayLike]],
                 segment_of: Mapping[int, int], volumes_m3: Sequence[float]) -> tuple[float, float, float] | None:
    """The whole station's gas loss in kg/s over the given samples, with its 95% interval
    (low, high): the slope of the total mass sum P_i V_i / (R T_i) M of every segment. Gas
    moving between modules through open hatches cancels in the sum, whichever hatches are
    open, so no configuration is needed. None when a segment has no sensor."""
    t, p, temp = segment_series(series, segment_of, len(volumes_m3))
    if t.size < MIN_SAMPLES:
        return None
    mass = (KG_PER_PA_M3_PER_K * np.asarray(volumes_m3, np.float64)[:, None] * p / temp).sum(axis=0)
    if not np.all(np.isfinite(mass)):
        return None
    f = fit_slope(t, mass)
    return -float(f.slope), -float(f.ci95_high), -float(f.ci95_low)


def _group(config: int, g: tuple[int, ...], t: FloatArray, m: FloatArray, vol: FloatArray, temp: FloatArray,
           dt: float) -> GroupMeasurement:  # fmt: skip
    f = fit_slope(t, m)
    v = float(vol[list(g)].sum())
    t_mean = float(np.sum(vol[list(g)] * temp.mean(axis=1)) / v)
    return GroupMeasurement(config, float(t[0]), float(t[-1]), g, v, t_mean, float(np.mean(m)),
                            -float(f.slope), float(f.stderr), -float(f.ci95_high), -float(f.ci95_low),
                            float(f.residual_sigma), int(t.size), dt, max(float(f.n_eff) - 2.0, 1.0))  # fmt: skip
