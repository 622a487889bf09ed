"""A node on a POSIX serial port is read and written through poll(2) (link/portpoll.py), on
real pseudo-terminals: past descriptor 1024, where pyserial's select() refused every read
and write (a gateway of ~200 ports failed); a long wait that bytes end at once; a write
that cannot go out, bounded; a vanished device, one TransportError; spy:// still spies."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator

import pytest
import wiregen
from ptyboards import PtyBoards, descriptors_past
from leakmon.errors import TransportError
from leakmon.link.node import Node
from leakmon.wire.stream import SampleBlock

HIGH_FD = 1100


@pytest.fixture
def pty_board() -> Iterator[PtyBoards]:
    boards = PtyBoards(1)
    yield boards
    boards.close_all()


def answer_handshake(boards: PtyBoards, data: bytes) -> None:
    """The board's side, meanwhile: on the host's first command, its HELLO and calibrations."""
    threading.Thread(target=boards.answer_handshakes, args=([data], 5.0), daemon=True).start()


def test_a_port_past_descriptor_1024_handshakes_and_reads(pty_board):
    master, name = pty_board.masters[0], pty_board.names[0]
    with descriptors_past(HIGH_FD):
        node = Node.open(name)
        try:
            assert node.port.fd > 1024
            answer_handshake(pty_board, wiregen.handshake(2))
            hello = node.handshake(timeout_s=3.0)
            assert [c.channel for c in hello.channels] == [0, 1]
            os.write(master, wiregen.samples(3, channels=2, seq=3))
            blocks: list[SampleBlock] = []
            deadline = time.monotonic() + 3.0
            while len(blocks) < 6 and time.monotonic() < deadline:
                blocks += [it for it in node.read() if isinstance(it, SampleBlock)]
            assert len(blocks) == 6
        finally:
            node.close()


def test_bytes_end_a_long_wait_at_once(pty_board):
    master, name = pty_board.masters[0], pty_board.names[0]
    node = Node.open(name)
    node.wait_s = 30.0
    threading.Timer(0.2, os.write, (master, wiregen.handshake(1))).start()
    t0 = time.monotonic()
    items = node.read()
    node.close()
    assert time.monotonic() - t0 < 2.0
    assert items


def test_a_write_that_cannot_go_out_is_bounded(pty_board):
    node = Node.open(pty_board.names[0])
    t0 = time.monotonic()
    with pytest.raises(TransportError, match="Write timeout"):
        for _ in range(10000):  # the board reads nothing: the tty's buffer fills
            node._write(b"x" * 4096)
    node.close()
    assert time.monotonic() - t0 < 10.0


def test_a_write_waits_no_longer_than_the_ports_write_timeout(pty_board):
    """A port opened with its own write timeout keeps it on the poll path (before, every
    write waited the 2 s default, whatever the port said)."""
    node = Node.open(pty_board.names[0])
    node.port.write_timeout = 0.2
    with pytest.raises(TransportError, match="Write timeout"):
        for _ in range(10000):  # the board reads nothing: the tty's buffer fills
            t0 = time.monotonic()
            node._write(b"x" * 4096)
    last = time.monotonic() - t0
    node.close()
    assert 0.15 < last < 1.2, last


def test_a_vanished_device_is_one_transport_error(pty_board):
    name = pty_board.names[0]
    node = Node.open(name)
    pty_board.close(0)  # the board is gone: its pty with it
    with pytest.raises(TransportError, match="link lost"):
        for _ in range(50):
            node.read()
    node.close()


def test_a_spy_port_still_logs_what_it_reads(pty_board, tmp_path):
    """spy:// is a subclass of pyserial's Serial that logs in its own read(): not polled around it."""
    master, name = pty_board.masters[0], pty_board.names[0]
    log = tmp_path / "spy.txt"
    node = Node.open(f"spy://{name}?file={log}")
    os.write(master, wiregen.handshake(1))
    deadline = time.monotonic() + 3.0
    items = []
    while not items and time.monotonic() < deadline:
        items = node.read()
    node.close()
    assert items
    assert "RX" in log.read_text()


def test_off_linux_pyserial_reads_as_before(pty_board, monkeypatch):
    """Elsewhere (macOS's poll does not take ttys) nothing is polled: pyserial reads."""
    from leakmon.link import portpoll

    monkeypatch.setattr(portpoll, "_LINUX", False)
    master, name = pty_board.masters[0], pty_board.names[0]
    node = Node.open(name)
    assert portpoll.PortPoller.fds_of(node.port) is None
    os.write(master, wiregen.handshake(1))
    items: list[object] = []
    deadline = time.monotonic() + 3.0
    while not items and time.monotonic() < deadline:
        items = node.read()
    node.close()
    assert items
