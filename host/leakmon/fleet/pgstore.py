"""PostgreSQL history (psycopg 3): schema and roles, and the writer.

A batch is written in one transaction, and a message stored twice (a redelivery, a
replayed spool) is stored once:
- first by binary COPY straight into the tables: each row is written once, and nothing
  else is touched;
- if that meets a row already stored (a unique violation: the transaction is rolled
  back, nothing of it kept), the batch is written again through temporary tables:
  binary COPY into them, then INSERT ... ON CONFLICT DO NOTHING.

The second way alone costs each row twice and truncates the temporary tables at every
commit, which also broadcasts a cache invalidation to every other backend: one writer
stored ~1.5x fewer rows a second, and two writers slowed each other more
(bench/RESULTS.md, "The central writer: COPY straight into the tables"). Duplicates are rare, so they pay for themselves. The caller
acknowledges the messages to the broker only after the commit.
"""

from __future__ import annotations

import datetime as dt
import importlib.resources
import struct
import time
from collections import Counter
from collections.abc import Callable, Sequence

import psycopg
from psycopg import sql
from psycopg.adapt import Dumper
from psycopg.pq import Format

from leakmon.fleet import AuthError, FleetError, first_line
from leakmon.fleet.creds import redact_db_url
from leakmon.fleet.ingest import Batch

EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)
DAY_US = 86_400_000_000

# (table, staging columns with types for binary COPY, insert select list)
_T = "timestamptz 'epoch' + t_us * interval '1 microsecond'"
TABLES = {
    "frames": ([("node_id", "text"), ("boot", "int8"), ("seq", "int8"), ("t_us", "int8"), ("msg_type", "int2"),
                ("wire_seq", "int4"), ("historical", "bool"), ("frame", "bytea")],
               f"node_id, boot, seq, {_T}, msg_type, wire_seq, historical, frame"),
    "estimates": ([("node_id", "text"), ("boot", "int8"), ("seq", "int8"), ("channel", "int2"), ("t_us", "int8"),
                   ("t_device_s", "float8"), ("pressure_pa", "float8"), ("temperature_k", "float8"),
                   ("leak_rate_pa_per_s", "float8"), ("leak_rate_ci95_low_pa_per_s", "float8"),
                   ("leak_rate_ci95_high_pa_per_s", "float8"), ("leak_rate_stderr_pa_per_s", "float8"),
                   ("n_samples", "int4"), ("n_eff", "float8"), ("historical", "bool")],
                  f"node_id, boot, seq, channel, {_T}, t_device_s, pressure_pa, temperature_k, leak_rate_pa_per_s,"
                  " leak_rate_ci95_low_pa_per_s, leak_rate_ci95_high_pa_per_s, leak_rate_stderr_pa_per_s, n_samples,"
                  " n_eff, historical"),
    "alarms": ([("node_id", "text"), ("boot", "int8"), ("seq", "int8"), ("channel", "int2"), ("t_us", "int8"),
                ("alarm_t_s", "float8"), ("onset_t_s", "float8"), ("leak_rate_pa_per_s", "float8"),
                ("false_alarm_spacing_s", "float8")],
               f"node_id, boot, seq, channel, {_T}, alarm_t_s, onset_t_s, leak_rate_pa_per_s, false_alarm_spacing_s"),
    "notes": ([("node_id", "text"), ("boot", "int8"), ("seq", "int8"), ("t_us", "int8"), ("kind", "text"),
               ("text", "text"), ("detail", "text")],
              f"node_id, boot, seq, {_T}, kind, text, detail::jsonb"),
}
PARTITIONED = ("frames", "estimates")
# Copied straight into the table: every column as staged, t_us as the table's t. (notes
# casts its detail to jsonb, and always goes through its staging table: notes are few.)
DIRECT = ("frames", "estimates", "alarms")
# what the database refuses for a row's data, not for its connection or our rights
REFUSED = (psycopg.DataError, psycopg.IntegrityError, UnicodeError)
_PG_EPOCH_US = 946_684_800_000_000  # 2000-01-01 UTC, PostgreSQL's binary timestamptz zero, in Unix us
_INT8 = struct.Struct(">q")


class _MicrosTimestamptz(Dumper):
    """Binary timestamptz from integer microseconds since 1970, exactly (no datetime made).
    Registered by oid only, on the COPY cursor: nothing else adapts through it."""

    format = Format.BINARY
    oid = psycopg.adapters.types["timestamptz"].oid

    def dump(self, obj: int) -> bytes:
        return _INT8.pack(obj - _PG_EPOCH_US)


def schema_sql() -> str:
    return importlib.resources.files("leakmon.fleet").joinpath("pgschema.sql").read_text(encoding="utf-8")


# Distinct days of frames and estimates one transaction makes partitions for and writes:
# each day locks a few relations (two partitions and their indexes), and a batch spread
# over 1,400 days ran out of PostgreSQL's lock space (max_locks_per_transaction) for good.
DAYS_PER_TRANSACTION = 32


# The days of the partitions older than a cutoff (what drop_partitions_before drops);
# the catalogs are readable by every role.
_PARTITION_DAYS_BEFORE = (
    "SELECT DISTINCT to_date(right(c.relname, 8), 'YYYYMMDD') AS day FROM pg_inherits i "
    "JOIN pg_class c ON c.oid = i.inhrelid JOIN pg_class p ON p.oid = i.inhparent "
    "JOIN pg_namespace n ON n.oid = p.relnamespace WHERE n.nspname = 'leakmon' "
    "AND p.relname IN ('frames', 'estimates') AND c.relname ~ '_[0-9]{8}$' "
    "AND to_date(right(c.relname, 8), 'YYYYMMDD') < %s ORDER BY day")


def _days_of(batch: Batch) -> set[int]:
    return {r[3] // DAY_US for r in batch.frames} | {r[4] // DAY_US for r in batch.estimates}


def by_days(batch: Batch, most: int = DAYS_PER_TRANSACTION) -> list[Batch]:
    """The batch in parts of at most `most` distinct days, each stored in its own
    transaction; alarms, notes and node info go with the first. A connection lost between
    parts loses nothing: the batch is retried whole, and a part already stored is met
    again and rewritten (nothing twice)."""
    days = sorted(_days_of(batch))
    if len(days) <= most:
        return [batch]
    group = {d: i // most for i, d in enumerate(days)}
    parts = [Batch() for _ in range(group[days[-1]] + 1)]
    for f in batch.frames:
        parts[group[f[3] // DAY_US]].frames.append(f)
    for e in batch.estimates:
        parts[group[e[4] // DAY_US]].estimates.append(e)
    parts[0].alarms, parts[0].notes, parts[0].nodes = batch.alarms, batch.notes, batch.nodes
    return parts


def day_runs(days: set[int], most: int = 400) -> list[tuple[int, int]]:
    """(first, last) of each run of consecutive days, none longer than `most` days: a
    frame stamped 1970 beside one stamped today asks for two days, not 20,000."""
    runs: list[tuple[int, int]] = []
    for d in sorted(days):
        if runs and d == runs[-1][1] + 1 and d - runs[-1][0] < most:
            runs[-1] = (runs[-1][0], d)
        else:
            runs.append((d, d))
    return runs


def _connect(url: str, password: str | None) -> psycopg.Connection:
    try:
        return psycopg.connect(url, password=password, connect_timeout=5) if password else \
            psycopg.connect(url, connect_timeout=5)
    except psycopg.OperationalError as e:
        text = first_line(e)
        if "password authentication failed" in text or "no password supplied" in text:
            raise AuthError(f"{redact_db_url(url)} refused the login: {text}") from e
        raise FleetError(f"cannot reach {redact_db_url(url)}: {text}") from e


def init_db(url: str, password: str | None, writer_role: str, reader_role: str) -> None:
    """Create the schema, and grant the writer INSERT (no UPDATE, DELETE or DDL) and the
    reader SELECT. Roles missing are made NOLOGIN: give them a password and LOGIN yourself."""
    with _connect(url, password) as conn:
        conn.execute(schema_sql())
        for role in (writer_role, reader_role):
            exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)).fetchone()
            if not exists:
                conn.execute(sql.SQL("CREATE ROLE {} NOLOGIN").format(sql.Identifier(role)))
        w, r = sql.Identifier(writer_role), sql.Identifier(reader_role)
        db = sql.Identifier(conn.info.dbname)
        for stmt in (
            "GRANT CONNECT, TEMPORARY ON DATABASE {db} TO {w}",
            "GRANT CONNECT ON DATABASE {db} TO {r}",
            "GRANT USAGE ON SCHEMA leakmon TO {w}, {r}",
            "GRANT INSERT ON leakmon.frames, leakmon.estimates, leakmon.alarms, leakmon.notes TO {w}",
            "GRANT SELECT, INSERT, UPDATE ON leakmon.nodes TO {w}",
            "GRANT EXECUTE ON FUNCTION leakmon.ensure_partitions(date, date) TO {w}",
            "GRANT EXECUTE ON FUNCTION leakmon.drop_partitions_before(date) TO {w}",
            "GRANT SELECT ON ALL TABLES IN SCHEMA leakmon TO {r}",
            "ALTER DEFAULT PRIVILEGES IN SCHEMA leakmon GRANT SELECT ON TABLES TO {r}",
        ):
            conn.execute(sql.SQL(stmt).format(db=db, w=w, r=r))


def _batch_of(items: Sequence[tuple[str, str, object]]) -> Batch:
    one = Batch()
    for node_id, table, row in items:
        if table == "nodes":
            one.nodes[node_id] = row  # type: ignore[assignment]
        else:
            getattr(one, table).append(row)
    return one


class PgStore:
    """Writes batches; reconnects after the database went away, retrying the same batch."""

    def __init__(self, url: str, password: str | None, retention_days: int | None = None,
                 log: Callable[[str], None] = lambda m: None) -> None:
        self.url = url
        self._password = password
        self.retention_days = retention_days
        self.log = log
        self._conn: psycopg.Connection | None = None
        self._days: set[int] = set()
        self._retention_done_day = -1
        self.rows = 0
        self.direct = True  # COPY straight into the tables first (bench_fleet.py turns it off to compare)
        self.rewritten = 0  # batches that met a stored row and were written again, staged

    def _connection(self) -> psycopg.Connection:
        if self._conn is None or self._conn.closed:
            self._conn = _connect(self.url, self._password)
            # The broker is told "stored" right after the commit: the commit must be durable
            # even where the server runs with synchronous_commit off.
            self._conn.execute("SET synchronous_commit = on")
            self._days.clear()
            for table, (cols, _) in TABLES.items():
                self._conn.execute(sql.SQL("CREATE TEMP TABLE IF NOT EXISTS {} ({}) ON COMMIT DELETE ROWS").format(
                    sql.Identifier(f"stage_{table}"),
                    sql.SQL(", ").join(sql.SQL(f"{c} {t}") for c, t in cols)))
            self._conn.commit()
        return self._conn

    def write(self, batch: Batch) -> None:
        """Store one batch, idempotently. Raises FleetError if the database is unreachable
        (the caller retries with the same batch); AuthError if it refuses us."""
        refused, met = Counter[str](), False
        try:
            conn = self._connection()
            for part in by_days(batch):
                try:
                    stored, rewrote = self._store(conn, part)
                    met |= rewrote
                except REFUSED:
                    # A row the database (or UTF-8) will not take (ingest refuses every kind
                    # known): store the rest and refuse only such rows, rather than stop on
                    # a message the broker would bring back at every start.
                    stored, why = self._store_parts(conn, part)
                    refused += why
                # Rows as each part commits: a batch retried after a lost connection meets
                # its stored parts again, which insert (and count) nothing.
                self.rows += stored
            # Refusals once the whole batch is stored: a retry refuses them again.
            batch.rejected.update(refused)
            self.rewritten += met
            self._retention(conn)
        except psycopg.errors.InsufficientPrivilege as e:
            raise AuthError(f"{redact_db_url(self.url)}: {first_line(e)}") from e
        except psycopg.OperationalError as e:
            self.close()
            raise FleetError(f"lost {redact_db_url(self.url)}: {first_line(e)}") from e

    def _store(self, conn: psycopg.Connection, batch: Batch) -> tuple[int, bool]:
        """(rows of the batch stored now, not those already stored; whether it met stored
        rows and was written again the staged way)."""
        try:
            try:
                return self._transaction(conn, batch, self.direct), False
            except psycopg.errors.CheckViolation:
                # No partition for a row: a day this writer made was dropped since
                # (retention, here or in another instance). Make them again.
                self._days.clear()
                return self._transaction(conn, batch, self.direct), False
        except psycopg.errors.UniqueViolation:
            # rolled back whole: write it again, keeping what was stored
            return self._transaction(conn, batch, False), True

    def _store_parts(self, conn: psycopg.Connection, batch: Batch) -> tuple[int, Counter[str]]:
        """Store a batch the database refused, in halves, and halves of the halves that fail,
        down to single rows, which are counted by reason (no positions or values) for the
        caller to log once each. One bad row among n costs about 2 log2(n) transactions, not
        n. Returns (rows stored now, refusals)."""
        self._days.clear()
        items: list[tuple[str, str, object]] = [
            (str(row[0]), table, row) for table in ("frames", "estimates", "alarms", "notes")
            for row in getattr(batch, table)]
        items += [(node_id, "nodes", node) for node_id, node in batch.nodes.items()]
        stored = 0
        refused: Counter[str] = Counter()
        todo = [items[:len(items) // 2], items[len(items) // 2:]]
        while todo:
            part = todo.pop()
            if not part:
                continue
            try:
                stored += self._transaction(conn, _batch_of(part), False)
            except REFUSED as e:
                if isinstance(e, psycopg.errors.CheckViolation) and self._days:
                    # perhaps no partition: a day dropped since (retention elsewhere). Make the
                    # days again and try once more; with none remembered it is the row.
                    self._days.clear()
                    todo.append(part)
                    continue
                if len(part) > 1:
                    todo += [part[len(part) // 2:], part[:len(part) // 2]]
                else:
                    # one reason per kind of error: no positions or values
                    refused[f"{part[0][0]}: the database refused it: "
                            f"{first_line(e) if isinstance(e, psycopg.Error) else type(e).__name__}"] += 1
        return stored, refused

    def _transaction(self, conn: psycopg.Connection, batch: Batch, direct: bool) -> int:
        """Rows inserted by one transaction (node infos, set again at every redelivery, are
        not counted)."""
        stored = 0
        with conn.transaction():
            missing = self._partitions(conn, batch)
            for table, rows in (("frames", batch.frames), ("estimates", batch.estimates),
                                ("alarms", batch.alarms), ("notes", batch.notes)):
                if rows:
                    stored += (self._copy_direct if direct and table in DIRECT else self._copy)(conn, table, rows)
            if batch.nodes:
                with conn.cursor() as cur:
                    cur.executemany(
                        "INSERT INTO leakmon.nodes (node_id, gateway, info) VALUES (%s, %s, %s::jsonb) "
                        "ON CONFLICT (node_id) DO UPDATE SET gateway = excluded.gateway, info = excluded.info, "
                        "updated_at = now()", [(n, g, i) for n, g, i, _ in batch.nodes.values()])
        self._days |= missing  # committed: a rolled-back transaction took its partitions with it
        return stored

    def _partitions(self, conn: psycopg.Connection, batch: Batch) -> set[int]:
        missing = _days_of(batch) - self._days
        for first, last in day_runs(missing):
            conn.execute("SELECT leakmon.ensure_partitions(%s, %s)",
                         ((EPOCH + dt.timedelta(days=first)).date(), (EPOCH + dt.timedelta(days=last)).date()))
        return missing

    def _copy_direct(self, conn: psycopg.Connection, table: str, rows: Sequence[tuple[object, ...]]) -> int:
        """Binary COPY into the table itself; a row already stored raises UniqueViolation
        (so every row is stored, or none)."""
        cols, _ = TABLES[table]
        names = ["t" if c == "t_us" else c for c, _ in cols]
        with conn.cursor() as cur:
            cur.adapters.register_dumper(None, _MicrosTimestamptz)
            with cur.copy(sql.SQL("COPY {} ({}) FROM STDIN (FORMAT BINARY)").format(
                    sql.Identifier("leakmon", table), sql.SQL(", ").join(sql.Identifier(c) for c in names))) as cp:
                cp.set_types(["timestamptz" if c == "t_us" else t for c, t in cols])
                for r in rows:
                    cp.write_row(r)
        return len(rows)

    def _copy(self, conn: psycopg.Connection, table: str, rows: Sequence[tuple[object, ...]]) -> int:
        """Binary COPY into the staging table, then INSERT ... ON CONFLICT DO NOTHING;
        returns the rows inserted (not those already stored)."""
        cols, select = TABLES[table]
        stage = sql.Identifier(f"stage_{table}")
        with conn.cursor() as cur:
            with cur.copy(sql.SQL("COPY {} ({}) FROM STDIN (FORMAT BINARY)").format(
                    stage, sql.SQL(", ").join(sql.Identifier(c) for c, _ in cols))) as cp:
                cp.set_types([t for _, t in cols])
                for r in rows:
                    cp.write_row(r)
            cur.execute(sql.SQL("INSERT INTO {} SELECT {} FROM {} ON CONFLICT DO NOTHING").format(
                sql.Identifier("leakmon", table), sql.SQL(select), stage))
            return max(cur.rowcount, 0)

    def _retention(self, conn: psycopg.Connection) -> None:
        if self.retention_days is None:
            return
        today = int(time.time() // 86400)
        if today == self._retention_done_day:
            return
        cutoff = (EPOCH + dt.timedelta(days=today - self.retention_days)).date()
        dropped = 0
        try:
            with conn.transaction():
                days = [d for (d,) in conn.execute(_PARTITION_DAYS_BEFORE, (cutoff,))]
            for first in range(0, len(days), DAYS_PER_TRANSACTION):
                # Days a transaction at a time: thousands (a broken gateway clock) in one ran
                # out of lock space at every pass.
                upto = days[first:first + DAYS_PER_TRANSACTION][-1] + dt.timedelta(days=1)
                with conn.transaction():
                    n = conn.execute("SELECT leakmon.drop_partitions_before(%s)", (min(upto, cutoff),)).fetchone()
                dropped += int(n[0]) if n and n[0] else 0
        except psycopg.OperationalError as e:
            # The batch is committed; it must not be retried for this. Tried after the next.
            self.close()
            self.log(f"retention: lost {redact_db_url(self.url)}: {first_line(e)}; tried again after the next batch")
            return
        self._retention_done_day = today
        if dropped:
            self.log(f"retention: dropped {dropped} daily partitions before {cutoff}")

    def close(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            except psycopg.Error:
                pass
            self._conn = None
