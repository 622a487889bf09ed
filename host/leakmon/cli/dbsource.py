"""The fleet's database as a source beside a recording, for `analyze` and `export`:
a node's time range from PostgreSQL (--db) or the embedded SQLite store (--store),
decoded by the stream core as a recording is (leakmon.fleet.history, .readback), and
several nodes of one site put on one time axis."""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from leakmon.cli.session import Series, warn
from leakmon.errors import LeakmonError
from leakmon.wire.stream import NodeStream, SampleTable


def add_db_source_args(p: argparse.ArgumentParser, end_flags: tuple[str, ...] = ("--to", "--until")) -> None:
    """--db/--store, --node, --from and the end of the range: a node's time range read
    straight from what `leakmon serve` stored, instead of a recording FILE."""
    g = p.add_argument_group("from the fleet's database instead of a recording")
    g.add_argument("--db", metavar="URL", help="postgresql://leakmon_reader@host/db (password from PGPASSWORD, "
                   "~/.pgpass or --db-password-file, never in the URL)")
    g.add_argument("--db-password-file", metavar="FILE", help="file whose first line is the database password")
    g.add_argument("--store", metavar="FILE", help="the embedded SQLite store of `leakmon serve` (no server)")
    g.add_argument("--node", action="append", metavar="NODE", help="the node to read (dashboard: also the node of --broker); with "
                   "--site (analyze, dashboard): repeat it for the site's nodes, or leave it out when the site file "
                   "names them (node = \"...\" in [[sensors]])")
    g.add_argument("--from", dest="t_from", metavar="TIME", help="from this ISO time, e.g. 2026-12-01T09:30 "
                   "(UTC unless it says otherwise; default: the first frame stored)")
    g.add_argument(*end_flags, dest="t_to", metavar="TIME", help="until this ISO time (default: now)")


def from_db(args: argparse.Namespace) -> bool:
    """Whether the command reads the database; a FILE and a database together are an error."""
    db = bool(getattr(args, "db", None) or getattr(args, "store", None))
    if getattr(args, "file", None) and db:
        raise LeakmonError("give a recording FILE or --db/--store, not both")
    if args.db and args.store:
        raise LeakmonError("give --db (PostgreSQL) or --store (SQLite), not both")
    if not db and not getattr(args, "file", None):
        raise LeakmonError("give a recording FILE, or --db URL / --store FILE with --node NODE")
    if not db and (args.node or args.t_from or args.t_to):
        raise LeakmonError("--node, --from and the end time go with --db or --store")
    return db


def time_us(text: str | None, default_us: int, flag: str) -> int:
    """An ISO time (UTC when it names no zone) as microseconds since 1970."""
    import datetime as dt

    if not text:
        return default_us
    try:
        t = dt.datetime.fromisoformat(text)
    except ValueError as e:
        raise LeakmonError(f"{flag}: not an ISO time: {text!r} (e.g. 2026-12-01T09:30)") from e
    if t.tzinfo is None:
        t = t.replace(tzinfo=dt.timezone.utc)
    return (t - dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)) // dt.timedelta(microseconds=1)  # exact


def time_range_us(args: argparse.Namespace) -> tuple[int, int]:
    import time

    t_from = time_us(args.t_from, 0, "--from")
    t_to = time_us(args.t_to, time.time_ns() // 1000 + 1, "the end time")
    if t_to <= t_from:
        raise LeakmonError(f"the time range is empty: {args.t_from} is not before {args.t_to or 'now'}")
    return t_from, t_to


def db_label(args: argparse.Namespace) -> str:
    """Where the data came from, for titles and messages: never a password."""
    if args.store:
        return args.store
    from leakmon.fleet.creds import redact_db_url

    return redact_db_url(args.db)


def db_rows(args: argparse.Namespace, node_id: str) -> Iterator[Any]:
    """The stored frames of node_id in the range (fleet.history), batch by batch."""
    from leakmon.fleet.creds import check_db_url, read_secret
    from leakmon.fleet.history import pg_rows, sqlite_rows

    t_from, t_to = time_range_us(args)
    if args.store:
        return sqlite_rows(args.store, node_id, t_from, t_to)
    try:
        import psycopg  # noqa: F401
    except ImportError as e:
        raise LeakmonError(f"--db needs the fleet extra ({e.name} is missing): pip install 'leakmon[fleet]'") from e
    return pg_rows(check_db_url(args.db), read_secret(args.db_password_file, None, "database"), node_id, t_from, t_to)


def empty_range(args: argparse.Namespace, node_id: str) -> LeakmonError:
    return LeakmonError(f"node {node_id!r} has no frames stored from {args.t_from or 'the start'} to "
                        f"{args.t_to or 'now'} in {db_label(args)}")


@dataclass
class NodeData:
    """One node's samples of a recording or of a time range in the database."""

    node_id: str | None  # None: a recording
    stream: NodeStream
    series: Series
    lost_frames: int
    wall_minus_device_s: float  # the gateway's clock against the node's (database only; else nan)


def load_db_series(args: argparse.Namespace, node_id: str) -> NodeData:
    """Every compensated sample of node_id's time range, decoded as load_series decodes a
    recording (the same stream core, frames in the order the node sent them)."""
    from leakmon.fleet.readback import RowDecoder

    dec = RowDecoder()
    parts = list(dec.tables(db_rows(args, node_id)))
    if dec.rows == 0:
        raise empty_range(args, node_id)
    return NodeData(node_id, dec.stream, SampleTable.concat(parts).by_channel(), dec.lost_frames,
                    dec.wall_minus_device_s)


def node_key(k: int, channel: int) -> int:
    """A channel of the k-th node of a source with several: node k's channel c is k*256 + c
    (the first node's keys are its channels, as in a recording)."""
    return (k << 8) | channel


def combine(nodes: list[NodeData]) -> tuple[Series, dict[int, str]]:
    """The channels of several nodes as one series, keyed by node_key, on the first node's
    device clock: the others are moved by how their clocks stand against the gateways'
    (the gateways' receipt times, so to within their latency and clock sync); and labels."""
    series: Series = {}
    names: dict[int, str] = {}
    ref = nodes[0].wall_minus_device_s
    if len(nodes) > 1 and not all(math.isfinite(n.wall_minus_device_s) for n in nodes):
        raise LeakmonError("nodes " + ", ".join(str(n.node_id) for n in nodes if not math.isfinite(n.wall_minus_device_s))
                           + ": no samples in the range, so their clocks cannot be put beside the others'")
    for k, nd in enumerate(nodes):
        shift = 0.0 if k == 0 or len(nodes) == 1 else nd.wall_minus_device_s - ref
        hello = nd.stream.hello
        chips = {c.channel: f"ch{c.channel} {c.chip_name}@0x{c.addr:02x}" for c in (hello.channels if hello else ())}
        for ch, (t, p, temp) in nd.series.items():
            key = node_key(k, ch)
            series[key] = (t + shift if shift else t, p, temp)
            label = chips.get(ch, f"ch{ch}")
            names[key] = f"{nd.node_id} {label}" if len(nodes) > 1 else label
    return series, names


def db_notes(args: argparse.Namespace, nodes: list[NodeData]) -> list[tuple[str, float, str, str]]:
    """The operator's notes stored for these nodes in the range (`leakmon gateway --notes`):
    (node id, t_s at the first node's device time, "hatch" or "note", text)."""
    from leakmon.fleet import history

    t_from, t_to = time_range_us(args)
    ids = [str(n.node_id) for n in nodes]
    if args.store:
        notes = history.sqlite_notes(args.store, ids, t_from, t_to)
    else:
        from leakmon.fleet.creds import check_db_url, read_secret

        notes = history.pg_notes(check_db_url(args.db), read_secret(args.db_password_file, None, "database"),
                                 ids, t_from, t_to)
    offset_s = nodes[0].wall_minus_device_s
    return [(node_id, t_us / 1e6 - offset_s, kind, text) for node_id, t_us, kind, text in notes]


def hatch_moves(notes: list[tuple[str, float, str, str]],
                parse: Callable[[str], tuple[str, bool]]) -> list[tuple[float, str, bool]]:
    """The hatch moves among db_notes (`NODE hatch close NAME`): (t_s, hatch, open?).
    Notes that are not a move (parse raises ValueError) are said and skipped."""
    moves = []
    for node_id, t_s, kind, text in notes:
        if kind != "hatch":
            continue
        try:
            name, is_open = parse(text)
        except ValueError as e:
            warn(f"note of node {node_id} is not a hatch move, skipped: {text!r} ({e})")
            continue
        moves.append((t_s, name, is_open))
    return moves


def db_hatch_moves(args: argparse.Namespace, nodes: list[NodeData],
                   parse: Callable[[str], tuple[str, bool]]) -> list[tuple[float, str, bool]]:
    """The operator's hatch moves stored for these nodes in the range, at the first node's
    device time: (t_s, hatch, open?)."""
    return hatch_moves(db_notes(args, nodes), parse)
