"""The live terminal view of `leakmon monitor --view`: one row per sensor (segment),
link health, and a pressure-vs-time plot, redrawn in place.

render() is a pure function of the state, so tests read the screen as text.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field

from leakmon import units
from leakmon.analysis.tracker import LeakUpdate
from leakmon.errors import LeakmonError
from leakmon.wire.stream import LinkStats

RED, GREEN, YELLOW, DIM, RESET = "\x1b[31m", "\x1b[32m", "\x1b[33m", "\x1b[2m", "\x1b[0m"
HOME_CLEAR = "\x1b[H\x1b[J"
PLOT_ROWS = 10


def seconds_to_limit(u: LeakUpdate, limit_pa: float) -> tuple[float, float, float]:
    """Seconds until the pressure falls to limit_pa: the tracker's, from the model that
    holds (widened for misfit), when it was given the limit; else at the headline rate,
    with the range from its 95% interval (inf where the rate may be zero or a gain)."""
    if u.time_to_limit_s is not None and u.time_to_limit_ci95_s is not None:
        return u.time_to_limit_s, u.time_to_limit_ci95_s[0], u.time_to_limit_ci95_s[1]
    head = u.pressure_pa - limit_pa
    if head <= 0:
        return 0.0, 0.0, 0.0

    def at(rate: float) -> float:
        return head / rate if rate > 0 else math.inf

    return at(u.leak_rate_pa_per_s), at(u.leak_rate_ci95_high_pa_per_s), at(u.leak_rate_ci95_low_pa_per_s)


def state(u: LeakUpdate) -> str:
    if u.alarm_t_s is not None:  # the CUSUM rang: a leak began (at alarm_onset_t_s)
        return "ALARM"
    if u.leak_rate_ci95_low_pa_per_s > 0:
        return "LEAK"
    if u.leak_rate_ci95_high_pa_per_s < 0:
        return "GAIN"
    return "ok"


@dataclass
class LiveView:
    labels: dict[int, str]
    unit: str = "hPa"
    limit_pa: float | None = None
    color: bool = False
    history_s: float = 600.0
    latest: dict[int, LeakUpdate] = field(default_factory=dict)
    history: dict[int, deque[tuple[float, float]]] = field(default_factory=dict)
    events: deque[str] = field(default_factory=lambda: deque(maxlen=3))
    panel: list[str] = field(default_factory=list)  # --site: segments, groups, verdict (cli/siteview.SitePanel)

    def __post_init__(self) -> None:
        try:
            units.pressure_from_pa(0.0, self.unit)
        except ValueError as e:
            raise LeakmonError(str(e)) from e

    def update(self, u: LeakUpdate) -> None:
        self.latest[u.channel] = u
        h = self.history.setdefault(u.channel, deque())
        h.append((u.t_s, u.pressure_pa))
        while h and h[0][0] < u.t_s - self.history_s:
            h.popleft()

    def note(self, text: str) -> None:
        """A node event, shown under the table (the screen is redrawn: stderr would scroll it)."""
        self.events.append(text)

    def _paint(self, text: str, code: str) -> str:
        return f"{code}{text}{RESET}" if self.color else text

    def rows(self) -> list[str]:
        lim = f"to {units.pressure_from_pa(self.limit_pa, 'mmHg'):.0f} mmHg" if self.limit_pa is not None else ""
        out = [f"{'sensor':<26} {'pressure ' + self.unit:>16} {'temp C':>7} {'leak rate Pa/s [95%]':>32} "
               f"{'mmHg/day':>9} {'s/mmHg':>8} {'model':>11} {lim:>26} {'state':>5}"]
        for ch in sorted(self.latest):
            u = self.latest[ch]
            p = units.pressure_from_pa(u.pressure_pa, self.unit)
            ttl = ""
            if self.limit_pa is not None:
                mid, lo, hi = seconds_to_limit(u, self.limit_pa)
                ttl = f"{units.format_duration(mid)} [{units.format_duration(lo)}, {units.format_duration(hi)}]"
            st = state(u)
            colour = {"ALARM": RED, "LEAK": RED, "GAIN": YELLOW, "ok": GREEN}[st]
            out.append(f"{self.labels.get(ch, f'ch{ch}')[:26]:<26} {p:16.3f} {u.temperature_k - 273.15:7.3f} "
                       f"{u.leak_rate_pa_per_s:+10.5f} [{u.leak_rate_ci95_low_pa_per_s:+9.5f},"
                       f"{u.leak_rate_ci95_high_pa_per_s:+9.5f}] {u.leak_rate_mmhg_per_day:+9.2f} "
                       f"{units.seconds_per_mmhg(u.leak_rate_pa_per_s):8.0f} {u.model:>11} {ttl:>26} "
                       f"{self._paint(f'{st:>5}', colour)}")
        return out

    def plot(self, width: int) -> list[str]:
        """Pressure of every sensor against device time, as characters."""
        series = {ch: h for ch, h in self.history.items() if len(h) > 1}
        if not series:
            return []
        t_end = max(h[-1][0] for h in series.values())
        t0 = t_end - self.history_s
        ps = [units.pressure_from_pa(p, self.unit) for h in series.values() for _, p in h]
        lo, hi = min(ps), max(ps)
        span = hi - lo or 1.0
        cols = max(width - 14, 20)
        grid = [[" "] * cols for _ in range(PLOT_ROWS)]
        marks = "*o+x#@%&"
        for k, (ch, h) in enumerate(sorted(series.items())):
            for t, p in h:
                x = int((t - t0) / self.history_s * (cols - 1))
                y = int((units.pressure_from_pa(p, self.unit) - lo) / span * (PLOT_ROWS - 1))
                if 0 <= x < cols:
                    grid[PLOT_ROWS - 1 - y][x] = marks[k % len(marks)]
        out = []
        for r, line in enumerate(grid):
            label = hi if r == 0 else lo if r == PLOT_ROWS - 1 else None
            out.append(f"{'' if label is None else f'{label:.3f}':>12} |{''.join(line)}")
        legend = "  ".join(f"{marks[k % len(marks)]} {self.labels.get(ch, f'ch{ch}')}" for k, ch in enumerate(sorted(series)))
        out.append(f"{'':>12} +{'-' * cols}")
        out.append(f"{'':>12}  {-self.history_s:.0f} s{'now (device time ' + f'{t_end:.0f} s)':>{cols - 8}}")
        out.append(f"{'':>12}  pressure ({self.unit}): {legend}")
        return out

    def render(self, title: str, link: LinkStats, crc_errors: int, frames_per_s: float, width: int = 120) -> str:
        health = f"link {frames_per_s:.1f} frames/s, {link.lost_frames} lost, {crc_errors} CRC errors"
        bad = link.lost_frames or crc_errors
        lines = [f"{title}   {self._paint(health, YELLOW if bad else DIM)}", ""] + self.rows()
        lines += [self._paint(f"event: {e}", YELLOW) for e in self.events]
        if self.panel:  # --site
            lines += [""] + [self._paint(x, RED) if " LEAKING " in x else x for x in self.panel]
        lines += [""] + self.plot(width)
        return "\n".join(lines) + "\n"
