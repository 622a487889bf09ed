"""Fault runs against the real broker and database, each ending with frames sent =
frames stored, checked by sequence numbers (fleetkit.assert_complete)."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest
from fleet.fleetkit import CuttableProxy, assert_complete, gateway_args, serve_args, wait_until

pytestmark = pytest.mark.slow

# Device seconds per wall second of the gateways' virtual boards. A fault lasts a fixed
# wall time (a server must really be gone for a while), so at 20x a 2 s outage holds 40 s
# of the 80 s run: it lands mid-run as the 20 s it held at 10x did, and the run is 4 s.
SPEED = "20"


def _count(db) -> int:
    return int(db.query("SELECT count(*) FROM leakmon.frames")[0][0])


def _finish(db, gw, serves, timeout_s: float = 60) -> dict[str, int]:
    assert gw.wait(timeout_s) == 0, gw.log
    published = gw.published()
    assert published and all(n > 0 for n in published.values()), gw.log
    logs = "\n".join(s.log for s in serves)
    assert wait_until(lambda: _count(db) >= sum(published.values()), 30), (published, _count(db), logs)
    time.sleep(0.3)  # and nothing more (no duplicates) arrives after
    assert_complete(db, published)
    return published


def test_consumer_killed_mid_run(broker, db, procs, tmp_path: Path) -> None:
    """kill -9 of one of two instances; it is restarted with the same client id and
    gets what it had been handed and not stored."""
    s1 = procs("serve1", *serve_args(broker, db, "--client-id", "serve-1"))
    s2 = procs("serve2", *serve_args(broker, db, "--client-id", "serve-2"))
    s1.wait_log("subscribed")
    s2.wait_log("subscribed")
    gw = procs("gw", *gateway_args(broker, "gw-a", ["a1", "a2"], tmp_path / "spool", "--speed", SPEED,
                                   "--duration", "80"))
    assert wait_until(lambda: _count(db) > 20, 30), gw.log
    s1.popen.send_signal(signal.SIGKILL)
    s1.wait(10)
    time.sleep(1.0)
    s1b = procs("serve1b", *serve_args(broker, db, "--client-id", "serve-1"))
    _finish(db, gw, [s1, s2, s1b])


def test_broker_restarted(broker, db, procs, tmp_path: Path) -> None:
    serve = procs("serve", *serve_args(broker, db))
    serve.wait_log("subscribed")
    gw = procs("gw", *gateway_args(broker, "gw-a", ["a1"], tmp_path / "spool", "--speed", SPEED, "--duration", "80"))
    assert wait_until(lambda: _count(db) > 10, 30), gw.log
    broker.stop()
    time.sleep(2.0)
    broker.start()
    _finish(db, gw, [serve])
    assert db.query("SELECT count(*) FROM leakmon.frames WHERE historical")[0][0] > 0
    assert "spooling" in gw.log


def test_network_cut_for_ten_minutes_of_device_time(broker, db, procs, tmp_path: Path) -> None:
    """The gateway's link to the broker is cut while the node runs 10 minutes of device
    time; the spool holds it and replays it in order, flagged historical."""
    proxy = CuttableProxy(broker.port)
    serve = procs("serve", *serve_args(broker, db))
    serve.wait_log("subscribed")
    speed = 100.0  # the cut holds 600 s of device time in 6 s
    gw = procs("gw", *gateway_args(broker, "gw-a", ["a1"], tmp_path / "spool", "--speed", str(speed),
                                   "--duration", "780", port=proxy.port))
    assert wait_until(lambda: _count(db) > 20, 30), gw.log
    proxy.cut()
    time.sleep(300 / speed)
    during = _count(db)  # what had passed the proxy before the cut is in by now
    time.sleep(300 / speed)
    assert _count(db) == during  # and nothing gets through
    proxy.restore()
    _finish(db, gw, [serve], timeout_s=120)
    hist = db.query("SELECT count(*), min(seq), max(seq) FROM leakmon.frames WHERE historical")[0]
    assert hist[0] > 200, hist  # ~10 minutes of frames at ~1 per second came from the spool
    # replayed in order: the historical frames' arrival times (gateway clock) follow their seq
    order = [r[0] for r in db.query("SELECT seq FROM leakmon.frames WHERE historical ORDER BY t, seq")]
    assert order == sorted(order)


def test_database_restarted(broker, db, procs, tmp_path: Path) -> None:
    serve = procs("serve", *serve_args(broker, db))
    serve.wait_log("subscribed")
    gw = procs("gw", *gateway_args(broker, "gw-a", ["a1"], tmp_path / "spool", "--speed", SPEED, "--duration", "80"))
    assert wait_until(lambda: _count(db) > 10, 30), gw.log
    db.pg.stop("immediate")
    time.sleep(2.0)
    db.pg.start()
    _finish(db, gw, [serve])
    assert "database back" in serve.log, serve.log


def test_gateway_killed_while_the_broker_is_away(broker, db, procs, tmp_path: Path) -> None:
    """kill -9 of a gateway with data in its spool (broker down): the next start sends it
    first, flagged historical, with the first run's keys; no gap in either run's seqs."""
    serve = procs("serve", *serve_args(broker, db))
    serve.wait_log("subscribed")
    args = gateway_args(broker, "gw-a", ["a1"], tmp_path / "spool", "--speed", SPEED)
    gw1 = procs("gw1", *args)
    assert wait_until(lambda: _count(db) > 10, 30), gw1.log
    broker.stop()
    before = _count(db)
    time.sleep(2.0)  # ~40 s of device time into the spool
    gw1.popen.send_signal(signal.SIGKILL)
    gw1.wait(10)
    broker.start()
    gw2 = procs("gw2", args[0] + ["--duration", "20"], args[1])
    assert gw2.wait(60) == 0, gw2.log
    assert "from before" in gw2.log  # it found the first run's spool
    assert wait_until(lambda: _count(db) >= before + 20 + sum(gw2.published().values()), 30), (before, _count(db))
    time.sleep(0.3)
    boots = db.query("SELECT boot, count(*), count(DISTINCT seq), min(seq), max(seq), bool_or(historical) "
                     "FROM leakmon.frames WHERE node_id = 'a1' GROUP BY boot ORDER BY boot")
    assert len(boots) == 2, boots
    (_, n1, d1, lo1, hi1, hist1), (_, n2, d2, lo2, hi2, _) = boots
    assert n1 == d1 == hi1 - lo1 + 1 and n1 >= before + 20 and hist1  # the first run, whole, partly from the spool
    assert n2 == d2 == hi2 - lo2 + 1 == gw2.published()["a1"]
