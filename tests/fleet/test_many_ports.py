"""`leakmon gateway` on many serial ports, read by its one poll loop (fleet/portloop.py):
40 pseudo-terminals, each a node that answers the handshake and sends its frames. Every
frame of every node reaches a subscriber, in order; a node whose board vanishes is handed
back to its own thread to reconnect while the others keep flowing; SIGTERM stops it
cleanly with each node's count."""

from __future__ import annotations

import os
import secrets
import signal
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path

import pytest
import servers
import wiregen
from fleet.fleetkit import wait_until
from ptyboards import PtyBoards, descriptors_past

from leakmon.fleet import envelope
from leakmon.fleet.brokerconf import acl_lines
from leakmon.fleet.creds import parse_broker
from leakmon.fleet.mqttclient import connect, make_client, pump

NODES = 40
CHANNELS = 2
FRAMES = 30
GONE = 7  # this node's board vanishes after its frames


@pytest.fixture
def many_broker(server_root: Path):  # type: ignore[no-untyped-def]
    if not servers.have_mosquitto():
        servers.require("Mosquitto")
    ids = [f"m{k}" for k in range(NODES)]
    users = {u: secrets.token_urlsafe(12) for u in ("gw-m", "reader")}
    b = servers.Broker(Path(tempfile.mkdtemp(dir=server_root)), users, acl_lines({"gw-m": ids}, readers=["reader"]))
    b.folder.chmod(0o755)
    b.start()
    yield b
    b.stop()


class Boards(PtyBoards):
    """NODES boards that answer the handshake, then send FRAMES frames each, in turn."""

    def __init__(self) -> None:
        super().__init__(NODES)
        self.frames = [wiregen.samples(FRAMES, CHANNELS, seq=1 + CHANNELS, seed=k) for k in range(NODES)]
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            never = self.answer_handshakes([wiregen.handshake(CHANNELS)] * NODES, 60.0)
            assert not never, f"{never} nodes never asked for their handshake"
            one = len(self.frames[0]) // FRAMES
            for i in range(FRAMES):  # frame by frame, every node in turn
                for k, m in enumerate(self.masters):
                    os.write(m, self.frames[k][i * one : (i + 1) * one])
                time.sleep(0.02)
        except BaseException as e:  # noqa: BLE001 - reported by the test
            self.error = e


def test_a_gateway_of_many_ports_publishes_every_frame_and_survives_a_vanished_board(many_broker, procs, tmp_path):
    boards = Boards()
    seqs: dict[str, list[int]] = defaultdict(list)
    addr = parse_broker(f"mqtt://reader@127.0.0.1:{many_broker.port}")
    sub = make_client(addr, many_broker.users["reader"], "many-sub", clean_session=True)
    connect(sub, addr)
    lock = threading.Lock()

    def on_message(c, u, m) -> None:  # type: ignore[no-untyped-def]
        env = envelope.unpack(m.payload)
        with lock:
            seqs[env.node_id].append(env.seq)

    sub.on_message = on_message
    sub.subscribe(envelope.topic("+", "frame"), 1)
    sub.loop_start()
    args = ["gateway", "--broker", f"mqtt://gw-m@127.0.0.1:{many_broker.port}", "--no-store-confirm",
            "--spool", str(tmp_path / "spool")]
    for k, name in enumerate(boards.names):
        args += ["--port", name, "--node-id", f"m{k}"]
    gw = procs("gateway", args, {"LEAKMON_MQTT_PASSWORD": many_broker.users["gw-m"]})
    try:
        boards.thread.join(90)
        assert boards.error is None, boards.error
        every = NODES * (1 + CHANNELS + FRAMES)  # the handshake's frames too: all as received
        assert wait_until(lambda: sum(len(v) for v in seqs.values()) >= every, 30), (
            f"{sum(len(v) for v in seqs.values())} of {every} frames; {gw.log[-2000:]}")
        boards.close(GONE)
        gw.wait_log(f"node m{GONE}: link lost", 10)
        more = wiregen.samples(3, CHANNELS, seq=1 + CHANNELS + FRAMES, seed=99)
        os.write(boards.masters[0], more)  # the others still flow
        assert wait_until(lambda: len(seqs["m0"]) >= 1 + CHANNELS + FRAMES + 3, 10), gw.log[-2000:]
        gw.popen.send_signal(signal.SIGTERM)
        assert gw.wait(20) == 0, gw.log[-2000:]
    finally:
        sub.loop_stop()
        boards.close_all()
    for k in range(NODES):
        want = list(range(1 + CHANNELS + FRAMES + (3 if k == 0 else 0)))
        assert seqs[f"m{k}"] == want, f"node m{k}: {seqs[f'm{k}'][:8]}..."
    published = gw.published()
    assert published == {f"m{k}": len(seqs[f"m{k}"]) for k in range(NODES)}, published
    assert "Traceback" not in gw.log


def test_the_broker_connection_works_past_descriptor_1024(many_broker):
    """The ports take the low descriptors: a broker that comes (back) later gets a socket
    past 1024, where select() refused it and the gateway could never connect."""
    got: list[bytes] = []
    addr_r = parse_broker(f"mqtt://reader@127.0.0.1:{many_broker.port}")
    sub = make_client(addr_r, many_broker.users["reader"], "high-sub", clean_session=True)
    connect(sub, addr_r)
    sub.on_message = lambda c, u, m: got.append(m.payload)
    sub.subscribe(envelope.topic("m0", "frame"), 1)
    sub.loop_start()
    try:
        with descriptors_past(1100):
            addr = parse_broker(f"mqtt://gw-m@127.0.0.1:{many_broker.port}")
            c = make_client(addr, many_broker.users["gw-m"], "high-gw", clean_session=True)
            connect(c, addr)
            assert c.socket().fileno() > 1024
            c.publish(envelope.topic("m0", "frame"), b"past 1024", qos=1)
            deadline = time.monotonic() + 5.0
            while not got and time.monotonic() < deadline:
                assert pump(c, 0.1) == 0
            c.disconnect()
    finally:
        sub.loop_stop()
    assert got == [b"past 1024"]


def test_a_virtual_board_starts_past_descriptor_1024():
    from leakmon.sim import scenario as scenario_mod
    from leakmon.sim.board import VirtualBoard

    with descriptors_past(1100), VirtualBoard(scenario_mod.load("steady_leak"), 1, 0.0) as board:
        assert board.port
