"""Whether a gateway keeps up with its nodes: its process's CPU over wall time, looked at
once a period, said in the log when it nears one core and again when it is back under.

Python runs one thread at a time (the GIL), so a gateway process near one core is at
what it can do: its feed falls behind the nodes and, once behind, falls further, since
the publisher thread then competes with it all the time (bench/RESULTS.md, paced runs).
An operator who sees the line splits the nodes over more gateway processes or takes a
longer `--estimate-every` (docs/fleet.md, "Sizing"). With `--estimate-every-max`, the
gateway takes the longer cadence itself while busy (Cadence): the estimates are ~40 % of
its work at 10 s, and onset alarms go out on the block that raises them whatever it is.
"""

from __future__ import annotations

import time
from collections.abc import Callable

BUSY_CORES = 0.9  # at or above: near one core, said once
CALM_CORES = 0.7  # below: back under, said once (between the two nothing changes: no flapping)
PERIOD_S = 60.0


class LoadWatch:
    """poll() often (it is cheap); every period_s it measures and may log one line."""

    def __init__(self, log: Callable[[str], None], period_s: float = PERIOD_S,
                 cpu_s: Callable[[], float] = time.process_time,
                 wall_s: Callable[[], float] = time.monotonic) -> None:  # fmt: skip
        self.log = log
        self.period_s = period_s
        self._cpu_s, self._wall_s = cpu_s, wall_s
        self._c0, self._t0 = cpu_s(), wall_s()
        self.busy = False
        self.cores: float | None = None  # the last period's CPU seconds per wall second

    def poll(self) -> float | None:
        """The last period's cores when a period has just ended (and been logged), else None."""
        now = self._wall_s()
        if now - self._t0 < self.period_s:
            return None
        cpu = self._cpu_s()
        self.cores = (cpu - self._c0) / (now - self._t0)
        self._c0, self._t0 = cpu, now
        if self.cores >= BUSY_CORES and not self.busy:
            self.busy = True
            self.log(f"gateway busy: {self.cores:.2f} of a CPU core over the last {self.period_s:.0f} s, near what one "
                     f"process can do; it may fall behind its nodes (split them over more gateway processes or "
                     f"take a longer --estimate-every, or let it stretch with --estimate-every-max: "
                     f"docs/fleet.md, Sizing)")
        elif self.cores < CALM_CORES and self.busy:
            self.busy = False
            self.log(f"gateway load back to {self.cores:.2f} of a CPU core over the last {self.period_s:.0f} s")
        return self.cores


class Cadence:
    """The estimate cadence of a gateway allowed to stretch it up to max_s: doubled after
    each period at or above BUSY_CORES, until max_s; halved after each under CALM_CORES,
    until base_s; unchanged between. One step at a time back, since a jump back to base_s
    would bring back the whole load that made it busy (flapping). Each change is logged."""

    def __init__(self, base_s: float, max_s: float, log: Callable[[str], None]) -> None:
        self.base_s = base_s
        self.max_s = max(max_s, base_s)
        self.every_s = base_s
        self.log = log

    def after(self, cores: float) -> bool:
        """A period's load measured: whether the cadence changed."""
        was = self.every_s
        if cores >= BUSY_CORES and self.every_s < self.max_s:
            self.every_s = min(self.every_s * 2.0, self.max_s)
            self.log(f"gateway busy: each channel's estimate now every {self.every_s:g} s of device time "
                     f"(--estimate-every {self.base_s:g}, up to --estimate-every-max {self.max_s:g})")
        elif cores < CALM_CORES and self.every_s > self.base_s:
            self.every_s = max(self.every_s / 2.0, self.base_s)
            self.log(f"gateway load back: each channel's estimate every {self.every_s:g} s of device time"
                     + (" again" if self.every_s == self.base_s else ""))
        return self.every_s != was
