"""The live state the pages read: the latest leak update per channel, bounded history, link
health, and the alarms the tracker's onset detector raises. A feed thread writes; the web
handlers read snapshots. Everything here is a few dicts under one lock."""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from leakmon import units
from leakmon.analysis.estimate import DEFAULT_WINDOW_S
from leakmon.analysis.massbalance import station_loss
from leakmon.analysis.tracker import LeakUpdate
from leakmon.dashboard.history import History
from leakmon.dashboard.site import Site
from leakmon.dashboard.store import Store
from leakmon.dashboard.verdict import mass_balance_states, segment_verdicts
from leakmon.wire.stream import SampleBlock

STATION_WINDOW_S = DEFAULT_WINDOW_S  # the station total's fit: the channels' window
VERDICT_EVERY_S = 5.0  # the mass-balance verdict is recomputed at most this often (wall time)
TREND_EVERY_S = 60.0
TREND_MIN_SPAN_S = 300.0  # the first minutes' rates are mostly noise: not for the public
TREND_MAX_POINTS = 14 * 24 * 60  # two weeks of minutes


@dataclass
class LinkHealth:
    """One node's link as the link health view shows it."""

    node: str
    firmware: str = ""
    sensors: list[str] = field(default_factory=list)
    rate_hz: float = 0.0
    frames: int = 0
    lost_frames: int = 0
    crc_errors: int = 0
    frames_per_s: float = 0.0
    last_seen_wall: float | None = None
    connected: bool = False

    def as_dict(self) -> dict[str, Any]:
        d = dict(self.__dict__)
        d["age_s"] = None if self.last_seen_wall is None else max(0.0, time.time() - self.last_seen_wall)
        return d


class Hub:
    def __init__(self, site: Site, store: Store, history: History) -> None:
        self.site = site
        self.store = store
        self.history = history
        self.latest: dict[int, LeakUpdate] = {}
        self.links: dict[str, LinkHealth] = {}
        self.t_now_s: float | None = None  # latest device time seen
        self.source_text = ""
        self._alarmed: set[tuple[int, float]] = set()
        self._t_first: dict[int, float] = {}
        self._hatch_next: dict[str, int] = {h.name: 0 for h in site.hatches}
        self._lock = threading.Lock()
        self._balance_cache: tuple[float, dict[str, tuple[str, float]] | None] | None = None
        self._balance_running = False  # a verdict is being computed in its thread
        self.version = 0  # bumped on every update: the event stream sends when it moves
        # Station rate (mmHg/day) once a TREND_EVERY_S of device time: the public trend.
        self.trend: deque[tuple[float, float]] = deque(maxlen=TREND_MAX_POINTS)

    # -- written by the feed --

    def add_block(self, block: SampleBlock) -> None:
        self.history.add_raw(block.channel, block.t_s, block.pressure_pa, block.temperature_k)
        with self._lock:
            self.t_now_s = max(self.t_now_s or -math.inf, float(block.t_s[-1]))
        self._apply_hatch_schedule()

    def add_update(self, u: LeakUpdate) -> None:
        self.history.add_update(u.channel, (u.t_s, u.pressure_pa, u.temperature_k, u.leak_rate_pa_per_s,
                                            u.leak_rate_ci95_low_pa_per_s, u.leak_rate_ci95_high_pa_per_s))
        with self._lock:
            self.latest[u.channel] = u
            self.version += 1
            new_alarm = u.alarm_t_s is not None and (u.channel, u.alarm_t_s) not in self._alarmed
            if new_alarm:
                self._alarmed.add((u.channel, float(u.alarm_t_s or 0.0)))
        t_first = self._t_first.setdefault(u.channel, u.t_s)
        if u.t_s - t_first >= TREND_MIN_SPAN_S and (not self.trend or u.t_s - self.trend[-1][0] >= TREND_EVERY_S):
            st = self.station()
            if st["mmhg_per_day"] is not None:
                self.trend.append((u.t_s, st["mmhg_per_day"]))
        if new_alarm:
            seg = self.site.segment_of(u.channel)
            self.store.raise_alarm(
                "leak onset", f"leak onset in {seg} (ch{u.channel}): "
                f"{u.leak_rate_mmhg_per_day:+.2f} mmHg/day", u.channel, seg, u.alarm_t_s, u.alarm_onset_t_s)

    def set_link(self, health: LinkHealth) -> None:
        with self._lock:
            self.links[health.node] = health

    def _apply_hatch_schedule(self) -> None:
        """Hatch changes the site file knows in advance (the simulated crew), logged when
        the device clock passes them, as an operator would log them."""
        t = self.t_now_s
        if t is None:
            return
        for h in self.site.hatches:
            i = self._hatch_next[h.name]
            while i < len(h.schedule) and h.schedule[i][0] <= t:
                self.store.set_hatch(h.name, h.schedule[i][1], h.schedule[i][0], self.site.schedule_by)
                i += 1
            self._hatch_next[h.name] = i

    # -- read by the pages --

    def hatch_states(self) -> dict[str, bool]:
        """Open (True) or closed per hatch: the site's initial state, then the latest change."""
        state = {h.name: h.initially_open for h in self.site.hatches}
        for ev in reversed(self.store.hatch_events()):
            if ev["hatch"] in state:
                state[ev["hatch"]] = bool(ev["open"])
        return state

    def station(self) -> dict[str, Any]:
        """Station total (kg/day and mmHg/day, with 95% intervals) and the time to the limit.

        The total is the slope of the whole station's gas mass, sum P_i V_i M / (R T_i) over
        every segment, across the last STATION_WINDOW_S of raw samples
        (analysis.massbalance.station_loss): gas flowing between modules through open
        hatches cancels in it, where a sum of each sensor's own P/T rate does not."""
        with self._lock:
            latest = dict(self.latest)
        out: dict[str, Any] = {"t_s": self.t_now_s, "kg_per_day": None, "mmhg_per_day": None}
        volumes = [s.volume_m3 for s in self.site.segments]
        known = [v for v in volumes if v]
        loss = self._station_loss_kg_per_s(known) if len(known) == len(volumes) else None
        vol = sum(known)
        if loss is not None and vol > 0 and latest:
            temp_k = float(np.mean([u.temperature_k for u in latest.values()]))
            pa_per_kg = units.R * temp_k / (units.M * vol)  # pressure units: the station's mean
            kg = [x * units.SECONDS_PER_DAY for x in loss]
            mmhg = [float(units.pa_per_s_to_mmhg_per_day(x * pa_per_kg)) for x in loss]
            out.update(kg_per_day=kg[0], kg_per_day_ci95=kg[1:], mmhg_per_day=mmhg[0], mmhg_per_day_ci95=mmhg[1:])
        out["time_to_limit_s"] = self.time_to_limit_s(latest)
        out["limit_pa"] = self.site.limit_pa
        return out

    def _balance(self) -> dict[str, tuple[str, float]] | None:
        """The mass-balance verdict over the whole history, recomputed at most every
        VERDICT_EVERY_S in a thread of its own (at 24 h of 4 channels it takes about half a
        second, which the pages' event loop must not wait for): the last one meanwhile."""
        now = time.monotonic()
        with self._lock:
            cache = self._balance_cache
            stale = cache is None or now - cache[0] >= VERDICT_EVERY_S
            if stale and not self._balance_running:
                self._balance_running = True
                threading.Thread(target=self._compute_balance, name="leakmon-verdict", daemon=True).start()
        return cache[1] if cache is not None else None

    def _compute_balance(self) -> None:
        try:
            t_end = self.t_now_s if self.t_now_s is not None else -math.inf
            series = {}
            for ch in self.site.channel_segment:
                rows = self.history.raw_rows(ch, -math.inf, t_end)
                if rows.shape[1] >= 2:
                    series[ch] = (rows[0], rows[1], rows[2])
            changes = [(ev["hatch"], float(ev["t_s"]), bool(ev["open"])) for ev in self.store.hatch_events()
                       if ev["t_s"] is not None]
            try:
                result = mass_balance_states(self.site, series, changes) if series else None
            except ValueError:
                result = None
            with self._lock:
                self._balance_cache = (time.monotonic(), result)
        finally:
            self._balance_running = False

    def _station_loss_kg_per_s(self, volumes_m3: list[float]) -> tuple[float, float, float] | None:
        if self.t_now_s is None:
            return None
        names = [s.name for s in self.site.segments]
        index = {n: i for i, n in enumerate(names)}
        t0 = self.t_now_s - STATION_WINDOW_S
        series: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
        segment_of: dict[int, int] = {}
        for ch, seg in self.site.channel_segment.items():
            if seg in index:
                rows = self.history.raw_rows(ch, t0, self.t_now_s)
                if rows.shape[1] >= 2:
                    series[ch], segment_of[ch] = (rows[0], rows[1], rows[2]), index[seg]
        if not series:
            return None
        return station_loss(series, segment_of, volumes_m3)

    def time_to_limit_s(self, latest: dict[int, LeakUpdate]) -> float | None:
        """The soonest any channel reaches the limit pressure at its current rate (None: no
        limit set, or nothing falling)."""
        lim = self.site.limit_pa
        if lim is None:
            return None
        times = [(u.pressure_pa - lim) / u.leak_rate_pa_per_s for u in latest.values()
                 if u.leak_rate_pa_per_s > 0 and u.pressure_pa > lim]
        return min(times) if times else None

    def overview(self) -> dict[str, Any]:
        """The site diagram's data: verdict per segment, hatch states, the station."""
        with self._lock:
            latest = dict(self.latest)
        active = {a["segment"] for a in self.store.alarms(50) if a["state"] in ("raised", "acknowledged")}
        return {"verdicts": segment_verdicts(self.site, latest, active, self._balance()), "hatches": self.hatch_states(),
                "station": self.station()}

    def live(self, since: dict[int, float], max_rows: int = 120) -> dict[str, Any]:
        """What the event stream sends: per channel the update rows after `since[ch]` (thinned
        to max_rows), the latest values, the station, and the counters the pages show."""
        rows: dict[str, dict[str, list[float]]] = {}
        now = self.t_now_s if self.t_now_s is not None else 0.0
        for ch in sorted(self.history.updates):
            r = self.history.update_range(ch, since.get(ch, -math.inf) + 1e-9, math.inf, max_rows // 2)
            if r["t_s"]:
                rows[str(ch)] = r
        with self._lock:
            latest = {str(ch): _update_dict(u) for ch, u in sorted(self.latest.items())}
            links = [h.as_dict() for h in self.links.values()]
        return {"t_s": now, "rows": rows, "latest": latest, "links": links, "wall": time.time()}


def _update_dict(u: LeakUpdate) -> dict[str, Any]:
    d: dict[str, Any] = u.as_dict()
    for k, v in d.items():
        if isinstance(v, float) and not math.isfinite(v):
            d[k] = None
    return d
