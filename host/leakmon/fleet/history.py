"""Stored frames back out as a recording (`serve --dump`), so that `analyze`, `export` and
`replay` read a node's time range from the database as they read a recording.

Each boot in the range is preceded by its handshake (the last HELLO before the range and
the CALIBs after it), without which the samples could not be compensated; frames go out
in (boot, seq) order, each chunk stamped with the time the gateway received it.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from leakmon import wire
from leakmon.fleet import FleetError
from leakmon.link.recording import RecordingWriter

Row = tuple[int, int, int, bytes]  # boot, seq, t_us, frame
_HANDSHAKE = (wire.T_HELLO, wire.T_CALIB)


def _with_handshakes(rows: list[Row], earlier: Any) -> Iterator[Row]:
    """rows in (boot, seq) order; earlier(boot, seq) -> the handshake frames before seq."""
    seen_boot = None
    for r in rows:
        if r[0] != seen_boot:
            seen_boot = r[0]
            head = earlier(r[0], r[1])
            hello = [k for k, h in enumerate(head) if h[3][3] == wire.T_HELLO]
            yield from head[hello[-1]:] if hello else []
        yield r


def pg_rows(url: str, password: str | None, node_id: str, t_from_us: int, t_to_us: int) -> Iterator[Row]:
    import psycopg

    from leakmon.fleet.pgstore import _connect

    t_us = "(extract(epoch FROM t) * 1000000)::bigint"
    with _connect(url, password) as conn:
        try:
            rows = conn.execute(
                f"SELECT boot, seq, {t_us}, frame FROM leakmon.frames WHERE node_id = %s "
                "AND t >= to_timestamp(%s / 1e6) AND t < to_timestamp(%s / 1e6) ORDER BY boot, seq",
                (node_id, t_from_us, t_to_us)).fetchall()

            def earlier(boot: int, seq: int) -> list[Row]:
                return conn.execute(
                    f"SELECT boot, seq, {t_us}, frame FROM leakmon.frames WHERE node_id = %s AND boot = %s "
                    "AND seq < %s AND msg_type = ANY(%s) ORDER BY seq", (node_id, boot, seq, list(_HANDSHAKE))).fetchall()

            yield from _with_handshakes(rows, earlier)
        except psycopg.errors.InsufficientPrivilege as e:
            raise FleetError(f"this role may not read frames (use the reader role): {str(e).splitlines()[0]}") from e


def sqlite_rows(path: str, node_id: str, t_from_us: int, t_to_us: int) -> Iterator[Row]:
    if not Path(path).exists():
        raise FleetError(f"{path}: no such store")
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        rows = db.execute("SELECT boot, seq, t_us, frame FROM frames WHERE node_id = ? AND t_us >= ? AND t_us < ? "
                          "ORDER BY boot, seq", (node_id, t_from_us, t_to_us)).fetchall()

        def earlier(boot: int, seq: int) -> list[Row]:
            return db.execute("SELECT boot, seq, t_us, frame FROM frames WHERE node_id = ? AND boot = ? AND seq < ? "
                              "AND msg_type IN (?, ?) ORDER BY seq", (node_id, boot, seq, *_HANDSHAKE)).fetchall()

        yield from _with_handshakes(rows, earlier)
    except sqlite3.Error as e:
        raise FleetError(f"{path}: {e}") from e
    finally:
        db.close()


def dump(rows: Iterator[Row], out: Path, meta: dict[str, Any]) -> int:
    """Write the frames as a recording; returns how many. Chunk times follow the gateway's clock."""
    clock_s = [0.0]
    n = 0
    t0: int | None = None
    with RecordingWriter(out, {"source": "leakmon serve --dump", **meta}, clock=lambda: clock_s[0]) as w:
        for _boot, _seq, t_us, frame in rows:
            t0 = t_us if t0 is None else t0
            clock_s[0] = max(clock_s[0], (t_us - t0) / 1e6)
            w.write(bytes(frame))
            n += 1
    return n
