"""Operator notes and hatch events, typed where the gateway runs (`gateway --notes`):
one line each, `<node_id> hatch|note <text>`, e.g. `a1 hatch hatch 3 closed`. Each goes
to leakmon/<node_id>/note through the spool like any data, so an outage loses none."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

from leakmon.fleet import envelope
from leakmon.fleet.edge import Outbox, wall_us
from leakmon.fleet.ingest import MAX_NOTE_CHARS, NOTE_KINDS


class NoteWriter:
    """Keys (node_id, boot, seq): boot is this writer's start (us), seq counts its notes."""

    def __init__(self, outbox: Outbox, node_ids: Iterable[str]) -> None:
        self.outbox = outbox
        self.node_ids = set(node_ids)
        self.boot = wall_us()
        self.seq = 0

    def parse(self, line: str) -> tuple[str, str, str]:
        parts = line.strip().split(None, 2)
        if len(parts) < 3 or parts[1] not in NOTE_KINDS:
            raise ValueError(f"a note is '<node_id> {'|'.join(NOTE_KINDS)} <text>', not {line.strip()!r}")
        node_id, kind, text = parts
        if node_id not in self.node_ids:
            raise ValueError(f"no node {node_id!r} here (nodes: {', '.join(sorted(self.node_ids))})")
        if len(text) > MAX_NOTE_CHARS:
            raise ValueError(f"a note has at most {MAX_NOTE_CHARS} characters")
        return node_id, kind, text

    def add(self, line: str) -> None:
        node_id, kind, text = self.parse(line)
        self.seq += 1
        self.outbox.put(envelope.topic(node_id, "note"), envelope.pack_json(
            node_id, self.boot, self.seq, wall_us(), {"kind": kind, "text": text, "t_unix_s": time.time()}))


def read_lines(lines: Iterable[str], writer: NoteWriter, log: Callable[[str], None]) -> None:
    """Every line a note; a bad one is reported and skipped, never fatal."""
    for line in lines:
        if not line.strip():
            continue
        try:
            writer.add(line)
            log(f"note stored: {line.strip()}")
        except ValueError as e:
            log(str(e))
