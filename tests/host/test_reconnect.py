"""The reader thread and reconnects, on a scripted fake port: the gap reported after
the port vanishes and returns matches what the fake node sent meanwhile."""

from __future__ import annotations

import pytest
import serial
import wiregen
from leakmon import wire
from leakmon.errors import TransportError
from leakmon.link.node import Node
from leakmon.link.reconnect import Gap, ReconnectingReader
from leakmon.wire.stream import SampleBlock

ROWS, PERIOD_US = 10, 100_000


class FakeNode:
    """A node that keeps sampling whether or not a host listens: its k-th SAMPLES
    frame starts at device time k s; every frame it sends takes the next seq."""

    def __init__(self) -> None:
        self.seq = 0
        self.k = 0

    def handshake(self) -> bytes:
        out = wiregen.handshake(seq=self.seq)  # HELLO and one CALIB
        self.seq += 2
        return out

    def frames(self, n: int) -> bytes:
        out = wiregen.samples(n, rows=ROWS, period_us=PERIOD_US, seq=self.seq,
                                t0_us=self.k * ROWS * PERIOD_US, seed=self.k)
        self.seq += n
        self.k += n
        return out


class FakePort:
    """Serves scripted bytes, answers INFO; reads fail like a vanished USB device
    once the bytes run out (if vanish)."""

    def __init__(self, node: FakeNode, data: bytes, vanish: bool) -> None:
        self.node = node
        self.buf = bytearray(data)
        self.vanish = vanish

    @property
    def in_waiting(self) -> int:
        return len(self.buf)

    def read(self, n: int) -> bytes:
        if not self.buf and self.vanish:
            raise serial.SerialException("device reports readiness to read but returned no data")
        out = bytes(self.buf[:n])
        del self.buf[:n]
        return out

    def write(self, data: bytes) -> int:
        if len(data) >= 4 and data[3] == wire.C_INFO:
            self.buf += self.node.handshake()
        return len(data)

    def close(self) -> None:
        pass


def scripted_node(missed: int, refusals: int) -> tuple[Node, dict[str, int]]:
    """A node behind a port that vanishes after 5 frames, refuses `refusals` reopens,
    and comes back after the node sent `missed` frames nobody read."""
    fake = FakeNode()
    first = FakePort(fake, fake.handshake() + fake.frames(5), vanish=True)
    attempts = {"n": 0}

    def opener() -> FakePort:
        attempts["n"] += 1
        if attempts["n"] <= refusals:
            raise TransportError("cannot open /dev/fake: no such device")
        fake.frames(missed)  # sent while unplugged: lost
        port = FakePort(fake, b"", vanish=False)
        port.buf += fake.frames(4)
        return port

    return Node(first, opener), attempts  # type: ignore[arg-type]


@pytest.mark.parametrize("missed", [0, 3, 17])
def test_reconnect_reports_the_frames_and_device_time_lost(missed):
    node, attempts = scripted_node(missed, refusals=2)
    node.handshake(timeout_s=1)
    gaps: list[Gap] = []
    lost: list[TransportError] = []
    reader = ReconnectingReader(node, retry_s=0, on_lost=lost.append, on_gap=gaps.append)
    blocks: list[SampleBlock] = []
    for _ in range(50):
        blocks += [i for i in reader.read() if isinstance(i, SampleBlock)]
        if gaps and len(blocks) >= 9:
            break
    assert len(lost) == 1 and attempts["n"] == 3
    assert len(gaps) == 1
    g = gaps[0]
    assert g.lost_frames == missed and not g.node_restarted
    assert g.device_s == pytest.approx(missed * ROWS * PERIOD_US * 1e-6, abs=1e-9)


def test_give_up_raises_one_transport_error():
    node, _ = scripted_node(0, refusals=10**6)
    node.handshake(timeout_s=1)
    now = [0.0]

    def clock() -> float:
        now[0] += 1.0
        return now[0]

    reader = ReconnectingReader(node, retry_s=0, give_up_s=5, clock=clock)
    with pytest.raises(TransportError, match="not back within 5 s"):
        for _ in range(50):
            reader.read()
