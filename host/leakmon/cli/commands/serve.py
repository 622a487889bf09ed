"""`leakmon serve`: store a fleet's data. From a broker into PostgreSQL (--broker, --db),
or, with neither, from local nodes (--port/--sim) into one SQLite file."""

from __future__ import annotations

import argparse
import threading
from contextlib import ExitStack
from typing import Any

from leakmon.cli.fleetsources import (
    add_node_args,
    estimate_every_max,
    make_room_for_nodes,
    log,
    open_nodes,
    start_notes,
    stop_on_signals,
)
from leakmon.cli.dbsource import time_us
from leakmon.errors import LeakmonError

HELP = "store a fleet's frames, estimates, alarms and notes (broker -> PostgreSQL, or local nodes -> SQLite)"


def add_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--broker", metavar="URL", help="mqtt://user@host[:port]: consume the gateways' messages "
                   "(password from $LEAKMON_MQTT_PASSWORD or --mqtt-password-file)")
    p.add_argument("--mqtt-password-file", metavar="FILE", help="file whose first line is the broker password")
    p.add_argument("--mqtt-ca", metavar="FILE", help="CA certificate of a mqtts:// broker")
    p.add_argument("--client-id", metavar="ID",
                   help="this instance's fixed MQTT client id: a restarted instance resumes its session and gets "
                        "what was handed to it and not stored (default leakmon-serve-<group>-1)")
    p.add_argument("--group", default="leakmon", help="shared-subscription group of the instances (default leakmon)")
    p.add_argument("--db", metavar="URL", help="postgresql://user@host/db (password from PGPASSWORD, ~/.pgpass "
                   "or --db-password-file)")
    p.add_argument("--db-password-file", metavar="FILE", help="file whose first line is the database password")
    p.add_argument("--init-db", action="store_true",
                   help="create the schema and grant the writer and reader roles (run once as the owner), then exit")
    p.add_argument("--writer-role", default="leakmon_writer", help="role that writes (default leakmon_writer)")
    p.add_argument("--reader-role", default="leakmon_reader", help="read-only role (default leakmon_reader)")
    p.add_argument("--retention-days", type=int, metavar="N", help="drop daily partitions older than N days")
    p.add_argument("--store", default="leakmon.sqlite", metavar="FILE",
                   help="SQLite file of the embedded default, without --db (default leakmon.sqlite)")
    p.add_argument("--dump", metavar="NODE", help="write NODE's stored frames (--from/--to, from --db or --store) as "
                   "a recording for analyze/export/replay, then exit")
    p.add_argument("--from", dest="t_from", metavar="TIME", help="--dump from this ISO time (UTC if no zone)")
    p.add_argument("--to", dest="t_to", metavar="TIME", help="--dump until this ISO time (default: now)")
    p.add_argument("-o", "--output", metavar="FILE", help="--dump: the recording to write (default NODE.lkmrec)")
    add_node_args(p)


def _store(args: argparse.Namespace) -> Any:
    if args.db:
        from leakmon.fleet.creds import check_db_url, read_secret
        from leakmon.fleet.pgstore import PgStore

        password = read_secret(args.db_password_file, None, "database")
        return PgStore(check_db_url(args.db), password, args.retention_days, log=log)
    from leakmon.fleet.sqlitestore import SqliteStore

    return SqliteStore(args.store)


def _serve_broker(args: argparse.Namespace, store: Any, stop: threading.Event) -> None:
    from leakmon.fleet.consumer import Consumer
    from leakmon.fleet.creds import MQTT_PASSWORD_ENV, parse_broker, read_secret

    addr = parse_broker(args.broker)
    password = read_secret(args.mqtt_password_file, MQTT_PASSWORD_ENV, "broker")
    try:
        consumer = Consumer(addr, password, args.client_id or f"leakmon-serve-{args.group}-1", args.group, store,
                            ca_file=args.mqtt_ca, log=log)
    except ValueError as e:
        raise LeakmonError(str(e)) from e
    log(f"serving {addr} (group {args.group}, client id {consumer.client_id}) into "
        f"{'PostgreSQL' if args.db else args.store}")
    try:
        consumer.run(stop)
    finally:
        rewritten = getattr(store, "rewritten", 0)  # PgStore: batches that met stored rows (redeliveries)
        log(f"{consumer.messages} messages received, {store.rows} rows stored, {consumer.rejects.total} refused"
            + (f"; {rewritten} batches met rows already stored (redelivered or replayed) and were merged"
               if rewritten else ""))


def _serve_local(args: argparse.Namespace, store: Any, stop: threading.Event) -> None:
    from leakmon.fleet.local import LocalOutbox
    from leakmon.fleet.runner import run_nodes

    outbox = LocalOutbox(store, log=log)
    with ExitStack() as stack:
        sources = open_nodes(args, stack)
        start_notes(args, outbox, [s.node_id for s in sources])
        log(f"storing {len(sources)} node(s) into {'PostgreSQL' if args.db else args.store}")
        try:
            threads = run_nodes(sources, outbox, stop, window_s=args.window, duration_s=args.duration, log=log,
                                estimate_every_s=args.estimate_every, estimate_every_max_s=args.estimate_every_max)
        finally:
            outbox.flush()
        for t in threads:
            log(f"node {t.src.node_id}: {t.edge.frames_out} frames, {t.edge.estimates_out} estimates stored")


def _dump(args: argparse.Namespace) -> int:
    import time
    from pathlib import Path

    from leakmon.fleet import history

    t_from = time_us(args.t_from, 0, "--from")
    t_to = time_us(args.t_to, time.time_ns() // 1000 + 1, "--to")
    out = Path(args.output or f"{args.dump}.lkmrec")
    meta = {"node_id": args.dump, "from_us": t_from, "to_us": t_to}
    if args.db:
        from leakmon.fleet.creds import check_db_url, read_secret

        rows = history.pg_rows(check_db_url(args.db), read_secret(args.db_password_file, None, "database"),
                               args.dump, t_from, t_to)
    else:
        rows = history.sqlite_rows(args.store, args.dump, t_from, t_to)
    n = history.dump(rows, out, meta)
    if n == 0:
        out.unlink(missing_ok=True)
        raise LeakmonError(f"no frames of node {args.dump!r} stored in that time range")
    log(f"{n} frames of node {args.dump} written to {out}")
    return 0


def run(args: argparse.Namespace) -> int:
    if args.dump:
        return _dump(args)
    if args.broker and (args.port or args.sim):
        raise LeakmonError("give --broker (consume gateways) or --port/--sim (read nodes here), not both")
    estimate_every_max(args)  # checked here, before anything is opened; used as given below
    make_room_for_nodes(args)
    try:
        if args.init_db:
            if not args.db:
                raise LeakmonError("--init-db needs --db")
            from leakmon.fleet.creds import check_db_url, read_secret
            from leakmon.fleet.pgstore import init_db

            init_db(check_db_url(args.db), read_secret(args.db_password_file, None, "database"),
                    args.writer_role, args.reader_role)
            log(f"schema ready; {args.writer_role} may insert, {args.reader_role} may read")
            return 0
        store = _store(args)
    except ImportError as e:
        raise LeakmonError(f"serve --broker/--db needs the fleet extra ({e.name} is missing): "
                           "pip install 'leakmon[fleet]'") from e
    stop = stop_on_signals()
    try:
        if args.broker:
            _serve_broker(args, store, stop)
        else:
            _serve_local(args, store, stop)
    except KeyboardInterrupt:
        log("stopped")
    except ImportError as e:
        raise LeakmonError(f"serve --broker needs the fleet extra ({e.name} is missing): "
                           "pip install 'leakmon[fleet]'") from e
    finally:
        store.close()
    return 0
