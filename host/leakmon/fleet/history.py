"""Stored frames back out: a node's time range read from PostgreSQL or the embedded SQLite
store, in batches, for `analyze`/`export` (fleet/readback.py decodes them) and for
`serve --dump` (a recording).

Each boot in the range is preceded by its handshake (the last HELLO before the range and
the CALIBs after it), without which the samples could not be compensated; frames go out
in (boot, seq) order, the order the node sent them, each with the time the gateway
received it. Rows are fetched BATCH_ROWS at a time (a server-side cursor in PostgreSQL,
a stepping cursor in SQLite): a month of a node never sits in memory as rows.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, NamedTuple

from leakmon import wire
from leakmon.fleet import FleetError, first_line
from leakmon.link.recording import RecordingWriter

BATCH_ROWS = 5000
_HANDSHAKE = (wire.T_HELLO, wire.T_CALIB)
_T = "(timestamptz 'epoch' + %s * interval '1 microsecond')"  # exactly as pgstore stores t_us


class FrameRow(NamedTuple):
    boot: int
    seq: int
    t_us: int  # when the gateway received it, us since 1970
    frame: bytes
    in_range: bool  # False: a handshake frame from before the range, added to decode it


Earlier = Callable[[int, int], list[tuple[int, int, int, bytes]]]


def _with_handshakes(batches: Iterator[list[tuple[int, int, int, bytes]]], earlier: Earlier) -> Iterator[FrameRow]:
    """Rows in (boot, seq) order, each boot's first preceded by its handshake;
    earlier(boot, seq) -> that boot's HELLO and CALIB frames before seq, in seq order."""
    seen_boot = None
    for batch in batches:
        for boot, seq, t_us, frame in batch:
            if boot != seen_boot:
                seen_boot = boot
                head = earlier(boot, seq)
                hello = [k for k, h in enumerate(head) if h[3][3] == wire.T_HELLO]
                for h in head[hello[-1]:] if hello else []:
                    yield FrameRow(h[0], h[1], h[2], bytes(h[3]), False)
            yield FrameRow(boot, seq, t_us, bytes(frame), True)


def _no_node(node_id: str, known: list[str]) -> FleetError:
    listed = ", ".join(known[:20]) + (", ..." if len(known) > 20 else "")
    return FleetError(f"no frames of node {node_id!r} stored (nodes: {listed or 'none'})")


def pg_rows(url: str, password: str | None, node_id: str, t_from_us: int, t_to_us: int,
            batch_rows: int = BATCH_ROWS) -> Iterator[FrameRow]:
    """A node's frames of [t_from_us, t_to_us) from PostgreSQL, read-only, in batches.
    Raises FleetError (unreachable, refused, unknown node); AuthError for a bad login."""
    import psycopg

    from leakmon.fleet.creds import redact_db_url
    from leakmon.fleet.pgstore import _connect

    t_us = "(extract(epoch FROM t) * 1000000)::bigint"
    try:
        conn = _connect(url, password)
    except psycopg.Error as e:  # e.g. a malformed connection string (not an OperationalError)
        raise FleetError(f"cannot use {redact_db_url(url)}: {first_line(e)}") from e
    with conn:
        try:
            conn.read_only = True  # belt and braces: this path never writes, whatever the role may
            if not conn.execute("SELECT EXISTS (SELECT 1 FROM leakmon.frames WHERE node_id = %s)",
                                (node_id,)).fetchone()[0]:  # type: ignore[index]
                raise _no_node(node_id, [r[0] for r in conn.execute("SELECT node_id FROM leakmon.nodes ORDER BY 1")])

            def earlier(boot: int, seq: int) -> list[tuple[int, int, int, bytes]]:
                return conn.execute(
                    f"SELECT boot, seq, {t_us}, frame FROM leakmon.frames WHERE node_id = %s AND boot = %s "
                    "AND seq < %s AND msg_type = ANY(%s) ORDER BY seq", (node_id, boot, seq, list(_HANDSHAKE))).fetchall()

            with conn.cursor(name="leakmon_history") as cur:  # server-side: rows come batch_rows at a time
                cur.execute(f"SELECT boot, seq, {t_us}, frame FROM leakmon.frames WHERE node_id = %s "
                            f"AND t >= {_T} AND t < {_T} ORDER BY boot, seq",
                            (node_id, t_from_us, t_to_us))
                yield from _with_handshakes(iter(lambda: cur.fetchmany(batch_rows), []), earlier)
        except psycopg.errors.InsufficientPrivilege as e:
            raise FleetError(f"this role may not read frames (use the reader role): {first_line(e)}") from e
        except psycopg.errors.UndefinedTable as e:
            raise FleetError(f"{redact_db_url(url)} has no leakmon schema (run `leakmon serve --init-db` as its "
                             f"owner): {first_line(e)}") from e
        except psycopg.OperationalError as e:
            raise FleetError(f"lost {redact_db_url(url)}: {first_line(e)}") from e


def sqlite_rows(path: str, node_id: str, t_from_us: int, t_to_us: int,
                batch_rows: int = BATCH_ROWS) -> Iterator[FrameRow]:
    """The same from the embedded store, opened read-only (a running `serve` may write on: WAL)."""
    if not Path(path).is_file():
        raise FleetError(f"{path}: no such store")
    try:
        db = sqlite3.connect(f"file:{Path(path).resolve().as_posix()}?mode=ro", uri=True)
    except sqlite3.Error as e:
        raise FleetError(f"{path}: {e}") from e
    try:
        if db.execute("SELECT 1 FROM frames WHERE node_id = ? LIMIT 1", (node_id,)).fetchone() is None:
            raise _no_node(node_id, [r[0] for r in db.execute("SELECT DISTINCT node_id FROM frames ORDER BY 1")])

        def earlier(boot: int, seq: int) -> list[tuple[int, int, int, bytes]]:
            return db.execute("SELECT boot, seq, t_us, frame FROM frames WHERE node_id = ? AND boot = ? AND seq < ? "
                              "AND msg_type IN (?, ?) ORDER BY seq", (node_id, boot, seq, *_HANDSHAKE)).fetchall()

        cur = db.execute("SELECT boot, seq, t_us, frame FROM frames WHERE node_id = ? AND t_us >= ? AND t_us < ? "
                         "ORDER BY boot, seq", (node_id, t_from_us, t_to_us))
        yield from _with_handshakes(iter(lambda: cur.fetchmany(batch_rows), []), earlier)
    except sqlite3.Error as e:
        what = "not a leakmon store" if "no such table" in str(e) or "not a database" in str(e) else "cannot read it"
        raise FleetError(f"{path}: {what} ({e})") from e
    finally:
        db.close()


NoteRow = tuple[str, int, str, str]  # node_id, t_us, kind ("hatch" or "note"), text


def pg_notes(url: str, password: str | None, node_ids: list[str], t_from_us: int, t_to_us: int) -> list[NoteRow]:
    """The operator's notes and hatch events of these nodes in the range, in time order."""
    import psycopg

    from leakmon.fleet.creds import redact_db_url
    from leakmon.fleet.pgstore import _connect

    with _connect(url, password) as conn:
        try:
            conn.read_only = True
            return [(r[0], int(r[1]), r[2], r[3]) for r in conn.execute(
                "SELECT node_id, (extract(epoch FROM t) * 1000000)::bigint, kind, text FROM leakmon.notes "
                f"WHERE node_id = ANY(%s) AND t >= {_T} AND t < {_T} ORDER BY t", (node_ids, t_from_us, t_to_us))]
        except psycopg.Error as e:
            raise FleetError(f"{redact_db_url(url)}: cannot read notes: {first_line(e)}") from e


def sqlite_notes(path: str, node_ids: list[str], t_from_us: int, t_to_us: int) -> list[NoteRow]:
    try:
        db = sqlite3.connect(f"file:{Path(path).resolve().as_posix()}?mode=ro", uri=True)
        try:
            marks = ", ".join("?" * len(node_ids))
            return db.execute(f"SELECT node_id, t_us, kind, text FROM notes WHERE node_id IN ({marks}) "
                              "AND t_us >= ? AND t_us < ? ORDER BY t_us", (*node_ids, t_from_us, t_to_us)).fetchall()
        finally:
            db.close()
    except sqlite3.Error as e:
        raise FleetError(f"{path}: cannot read notes ({e})") from e


def dump(rows: Iterator[FrameRow], out: Path, meta: dict[str, Any]) -> int:
    """Write the frames as a recording; returns how many. Chunk times follow the gateway's clock."""
    clock_s = [0.0]
    n = 0
    t0: int | None = None
    with RecordingWriter(out, {"source": "leakmon serve --dump", **meta}, clock=lambda: clock_s[0]) as w:
        for r in rows:
            t0 = r.t_us if t0 is None else t0
            clock_s[0] = max(clock_s[0], (r.t_us - t0) / 1e6)
            w.write(r.frame)
            n += 1
    return n
