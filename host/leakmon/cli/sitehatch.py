"""Where hatch states come from, beside the site's schedule: an operator's moves typed while
recording (kept as notes in the recording), and the data (pressures that decouple), each
with its evidence; an operator's noted closing is checked against the data."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from leakmon.analysis.massbalance import HatchTimeline, segment_series
from leakmon.cli.siteview import Site
from leakmon.errors import ConfigError

HATCH_EVENT = "hatch"


def parse_operator_line(site: Site, line: str) -> tuple[str, bool]:
    """'close NAME' or 'open NAME' -> (hatch name, open?); anything else is a ConfigError
    that names the hatches."""
    words = line.split()
    names = [h.name for h in site.station.hatches]
    if len(words) != 2 or words[0] not in ("open", "close", "closed") or words[1] not in names:
        raise ConfigError(f"say 'close HATCH' or 'open HATCH' (hatches in {site.path}: {', '.join(names)})")
    return words[1], words[0] == "open"


def operator_timeline(site: Site, moves: list[tuple[float, str, bool]]) -> HatchTimeline:
    """The site's initial hatch states, then the operator's moves at their device times."""
    index = {h.name: k for k, h in enumerate(site.station.hatches)}
    initially = [bool(x) for x in site.timeline.is_open[0]]
    changes: list[list[tuple[float, bool]]] = [[] for _ in index]
    for t_s, name, is_open in sorted(moves):
        changes[index[name]].append((t_s, is_open))
    return HatchTimeline.from_schedules(initially, changes, "operator")


def read_hatch_notes(path: str, site: Site) -> list[tuple[float, str, bool]]:
    """The operator's hatch moves recorded in a recording (device time, hatch, open?)."""
    from leakmon.link.recording import KIND_NOTE, open_recording

    out = []
    with open_recording(path) as rec:
        for c in rec.chunks():
            if c.kind != KIND_NOTE:
                continue
            try:
                note = c.note
            except (ValueError, UnicodeDecodeError):
                continue
            if note.get("event") == HATCH_EVENT and note.get("hatch") in {h.name for h in site.station.hatches}:
                out.append((float(note["device_t_s"]), str(note["hatch"]), bool(note["open"])))
    return out


def with_hatch_source(site: Site, path: str, source: str, series: Mapping[int, tuple[Any, Any, Any]] | None = None,
                      segment_of: Mapping[int, int] | None = None,
                      moves: list[tuple[float, str, bool]] | None = None) -> Site:  # fmt: skip
    """The site with its hatch timeline from the schedule, the recording's operator notes or
    the data (pressures that decouple); 'auto' takes the operator's notes when the recording
    has any, else the schedule. moves: the operator's moves from elsewhere (the fleet's
    database) instead of the recording's notes."""
    from dataclasses import replace

    if source == "schedule":
        return site
    if source == "data":
        if series is None or segment_of is None:
            raise ConfigError("hatch states from the data need the recording's samples")
        from leakmon.analysis.hatchdetect import detect

        t, p, _ = segment_series(series, segment_of, site.station.n)
        timeline, changes = detect(site.station, t, p)
        return replace(site, timeline=timeline, evidence=tuple(c.evidence for c in changes))
    moves = read_hatch_notes(path, site) if moves is None else moves
    if moves:
        checks = _check_moves(site, moves, series, segment_of) if series is not None and segment_of is not None else ()
        return replace(site, timeline=operator_timeline(site, moves), evidence=checks)
    if source == "operator":
        raise ConfigError(f"{path}: no hatch moves recorded (type 'close NAME' while `leakmon record --site` runs, "
                          "or `NODE hatch close NAME` to `leakmon gateway --notes`)")
    return site


def _check_moves(site: Site, moves: list[tuple[float, str, bool]], series: Mapping[int, tuple[Any, Any, Any]],
                 segment_of: Mapping[int, int]) -> tuple[str, ...]:  # fmt: skip
    """Each noted closing held against the data: did the two pressures decouple after it?"""
    from leakmon.analysis.hatchdetect import WINDOW_S, detect

    t, p, _ = segment_series(series, segment_of, site.station.n)
    _, changes = detect(site.station, t, p)
    names = [h.name for h in site.station.hatches]
    out = []
    for t_s, name, is_open in sorted(moves):
        if is_open:
            continue
        h = names.index(name)
        reopened = min((t2 for t2, n2, o2 in moves if n2 == name and o2 and t2 > t_s), default=math.inf)
        seen = [c for c in changes if c.hatch == h and not c.is_open and t_s - WINDOW_S <= c.t_s <= reopened + WINDOW_S]
        out.append(f"{name} noted closed at {t_s:.0f} s; the data agree: {seen[0].evidence}" if seen else
                   f"{name} noted closed at {t_s:.0f} s, but the data never saw its two pressures decouple: "
                   f"check that it is closed (or the two sides happen to move alike)")
    return tuple(out)


class OperatorInput:
    """Reads 'close NAME' / 'open NAME' lines from a stream (stdin) on a thread; the recording
    loop drains them between updates and notes each at the device time it has reached."""

    def __init__(self, site: Site, stream: Any) -> None:
        import queue
        import threading

        self.site = site
        self.moves: queue.Queue[str] = queue.Queue()
        self._thread = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self._thread.start()

    def _read(self, stream: Any) -> None:
        try:
            for line in stream:
                if line.strip():
                    self.moves.put(line.strip())
        except (OSError, ValueError):  # stdin closed under us
            return

    def drain(self, device_t_s: float, note: Any, say: Any) -> None:
        """Note every move typed so far at device_t_s; say() tells the operator."""
        import queue

        while True:
            try:
                line = self.moves.get_nowait()
            except queue.Empty:
                return
            try:
                name, is_open = parse_operator_line(self.site, line)
            except ConfigError as e:
                say(f"leakmon: {e}")
                continue
            note(HATCH_EVENT, hatch=name, open=is_open, device_t_s=device_t_s)
            say(f"leakmon: {name} {'opened' if is_open else 'closed'} at device time {device_t_s:.1f} s (noted)")
