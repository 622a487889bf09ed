"""`analyze`, `export` and the site mass balance read a node's (or a site's) time range
straight from the database: the real PostgreSQL (as the read-only role) and the embedded
SQLite store, against a recording of the same frames.

The frames go in by the path a gateway's go through (FrameKeys cuts and keys them,
the envelope carries them, ingest checks them, the store writes them), so what is read
back is what `serve` stores.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
from pathlib import Path

import pytest
import wiregen
from fleet.fleetkit import leakmon_cmd

from leakmon import wire
from leakmon.cli import main as cli
from leakmon.fleet import envelope, ingest
from leakmon.fleet.edge import FrameKeys
from leakmon.fleet.sqlitestore import SqliteStore
from leakmon.link.recording import KIND_RX, RecordingWriter, open_recording
from leakmon.wire.framing import FrameDecoder

T0_US = 1_795_000_000_000_000  # 2026-11-17T...: the gateway's clock at the first frame
ROOT = Path(__file__).resolve().parents[2]
STATION = str(ROOT / "hardware" / "scenarios" / "station_hatches.toml")


def store_chunks(stores: list, node_id: str, chunks: list[tuple[float, bytes]], t0_us: int = T0_US) -> None:
    """Store (host time s, bytes) chunks as a gateway would, in every store given."""
    now = [t0_us]
    keys = FrameKeys(clock_us=lambda: now[0])
    batch = ingest.Batch()
    ingest.add(batch, envelope.topic(node_id, "info"), json.dumps({"node_id": node_id, "gateway": "gw"}).encode())
    for t_s, data in chunks:
        now[0] = t0_us + round(t_s * 1e6)
        keys.feed(data)
        for seq, t_us, _type, raw, boot in keys.take():
            ingest.add(batch, envelope.topic(node_id, "frame"), envelope.pack(node_id, boot, seq, t_us, raw))
    assert not batch.rejected, batch.rejected
    for s in stores:
        s.write(batch)


def rx_chunks(path: Path) -> list[tuple[float, bytes]]:
    with open_recording(path) as rec:
        return [(c.t_s, c.data) for c in rec.chunks() if c.kind == KIND_RX]


@pytest.fixture(scope="module")
def station_recording(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real run: the firmware on the virtual board, four modules, 240 s of device time."""
    path = tmp_path_factory.mktemp("rec") / "station.lkmrec"
    subprocess.run(leakmon_cmd("record", "--sim", "--scenario", "station_hatches", "--speed", "0", "--duration",
                               "240", "-o", str(path)), check=True, capture_output=True, timeout=120)
    return path


@pytest.fixture
def stored(db, station_recording: Path, tmp_path: Path, monkeypatch):
    """The recording's frames in PostgreSQL and in SQLite, as node st1; PGPASSWORD is the reader's."""
    from leakmon.fleet.pgstore import PgStore

    pg = PgStore(db.url("leakmon_writer"), db.password("leakmon_writer"))
    lite = SqliteStore(tmp_path / "lab.sqlite")
    store_chunks([pg, lite], "st1", rx_chunks(station_recording))
    pg.close()
    lite.close()
    monkeypatch.setenv("PGPASSWORD", db.password("leakmon_reader"))
    return {"pg": ["--db", db.url("leakmon_reader")], "lite": ["--store", str(tmp_path / "lab.sqlite")]}


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def json_objects(out: str) -> list[dict]:
    return [json.loads(line) for line in out.splitlines() if line.startswith("{")]


def assert_same(a: object, b: object, where: str = "") -> None:
    """Equal, numbers to 1e-9 (relative, or absolute near zero)."""
    if isinstance(a, float) or isinstance(b, float):
        assert isinstance(a, (int, float)) and isinstance(b, (int, float)), (where, a, b)
        assert math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9), (where, a, b)
    elif isinstance(a, dict):
        assert isinstance(b, dict) and set(a) == set(b), (where, sorted(a), sorted(b))
        for k in a:
            assert_same(a[k], b[k], f"{where}.{k}")
    elif isinstance(a, list):
        assert isinstance(b, list) and len(a) == len(b), (where, a, b)
        for k, (x, y) in enumerate(zip(a, b)):
            assert_same(x, y, f"{where}[{k}]")
    else:
        assert a == b, (where, a, b)


def test_analyze_and_site_from_the_database_equal_the_recording(stored, station_recording, capsys):
    """The same frames: the same figures from the recording, PostgreSQL and SQLite, per
    sensor and for the site's mass balance (station, groups, segments, verdict)."""
    args = ["--json", "--site", STATION, "--hatches", "schedule", "--volume", "100"]
    code, out, err = run(capsys, "analyze", str(station_recording), *args)
    assert code == 0, err
    want = json_objects(out)
    kinds = [o.get("kind") for o in want]
    assert kinds.count("sensor") == 4 and "station" in kinds and kinds.count("segment") == 4, kinds
    for source in ("pg", "lite"):
        code, out, err = run(capsys, "analyze", *stored[source], "--node", "st1", *args)
        assert code == 0, err
        got = json_objects(out)
        assert len(got) == len(want)
        for w, g in zip(want, got):
            if g.get("kind") == "sensor":
                assert g.pop("node") == "st1"
            assert_same(w, g, source)
        assert "node st1: " in err and " 0 lost" in err, err


def test_export_from_the_database_is_the_recordings_export(stored, station_recording, tmp_path, capsys):
    """Byte for byte the same CSV; a time range gives the samples of the frames received in it."""
    assert run(capsys, "export", str(station_recording), "-o", str(tmp_path / "rec.csv"))[0] == 0
    want = (tmp_path / "rec.csv").read_text()
    for source in ("pg", "lite"):
        code, _, err = run(capsys, "export", *stored[source], "--node", "st1", "-o", str(tmp_path / f"{source}.csv"))
        assert code == 0, err
        assert (tmp_path / f"{source}.csv").read_text() == want, source
    # a range in the middle: the SAMPLES frames received in it, no more (the handshake is added, not exported)
    chunks = rx_chunks(station_recording)
    t_mid, t_end = chunks[len(chunks) // 3][0], chunks[2 * len(chunks) // 3][0]
    iso = lambda t_s: _iso(T0_US + round(t_s * 1e6))  # noqa: E731
    seqs, decoder = set(), FrameDecoder()  # a frame is received when its last byte is
    for t_s, data in chunks:
        frames = decoder.feed(data)
        if t_mid <= t_s < t_end:
            seqs |= {f.seq for f in frames if f.msg_type == wire.T_SAMPLES}
    rec_rows = [r for r in want.splitlines()[1:] if int(r.rsplit(",", 1)[1]) in seqs]
    for source in ("pg", "lite"):
        code, _, err = run(capsys, "export", *stored[source], "--node", "st1", "--from", iso(t_mid), "--until",
                           iso(t_end), "-o", str(tmp_path / "mid.csv"))
        assert code == 0, err
        rows = (tmp_path / "mid.csv").read_text().splitlines()[1:]
        assert rows == rec_rows and len(rows) > 100, (source, len(rows), len(rec_rows))
        assert "0 lost" in err, err  # the handshake before the range is no loss


def _iso(t_us: int) -> str:
    import datetime as dt

    return (dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc) + dt.timedelta(microseconds=t_us)).isoformat()


def _boot_event(seq: int) -> bytes:
    return wire.frame(wire.T_EVENT, seq, wire.event_payload(0, wire.EV_BOOT, 0, 0))


def test_reboots_and_gaps_read_as_in_a_recording(tmp_path, capsys):
    """A node that loses frames and reboots mid-run: export and analyze of the stored frames
    (read in tiny batches) equal those of the recording, lost frames and all."""
    from leakmon.fleet import history, readback

    first = wiregen.capture(300, channels=2, seed=1)
    # frames 100..119 never arrive (a gap); then the node reboots: boot event, handshake, seq from 0
    split = [first[: _frame_end(first, 100)], first[_frame_end(first, 120):]]
    second = _boot_event(0) + wiregen.handshake(2, seq=1) + wiregen.samples(200, 2, seq=4, seed=2)
    chunks = [(0.0, split[0]), (40.0, split[1]), (100.0, second)]
    with RecordingWriter(tmp_path / "r.lkmrec", {}) as w:
        for _, data in chunks:
            w.write(data, KIND_RX)
    lite = SqliteStore(tmp_path / "s.sqlite")
    store_chunks([lite], "n1", chunks)
    lite.close()
    boots = {b for b, *_ in history.sqlite_rows(str(tmp_path / "s.sqlite"), "n1", 0, 2**62)}
    assert len(boots) == 2
    assert run(capsys, "export", str(tmp_path / "r.lkmrec"), "-o", str(tmp_path / "r.csv"))[0] == 0
    code, _, err = run(capsys, "export", "--store", str(tmp_path / "s.sqlite"), "--node", "n1",
                       "-o", str(tmp_path / "s.csv"))
    assert code == 0, err
    assert (tmp_path / "s.csv").read_text() == (tmp_path / "r.csv").read_text()
    dec = readback.RowDecoder(batch_frames=3)
    tiny = list(dec.tables(history.sqlite_rows(str(tmp_path / "s.sqlite"), "n1", 0, 2**62, batch_rows=7)))
    assert sum(len(t) for t in tiny) == len((tmp_path / "r.csv").read_text().splitlines()) - 1
    code, want, rec_err = run(capsys, "analyze", str(tmp_path / "r.lkmrec"), "--json")
    code2, got, err = run(capsys, "analyze", "--store", str(tmp_path / "s.sqlite"), "--node", "n1", "--json")
    assert code == code2 == 0, err
    for w, g in zip(json_objects(want), json_objects(got), strict=True):
        g.pop("node")
        assert_same(w, g)
    lost = rec_err.split(" lost")[0].rsplit(" ", 1)[1]
    assert int(lost) >= 20 and f"{lost} lost" in err, (rec_err, err)


def _frame_end(data: bytes, k: int) -> int:
    """Offset of the end of frame k (0-based) in a byte stream of whole frames."""
    off = 0
    for _ in range(k):
        off += wire.OVERHEAD + (data[off + 6] | data[off + 7] << 8)
    return off


def _paced(head: bytes, frames: bytes, n_frames: int) -> list[tuple[float, bytes]]:
    """As a gateway reads a node: the handshake, then each 1 s frame 0.1 s after its last sample."""
    size = len(frames) // n_frames
    return [(0.0, head)] + [(k + 1.0, frames[k * size:(k + 1) * size]) for k in range(n_frames)]


def _node_chunks(mux_channels: tuple[int, int], n_frames: int, seed: int) -> list[tuple[float, bytes]]:
    """A two-sensor node as a gateway reads it: the handshake, then each 1 s frame 0.1 s
    after its last sample."""
    chans = [(k, wire.CHIP_BMP390, 0, m, 0x77, 6) for k, m in enumerate(mux_channels)]
    hello = wire.frame(wire.T_HELLO, 0, wire.hello_payload("0.1.0", "synthetic", 30, 100_000, 10, chans))
    calib = b"".join(wire.frame(wire.T_CALIB, 1 + k, wire.calib_payload(k, wire.CHIP_BMP390, wiregen.BMP3_CALIB))
                     for k in range(2))
    frames = wiregen.samples(n_frames, 2, seq=3, seed=seed)
    size = len(frames) // n_frames
    return [(0.0, hello + calib)] + [(k + 1.0, frames[k * size:(k + 1) * size]) for k in range(n_frames)]


def test_a_site_on_two_nodes_is_weighed_on_one_time_axis(tmp_path, capsys):
    """Two nodes of one site (four modules, two sensors each) started 100 s apart: the site
    is read from the store with both, the second node's samples moved onto the first's
    clock by the gateways' receipt times."""
    from leakmon.cli import dbsource as session

    lite = SqliteStore(tmp_path / "s.sqlite")
    store_chunks([lite], "mod-a", _node_chunks((0, 1), 400, 1))
    store_chunks([lite], "mod-b", _node_chunks((2, 3), 400, 2), t0_us=T0_US + 100_000_000)
    lite.close()
    args = ["--store", str(tmp_path / "s.sqlite"), "--node", "mod-a", "--node", "mod-b"]
    code, out, err = run(capsys, "analyze", *args, "--site", STATION, "--json")
    assert code == 0, err
    objs = json_objects(out)
    assert sorted((o["node"], o["channel"], o["segment"]) for o in objs if o["kind"] == "sensor") == \
        [("mod-a", 0, "zvezda"), ("mod-a", 1, "zarya"), ("mod-b", 0, "unity"), ("mod-b", 1, "destiny")], objs
    assert [o["kind"] for o in objs].count("segment") == 4
    ns = [session.load_db_series(_ns(tmp_path), n) for n in ("mod-a", "mod-b")]
    series, _ = session.combine(ns)
    shift = series[256][0][0] - ns[1].series[0][0][0]
    assert abs(shift - 100.0) < 1e-6, shift
    code, out, err = run(capsys, "analyze", *args, "--site", STATION, "--segment", "zvezda", "--json")
    assert code == 0, err
    assert [(o["node"], o["segment"]) for o in json_objects(out)] == [("mod-a", "zvezda")], out
    # two nodes with a sensor at the same address: the site cannot place them
    lite = SqliteStore(tmp_path / "s.sqlite")
    store_chunks([lite], "mod-c", _node_chunks((0, 1), 50, 3))
    lite.close()
    code, out, err = run(capsys, "analyze", "--store", str(tmp_path / "s.sqlite"), "--node", "mod-a", "--node",
                         "mod-c", "--site", STATION)
    assert code == 1 and "both have a sensor" in one_error_line(err)


TWIN_SITE = """
name = "twins"
[[segments]]
name = "left"
volume_m3 = 10.0
[[segments]]
name = "right"
volume_m3 = 20.0
[[hatches]]
name = "h"
between = ["left", "right"]
initially = "closed"
[[sensors]]
chip = "BMP390"
addr = 0x77
segment = "left"
node = "twin-l"
[[sensors]]
chip = "BMP390"
addr = 0x77
segment = "right"
node = "twin-r"
"""


def test_a_site_file_naming_its_nodes_chooses_them(tmp_path, capsys):
    """Two nodes wired alike (one BMP390 at 0x77 each): the site file says which node is
    in which segment, and `analyze --site` reads those nodes without --node."""
    lite = SqliteStore(tmp_path / "s.sqlite")
    store_chunks([lite], "twin-l", _paced(wiregen.handshake(1), wiregen.samples(120, seq=2, seed=4), 120))
    store_chunks([lite], "twin-r", _paced(wiregen.handshake(1), wiregen.samples(120, seq=2, seed=5), 120))
    store_chunks([lite], "other", [(0.0, wiregen.capture(30, seed=6))])
    # the operator opened the hatch 60 s in (`gateway --notes`: "twin-r hatch open h"), and wrote a remark
    batch = ingest.Batch()
    for seq, text in ((1, "open h"), (2, "the door squeaks")):
        ingest.add(batch, envelope.topic("twin-r", "note"), envelope.pack_json(
            "twin-r", 7, seq, T0_US + 60_000_000 + seq, {"kind": "hatch", "text": text}))
    lite.write(batch)
    lite.close()
    site = tmp_path / "twins.toml"
    site.write_text(TWIN_SITE)
    store = ["--store", str(tmp_path / "s.sqlite")]
    code, out, err = run(capsys, "analyze", *store, "--site", str(site), "--json")
    assert code == 0, err
    objs = json_objects(out)
    assert sorted((o["node"], o["segment"]) for o in objs if o["kind"] == "sensor") == \
        [("twin-l", "left"), ("twin-r", "right")]
    assert [o["segment"] for o in objs if o["kind"] == "segment"] == ["left", "right"]
    assert "node other" not in err and "node twin-l:" in err
    code, out, err = run(capsys, "analyze", *store, "--site", str(site), "--json", "--hatches", "operator")
    assert code == 0, err
    objs = json_objects(out)
    assert objs[2]["hatch_states_from"] == "operator" and "not a hatch move" in err, (objs[2], err)
    groups = [(o["config"], o["segments"], o["t_start_s"], o["t_stop_s"]) for o in objs if o["kind"] == "group"]
    # each frame arrives 0.1 s after its last sample: the move at 60 s of gateway time is 59.9 s of device time
    assert [g[:2] for g in groups] == [(0, ["left"]), (0, ["right"]), (1, ["left", "right"])], groups
    assert abs(groups[0][3] - 59.9) < 0.15, groups
    code, out, err = run(capsys, "analyze", *store, "--site", str(site), "--segment", "right", "--json")
    assert code == 0, err
    assert [(o["node"], o["segment"]) for o in json_objects(out)] == [("twin-r", "right")]
    assert "node twin-l" not in err  # only the segment's node was read
    # a node the site does not name, at an address only named sensors have: refused, in one line
    code, out, err = run(capsys, "analyze", *store, "--node", "twin-l", "--node", "other", "--site", str(site))
    assert code == 1 and "no sensor of node other" in one_error_line(err)
    code, out, err = run(capsys, "analyze", *store, "--site", str(site), "--segment", "middle")
    assert code == 1 and "no such segment" in one_error_line(err)
    # export of both: a node column, each node's rows as its own export gives them
    for n in ("twin-l", "twin-r"):
        assert run(capsys, "export", *store, "--node", n, "-o", str(tmp_path / f"{n}.csv"))[0] == 0
    code, _, err = run(capsys, "export", *store, "--node", "twin-l", "--node", "twin-r", "-o", str(tmp_path / "b.csv"))
    assert code == 0, err
    both = (tmp_path / "b.csv").read_text().splitlines()
    assert both[0] == "node," + (tmp_path / "twin-l.csv").read_text().splitlines()[0]
    assert both[1:] == [f"{n},{r}" for n in ("twin-l", "twin-r")
                        for r in (tmp_path / f"{n}.csv").read_text().splitlines()[1:]]
    pytest.importorskip("pyarrow")
    code, _, err = run(capsys, "export", *store, "--node", "twin-l", "--node", "twin-r", "--to", "parquet",
                       "-o", str(tmp_path / "b.parquet"))
    assert code == 0, err
    import pyarrow.parquet as pq

    table = pq.read_table(tmp_path / "b.parquet")
    assert table.column("node").to_pylist() == [r.split(",", 1)[0] for r in both[1:]]
    assert table.column("pressure_pa").to_pylist() == [float(r.split(",")[3]) for r in both[1:]]


def _ns(tmp_path: Path):
    import argparse

    return argparse.Namespace(db=None, store=str(tmp_path / "s.sqlite"), db_password_file=None, t_from=None,
                              t_to=None)


def test_the_reader_role_is_refused_a_write(db):
    import psycopg

    with psycopg.connect(db.url("leakmon_reader"), password=db.password("leakmon_reader"), autocommit=True) as c:
        assert c.execute("SELECT count(*) FROM leakmon.frames").fetchone() == (0,)
        for q in ("INSERT INTO leakmon.notes VALUES ('x', 1, 1, now(), 'note', 't', '{}')",
                  "DELETE FROM leakmon.frames", "CREATE TABLE leakmon.mine (x int)"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                c.execute(q)


def one_error_line(err: str) -> str:
    lines = [ln for ln in err.strip().splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("leakmon: ") and "Traceback" not in err, err
    return lines[0]


def test_bad_addresses_nodes_and_ranges_are_one_line(stored, db, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    pg = stored["pg"]
    cases = [
        (["analyze", *pg, "--node", "nope"], "no frames of node 'nope' stored (nodes: st1)"),
        (["export", *stored["lite"], "--node", "nope"], "no frames of node 'nope' stored (nodes: st1)"),
        (["analyze", *pg, "--node", "st1", "--from", "2020-01-01", "--to", "2020-01-02"], "has no frames stored"),
        (["export", *stored["lite"], "--node", "st1", "--until", "2020-01-02"], "has no frames stored"),
        (["analyze", *pg, "--node", "st1", "--from", "2026-13-01"], "not an ISO time"),
        (["analyze", "--store", str(tmp_path / "none.sqlite"), "--node", "st1"], "no such store"),
        (["analyze", "--db", db.url("leakmon_reader").replace(str(db.pg.port), "1"), "--node", "st1"],
         "cannot reach"),
        (["analyze", "--db", db.url("leakmon_reader") + "x", "--node", "st1"], "cannot reach"),
        (["analyze", *pg], "--node"),
        (["analyze", "--db", "postgresql://leakmon_reader:secret@127.0.0.1/x", "--node", "st1"], "password in the URL"),
        (["export", *pg, "--node", "st1", "--node", "st2"], "no frames of node 'st2' stored (nodes: st1)"),
    ]
    (tmp_path / "junk.sqlite").write_bytes(b"not a database at all" * 100)
    cases.append((["export", "--store", str(tmp_path / "junk.sqlite"), "--node", "st1"], "not a leakmon store"))
    for argv, needle in cases:
        code, _, err = run(capsys, *argv)
        assert code == 1 and needle in one_error_line(err), (argv, err)
    assert not (tmp_path / "nope.csv").exists()
    # a wrong password: refused, in one line, and the password shows nowhere
    monkeypatch.setenv("PGPASSWORD", "wrong-" + db.password("leakmon_reader"))
    code, out, err = run(capsys, "analyze", *pg, "--node", "st1")
    assert code == 1 and "refused the login" in one_error_line(err)
    # the writer may not read history back
    monkeypatch.setenv("PGPASSWORD", db.password("leakmon_writer"))
    code, out, err = run(capsys, "export", "--db", db.url("leakmon_writer"), "--node", "st1", "-o", "-")
    assert code == 1 and "may not read frames" in one_error_line(err)


def test_the_password_is_in_no_argument_and_no_output(stored, db, tmp_path):
    """As a user runs it: the password comes from a file, and neither ps nor the output shows it."""
    pw = tmp_path / "pw"
    pw.write_text(db.password("leakmon_reader") + "\n")
    pw.chmod(0o600)
    env = {k: v for k, v in os.environ.items() if k != "PGPASSWORD"}
    p = subprocess.run(leakmon_cmd("analyze", *stored["pg"], "--db-password-file", str(pw), "--node", "st1"),
                       capture_output=True, text=True, env=env, timeout=120)
    assert p.returncode == 0, p.stderr
    assert db.password("leakmon_reader") not in p.stdout + p.stderr + " ".join(p.args)
    assert "leak rate=" in p.stdout


def test_postgres_rows_come_in_batches_from_a_server_side_cursor(stored, db):
    """Memory stays bounded: mid-range, the reader's session is fetching a batch from its
    cursor, not holding the result of one big SELECT."""
    from leakmon.fleet import history

    rows = history.pg_rows(db.url("leakmon_reader"), db.password("leakmon_reader"), "st1", 0, 2**62, batch_rows=50)
    taken = [next(rows) for _ in range(120)]
    try:
        assert [r.seq for r in taken] == sorted(r.seq for r in taken)
        (last,) = db.query("SELECT query FROM pg_stat_activity WHERE usename = 'leakmon_reader' "
                           "AND datname = current_database()")
        assert last[0].startswith("FETCH FORWARD 50 FROM") and "leakmon_history" in last[0], last
        total = db.query("SELECT count(*) FROM leakmon.frames WHERE node_id = 'st1'")[0][0]
        assert total > 200
    finally:
        rows.close()
    every = history.pg_rows(db.url("leakmon_reader"), db.password("leakmon_reader"), "st1", 0, 2**62, batch_rows=50)
    assert sum(1 for r in every if r.in_range) == total
