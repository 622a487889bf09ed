"""Every refusal of the security model, against the real broker and database."""

from __future__ import annotations

import os
import time
from pathlib import Path

import psycopg
import pytest
from fleet.fleetkit import gateway_args, serve_args, wait_until

from leakmon import wire
from leakmon.fleet import AuthError, envelope
from leakmon.fleet.creds import parse_broker
from leakmon.fleet.mqttclient import connect, make_client


def _client(broker, user: str, password: str | None = None):
    addr = parse_broker(f"mqtt://{user}@127.0.0.1:{broker.port}")
    c = make_client(addr, broker.users[user] if password is None else password, f"t-{user}-{time.monotonic_ns()}",
                    clean_session=True)
    connect(c, addr)
    return c


def _publish(c, topic: str, payload: bytes) -> None:
    info = c.publish(topic, payload, qos=1)
    deadline = time.monotonic() + 5
    while not info.is_published() and time.monotonic() < deadline:
        c.loop(0.02)
    assert info.is_published()


def _frame_envelope(claimed_node: str, seq: int) -> bytes:
    frame = wire.frame(wire.T_EVENT, seq, wire.event_payload(1000, wire.EV_SENSOR_ERROR, 0, 5, "x"))
    return envelope.pack(claimed_node, 1, seq, time.time_ns() // 1000, frame)


def test_wrong_broker_password_is_refused(broker, procs, tmp_path: Path) -> None:
    args, env = gateway_args(broker, "gw-a", ["a1"], tmp_path / "spool")
    p = procs("gw", args, {**env, "LEAKMON_MQTT_PASSWORD": "not-the-password"})
    assert p.wait(30) == 1
    assert "refused the connection" in p.log and "check the user and password" in p.log, p.log
    assert "Traceback" not in p.log and len(p.log.strip().splitlines()) == 1, p.log
    with pytest.raises(AuthError):
        _client(broker, "gw-a", password="wrong")


def test_topics_and_node_ids_outside_a_gateways_own_are_refused(broker, db, procs) -> None:
    serve = procs("serve", *serve_args(broker, db))
    serve.wait_log("subscribed")
    gw_a = _client(broker, "gw-a")
    _publish(gw_a, "leakmon/a1/frame", _frame_envelope("a1", 1))  # its own: stored (the control)
    _publish(gw_a, "leakmon/b1/frame", _frame_envelope("b1", 2))  # another gateway's node: the ACL drops it
    _publish(gw_a, "leakmon/zz/frame", _frame_envelope("zz", 3))  # a node nobody was given
    _publish(gw_a, "leakmon/a1/frame", _frame_envelope("b1", 4))  # its topic, a forged node id inside
    _publish(gw_a, "leakmon/a2/frame", envelope.pack("a2", 1, 5, 0, b"\xa5\x4cnot a frame"))  # a torn frame
    reader = _client(broker, "reader")
    _publish(reader, "leakmon/a1/frame", _frame_envelope("a1", 6))  # readers only read
    _publish(gw_a, "leakmon/a1/frame", _frame_envelope("a1", 7))  # a last good one: all before it were seen
    assert wait_until(lambda: len(db.query("SELECT 1 FROM leakmon.frames")) >= 2, 15), serve.log
    time.sleep(0.5)
    assert sorted(db.query("SELECT node_id, seq FROM leakmon.frames")) == [("a1", 1), ("a1", 7)]
    assert "forged node id 'b1' on the topic of 'a1'" in serve.log
    assert "frame CRC does not match" in serve.log or "not one whole" in serve.log


def test_database_roles_have_least_privilege(db) -> None:
    db.query("SELECT leakmon.ensure_partitions(current_date, current_date)", role="leakmon_writer")
    db.query("INSERT INTO leakmon.notes VALUES ('a1', 1, 1, now(), 'hatch', 'hatch 3 closed', '{}') RETURNING 1",
             role="leakmon_writer")
    for q in ("DELETE FROM leakmon.notes RETURNING 1", "UPDATE leakmon.notes SET text = 'x' RETURNING 1",
              "DROP TABLE leakmon.notes", "CREATE TABLE leakmon.x (i int)", "SELECT * FROM leakmon.frames"):
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            db.query(q, role="leakmon_writer")
    assert db.query("SELECT text FROM leakmon.notes", role="leakmon_reader") == [("hatch 3 closed",)]
    for q in ("INSERT INTO leakmon.notes VALUES ('a1', 1, 2, now(), 'note', 'x', '{}') RETURNING 1",
              "SELECT leakmon.drop_partitions_before(current_date + 10)"):
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            db.query(q, role="leakmon_reader")


def test_passwords_never_in_ps_or_logs(broker, db, procs, tmp_path: Path) -> None:
    serve = procs("serve", *serve_args(broker, db))
    serve.wait_log("subscribed")
    pwfile = tmp_path / "mqtt.pw"
    pwfile.write_text(broker.users["gw-a"] + "\n")
    pwfile.chmod(0o600)
    args, _env = gateway_args(broker, "gw-a", ["a1"], tmp_path / "spool", "--speed", "10", "--duration", "10",
                              "--mqtt-password-file", str(pwfile))
    gw = procs("gw", args, {})
    assert wait_until(lambda: "publishing" in gw.log or gw.popen.poll() is not None, 20), gw.log
    secrets = [broker.users["gw-a"], broker.users["serve"], db.password()]
    for p in (serve.popen, gw.popen):
        cmdline = Path(f"/proc/{p.pid}/cmdline").read_bytes().decode()
        assert not any(s in cmdline for s in secrets)
    assert gw.wait(60) == 0, gw.log
    assert not any(s in gw.log or s in serve.log for s in secrets)
    # a password on the command line is refused before anything connects
    bad = procs("bad", ["serve", "--broker", f"mqtt://serve:{broker.users['serve']}@127.0.0.1:{broker.port}",
                        "--db", db.url()], {})
    assert bad.wait(30) == 1 and "password in the URL" in bad.log and broker.users["serve"] not in bad.log
    # a password file others may read is refused
    pwfile.chmod(0o644)
    loose = procs("loose", [*args], {})
    assert loose.wait(30) == 1 and "readable by others" in loose.log, loose.log
    assert os.environ.get("LEAKMON_MQTT_PASSWORD") is None


def test_init_db_by_a_database_owner_who_is_not_superuser(pg_cluster) -> None:
    """The README's path: an owner role (no superuser) runs --init-db; the writer then
    writes, making partitions through the owner's SECURITY DEFINER function."""
    import secrets as pysecrets

    from fleet.fleetkit import Db

    from leakmon.fleet.ingest import Batch
    from leakmon.fleet.pgstore import PgStore, init_db

    name, owner_pw = f"o_{pysecrets.token_hex(4)}", pysecrets.token_urlsafe(12)
    with psycopg.connect(pg_cluster.dsn(), password=pg_cluster.password, autocommit=True) as c:
        c.execute(f"CREATE ROLE {name} LOGIN PASSWORD '{owner_pw}'")
        c.execute(f"CREATE DATABASE {name} OWNER {name}")
    init_db(pg_cluster.dsn(name, name), owner_pw, "leakmon_writer", "leakmon_reader")
    store = PgStore(pg_cluster.dsn("leakmon_writer", name), pg_cluster.writer_password)
    b = Batch()
    frame = wire.frame(wire.T_STATUS, 1, b"")
    day_us = 86_400_000_000
    b.frames = [("a1", 1, k, 1_790_000_000_000_000 + k * day_us, wire.T_STATUS, 1, False, frame) for k in range(3)]
    store.write(b)
    store.write(b)  # again: stored once
    store.close()
    db = Db(pg_cluster, name)
    assert db.query("SELECT count(*) FROM leakmon.frames", role="leakmon_reader") == [(3,)]
    parts = db.query("SELECT count(*) FROM pg_inherits i JOIN pg_class p ON p.oid = i.inhparent "
                     "WHERE p.relname = 'frames'")
    assert parts == [(3,)]  # one partition per day
    # retention drops whole days
    with psycopg.connect(pg_cluster.dsn("leakmon_writer", name), password=pg_cluster.writer_password) as c:
        assert c.execute("SELECT leakmon.drop_partitions_before('2026-09-23')").fetchone() == (4,)  # 2 days x 2 tables
    assert db.query("SELECT count(*) FROM leakmon.frames", role="leakmon_reader") == [(1,)]


def test_tls_listener(broker, db, procs, tmp_path: Path) -> None:
    """A gateway over mqtts:// with the site's CA is served; without it, it refuses the broker."""
    import shutil as sh

    from fleet.fleetkit import assert_complete, make_tls

    import servers

    if sh.which("openssl") is None:
        servers.require("openssl")
    ca, crt, key = make_tls(broker.folder / "tls")
    tls_port = servers.free_port()
    broker.stop()
    broker.extra_conf = [f"listener {tls_port} 127.0.0.1", f"certfile {crt}", f"keyfile {key}"]
    broker.start()
    servers.wait_port(tls_port)
    serve = procs("serve", *serve_args(broker, db))
    serve.wait_log("subscribed")
    args, env = gateway_args(broker, "gw-a", ["a1"], tmp_path / "spool", "--speed", "10", "--duration", "10")
    args[args.index("--broker") + 1] = f"mqtts://gw-a@127.0.0.1:{tls_port}"
    untrusted = procs("gw-untrusted", args, env)
    assert untrusted.wait(30) == 1 and "is not trusted" in untrusted.log, untrusted.log
    gw = procs("gw", [*args, "--mqtt-ca", str(ca)], env)
    assert gw.wait(60) == 0, gw.log
    assert wait_until(lambda: db.query("SELECT count(*) FROM leakmon.frames")[0][0] >= sum(gw.published().values()), 20)
    assert_complete(db, gw.published())
