"""Which segment leaks: each segment's leak from the group measurements of every
configuration, and a verdict (leaking, not leaking, undecided) at a stated confidence.

Each group measurement says "the leaks of these segments add up to y +- se". Weighted least
squares over all of them gives every segment that has been separated from the others its own
leak. Leaks do not run backwards (a hole to space only loses gas), which gives bounds even
where least squares cannot separate two segments: a group that loses nothing clears all its
members at once, and a group that loses gas, whose other members are cleared, convicts the
one left. This is the crews' binary search, made quantitative.

Bounds are one-sided at z = Phi^-1(1 - alpha / n_segments) (Bonferroni over the segments),
alpha = 1 - confidence. A segment is "leaking" when its lower bound is above zero, "not
leaking" when its upper bound is below the smallest leak worth finding (min_leak), and
undecided otherwise, with the hold time the present configuration still needs. The
confidence a verdict reports is the largest at which it still holds.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from functools import partial
from statistics import NormalDist

import numpy as np

from leakmon import units
from leakmon.analysis.fit import FloatArray
from leakmon.analysis.massbalance import KG_PER_PA_M3_PER_K, GroupMeasurement
from leakmon.analysis.student_t import student_t_ppf

CONFIDENCE = 0.99
MIN_LEAK_FRACTION = 0.1  # a leak under 10 % of the station's total is not worth a hatch
MIN_LEAK_FLOOR_PA_PER_DAY = 2.0  # ... nor one that would lose < 2 Pa/day (0.015 mmHg/day) station-wide
ACCUSE_FRACTION = 0.01  # a lower bound above 1 % of min_leak convicts
_N = NormalDist()
_Z_MAX = 40.0


@dataclass(frozen=True)
class SegmentVerdict:
    """One segment's leak and verdict; leak fields are NaN where it was never separated."""

    segment: int
    leak_kg_per_s: float
    stderr_kg_per_s: float
    ci95_low_kg_per_s: float
    ci95_high_kg_per_s: float
    lower_kg_per_s: float  # one-sided bounds at the stated confidence (from every route)
    upper_kg_per_s: float
    leaking: bool | None  # None: undecided
    confidence: float  # of the verdict given (leaking or not); for undecided, of the likelier one
    hold_s: float | None  # undecided: seconds more of the present configuration to decide, if it can
    reason: str


@dataclass(frozen=True)
class Verdict:
    segments: tuple[SegmentVerdict, ...]
    confidence: float
    min_leak_kg_per_s: float
    total_kg_per_s: float  # the station's total leak, all configurations combined
    total_stderr_kg_per_s: float
    z: float = math.nan  # the one-sided z the bounds were taken at (segments and looks counted)

    @property
    def leaking(self) -> list[int]:
        return [s.segment for s in self.segments if s.leaking]

    @property
    def decided(self) -> bool:
        return all(s.leaking is not None for s in self.segments)


def station_total(ms: Sequence[GroupMeasurement], n_segments: int) -> tuple[float, float]:
    """Inverse-variance mean over the configurations in which every segment was weighed."""
    by_cfg: dict[int, list[GroupMeasurement]] = {}
    for m in ms:
        by_cfg.setdefault(m.config, []).append(m)
    num = den = 0.0
    for group in by_cfg.values():
        if sum(len(m.segments) for m in group) != n_segments:
            continue
        var = sum(m.stderr_kg_per_s ** 2 for m in group)
        w = 1.0 / max(var, 1e-300)
        num += w * sum(m.leak_kg_per_s for m in group)
        den += w
    return (num / den, 1.0 / math.sqrt(den)) if den > 0 else (math.nan, math.nan)


def default_min_leak(total_kg_per_s: float, volume_m3: float, temperature_k: float = 293.15) -> float:
    """The smallest leak worth isolating: a fraction of the total, above a floor."""
    floor = MIN_LEAK_FLOOR_PA_PER_DAY / units.SECONDS_PER_DAY * volume_m3 * KG_PER_PA_M3_PER_K / temperature_k
    return max(MIN_LEAK_FRACTION * (total_kg_per_s if math.isfinite(total_kg_per_s) else 0.0), floor)


def _wls(ms: Sequence[GroupMeasurement], n: int) -> tuple[FloatArray, FloatArray]:
    a = np.zeros((len(ms), n))
    for i, m in enumerate(ms):
        a[i, list(m.segments)] = 1.0
    w = 1.0 / np.maximum(np.array([m.stderr_kg_per_s for m in ms]), 1e-300)
    aw = a * w[:, None]
    pinv = np.linalg.pinv(aw)
    est = pinv @ (np.array([m.leak_kg_per_s for m in ms]) * w)
    se = np.sqrt(np.maximum(np.diag(pinv @ pinv.T), 0.0))
    identifiable = np.all(np.abs(pinv @ aw - np.eye(n)) < 1e-6, axis=0)
    est[~identifiable] = se[~identifiable] = np.nan
    return est, se


class _Bounds:
    """Lower and upper bounds on every segment's leak as functions of z."""

    def __init__(self, ms: Sequence[GroupMeasurement], n: int) -> None:
        self.ms, self.n = list(ms), n
        self.est, self.se = _wls(ms, n)

    def at(self, z: float) -> tuple[FloatArray, FloatArray]:
        """Bounds with least squares at z; every bound taken from single groups at the z that
        keeps all of them true at once (Bonferroni over the groups: a minimum over many caps
        would otherwise pick the luckiest)."""
        ok = np.isfinite(self.est)
        z_wls, z = z, _z_more(z, len(self.ms))
        lower = np.where(ok, self.est - z_wls * np.nan_to_num(self.se), 0.0)
        upper = np.where(ok, self.est + z_wls * np.nan_to_num(self.se), np.inf)
        for m in self.ms:  # leaks are >= 0: a group's bound caps each member
            g = list(m.segments)
            upper[g] = np.minimum(upper[g], m.leak_kg_per_s + z * m.stderr_kg_per_s)
        upper = np.maximum(upper, 0.0)
        lower = np.maximum(lower, 0.0)
        for m in self.ms:  # a leaking group whose other members are bounded convicts the rest
            g = list(m.segments)
            low_g = m.leak_kg_per_s - z * m.stderr_kg_per_s
            for i in g:
                rest = float(upper[[j for j in g if j != i]].sum())
                lower[i] = max(lower[i], low_g - rest)
        for m in self.ms:  # ... and a known leaker in a group takes its share off the others' caps
            g = list(m.segments)
            high_g = m.leak_kg_per_s + z * m.stderr_kg_per_s
            for i in g:
                upper[i] = min(upper[i], max(high_g - float(lower[[j for j in g if j != i]].sum()), 0.0))
        return lower, upper


def _z_more(z: float, k: int) -> float:
    """The z whose one-sided tail is 1/k of z's (far out, where the tail rounds to 0: the
    asymptotic shift, ample there)."""
    tail = 1.0 - _N.cdf(z)
    if k <= 1:
        return z
    if tail / k < 1e-15:
        return z + math.sqrt(2.0 * math.log(k))
    return _N.inv_cdf(1.0 - tail / k)


def _heavy_tails(ms: Sequence[GroupMeasurement], z: float) -> list[GroupMeasurement]:
    """Each measurement's standard error widened so that z of it reaches as far as the
    Student-t quantile of its degrees of freedom: a short or correlated fit has heavier tails
    than the normal, and the verdict lives far out in them."""
    p = _N.cdf(z)
    out = []
    for m in ms:
        if math.isfinite(m.dof):
            k = max(student_t_ppf(p, m.dof) / z, 1.0)
            m = replace(m, stderr_kg_per_s=m.stderr_kg_per_s * k)
        out.append(m)
    return out


def _convicts(b: _Bounds, i: int, floor: float, z: float) -> bool:
    return bool(b.at(z)[0][i] > floor)


def _clears(b: _Bounds, i: int, delta: float, z: float) -> bool:
    return bool(b.at(z)[1][i] < delta)


def _z_for(alpha: float, n: float) -> float:
    return _N.inv_cdf(1.0 - alpha / n)


def _confidence_of(holds: Callable[[float], bool], n: float) -> float:
    """Largest confidence (Bonferroni over n) at which holds(z) is still true, by bisection."""
    if not holds(0.0):
        return 0.0
    lo, hi = 0.0, _Z_MAX
    if holds(hi):
        return 1.0
    for _ in range(24):
        mid = 0.5 * (lo + hi)
        if holds(mid):
            lo = mid
        else:
            hi = mid
    return max(0.0, 1.0 - n * (1.0 - _N.cdf(lo)))


def look_alpha(alpha: float, look: int | None) -> float:
    """Error spent at the look-th look of a sequential test (1, 2, ...): alpha / (k (k + 1))
    sums to alpha over any number of looks, so repeated verdicts keep the stated confidence.
    None: a single look (an offline analysis), all of alpha."""
    if look is None:
        return alpha
    if look < 1:
        raise ValueError(f"looks count from 1, got {look}")
    return alpha / (look * (look + 1))


def judge(ms: Sequence[GroupMeasurement], n_segments: int, confidence: float = CONFIDENCE,
          min_leak_kg_per_s: float | None = None, volume_m3: float | None = None,
          look: int | None = None, with_confidence: bool = True) -> Verdict:  # fmt: skip
    """The verdict on every segment from all group measurements so far; look: the how-many-th
    verdict of a sequential test this is (None: the only one)."""
    if not 0.5 <= confidence < 1.0:
        raise ValueError(f"confidence must be in [0.5, 1), got {confidence}")
    total, total_se = station_total(ms, n_segments)
    if min_leak_kg_per_s is None:
        vol = volume_m3 if volume_m3 is not None else max((m.volume_m3 for m in ms), default=1.0)
        temp = float(np.mean([m.temperature_k for m in ms])) if ms else 293.15
        min_leak_kg_per_s = default_min_leak(total, vol, temp)
    delta = min_leak_kg_per_s
    if not ms:
        empty = tuple(SegmentVerdict(i, math.nan, math.nan, math.nan, math.nan, 0.0, math.inf, None, 0.0, None,
                                     "no measurement yet") for i in range(n_segments))  # fmt: skip
        return Verdict(empty, confidence, delta, total, total_se)
    spend = (1.0 - confidence) / look_alpha(1.0 - confidence, look)  # >= 1: the look's share
    z = _z_for(1.0 - confidence, n_segments * spend)
    b = _Bounds(_heavy_tails(ms, z), n_segments)
    lower, upper = b.at(z)
    floor = ACCUSE_FRACTION * delta  # "loses gas": more than rounding can make of nothing
    q95 = _N.inv_cdf(0.975)
    out = []
    for i in range(n_segments):
        conf_leak = conf_clear = math.nan  # with_confidence=False: decisions only (fast, for simulations)
        if with_confidence:
            conf_leak = _confidence_of(partial(_convicts, b, i, floor), n_segments * spend)
            conf_clear = _confidence_of(partial(_clears, b, i, delta), n_segments * spend)
        if lower[i] > floor:
            leaking: bool | None = True
            conf, reason, hold = conf_leak, "loses gas", None
        elif upper[i] < delta:
            leaking, conf, hold = False, conf_clear, None
            reason = f"loses less than {delta * units.SECONDS_PER_DAY:.3g} kg/day"
        else:
            leaking, conf = None, max(conf_leak, conf_clear)
            hold, reason = _hold(b, i, z, delta)
        est, se = float(b.est[i]), float(b.se[i])
        out.append(SegmentVerdict(i, est, se, est - q95 * se, est + q95 * se, float(lower[i]), float(upper[i]),
                                  leaking, conf, hold, reason))  # fmt: skip
    return Verdict(tuple(out), confidence, delta, total, total_se, z)


def _hold(b: _Bounds, i: int, z: float, delta: float) -> tuple[float | None, str]:
    """Seconds more of the latest configuration to decide segment i, if that configuration
    can decide it at all (its group holds no other undecided segment)."""
    last = max(m.config for m in b.ms)
    mine = [m for m in b.ms if m.config == last and i in m.segments]
    if not mine:
        return None, "not weighed in the present configuration"
    m = mine[0]
    if len(m.segments) > 1:
        return None, f"shares its group with {len(m.segments) - 1} other segment(s): isolate it (leakmon plan)"
    se_needed = max(abs(m.leak_kg_per_s), abs(delta - m.leak_kg_per_s), 1e-300) / z
    # white noise: se ~ T^-1.5 (REFERENCE section 3)
    span = m.t_stop_s - m.t_start_s
    need = span * (m.stderr_kg_per_s / se_needed) ** (2.0 / 3.0) if m.stderr_kg_per_s > se_needed else span
    return max(need - span, 0.0), "needs a longer hold"
