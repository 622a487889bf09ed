"""Which hatch to close next, and how long to hold: an isolation planner.

The crews' method is a search: split the station, watch which part loses gas, split that
part again. With a pressure and temperature sensor in every segment, the mass balance
weighs every group at once, so a configuration answers as many questions as it has groups.
For each configuration the crew may set (the closable hatches, at most max_closed closed),
the planner predicts the hold time its groups need and how many suspects it would leave,
and picks the one with the smallest expected time to a verdict.

Hold time. A group's gas mass scatters by sigma_m per sample (from its sensors' noise,
sum over segments of (V M / R)^2 (sigma_P^2 / T^2 + P^2 sigma_T^2 / T^4)), so its slope is
known to sigma_m sqrt(12 / (f T^3)) after a hold T at f samples per second (REFERENCE
section 3), plus a temperature mismatch between sensor and gas of thermal_k kelvin, which
biases the mass by m thermal_k / T_gas and its slope by up to that times sqrt(12) / T. To
clear a group (its leak below min_leak) with power 1 - beta at the verdict's z, the slope's
standard error must reach min_leak / (z + z_beta); convicting one needs only leak / (z +
z_beta), so the clearing sets the time. SE_MARGIN covers the AR(1) inflation of real fits.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from statistics import NormalDist

from leakmon import units
from leakmon.analysis.massbalance import (
    KG_PER_PA_M3_PER_K,
    GroupMeasurement,
    Station,
    connected_groups,
)
from leakmon.analysis.verdict import ACCUSE_FRACTION, CONFIDENCE, Verdict, look_alpha

POWER = 0.95  # chance that the stated hold time is enough when the model holds
SE_MARGIN = 1.3  # real fits' standard errors run this much above white noise (AR(1) inflation)
# The sequential test looks at these fractions of the planned hold (and stops at the last):
# few looks, so each spends little of the error (verdict.look_alpha); the plan's hold is
# the one at which the look at 1.0, this round's second, decides.
LOOK_FRACTIONS = (0.5, 1.0, 1.5, 2.25, 3.0)
LOOK_OF_HOLD = 2
# The worst case a plan states counts each round to the look after its hold (1.5 holds).
# POWER is the chance per round under the white-noise model of a group's standard error;
# the stated error of a real fit (analysis.lrv) scatters about that model (on white noise:
# median 1.13x, 95th percentile 3.1x), and a round needs every group cleared, so the look at
# 1.0 hold decided 84-88 % of random stations and the look at 1.5 holds nearly all
# (bench/validate_planner.py; figures in bench/RESULTS.md).
WORST_CASE_LOOK = LOOK_OF_HOLD + 1
WORST_CASE_HOLDS = LOOK_FRACTIONS[WORST_CASE_LOOK - 1]  # the time to that look, in holds
MAX_CANDIDATES = 4096  # configurations weighed at most (2^12 hatches); beyond, one hatch at a time
_N = NormalDist()


@dataclass(frozen=True)
class Noise:
    """What sets a group's scatter: sensor noise, sample rate, sensor-to-gas temperature error."""

    noise_pa: Sequence[float]  # per segment, per sample (the best of its sensors)
    noise_k: Sequence[float]
    sample_period_s: float = 1.0
    thermal_k: float = 0.0  # slow sensor-vs-gas temperature mismatch over a hold
    pressure_pa: float = 101325.0
    temperature_k: float = 293.15


@dataclass(frozen=True)
class Plan:
    """The next configuration: hatches to close and to open, and how long to hold it."""

    closed: tuple[int, ...]  # hatch indices closed in the planned configuration
    close: tuple[int, ...]  # changes from the present state
    open: tuple[int, ...]
    groups: tuple[tuple[int, ...], ...]
    hold_s: float  # long enough with POWER when the model holds; the sequential test may stop sooner
    suspects: tuple[int, ...]  # undecided segments before this configuration
    expected_suspects_after: float
    rounds_left: int  # worst case, this one included
    total_s: float  # worst-case time to a verdict following the planner (this hold included)
    done: bool = False  # nothing undecided: no configuration needed


def group_sigma_kg(station: Station, group: Sequence[int], noise: Noise) -> float:
    """Per-sample scatter of a group's gas mass (kg) from its sensors' noise."""
    p, t = noise.pressure_pa, noise.temperature_k
    var = 0.0
    for i in group:
        k = KG_PER_PA_M3_PER_K * station.volumes_m3[i]
        var += k * k * (noise.noise_pa[i] ** 2 / t**2 + p * p * noise.noise_k[i] ** 2 / t**4)
    return math.sqrt(var)


def slope_se(station: Station, group: Sequence[int], noise: Noise, hold_s: float) -> float:
    """Standard error (kg/s) of a group's leak after holding hold_s."""
    f = 1.0 / noise.sample_period_s
    white = group_sigma_kg(station, group, noise) * math.sqrt(12.0 / (f * hold_s**3))
    mass = KG_PER_PA_M3_PER_K * noise.pressure_pa * sum(station.volumes_m3[i] for i in group) / noise.temperature_k
    thermal = mass * noise.thermal_k / noise.temperature_k * math.sqrt(12.0) / hold_s
    return SE_MARGIN * math.hypot(white, thermal)


def hold_for(station: Station, group: Sequence[int], noise: Noise, se_target: float) -> float:
    """Shortest hold (s) at which the group's leak is known to se_target; se falls with the hold."""
    lo, hi = 10.0 * noise.sample_period_s, 10.0 * noise.sample_period_s
    while slope_se(station, group, noise, hi) > se_target:
        hi *= 2.0
        if hi > 1e8:
            return math.inf
    if hi == lo:
        return lo
    for _ in range(50):
        mid = math.sqrt(lo * hi)
        if slope_se(station, group, noise, mid) > se_target:
            lo = mid
        else:
            hi = mid
        if hi / lo < 1.01:
            break
    return hi


def z_decide(n_segments: int, confidence: float, look: int | None = None) -> float:
    """The verdict's one-sided z (at that look) plus the power's: the separation a decision
    needs, in standard errors."""
    alpha = look_alpha(1.0 - confidence, look)
    # groups' own bounds are taken Bonferroni over the measurements (about one per segment)
    return _N.inv_cdf(1.0 - alpha / n_segments**2) + _N.inv_cdf(POWER)


def _measurable(g: Sequence[int], measured: Sequence[bool]) -> bool:
    return all(measured[i] for i in g)


def _score(station: Station, closed: tuple[int, ...], suspects: set[int], noise: Noise, se_target: float,
           measured: Sequence[bool]) -> tuple[float, float, tuple[tuple[int, ...], ...]] | None:  # fmt: skip
    is_open = [h not in closed for h in range(len(station.hatches))]
    groups = connected_groups(station.n, station.hatches, is_open)
    holds, weigh = [], []
    for g in groups:
        k = len(suspects.intersection(g))
        if k == 0:
            continue
        if not _measurable(g, measured):
            weigh.append(k)  # cannot be weighed: its suspects stay suspects
            continue
        holds.append(hold_for(station, g, noise, se_target))
        weigh.append(k)
    if not holds:
        return None
    big_k = len(suspects)
    expected = sum(k * k for k in weigh) / big_k  # suspects left if one of them leaks, uniformly
    return max(holds), expected, groups


def plan(station: Station, verdict: Verdict | None, noise: Noise, leak_kg_per_s: float,
         now_open: Sequence[bool], closable: Sequence[bool] | None = None, max_closed: int | None = None,
         confidence: float = CONFIDENCE, min_leak_kg_per_s: float | None = None,
         measured: Sequence[bool] | None = None, look: int | None = None) -> Plan:  # fmt: skip
    """The next configuration to hold, from what is known (verdict None: nothing yet);
    look: the how-many-th verdict of the sequential test will decide it."""
    n_h = len(station.hatches)
    closable = list(closable) if closable is not None else [True] * n_h
    measured = list(measured) if measured is not None else [True] * station.n
    if verdict is None:
        suspects = set(range(station.n))
    else:
        suspects = {s.segment for s in verdict.segments if s.leaking is None}
    delta = (min_leak_kg_per_s if min_leak_kg_per_s is not None
             else verdict.min_leak_kg_per_s if verdict is not None else 0.1 * leak_kg_per_s)  # fmt: skip
    if delta <= 0 or not math.isfinite(delta):
        raise ValueError(f"need a positive leak size to plan for, got {leak_kg_per_s * units.SECONDS_PER_DAY:g} kg/day")
    now_closed = tuple(h for h in range(n_h) if not now_open[h])
    if not suspects:
        groups = connected_groups(station.n, station.hatches, now_open)
        return Plan(now_closed, (), (), groups, 0.0, (), 0.0, 0, 0.0, True)
    se_target = delta / z_decide(station.n, confidence, look)
    fixed_closed = [h for h in range(n_h) if not closable[h] and not now_open[h]]
    free = [h for h in range(n_h) if closable[h]]
    limit = len(free) if max_closed is None else max(0, max_closed - len(fixed_closed))
    best: tuple[float, int, tuple[int, ...], float, float, tuple[tuple[int, ...], ...]] | None = None
    subsets = _subsets(free, limit)
    for sub in subsets:
        closed = tuple(sorted(fixed_closed + list(sub)))
        sc = _score(station, closed, suspects, noise, se_target, measured)
        if sc is None:
            continue
        hold, expected, groups = sc
        if expected >= len(suspects) and len(suspects) > 1:
            continue  # separates nothing
        rounds = 1 + _rounds_after(expected)
        cost = hold * rounds
        changes = len(set(closed).symmetric_difference(now_closed))
        key = (cost, changes)
        if best is None or key < (best[0], best[1]):
            best = (cost, changes, closed, hold, expected, groups)
    if best is None:
        raise ValueError("no configuration the crew may set weighs any undecided segment apart "
                         "(each needs a sensor in every segment of its group)")
    cost, _, closed, hold, expected, groups = best
    rounds = 1 + _rounds_after(expected)
    return Plan(closed, tuple(h for h in closed if h not in now_closed),
                tuple(h for h in now_closed if h not in closed), groups, hold, tuple(sorted(suspects)),
                expected, rounds, hold * WORST_CASE_HOLDS * rounds)  # fmt: skip


def _rounds_after(expected_suspects: float) -> int:
    """Further rounds of halving before one suspect is left (worst case, rounded up)."""
    return max(0, math.ceil(math.log2(max(expected_suspects, 1.0)) - 1e-9))


def _subsets(free: list[int], limit: int) -> list[tuple[int, ...]]:
    """Sets of closable hatches to close, up to limit of them (all if few enough)."""
    out: list[tuple[int, ...]] = []
    for k in range(min(limit, len(free)), -1, -1):
        for sub in itertools.combinations(free, k):
            out.append(sub)
            if len(out) >= MAX_CANDIDATES:
                return out
    return out


def round_done(plan_: Plan, verdict: Verdict, latest: Sequence[GroupMeasurement]) -> bool:
    """The sequential test: the hold may stop once every group of the plan that held a
    suspect is decided, all its suspects judged, or the group itself surely losing gas
    (then it needs splitting further). latest: the measurements of the configuration held."""
    z = verdict.z
    undecided = {s.segment for s in verdict.segments if s.leaking is None}
    floor = ACCUSE_FRACTION * verdict.min_leak_kg_per_s
    for g in plan_.groups:
        left = undecided.intersection(g)
        if not left:
            continue
        mine = [m for m in latest if m.segments == g]
        if len(left) > 1 and mine and mine[-1].leak_kg_per_s - z * mine[-1].stderr_kg_per_s > floor:
            continue
        return False
    return True


def worst_case_total_s(station: Station, noise: Noise, leak_kg_per_s: float, now_open: Sequence[bool],
                       closable: Sequence[bool] | None = None, max_closed: int | None = None,
                       confidence: float = CONFIDENCE, min_leak_kg_per_s: float | None = None,
                       looks_so_far: int = 0) -> float:  # fmt: skip
    """Time to a verdict if every round's leak lands in its largest group, each round decided
    at its WORST_CASE_LOOK-th look (the one after its planned hold)."""
    from leakmon.analysis.verdict import SegmentVerdict

    suspects = set(range(station.n))
    is_open = list(now_open)
    total = 0.0
    delta = min_leak_kg_per_s if min_leak_kg_per_s is not None else 0.1 * leak_kg_per_s
    looks = looks_so_far
    for _ in range(station.n + 1):
        segs = tuple(SegmentVerdict(i, math.nan, math.nan, math.nan, math.nan, 0.0, math.inf,
                                    None if i in suspects else False, 0.0, None, "") for i in range(station.n))  # fmt: skip
        v = Verdict(segs, confidence, delta, leak_kg_per_s, 0.0)
        p = plan(station, v, noise, leak_kg_per_s, is_open, closable, max_closed, confidence, delta,
                 look=looks + LOOK_OF_HOLD)  # fmt: skip
        if p.done:
            break
        total += p.hold_s * WORST_CASE_HOLDS
        looks += WORST_CASE_LOOK
        worst = max((g for g in p.groups if suspects.intersection(g)), key=lambda g: len(suspects.intersection(g)))
        suspects = suspects.intersection(worst)
        is_open = [h not in p.closed for h in range(len(station.hatches))]
        if len(suspects) <= 1:
            break
    return total


def calibrate(noise: Noise, station: Station, measured: Sequence[GroupMeasurement]) -> Noise:
    """The noise model scaled to what the fits really showed: the median ratio of each
    group's measured slope error to the white-noise prediction for its hold (never below 1).
    Correlated noise (sensor filters, slow thermal wander) shows up here as a ratio above 1."""
    ratios = []
    for m in measured:
        span = m.t_stop_s - m.t_start_s
        if span <= 0 or m.n_samples < 10:
            continue
        white = group_sigma_kg(station, m.segments, noise) * math.sqrt(12.0 / ((m.n_samples / span) * span**3))
        if white > 0:
            ratios.append(m.stderr_kg_per_s / white)
    if not ratios:
        return noise
    k = max(1.0, sorted(ratios)[len(ratios) // 2])
    return Noise([x * k for x in noise.noise_pa], [x * k for x in noise.noise_k], noise.sample_period_s,
                 noise.thermal_k, noise.pressure_pa, noise.temperature_k)  # fmt: skip
