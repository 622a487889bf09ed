"""What the overview draws: the segments in a row, the hatches between them, and which
channel measures which segment. Built by the command module (from a scenario file for --sim
or --site, or one segment per channel for a bare node), so this package never reads one."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Segment:
    name: str
    volume_m3: float | None = None  # None: unknown (no mass rate, no station total)


@dataclass(frozen=True)
class Hatch:
    name: str
    a: str
    b: str
    initially_open: bool = True
    # Device-time changes known in advance (a simulated crew, or the moves operators typed to
    # `gateway --notes`, read back from the fleet's database): (t_s, open).
    schedule: tuple[tuple[float, bool], ...] = ()


@dataclass(frozen=True)
class Site:
    name: str
    segments: tuple[Segment, ...]
    hatches: tuple[Hatch, ...] = ()
    channel_segment: dict[int, str] = field(default_factory=dict)
    limit_pa: float | None = None  # the pressure at which the crew must act (time to limit)
    schedule_by: str = "scenario"  # who made the hatches' schedules: the hatch log's "user"

    def segment_of(self, channel: int) -> str:
        return self.channel_segment.get(channel, f"ch{channel}")

    def as_dict(self) -> dict[str, object]:
        return {
            "name": self.name,
            "segments": [{"name": s.name, "volume_m3": s.volume_m3} for s in self.segments],
            "hatches": [{"name": h.name, "a": h.a, "b": h.b} for h in self.hatches],
            "channels": {str(c): s for c, s in sorted(self.channel_segment.items())},
            "limit_pa": self.limit_pa,
        }
