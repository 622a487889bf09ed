"""Per-segment verdicts for the overview diagram.

SEAM: the localization work (which segment leaks, from hatch configurations) will give a
verdict per segment; until then this is the tracker's own per-segment state. Replace
`segment_verdicts` (same return shape) and the overview follows.
"""

from __future__ import annotations

from typing import Any

from leakmon.analysis.tracker import LeakUpdate
from leakmon.dashboard.site import Site

# state -> the word and symbol the page shows next to the colour (never colour alone)
STATES = {
    "leak": "LEAK",  # the 95% band of the loss rate is above zero
    "tight": "TIGHT",  # the band includes zero
    "gaining": "GAINING",  # the band is below zero (warming, or gas let in)
    "unknown": "NO DATA",
}


def segment_verdicts(site: Site, latest: dict[int, LeakUpdate],
                     active_alarm_segments: set[str]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for seg in site.segments:
        ups = [u for ch, u in latest.items() if site.segment_of(ch) == seg.name]
        if not ups:
            state = "unknown"
        elif any(u.leak_rate_ci95_low_pa_per_s > 0 for u in ups):
            state = "leak"
        elif all(u.leak_rate_ci95_high_pa_per_s < 0 for u in ups):
            state = "gaining"
        else:
            state = "tight"
        out[seg.name] = {
            "state": state, "label": STATES[state], "source": "tracker",
            "mmhg_per_day": ups[0].leak_rate_mmhg_per_day if ups else None,
            "pressure_pa": ups[0].pressure_pa if ups else None,
            "channels": [u.channel for u in ups],
            "alarm": seg.name in active_alarm_segments,  # an onset alarm not yet cleared
        }
    return out
