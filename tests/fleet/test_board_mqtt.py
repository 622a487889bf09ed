"""Boards with a network publish straight to the broker (issue 15): the real firmware in
the MicroPython unix port (the virtual board) with micropython-lib's umqtt.simple, put on
it by `leakmon flash --mqtt`, a private Mosquitto with a board ACL from
leakmon.fleet.brokerconf, and `leakmon serve` storing into its embedded SQLite file.

Every frame the board sent on its USB link is checked, by sequence number and byte for
byte, against what serve stored; and the refusals of the security model are checked
against the real broker: a wrong password, another node's topic.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import serial
import servers
from fleet.fleetkit import leakmon_cmd, wait_until

from leakmon import wire
from leakmon.deploy.netconfig import default_lib_dir
from leakmon.fleet.creds import parse_broker
from leakmon.fleet.watch import NodeWatch
from leakmon.wire import messages
from leakmon.wire.stream import SampleBlock
from leakmon.fleet.brokerconf import acl_lines
from leakmon.sim import scenario
from leakmon.sim.board import VirtualBoard, vboard_dir
from leakmon.wire.framing import FrameDecoder

HERE = Path(__file__).resolve().parent
FIRMWARE = HERE.parents[1] / "firmware"
BOARDS = {"vb-1": "vb-1", "vb-2": "vb-2"}  # MQTT user -> the one node id it may publish


def _require(what: str, found: object) -> None:
    if found:
        return
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{what} is missing (scripts/setup.sh installs it)")
    pytest.skip(f"{what} is missing (scripts/setup.sh installs it)")


@pytest.fixture
def micropython() -> str:
    mp = shutil.which("micropython") or str(Path(sys.executable).parent / "micropython")
    _require("the MicroPython unix port", Path(mp).exists())
    _require("umqtt.simple (micropython-umqtt.simple from PyPI)", (default_lib_dir() / "umqtt" / "simple.py").exists())
    return mp


@pytest.fixture
def broker(server_root: Path) -> Iterator[servers.Broker]:
    if not servers.have_mosquitto():
        servers.require("Mosquitto")
    users = {u: secrets.token_urlsafe(12) for u in [*BOARDS, "serve", "reader"]}
    b = servers.Broker(Path(tempfile.mkdtemp(dir=server_root)), users,
                       acl_lines({}, consumers=["serve"], readers=["reader"], boards=BOARDS))
    b.folder.chmod(0o755)
    b.start()
    yield b
    b.stop()


def _serve(procs, broker: servers.Broker, store: Path):
    p = procs("serve", ["serve", "--broker", f"mqtt://serve@127.0.0.1:{broker.port}", "--store", str(store),
                        "--client-id", "serve-1"], {"LEAKMON_MQTT_PASSWORD": broker.users["serve"]})
    p.wait_log("subscribed")
    return p


def _stored(store: Path, node_id: str) -> list[tuple[int, int, int, bytes, int]]:
    """(boot, seq, wire_seq, frame, historical) of a node, in key order."""
    if not store.exists():
        return []
    db = sqlite3.connect(f"file:{store}?mode=ro", uri=True)
    try:
        return db.execute("SELECT boot, seq, wire_seq, frame, historical FROM frames WHERE node_id = ? "
                          "ORDER BY boot, seq", (node_id,)).fetchall()
    except sqlite3.OperationalError:  # serve has not made its tables yet
        return []
    finally:
        db.close()


def _frames(data: bytes) -> list[tuple[int, bytes]]:
    """(wire seq, frame bytes) of every whole frame in a USB capture."""
    return [(f.seq, wire.frame(f.msg_type, f.seq, f.payload)) for f in FrameDecoder().feed(data)]


def _flash_dir(tmp_path: Path, user: str, port: int, password: str, node_id: str | None = None,
               speed: float = 20, queue: int = 16) -> Path:
    """A board's flash folder as `leakmon flash --mqtt` leaves it (for the runs that need no pty)."""
    d = tmp_path / "flash"
    d.mkdir()
    for f in FIRMWARE.glob("*.py"):
        if f.name != "__init__.py":
            shutil.copy(f, d)
    shutil.copytree(default_lib_dir() / "umqtt", d / "umqtt")
    cfg = {"period_us": 100000, "rows_per_frame": 10, "autostart": True,
           "mqtt": {"host": "127.0.0.1", "port": port, "user": user, "node_id": node_id or user,
                    "password_file": "mqtt.pw", "queue": queue}}
    (d / "config.json").write_text(json.dumps(cfg))
    (d / "mqtt.pw").write_text(password + "\n")
    (d / "sim.json").write_text(json.dumps(scenario.load("steady_leak").sim_config(seed=4, speed=speed)))
    return d


def _run_board(micropython: str, flash: Path, seconds: float, during=lambda: None) -> bytes:
    """Run main.py on the unix port in flash for a while (calling during() meanwhile);
    what it sent on its USB link."""
    return _run_boards(micropython, [flash], seconds, during)[0]


def _run_boards(micropython: str, flashes: list[Path], seconds: float, during=lambda: None) -> list[bytes]:
    """Several boards at once, each as _run_board runs one (they share nothing but the
    broker): what each sent on its USB link."""
    env = dict(os.environ, MICROPYPATH=f"{vboard_dir()}::.frozen")
    procs: list[subprocess.Popen[bytes]] = []
    try:
        for flash in flashes:
            with open(flash / "usb.bin", "wb") as out:
                procs.append(subprocess.Popen([micropython, "main.py"], cwd=flash, env=env, stdout=out,
                                              stderr=subprocess.STDOUT))
        start = time.monotonic()
        during()
        time.sleep(max(0.0, seconds - (time.monotonic() - start)))
    finally:
        for p in procs:
            p.kill()
            p.wait()
    return [(flash / "usb.bin").read_bytes() for flash in flashes]


def test_virtual_board_flashed_with_mqtt_publishes_every_frame_once(micropython, broker, procs, tmp_path: Path) -> None:
    store = tmp_path / "lab.sqlite"
    _serve(procs, broker, store)
    password = broker.users["vb-1"]
    with VirtualBoard(scenario.load("steady_leak"), seed=3, speed=20) as vb:
        res = subprocess.run(leakmon_cmd("flash", "--port", vb.port, "--source", "--mqtt",
                                         f"mqtt://vb-1@127.0.0.1:{broker.port}"),
                             env={**os.environ, "LEAKMON_MQTT_PASSWORD": password}, capture_output=True, text=True,
                             timeout=180)
        out = res.stdout + res.stderr
        assert res.returncode == 0, out
        assert "mqtt.pw" in out and "umqtt/simple.py" in out and "is running" in out, out
        assert password not in out
        assert (vb.flash_dir / "mqtt.pw").read_text().strip() == password
        assert password not in (vb.flash_dir / "config.json").read_text()
        # What the board sends on USB from now on, for 6 s (120 s of device time at 20x).
        usb = b""
        with serial.serial_for_url(vb.port, timeout=0.1) as port:
            deadline = time.monotonic() + 6
            while time.monotonic() < deadline:
                usb += port.read(65536)
        sent = _frames(usb)
        assert len(sent) >= 40, len(sent)
        last = sent[-1][0]
        # The board is still running: wait until serve has stored what it sent on USB.
        assert wait_until(lambda: any(r[2] == last for r in _stored(store, "vb-1")), 30), _stored(store, "vb-1")[-3:]
    rows = _stored(store, "vb-1")
    boots = {r[0] for r in rows}
    assert len(boots) == 1, boots  # one boot: the flashed firmware's (the shipped one has no broker)
    seqs = [r[1] for r in rows]
    # Every frame once, in order: seq 0 (the boot event) to the last, no gap, no duplicate.
    assert seqs == list(range(len(seqs))), (seqs[:5], seqs[-5:], len(seqs))
    by_wire = {r[2]: r[3] for r in rows}
    for wseq, frame in sent:
        assert by_wire.get(wseq) == frame, f"frame {wseq} stored differs from what the board sent"
    assert not any(r[4] for r in rows)  # nothing was sent after an outage
    first = FrameDecoder().feed(rows[0][3])[0]
    assert first.msg_type == wire.T_EVENT and first.payload[4] == wire.EV_BOOT


def test_board_refusals_wrong_password_and_another_nodes_topic(micropython, broker, procs, tmp_path: Path) -> None:
    store = tmp_path / "lab.sqlite"
    _serve(procs, broker, store)
    for d in "abc":
        (tmp_path / d).mkdir()
    # The forging board and the refused one side by side, each for as long as it ran alone:
    # they share the client id leakmon-vb-2, but Mosquitto checks a password before it
    # looks for a session to take over, so a refused CONNECT cannot cut the forger's.
    forged, wrong = _run_boards(micropython, [
        # vb-1's own credentials, but it names itself vb-2: the broker drops every publish.
        _flash_dir(tmp_path / "a", "vb-1", broker.port, broker.users["vb-1"], node_id="vb-2"),
        # A wrong password: the broker refuses the connection; the board says so on USB.
        _flash_dir(tmp_path / "b", "vb-2", broker.port, "not-the-password"),
    ], 4)
    # The control, after them (with the forger's client id it would take its session over):
    # vb-2 with its own password is stored.
    good = _run_board(micropython, _flash_dir(tmp_path / "c", "vb-2", broker.port, broker.users["vb-2"]), 3)
    assert len(_frames(forged)) > 10 and len(_frames(wrong)) > 10  # both boards ran and sampled
    assert b"mqtt:" not in forged  # the forging board connected and published: the ACL dropped it all
    good_sent = _frames(good)
    assert wait_until(lambda: len(_stored(store, "vb-2")) >= len(good_sent) - 16, 20)
    time.sleep(1.0)  # anything else would have arrived by now
    rows = _stored(store, "vb-2")
    assert len({r[0] for r in rows}) == 1  # only the good board's boot: nothing of the forged one
    assert not _stored(store, "vb-1")
    refused = [f for f in FrameDecoder().feed(wrong) if f.msg_type == wire.T_EVENT and b"refused user vb-2" in f.payload]
    assert len(refused) == 1, "the refusal is reported once on the USB link"
    assert b"not-the-password" not in wrong and broker.users["vb-2"].encode() not in good


def test_sampling_stays_heap_free_while_publishing(micropython, broker, run_mp, tmp_path: Path) -> None:
    """tick() under heap_lock with the tee on a live broker connection; service() between
    ticks publishes, and what a published frame allocates (inside umqtt) is measured."""
    (tmp_path / "mqtt.pw").write_text(broker.users["vb-1"] + "\n")
    shutil.copytree(default_lib_dir() / "umqtt", tmp_path / "umqtt")
    (tmp_path / "sim.json").write_text(json.dumps(scenario.load("steady_leak").sim_config(seed=5, speed=0)))
    res = run_mp(HERE / "mp_board_mqtt.py", str(broker.port), "500", "vb-1", cwd=tmp_path)
    err = res.stderr.decode()
    assert res.returncode == 0 and err.startswith("OK ticks=500"), err + res.stdout.decode(errors="replace")[-300:]
    stats = dict(kv.split("=") for kv in err.split()[1:])
    assert int(stats["published"]) >= 500 and int(stats["dropped"]) == 0 and stats["connects"] == "1", err
    print(f"board MQTT: {stats['alloc_per_frame']} bytes allocated per published frame (inside umqtt), "
          f"0 per sample under heap_lock")


def test_board_reconnects_after_a_network_cut_and_loses_nothing_its_queue_held(micropython, broker, procs,
                                                                              tmp_path: Path) -> None:
    """The network between board and broker cut for 3 s (a relay that drops every
    connection and refuses new ones): the board keeps sampling, queues, reconnects with
    backoff, and sends the queued frames flagged historical; serve stores every one."""
    from fleet.fleetkit import CuttableProxy

    store = tmp_path / "lab.sqlite"
    _serve(procs, broker, store)
    relay = CuttableProxy(broker.port)
    flash = _flash_dir(tmp_path, "vb-1", relay.port, broker.users["vb-1"], speed=5, queue=64)

    def live_again() -> bool:
        """The queue sent and 10 frames stored live after it: what 14 s of run used to wait for."""
        rows = _stored(store, "vb-1")
        hist = [k for k, r in enumerate(rows) if r[4]]
        return bool(hist) and len(rows) - 1 - hist[-1] >= 10

    def cut() -> None:
        assert wait_until(lambda: len(_stored(store, "vb-1")) >= 5, 15)
        relay.cut()
        time.sleep(3)
        relay.restore()
        assert wait_until(live_again, 20), _stored(store, "vb-1")[-3:]

    usb = _run_board(micropython, flash, 0.0, cut)
    sent = _frames(usb)
    rows = _stored(store, "vb-1")
    assert wait_until(lambda: len(_stored(store, "vb-1")) == len(rows), 2)  # settled: the board is gone
    rows = _stored(store, "vb-1")
    seqs = [r[1] for r in rows]
    assert seqs == list(range(len(seqs))), (len(seqs), seqs[-5:])
    # Publishing went on after the cut: the last frames stored are the board's last but its queue's worth.
    assert len(rows) >= len(sent) - 16, (len(rows), len(sent))
    by_wire = {r[2]: r[3] for r in rows}
    assert all(by_wire[w] == f for w, f in sent[:len(rows)])
    historical = [r[1] for r in rows if r[4]]
    # the 3 s cut and the backoff's next try (<= 7 s at 5 frames/s), not the frames before or after
    assert 5 <= len(historical) <= 50 and len(rows) - len(historical) >= 10, (len(historical), len(rows))
    assert historical == list(range(historical[0], historical[-1] + 1))  # one outage, one run of them
    notes = [f.payload[f.payload.find(b"mqtt:"):] for f in FrameDecoder().feed(usb) if f.msg_type == wire.T_EVENT and b"mqtt:" in f.payload]
    assert any(b"lost" in n or b"cannot reach" in n for n in notes), notes


def test_a_reader_joining_after_the_board_started_decodes_from_its_retained_handshake(
        micropython, broker, tmp_path: Path) -> None:
    """A board publishing straight keeps its HELLO + CALIBs retained, as a gateway does:
    a page opened long after the board's start (no new HELLO will come) decodes its frames
    at once, compensated. Without the retained handshake the watch waits in vain."""
    flash = _flash_dir(tmp_path, "vb-1", broker.port, broker.users["vb-1"])
    seen: dict[str, object] = {}

    def join_late() -> None:
        addr = parse_broker(f"mqtt://reader@127.0.0.1:{broker.port}")
        # The board has been publishing for a while: its HELLO went out long before we subscribe
        # (5 kB of USB: the HELLO and ~55 frames after it, 3 s at 20x).
        assert wait_until(lambda: (flash / "usb.bin").stat().st_size > 5_000, 30)
        w = NodeWatch(addr, broker.users["reader"], "vb-1")
        w.connect()
        try:
            hello = w.wait_hello(20.0, samples=True)
            blocks: list[SampleBlock] = []
            assert wait_until(lambda: bool(blocks.extend(i for i in w.read() if isinstance(i, SampleBlock))
                                            or len(blocks) >= 3), 20)
            seen.update(hello=hello, blocks=blocks, lost=w.lost_frames, refused=w.refused)
        finally:
            w.close()

    usb = _run_board(micropython, flash, 0.0, join_late)
    hello = seen["hello"]
    assert isinstance(hello, messages.Hello) and [c.chip_name for c in hello.channels] == ["BMP390"]
    blocks = seen["blocks"]
    assert isinstance(blocks, list) and len(blocks) >= 3
    pressure = np.concatenate([b.pressure_pa for b in blocks])
    # steady_leak's chamber sits near one atmosphere: compensated by the retained CALIBs.
    assert np.all((pressure > 90_000.0) & (pressure < 110_000.0)), pressure[:5]
    assert seen["lost"] == 0 and seen["refused"] == 0
    hellos = [f for f in FrameDecoder().feed(usb) if f.msg_type == wire.T_HELLO]
    assert len(hellos) == 1  # the board said HELLO once, before the reader joined


def test_virtual_board_on_a_network_runs_with_nobody_on_its_usb(micropython, broker, procs, tmp_path: Path) -> None:
    """`leakmon sim --drop-unread`: with nobody reading its port the virtual board goes on
    (as a board's USB with no host) and publishes far past what the port could buffer
    (64 kB in the supervisor plus the pty's), where it would otherwise wait for a reader."""
    store = tmp_path / "lab.sqlite"
    _serve(procs, broker, store)
    # 1000x: the 300 kB stored below (~3,500 frames, 18 s at 200x) come in a few seconds.
    with VirtualBoard(scenario.load("steady_leak"), seed=6, speed=1000, drop_unread=True) as vb:
        res = subprocess.run(leakmon_cmd("flash", "--port", vb.port, "--source", "--mqtt",
                                         f"mqtt://vb-2@127.0.0.1:{broker.port}"),
                             env={**os.environ, "LEAKMON_MQTT_PASSWORD": broker.users["vb-2"]},
                             capture_output=True, text=True, timeout=180)
        assert res.returncode == 0, res.stdout + res.stderr
        stored_bytes = lambda: sum(len(r[3]) for r in _stored(store, "vb-2"))  # noqa: E731
        assert wait_until(lambda: stored_bytes() > 300_000, 90), stored_bytes()
    seqs = [r[1] for r in _stored(store, "vb-2")]
    assert seqs == list(range(len(seqs)))


@pytest.mark.parametrize(("args", "env", "says"), [
    (["--mqtt", "mqtt://vb-1@127.0.0.1"], {}, "no password for vb-1"),
    (["--mqtt", "mqtt://vb-1:hunter2@127.0.0.1"], {"LEAKMON_MQTT_PASSWORD": "x"}, "a password in the URL"),
    (["--mqtt", "mqtts://vb-1@127.0.0.1"], {"LEAKMON_MQTT_PASSWORD": "x"}, "plain MQTT"),
    (["--mqtt", "mqtt://127.0.0.1"], {"LEAKMON_MQTT_PASSWORD": "x"}, "name the board's MQTT user"),
    (["--mqtt", "mqtt://vb-1@127.0.0.1", "--node-id", "a/b"], {"LEAKMON_MQTT_PASSWORD": "x"}, "node id 'a/b'"),
    (["--mqtt", "mqtt://vb-1@127.0.0.1", "--mqtt-lib", "/nonexistent"], {"LEAKMON_MQTT_PASSWORD": "x"},
     "no MQTT client for the board"),
    (["--mqtt", "mqtt://vb-1@127.0.0.1", "--wlan-ssid", "lab"], {"LEAKMON_MQTT_PASSWORD": "x"}, "WLAN key"),
    (["--wlan-ssid", "lab"], {}, "go with --mqtt"),
])
def test_flash_mqtt_refuses_bad_settings_in_one_line(args: list[str], env: dict[str, str], says: str,
                                                     tmp_path: Path) -> None:
    clean = {k: v for k, v in os.environ.items() if k not in ("LEAKMON_MQTT_PASSWORD", "LEAKMON_WLAN_KEY")}
    res = subprocess.run(leakmon_cmd("flash", "--port", str(tmp_path / "no-such-port"), *args),
                         env={**clean, **env}, capture_output=True, text=True, timeout=60)
    assert res.returncode != 0 and says in res.stderr, res.stderr
    assert res.stderr.startswith("leakmon: ") and len(res.stderr.strip().splitlines()) == 1, res.stderr
    assert "hunter2" not in res.stderr + res.stdout


def test_shipped_config_and_acl_let_a_board_publish_only_its_own_node(micropython, server_root: Path,
                                                                      tmp_path: Path) -> None:
    """hardware/fleet/mosquitto.conf and acl.example as shipped: the board user chamber-9
    publishes its node; the same credentials under chamber-1's topics reach nobody."""
    import re

    from leakmon.fleet.creds import parse_broker
    from leakmon.fleet.mqttclient import connect, make_client

    if not servers.have_mosquitto():
        servers.require("Mosquitto")
    shipped = HERE.parents[1] / "hardware" / "fleet"
    folder = Path(tempfile.mkdtemp(dir=server_root))
    folder.chmod(0o755)
    users = {"chamber-9": secrets.token_urlsafe(12), "grafana": secrets.token_urlsafe(12)}
    broker = servers.Broker(folder, users, (shipped / "acl.example").read_text().splitlines())
    conf = (shipped / "mosquitto.conf").read_text()
    conf = conf.replace("/etc/mosquitto/leakmon.passwd", str(folder / "passwd"))
    conf = conf.replace("/etc/mosquitto/leakmon.acl", str(folder / "acl")).replace("/var/lib/mosquitto/", f"{folder}/")
    broker.raw_conf = re.sub(r"^listener 1883 127.0.0.1$", f"listener {broker.port} 127.0.0.1", conf, flags=re.M)
    broker.start()
    got: list[str] = []
    addr = parse_broker(f"mqtt://grafana@127.0.0.1:{broker.port}")
    reader = make_client(addr, users["grafana"], "t-grafana", clean_session=True)
    try:
        connect(reader, addr)
        reader.on_message = lambda c, u, m: got.append(m.topic)
        reader.subscribe("leakmon/#", 1)
        reader.loop_start()
        (tmp_path / "own").mkdir()
        (tmp_path / "other").mkdir()
        _, forged = _run_boards(micropython, [  # side by side, each as long as it ran alone
            _flash_dir(tmp_path / "own", "chamber-9", broker.port, users["chamber-9"]),
            _flash_dir(tmp_path / "other", "chamber-9", broker.port, users["chamber-9"], node_id="chamber-1"),
        ], 3)
        time.sleep(0.5)
    finally:
        reader.loop_stop()
        reader.disconnect()
        broker.stop()
    assert got.count("leakmon/chamber-9/frame") > 10 and "leakmon/chamber-9/info" in got, got[:5]
    assert len(_frames(forged)) > 10 and b"mqtt:" not in forged  # it ran, connected and published...
    assert not [t for t in got if "chamber-1" in t]  # ...to nobody

