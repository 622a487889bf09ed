"""Which segment leaks: per-segment leak rates from hatch-closure periods.

Crews find a leak by closing hatches and watching each isolated segment. Over each period of
the schedule, every group of connected segments is one volume whose gas amount is
sum_i V_i P_i / T_i (times M / R), so its slope is the group's mass leak. Each group and
period gives one measurement of the sum of its members' leaks; weighted least squares over
all of them gives each segment's leak (constant over the record), with a standard error, a
one-sided z-test that it is losing gas, and a ranking. A segment never separated from the
others in any period is not identifiable and gets NaN.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from statistics import NormalDist
from typing import Final

import numpy as np
import numpy.typing as npt

from leakmon import units
from leakmon.analysis.fit import FloatArray, fit_slope

Schedule = Sequence[tuple[float, Sequence[Sequence[int]]]]  # (t_start_s, connected groups)
ALPHA: Final = 0.05


@dataclass(frozen=True)
class GroupMeasurement:
    """One group of connected segments over one period of the schedule."""

    t_start_s: float
    t_stop_s: float
    segments: tuple[int, ...]
    leak_kg_per_s: float  # positive = losing gas
    stderr_kg_per_s: float


@dataclass(frozen=True)
class SegmentLeak:
    """One segment's leak from all periods; NaN if never isolated well enough to tell."""

    segment: int
    leak_kg_per_s: float
    stderr_kg_per_s: float
    ci95_low_kg_per_s: float
    ci95_high_kg_per_s: float
    z: float  # leak / stderr
    p_value: float  # one-sided: chance of a z this large with no leak
    rank: int  # 1 = the most significant leak
    leaking: bool  # p below ALPHA / n_segments (Bonferroni over the segments)


Period = tuple[float, float, list[tuple[int, ...]]]  # start, stop, connected groups


def _periods(schedule: Schedule, n_seg: int, t_end_s: float) -> list[Period]:
    """Validated periods: (start, stop, groups); unlisted segments stand alone."""
    if not schedule:
        raise ValueError("the schedule needs at least one (t_start_s, groups) entry")
    starts = [float(s) for s, _ in schedule]
    if any(b <= a for a, b in zip(starts, starts[1:])):
        raise ValueError("schedule start times must increase")
    out: list[Period] = []
    for i, (start, groups) in enumerate(schedule):
        seen: set[int] = set()
        clean: list[tuple[int, ...]] = []
        for g in groups:
            members = tuple(int(s) for s in g)
            bad = [s for s in members if not 0 <= s < n_seg or s in seen]
            if bad or not members:
                raise ValueError(f"period {i}: segment(s) {bad} repeated or outside 0..{n_seg - 1}")
            seen.update(members)
            clean.append(members)
        clean += [(s,) for s in range(n_seg) if s not in seen]
        stop = starts[i + 1] if i + 1 < len(starts) else t_end_s + 1.0
        out.append((float(start), stop, clean))
    return out


def group_measurements(
    t_s: npt.ArrayLike, pressure_pa: npt.ArrayLike, temperature_k: npt.ArrayLike,
    volumes_m3: npt.ArrayLike, schedule: Schedule, settle_s: float = 0.0,
) -> list[GroupMeasurement]:  # fmt: skip
    """Mass leak of every connected group in every period (arrays: segments x samples),
    skipping settle_s after each hatch change."""
    t = np.asarray(t_s, dtype=np.float64)
    p, temp = np.asarray(pressure_pa, np.float64), np.asarray(temperature_k, np.float64)
    vol = np.asarray(volumes_m3, dtype=np.float64)
    if p.shape != temp.shape or p.ndim != 2 or p.shape != (vol.size, t.size):
        raise ValueError(f"need pressure and temperature of shape (segments, samples) = "
                         f"({vol.size}, {t.size}), got {p.shape} and {temp.shape}")  # fmt: skip
    amount = vol[:, None] * p / temp  # Pa.m3/K: M/R times this is kg
    kg_per_unit = units.M / units.R
    out = []
    for start, stop, groups in _periods(schedule, vol.size, float(t[-1])):
        sel = (t >= start + settle_s) & (t < stop)
        if np.count_nonzero(sel) < 3:
            continue
        for g in groups:
            f = fit_slope(t[sel], amount[list(g)][:, sel].sum(axis=0))
            out.append(GroupMeasurement(start, stop, g, -f.slope * kg_per_unit,
                                        f.stderr * kg_per_unit))  # fmt: skip
    return out


def segment_leaks(measurements: Sequence[GroupMeasurement], n_segments: int) -> list[SegmentLeak]:
    """Each segment's leak by weighted least squares over the group measurements."""
    if not measurements:
        raise ValueError("no group measurements: every period was shorter than 3 samples")
    a = np.zeros((len(measurements), n_segments))
    for i, m in enumerate(measurements):
        a[i, list(m.segments)] = 1.0
    se = np.array([m.stderr_kg_per_s for m in measurements])
    w = 1.0 / np.maximum(se, 1e-300)
    aw, bw = a * w[:, None], np.array([m.leak_kg_per_s for m in measurements]) * w
    pinv = np.linalg.pinv(aw)
    leak = pinv @ bw
    cov = pinv @ pinv.T
    identifiable = np.all(np.abs(pinv @ aw - np.eye(n_segments)) < 1e-8, axis=0)
    stderr = np.sqrt(np.maximum(np.diag(cov), 0.0))
    leak[~identifiable] = stderr[~identifiable] = np.nan
    return _rank(leak, stderr)


def _rank(leak: FloatArray, stderr: FloatArray) -> list[SegmentLeak]:
    norm = NormalDist()
    z = np.divide(leak, stderr, out=np.full_like(leak, np.nan), where=stderr > 0)
    order = sorted(range(leak.size), key=lambda i: -z[i] if math.isfinite(z[i]) else math.inf)
    rank = {seg: r + 1 for r, seg in enumerate(order)}
    q = norm.inv_cdf(0.975)
    out = []
    for i in range(leak.size):
        p_value = 1.0 - norm.cdf(float(z[i])) if math.isfinite(z[i]) else math.nan
        out.append(SegmentLeak(i, float(leak[i]), float(stderr[i]), float(leak[i] - q * stderr[i]),
                               float(leak[i] + q * stderr[i]), float(z[i]), p_value, rank[i],
                               bool(p_value < ALPHA / leak.size)))  # fmt: skip
    return out


def locate_leaks(
    t_s: npt.ArrayLike, pressure_pa: npt.ArrayLike, temperature_k: npt.ArrayLike,
    volumes_m3: npt.ArrayLike, schedule: Schedule, settle_s: float = 0.0,
) -> list[SegmentLeak]:  # fmt: skip
    """group_measurements then segment_leaks: every segment's leak, ranked."""
    ms = group_measurements(t_s, pressure_pa, temperature_k, volumes_m3, schedule, settle_s)
    return segment_leaks(ms, np.asarray(volumes_m3).size)
