"""Two gateways on virtual boards, a real Mosquitto, `serve` into a real PostgreSQL."""

from __future__ import annotations

import json
import signal
from pathlib import Path

from fleet.fleetkit import assert_complete, gateway_args, serve_args, wait_until


def test_two_sites_into_postgres(broker, db, procs, tmp_path: Path) -> None:
    serve = procs("serve", *serve_args(broker, db))
    serve.wait_log("subscribed")
    ga = procs("gw-a", *gateway_args(broker, "gw-a", ["a1", "a2"], tmp_path / "spool-a",
                                     "--speed", "40", "--duration", "40", "--estimate-every", "1"))
    gb = procs("gw-b", *gateway_args(broker, "gw-b", ["b1"], tmp_path / "spool-b", "--speed", "40", "--duration", "40",
                                     "--estimate-every", "1"))
    assert ga.wait(90) == 0, ga.log
    assert gb.wait(90) == 0, gb.log
    published = {**ga.published(), **gb.published()}
    assert set(published) == {"a1", "a2", "b1"} and all(n > 30 for n in published.values()), published
    assert wait_until(lambda: db.query("SELECT count(*) FROM leakmon.frames")[0][0] >= sum(published.values()), 20), serve.log
    assert_complete(db, published)
    # estimates: about one per device second per node, and their pressure is a real one
    est = dict(db.query("SELECT node_id, count(*) FROM leakmon.estimates GROUP BY 1"))
    assert all(est.get(n, 0) >= 25 for n in published), est
    p = db.query("SELECT min(pressure_pa), max(pressure_pa) FROM leakmon.estimates")[0]
    assert 50_000 < p[0] <= p[1] < 200_000
    info = dict(db.query("SELECT node_id, info FROM leakmon.nodes"))
    assert info["a2"]["gateway"] == "gw-a" and info["b1"]["channels"]
    assert db.query("SELECT count(*) FROM leakmon.frames WHERE historical")[0][0] == 0
    serve.popen.send_signal(signal.SIGTERM)
    assert serve.wait(20) == 0, serve.log
    _dump_reads_as_a_recording(db, procs, tmp_path)
    assert "refused" not in serve.log.split("stored,")[-1] or " 0 refused" in serve.log


def test_embedded_default_one_command(tmp_path: Path, procs) -> None:
    """`leakmon serve --sim` and nothing else: a SQLite file with every frame."""
    import sqlite3

    p = procs("serve", ["serve", "--sim", "--speed", "40", "--duration", "30", "--store", "lab.sqlite", "--notes",
                           "--estimate-every", "1"], {},
              stdin_text="sim0 hatch hatch 3 closed\nsim9 note no such node\nsim0 note leak check by JD\n")
    assert p.wait(60) == 0, p.log
    published = p.published()
    db = sqlite3.connect(tmp_path / "lab.sqlite")
    rows, lo, hi = db.execute("SELECT count(*), min(seq), max(seq) FROM frames WHERE node_id='sim0'").fetchone()
    assert rows == published["sim0"] == hi - lo + 1
    assert db.execute("SELECT count(*) FROM estimates").fetchone()[0] >= 20
    info = json.loads(db.execute("SELECT info FROM nodes").fetchone()[0])
    assert info["node_id"] == "sim0" and info["channels"]
    notes = db.execute("SELECT kind, text FROM notes ORDER BY seq").fetchall()
    assert notes == [("hatch", "hatch 3 closed"), ("note", "leak check by JD")]
    assert "no node 'sim9'" in p.log


def test_a_silent_node_is_asked_again_not_fatal(procs, tmp_path: Path) -> None:
    """A port where no leakmon node answers (loop:// only echoes) keeps the process up,
    asking again, and SIGTERM still ends it cleanly."""
    import time

    p = procs("serve", ["serve", "--port", "loop://", "--node-id", "mute", "--store", "x.sqlite"], {})
    p.wait_log("asking again", 30)
    time.sleep(2.5)  # past one retry: still running
    assert p.popen.poll() is None, p.log
    p.popen.send_signal(signal.SIGTERM)
    assert p.wait(20) == 0, p.log
    assert p.log.count("asking again") == 1


def _dump_reads_as_a_recording(db, procs, tmp_path: Path) -> None:
    """serve --dump of a time range from the middle of a run: export reads it like a
    recording, with every sample of the range's SAMPLES frames (the handshake is added)."""
    import struct

    t_mid = db.query("SELECT min(t) + (max(t) - min(t)) / 3 FROM leakmon.frames WHERE node_id = 'a1'")[0][0]
    frames = db.query(f"SELECT frame FROM leakmon.frames WHERE node_id = 'a1' AND msg_type = 3 "
                      f"AND t >= '{t_mid.isoformat()}'")
    n_samples = sum(struct.unpack_from("<H", f[0], 8 + 8)[0] for f in frames)  # n_rows of one channel each
    d = procs("dump", ["serve", "--dump", "a1", "--from", t_mid.isoformat(), "--db", db.url("leakmon_reader"),
                       "-o", "a1.lkmrec"], {"PGPASSWORD": db.password("leakmon_reader")})
    assert d.wait(30) == 0, d.log
    e = procs("export", ["export", "a1.lkmrec", "--to", "csv", "-o", "a1.csv"], {})
    assert e.wait(60) == 0, e.log
    lines = (tmp_path / "a1.csv").read_text().splitlines()
    assert len(lines) - 1 == n_samples > 100, (len(lines), n_samples)
    # the writer role may not read history back
    w = procs("dump-w", ["serve", "--dump", "a1", "--db", db.url(), "-o", "w.lkmrec"], {"PGPASSWORD": db.password()})
    assert w.wait(30) == 1 and "may not read frames" in w.log, w.log


def test_embedded_store_dumps_for_analyze(procs, tmp_path: Path) -> None:
    p = procs("serve", ["serve", "--sim", "--speed", "40", "--duration", "20", "--store", "lab.sqlite"], {})
    assert p.wait(60) == 0, p.log
    d = procs("dump", ["serve", "--dump", "sim0", "--store", "lab.sqlite", "-o", "sim0.lkmrec"], {})
    assert d.wait(30) == 0, d.log
    a = procs("analyze", ["analyze", "sim0.lkmrec"], {})
    assert a.wait(60) == 0, a.log
    assert "Pa/s" in a.log or "leak" in a.log.lower(), a.log
    none = procs("dump2", ["serve", "--dump", "nope", "--store", "lab.sqlite"], {})
    assert none.wait(30) == 1 and "no frames of node 'nope'" in none.log


def test_broker_into_sqlite(broker, procs, tmp_path: Path) -> None:
    """serve --broker without --db: the same consumer into the embedded store."""
    import sqlite3

    serve = procs("serve", ["serve", "--broker", f"mqtt://serve@127.0.0.1:{broker.port}", "--store", "site.sqlite"],
                  {"LEAKMON_MQTT_PASSWORD": broker.users["serve"]})
    serve.wait_log("subscribed")
    gw = procs("gw", *gateway_args(broker, "gw-b", ["b1"], tmp_path / "spool", "--speed", "40", "--duration", "20"))
    assert gw.wait(60) == 0, gw.log  # it waits for serve's confirmations before it exits
    db = sqlite3.connect(tmp_path / "site.sqlite")
    rows, lo, hi = db.execute("SELECT count(*), min(seq), max(seq) FROM frames WHERE node_id = 'b1'").fetchone()
    assert rows == gw.published()["b1"] == hi - lo + 1
