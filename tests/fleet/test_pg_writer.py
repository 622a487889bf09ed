"""The PostgreSQL writer stores each message once, by either of its two ways: COPY straight
into the tables, and, when a batch meets a row already stored, the staged way (temporary
tables + INSERT ... ON CONFLICT DO NOTHING). Real PostgreSQL, as the writer role."""

from __future__ import annotations

import time

import pytest

pytest.importorskip("psycopg")

import json  # noqa: E402

from leakmon.fleet import envelope, ingest  # noqa: E402
from leakmon.fleet.ingest import Batch  # noqa: E402
from leakmon.fleet import FleetError  # noqa: E402
from leakmon.fleet.pgstore import DAY_US, PgStore  # noqa: E402

DAY_2025_11_25_US = 20_417 * 86_400_000_000
T0_US = DAY_2025_11_25_US - 45 * 333 + 1  # frames 333 us apart: seq 45 is the first of 2025-11-25 (UTC)


def frame_row(seq: int) -> tuple:
    return ("n1", 7, seq, T0_US + seq * 333, 3, seq & 0xFFFF, seq % 2 == 0, b"\xaa\x55" + seq.to_bytes(4, "little"))


def estimate_row(seq: int) -> tuple:
    return ("n1", 7, seq, 2, T0_US + seq * 333, seq / 10, 101325.0 - seq, 293.15, -1.25e-3, -2.5e-3, -1e-9, 6.1e-4,
            600, 55.5, False)


def alarm_row(seq: int) -> tuple:
    return ("n1", 7, seq, 1, T0_US + seq * 333, seq / 10, seq / 10 - 30.0, -4e-3, 2592000.0)


def batch(seqs: list[int]) -> Batch:
    b = Batch()
    b.frames = [frame_row(s) for s in seqs]
    b.estimates = [estimate_row(s) for s in seqs if s % 3 == 0]
    b.alarms = [alarm_row(s) for s in seqs if s % 7 == 0]
    b.notes = [("n1", 7, s, T0_US + s * 333, "note", f"note {s}", "{}") for s in seqs if s % 11 == 0]
    return b


def stored(db) -> dict[str, list[tuple]]:
    us = "(extract(epoch from t) * 1000000)::int8"
    return {
        "frames": db.query(f"SELECT node_id, boot, seq, {us}, msg_type, wire_seq, historical, frame "
                           "FROM leakmon.frames ORDER BY seq"),
        "estimates": db.query(f"SELECT node_id, boot, seq, channel, {us}, t_device_s, pressure_pa, temperature_k, "
                              "leak_rate_pa_per_s, leak_rate_ci95_low_pa_per_s, leak_rate_ci95_high_pa_per_s, "
                              "leak_rate_stderr_pa_per_s, n_samples, n_eff, historical FROM leakmon.estimates ORDER BY seq"),
        "alarms": db.query(f"SELECT node_id, boot, seq, channel, {us}, alarm_t_s, onset_t_s, leak_rate_pa_per_s, "
                           "false_alarm_spacing_s FROM leakmon.alarms ORDER BY seq"),
        "notes": db.query(f"SELECT node_id, boot, seq, {us}, kind, text FROM leakmon.notes ORDER BY seq"),
    }


def test_each_message_is_stored_once_and_exactly_by_either_way(db) -> None:
    store = PgStore(db.url("leakmon_writer"), db.password("leakmon_writer"))
    try:
        first = list(range(0, 40))
        # A fresh batch goes straight in.
        store.write(batch(first))
        assert store.rewritten == 0
        # The same batch again (a redelivery): it meets stored rows, is rolled back and
        # written the staged way, and nothing is doubled.
        store.write(batch(first))
        assert store.rewritten == 1
        # Half stored, half new, one message twice within the batch, on a day with no
        # partition yet: the direct try creates the partition and is rolled back with it;
        # the staged way must make it again.
        later = list(range(20, 60)) + [55]
        assert frame_row(max(first))[3] // DAY_US < frame_row(max(later))[3] // DAY_US
        store.write(batch(later))
        assert store.rewritten == 2
        # And the next fresh batch goes straight in again.
        store.write(batch(list(range(60, 80))))
        assert store.rewritten == 2
    finally:
        store.close()
    want = batch(list(range(0, 80)))
    got = stored(db)
    assert got["frames"] == [r[:] for r in want.frames]
    assert got["estimates"] == want.estimates
    assert got["alarms"] == want.alarms
    assert got["notes"] == [r[:6] for r in want.notes]


def test_a_late_message_for_a_day_retention_dropped_is_stored_not_fatal(db) -> None:
    """A spool replayed after a long cut can bring a day that retention has dropped since
    this writer made its partition: the partition is made again, nothing stops."""
    three_days_ago_us = (int(time.time() // 86400) - 3) * DAY_US + 12_345
    store = PgStore(db.url("leakmon_writer"), db.password("leakmon_writer"), retention_days=1)
    try:
        early, late = Batch(), Batch()
        early.frames = [("n1", 1, s, three_days_ago_us + s, 3, s, True, b"e") for s in range(5)]
        late.frames = [("n1", 1, s, three_days_ago_us + s, 3, s, True, b"l") for s in range(5, 9)]
        store.write(early)  # stored, then its day's partition dropped by the retention pass
        assert db.query("SELECT count(*) FROM leakmon.frames") == [(0,)]
        store.write(late)
    finally:
        store.close()
    assert db.query("SELECT seq, frame FROM leakmon.frames ORDER BY seq") == [(s, b"l") for s in range(5, 9)]


def test_messages_the_database_cannot_store_are_refused_before_it(db) -> None:
    """A NUL in a note or a node's info fails PostgreSQL's text and jsonb; such a write
    would stop serve at every redelivery. ingest refuses them; the rest of the batch is
    stored."""
    b = Batch()
    for topic, payload in [
        ("leakmon/a1/note", envelope.pack_json("a1", 1, 2, T0_US, {"kind": "hatch", "text": "a\x00b"})),
        ("leakmon/a1/note", envelope.pack_json("a1", 1, 3, T0_US, {"kind": "hatch", "text": "ok", "x": "\x00"})),
        ("leakmon/a1/info", json.dumps({"node_id": "a1", "gateway": "g\x00"}).encode()),
        ("leakmon/a1/note", envelope.pack_json("a1", 1, 4, T0_US, {"kind": "hatch", "text": "hatch 2 open"})),
    ]:
        ingest.add(b, topic, payload)
    assert sum(b.rejected.values()) == 3
    store = PgStore(db.url("leakmon_writer"), db.password("leakmon_writer"))
    try:
        store.write(b)
    finally:
        store.close()
    assert db.query("SELECT seq, text FROM leakmon.notes") == [(4, "hatch 2 open")]


def test_a_row_the_database_refuses_is_refused_alone(db) -> None:
    """Should a row reach the writer that the database will not take (ingest refuses every
    kind known: these bypass it), the rest of its batch is stored and only that row is
    counted as refused, instead of stopping serve at every redelivery."""
    b = batch(list(range(0, 12)))
    b.notes.append(("n1", 7, 100, T0_US, "bogus", "a kind the table's check refuses", "{}"))
    b.notes.append(("n1", 7, 101, T0_US, "note", "a NUL \x00 in text", "{}"))
    b.notes.append(("n1", 7, 102, T0_US, "note", "a lone surrogate \ud800", "{}"))
    b.nodes["n1"] = ("n1", "gw\x00", "{}", 0)
    store = PgStore(db.url("leakmon_writer"), db.password("leakmon_writer"))
    try:
        store.write(b)
        assert sum(b.rejected.values()) == 4, b.rejected
        assert all(r.startswith("n1: the database refused it: ") for r in b.rejected)
        assert store.rows == len(b) - 4  # refused rows are not counted as stored
        again = batch(list(range(0, 12)))
        store.write(again)  # a redelivery of the good part: stored once
        assert not again.rejected
    finally:
        store.close()
    want = batch(list(range(0, 12)))
    got = stored(db)
    assert got["frames"] == want.frames and got["estimates"] == want.estimates and got["alarms"] == want.alarms
    assert got["notes"] == [r[:6] for r in want.notes]


def test_one_bad_row_in_a_large_batch_costs_few_transactions(db, monkeypatch) -> None:
    """A row at a time would be 2,000 transactions with no MQTT keepalive between them;
    halving is about 2-3 log2(n)."""
    b = batch(list(range(0, 1500)))
    b.notes.append(("n1", 7, 5000, T0_US, "bogus", "a kind the table's check refuses", "{}"))
    n_rows = len(b)
    store = PgStore(db.url("leakmon_writer"), db.password("leakmon_writer"))
    tries = []
    real = store._transaction
    monkeypatch.setattr(store, "_transaction", lambda conn, one, direct: (tries.append(len(one)), real(conn, one, direct))[1])
    try:
        store.write(b)
    finally:
        store.close()
    assert sum(b.rejected.values()) == 1 and store.rows == n_rows - 1
    assert len(tries) <= 3 * (n_rows.bit_length() + 1), len(tries)  # halving, and a retry per level
    want = batch(list(range(0, 1500)))
    got = stored(db)
    assert got["frames"] == want.frames and got["estimates"] == want.estimates and got["alarms"] == want.alarms


def test_frames_decades_apart_in_one_batch_are_stored(db) -> None:
    """A gateway whose clock once read 1970 beside one that reads today: the partitions are
    made per run of days (the database's function takes at most 400 days at once), not
    for the 20,000 days between, which stopped serve at every redelivery."""
    today_us = int(time.time() // 86400) * DAY_US + 777
    b = Batch()
    b.frames = [("n1", 1, 0, 5, 3, 0, True, b"old"), ("n1", 1, 1, DAY_US + 5, 3, 1, True, b"old2"),
                ("n2", 1, 0, today_us, 3, 0, False, b"new")]
    b.estimates = [("n2", 1, 0, 0, 12, 0.0, 1e5, 293.0, 0.0, -1.0, 1.0, 0.5, 10, 5.0, False)]
    store = PgStore(db.url("leakmon_writer"), db.password("leakmon_writer"))
    try:
        store.write(b)
    finally:
        store.close()
    assert not b.rejected
    assert db.query("SELECT node_id, seq, frame FROM leakmon.frames ORDER BY node_id, seq") == [
        ("n1", 0, b"old"), ("n1", 1, b"old2"), ("n2", 0, b"new")]
    assert db.query("SELECT count(*) FROM leakmon.estimates") == [(1,)]


def test_a_batch_spread_over_many_days_is_stored_in_parts(db) -> None:
    """A gateway with a broken clock (or a hostile one) can spread one batch over
    thousands of days. In one transaction their partitions ran out of PostgreSQL's lock
    space ("out of shared memory") and serve retried that batch for ever. Now at most
    DAYS_PER_TRANSACTION days go in a transaction."""
    from leakmon.fleet.pgstore import DAYS_PER_TRANSACTION, by_days

    b = Batch()
    first_day = 10_957  # 2000-01-01
    b.frames = [("n1", 1, s, (first_day + 2 * s) * DAY_US + 9, 3, s, True, b"f") for s in range(1_500)]
    b.estimates = [("n1", 1, s, 0, (first_day + 2 * s) * DAY_US + 9, 0.0, 1e5, 293.0, 0.0, -1.0, 1.0, 0.5, 10, 5.0,
                    True) for s in range(0, 1_500, 50)]
    b.notes = [("n1", 1, 1, first_day * DAY_US, "note", "n", "{}")]
    lines: list[str] = []
    store = PgStore(db.url("leakmon_writer"), db.password("leakmon_writer"), log=lines.append)
    try:
        store.write(b)
        assert not b.rejected and store.rows == len(b)
        assert db.query("SELECT count(*), count(DISTINCT t::date) FROM leakmon.frames") == [(1_500, 1_500)]
        assert db.query("SELECT count(*) FROM leakmon.estimates") == [(30,)]
        assert db.query("SELECT count(*) FROM leakmon.notes") == [(1,)]
        again = Batch()
        again.frames, again.estimates, again.notes = list(b.frames), list(b.estimates), list(b.notes)
        store.write(again)  # a redelivery: one batch met stored rows, none stored again
        assert store.rewritten == 1 and store.rows == len(b)
        # Retention then drops those 3,000 partitions, a transaction's worth at a time: in one
        # it ran out of lock space at every pass (and logged a lost connection).
        store.retention_days = 30
        store.write(Batch())
        assert lines == ["retention: dropped 3000 daily partitions before "
                         f"{time.strftime('%Y-%m-%d', time.gmtime(time.time() - 30 * 86400))}"], lines
    finally:
        store.close()
    parts = by_days(b)
    assert len(parts) == -(-1_500 // DAYS_PER_TRANSACTION) and sum(len(p) for p in parts) == len(b)
    assert db.query("SELECT count(*) FROM leakmon.frames") == [(0,)]
    assert db.query("SELECT count(*) FROM pg_inherits i JOIN pg_class p ON p.oid = i.inhparent "
                    "WHERE p.relname IN ('frames', 'estimates')") == [(0,)]


def test_rows_stored_survive_a_connection_lost_between_parts(db) -> None:
    """Parts of a many-day batch commit one by one; the connection lost after the first
    makes the caller retry the batch, which meets that part stored. Each row is counted
    once, and a node's info (set again at every redelivery) not at all."""

    class CutAfterFirstPart(PgStore):
        calls = 0

        def _transaction(self, conn, batch, direct):
            self.calls += 1
            if self.calls == 2:
                db.query(f"SELECT pg_terminate_backend({conn.info.backend_pid})")
            return super()._transaction(conn, batch, direct)

    b = Batch()
    b.frames = [("n1", 1, s, (10_957 + s) * DAY_US + 9, 3, s, True, b"f") for s in range(100)]
    b.nodes["n1"] = ("n1", "gw-a", "{}", 0)
    store = CutAfterFirstPart(db.url("leakmon_writer"), db.password("leakmon_writer"))
    try:
        with pytest.raises(FleetError, match="lost"):
            store.write(b)
        assert store.rows == 32  # the first part committed
        store.write(b)  # the caller's retry
        assert store.rows == 100 and store.rewritten == 1
        store.write(b)  # a redelivery stores and counts nothing
        assert store.rows == 100 and store.rewritten == 2
    finally:
        store.close()
    assert db.query("SELECT count(*) FROM leakmon.frames") == [(100,)]


def test_rows_stored_count_only_new_rows_and_a_lost_retention_pass_retries_nothing(db) -> None:
    """The exit line's "rows stored" is what the database took: a redelivered batch adds
    none. The connection lost in the retention pass, after the batch was committed, must
    not make the caller write (and count) that batch again: the pass is tried after the
    next batch."""
    lines: list[str] = []

    class CutInRetention(PgStore):
        cuts = 1

        def _retention(self, conn) -> None:  # the server ends this session (as a restart would)
            if self.cuts:
                self.cuts -= 1
                pid = conn.info.backend_pid
                db.query(f"SELECT pg_terminate_backend({pid})")
            super()._retention(conn)

    today_us = int(time.time() // 86400) * DAY_US + 5
    old_us = today_us - 3 * DAY_US
    b = Batch()
    b.frames = [("n1", 1, s, old_us + s, 3, s, True, b"x") for s in range(10)]
    b.frames += [("n1", 1, 10 + s, today_us + s, 3, s, False, b"x") for s in range(10)]
    b.notes = [("n1", 1, 1, today_us, "bogus", "a kind the table's check refuses", "{}")]
    store = CutInRetention(db.url("leakmon_writer"), db.password("leakmon_writer"), retention_days=1, log=lines.append)
    try:
        store.write(b)  # no FleetError: stored and counted once
        assert store.rows == 20 and sum(b.rejected.values()) == 1
        assert any(line.startswith("retention: lost ") for line in lines), lines
        assert db.query("SELECT count(*) FROM leakmon.frames") == [(20,)]  # the pass did not run
        again = Batch()
        again.frames = b.frames[10:]
        store.write(again)  # a redelivery: nothing new stored or counted; the pass runs now
        assert store.rows == 20 and store.rewritten == 1
    finally:
        store.close()
    assert db.query("SELECT count(*) FROM leakmon.frames") == [(10,)]  # the old day dropped


def test_day_runs_split_at_gaps_and_at_the_functions_limit() -> None:
    from leakmon.fleet.pgstore import day_runs
    assert day_runs(set()) == []
    assert day_runs({0, 1, 2, 20_000, 20_001}) == [(0, 2), (20_000, 20_001)]
    runs = day_runs(set(range(1000)))
    assert runs == [(0, 399), (400, 799), (800, 999)] and all(b - a < 400 for a, b in runs)


def test_fuzzed_gateway_messages_are_stored_whole_or_refused_by_ingest(db, tmp_path) -> None:
    """Bounded fuzz through the real stores: the gateway's messages of every kind (frames,
    estimates, alarms, notes, node info) for two nodes, half with a nasty JSON value, half
    with bytes overwritten, in batches as serve makes them. Neither PostgreSQL nor SQLite
    may raise or refuse a row ingest accepted, and each holds exactly the keys accepted
    and each node's last accepted info."""
    import sqlite3

    from fleet.gatewaymsgs import every_kind, fuzzed

    from leakmon.fleet.sqlitestore import SqliteStore

    msgs = fuzzed(every_kind("a1") + every_kind("b2"), 3000, 20261203)
    pg = PgStore(db.url("leakmon_writer"), db.password("leakmon_writer"))
    lite = SqliteStore(tmp_path / "fuzz.sqlite")
    keys: dict[str, set[tuple]] = {"frames": set(), "estimates": set(), "alarms": set(), "notes": set()}
    info: dict[str, str] = {}
    accepted = 0
    try:
        for k in range(0, len(msgs), 250):
            for store in (pg, lite):
                b = Batch()
                for topic, payload in msgs[k:k + 250]:
                    ingest.add(b, topic, payload)
                store.write(b)
                assert not [r for r in b.rejected if "database refused" in r], b.rejected
            accepted += len(b)
            keys["frames"] |= {(r[0], r[1], r[2], r[3]) for r in b.frames}
            keys["estimates"] |= {(r[0], r[1], r[2], r[3], r[4]) for r in b.estimates}
            keys["alarms"] |= {r[:4] for r in b.alarms}
            keys["notes"] |= {r[:3] for r in b.notes}
            info |= {n: row[2] for n, row in b.nodes.items()}
    finally:
        pg.close()
        lite.close()
    assert all(keys.values()) and accepted < 3000 and set(info) == {"a1", "b2"}, {k: len(v) for k, v in keys.items()}
    us = "(extract(epoch from t) * 1000000)::int8"
    got_pg = {
        "frames": set(db.query(f"SELECT node_id, boot, seq, {us} FROM leakmon.frames")),
        "estimates": set(db.query(f"SELECT node_id, boot, seq, channel, {us} FROM leakmon.estimates")),
        "alarms": set(db.query("SELECT node_id, boot, seq, channel FROM leakmon.alarms")),
        "notes": set(db.query("SELECT node_id, boot, seq FROM leakmon.notes")),
    }
    assert got_pg == keys
    assert {n: i for n, i in db.query("SELECT node_id, info FROM leakmon.nodes")} == \
        {n: json.loads(i) for n, i in info.items()}
    with sqlite3.connect(tmp_path / "fuzz.sqlite") as c:
        # SQLite keys frames and estimates without the time: a forged time is the same row
        assert set(c.execute("SELECT node_id, boot, seq FROM frames")) == {r[:3] for r in keys["frames"]}
        assert set(c.execute("SELECT node_id, boot, seq, channel FROM estimates")) == \
            {r[:4] for r in keys["estimates"]}
        assert set(c.execute("SELECT node_id, boot, seq, channel FROM alarms")) == keys["alarms"]
        assert set(c.execute("SELECT node_id, boot, seq FROM notes")) == keys["notes"]
        assert {n: json.loads(i) for n, i in c.execute("SELECT node_id, info FROM nodes")} == \
            {n: json.loads(i) for n, i in info.items()}
