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
                                     "--speed", "20", "--duration", "40"))
    gb = procs("gw-b", *gateway_args(broker, "gw-b", ["b1"], tmp_path / "spool-b", "--speed", "20", "--duration", "40"))
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
    assert "refused" not in serve.log.split("stored,")[-1] or " 0 refused" in serve.log


def test_embedded_default_one_command(tmp_path: Path, procs) -> None:
    """`leakmon serve --sim` and nothing else: a SQLite file with every frame."""
    import sqlite3

    p = procs("serve", ["serve", "--sim", "--speed", "20", "--duration", "30", "--store", "lab.sqlite", "--notes"], {},
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
