"""The live segment panel of `monitor --view --site`: block means per channel as they
arrive, and a verdict at growing intervals of device time (each a look of the sequential
test, so repeated verdicts keep the stated confidence)."""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np

from leakmon import units
from leakmon.analysis.massbalance import measure, segment_series
from leakmon.analysis.planner import Plan
from leakmon.analysis.verdict import CONFIDENCE, judge
from leakmon.cli.siteview import (
    Site,
    SiteResult,
    _kgd,
    _time_to_limit,
    plan_for,
    plan_text,
)

LIVE_MIN_LOOK_S = 30.0  # device seconds between verdicts at least ...
LIVE_LOOK_GROWTH = 1.25  # ... and the gap grows with the configuration's age: few looks, little error spent
LIVE_MAX_POINTS = 200_000  # per channel (block means): bounded memory on a run of days


class SitePanel:
    """Block means per channel as they arrive; a verdict at growing intervals of device time
    (each one a look of the sequential test), rendered as lines for the live view."""

    def __init__(self, site: Site, segment_of: Mapping[int, int], confidence: float = CONFIDENCE) -> None:
        from collections import deque

        self.site, self.segment_of, self.confidence = site, dict(segment_of), confidence
        self._data: dict[int, deque[tuple[float, float, float]]] = {
            ch: deque(maxlen=LIVE_MAX_POINTS) for ch in self.segment_of}
        self.looks = 0
        self._moves: list[tuple[float, str, bool]] = []
        self._next_look_s = LIVE_MIN_LOOK_S
        self.result: SiteResult | None = None
        self.advice: Plan | None = None

    def note_move(self, event: str, hatch: str, open: bool, device_t_s: float) -> None:  # noqa: A002
        """An operator's hatch move typed during the run: from now on the panel's hatch states
        are the site's initial ones plus the moves typed (sitehatch.OperatorInput calls this)."""
        from dataclasses import replace

        from leakmon.cli.sitehatch import operator_timeline

        self._moves.append((device_t_s, hatch, open))
        self.site = replace(self.site, timeline=operator_timeline(self.site, self._moves))

    def add(self, channel: int, t_s: float, pressure_pa: float, temperature_k: float) -> bool:
        """One block mean; True when a new verdict was taken."""
        buf = self._data.get(channel)
        if buf is None:
            return False
        buf.append((t_s, pressure_pa, temperature_k))
        if t_s < self._next_look_s or any(len(b) < 10 for b in self._data.values()):
            return False
        self.look(t_s)
        return True

    def look(self, t_s: float) -> None:
        series = {ch: tuple(np.array(col) for col in zip(*buf)) for ch, buf in self._data.items() if len(buf) >= 3}
        t, p, temp = segment_series(series, self.segment_of, self.site.station.n)  # type: ignore[arg-type]
        if t.size < 3:
            return
        configs, groups = measure(self.site.station, self.site.timeline, t, p, temp)
        self.looks += 1
        verdict = judge(groups, self.site.station.n, self.confidence,
                        volume_m3=float(sum(self.site.station.volumes_m3)), look=self.looks)  # fmt: skip
        self.result = SiteResult(configs, groups, verdict, float(t[-1]), tuple(float(x) for x in p[:, -1]))
        start = configs[-1].t_start_s if configs else float(t[0])
        self._next_look_s = max(t_s + LIVE_MIN_LOOK_S, start + LIVE_LOOK_GROWTH * (t_s - start))
        self.advice = None
        if not verdict.decided and verdict.total_kg_per_s > 0:
            period = float(np.median(np.diff(t))) if t.size > 1 else 1.0
            try:
                self.advice = plan_for(self.site, verdict, self.site.timeline.state_at(float(t[-1])),
                                       verdict.total_kg_per_s, period)  # fmt: skip
            except ValueError:
                self.advice = None

    def lines(self, limit_pa: float | None = None) -> list[str]:
        if self.result is None:
            return ["segments: gathering data for the first verdict"]
        names = self.site.station.names
        r, v = self.result, self.result.verdict
        q = 1.959964
        out = [f"station {_kgd(v.total_kg_per_s)} kg/day [{_kgd(v.total_kg_per_s - q * v.total_stderr_kg_per_s)}, "
               f"{_kgd(v.total_kg_per_s + q * v.total_stderr_kg_per_s)}]   verdict #{self.looks} at "
               f"{v.confidence:.0%} (device {r.t_end_s:.0f} s, hatches from the {self.site.timeline.source})"]  # fmt: skip
        last = len(r.configs) - 1
        for m in (g for g in r.groups if g.config == last):
            ttl = ""
            if limit_pa is not None and m.ci95_low_kg_per_s > 0:
                left = _time_to_limit(r, m, limit_pa)
                ttl = f"  to the limit {units.format_duration(left)}" if left is not None else ""
            out.append(f"  group {'+'.join(names[i] for i in m.segments):<34} {_kgd(m.leak_kg_per_s):>8} kg/day "
                       f"[{_kgd(m.ci95_low_kg_per_s)}, {_kgd(m.ci95_high_kg_per_s)}]{ttl}")  # fmt: skip
        for s in v.segments:
            word = {True: "LEAKING", False: "not leaking", None: "undecided"}[s.leaking]
            est = f"{_kgd(s.leak_kg_per_s)} kg/day" if math.isfinite(s.leak_kg_per_s) else f"<= {_kgd(s.upper_kg_per_s)} kg/day"
            out.append(f"  {names[s.segment]:<14} {word:<12} {est:>18}  {s.reason}")
        if self.advice is not None:
            out += plan_text(self.site, self.advice)
        return out


