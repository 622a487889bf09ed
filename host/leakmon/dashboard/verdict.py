"""Per-segment verdicts for the overview diagram.

Where every segment has a volume and a sensor, the verdict is the localization's: the mass
balance of each group of segments joined by open hatches, configuration by configuration,
judged at the stated confidence (analysis.massbalance, analysis.verdict): "leak", "tight"
or "undecided". Until that can be weighed (no volumes, a segment without a sensor, too
few samples) each segment shows its own sensor's rate band, labelled as such.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from leakmon import units
from leakmon.analysis.massbalance import (
    Hatch,
    HatchTimeline,
    Station,
    measure,
    segment_series,
)
from leakmon.analysis.tracker import LeakUpdate
from leakmon.analysis.verdict import CONFIDENCE, judge
from leakmon.dashboard.site import Site

Series = Mapping[int, tuple[np.ndarray, np.ndarray, np.ndarray]]

# state -> the word and symbol the page shows next to the colour (never colour alone)
STATES = {
    "leak": "LEAK",  # the 95% band of the loss rate is above zero
    "tight": "TIGHT",  # the band includes zero
    "gaining": "GAINING",  # the band is below zero (warming, or gas let in)
    "undecided": "UNDECIDED",  # the mass balance cannot tell yet
    "unknown": "NO DATA",
}


def mass_balance_states(site: Site, series: Series, hatch_changes: Sequence[tuple[str, float, bool]],
                        confidence: float = CONFIDENCE) -> dict[str, tuple[str, float]] | None:
    """segment -> (state, kg/day) from the mass balance of every configuration so far, or
    None where it cannot be weighed. hatch_changes: (hatch, device t_s, open), the file's
    schedule and the operators' changes alike."""
    if any(not s.volume_m3 for s in site.segments):
        return None
    names = [s.name for s in site.segments]
    index = {n: i for i, n in enumerate(names)}
    segment_of = {ch: index[seg] for ch, seg in site.channel_segment.items() if seg in index and ch in series}
    if set(segment_of.values()) != set(range(len(names))):
        return None
    hatches = [h for h in site.hatches if h.a in index and h.b in index]
    station = Station(tuple(names), tuple(float(s.volume_m3 or 0.0) for s in site.segments),
                      tuple(Hatch(h.name, index[h.a], index[h.b]) for h in hatches))
    timeline = HatchTimeline.from_schedules([h.initially_open for h in hatches],
                                            [[(t, o) for name, t, o in hatch_changes if name == h.name]
                                             for h in hatches])  # fmt: skip
    t, p, temp = segment_series({ch: series[ch] for ch in segment_of}, segment_of, len(names))
    _, groups = measure(station, timeline, t, p, temp)
    if not groups:
        return None
    v = judge(groups, len(names), confidence, volume_m3=float(sum(station.volumes_m3)))
    out: dict[str, tuple[str, float]] = {}
    for sv in v.segments:
        state = "undecided" if sv.leaking is None else "leak" if sv.leaking else "tight"
        out[names[sv.segment]] = (state, sv.leak_kg_per_s * units.SECONDS_PER_DAY)
    return out


def segment_verdicts(site: Site, latest: dict[int, LeakUpdate], active_alarm_segments: set[str],
                     balance: dict[str, tuple[str, float]] | None = None) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for seg in site.segments:
        ups = [u for ch, u in latest.items() if site.segment_of(ch) == seg.name]
        if balance is not None and seg.name in balance:
            state = balance[seg.name][0]
        elif not ups:
            state = "unknown"
        elif any(u.leak_rate_ci95_low_pa_per_s > 0 for u in ups):
            state = "leak"
        elif all(u.leak_rate_ci95_high_pa_per_s < 0 for u in ups):
            state = "gaining"
        else:
            state = "tight"
        out[seg.name] = {
            "state": state, "label": STATES[state],
            "source": "mass balance" if balance is not None and seg.name in balance else "sensor",
            "leak_kg_per_day": _finite(balance[seg.name][1]) if balance is not None and seg.name in balance else None,
            "mmhg_per_day": ups[0].leak_rate_mmhg_per_day if ups else None,
            "pressure_pa": ups[0].pressure_pa if ups else None,
            "channels": [u.channel for u in ups],
            "alarm": seg.name in active_alarm_segments,  # an onset alarm not yet cleared
        }
    return out


def _finite(x: float) -> float | None:
    return x if math.isfinite(x) else None
