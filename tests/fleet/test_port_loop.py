"""The port loop's hand-over (fleet/portloop.py) on real pseudo-terminals: a node's bytes
run its step in the loop; a lost port, a port the loop cannot wait on, and the loop's end
each give the node back with why; a node offered after the end is refused."""

from __future__ import annotations

import os
import threading
import time

import pytest
import wiregen
from ptyboards import PtyBoards

from leakmon.errors import LeakmonError, TransportError
from leakmon.fleet.portloop import PortLoop
from leakmon.link.node import Node


class Lent:
    """A node lent to the loop, as a NodeThread lends its own (fleet.portloop.Reading)."""

    def __init__(self, name: str) -> None:
        self._node = Node.open(name)
        self._node.wait_s = 0.0
        self.items: list[object] = []
        self.back = threading.Event()
        self.why: BaseException | None = None

    @property
    def node(self) -> Node:
        return self._node

    def step(self) -> bool:
        self.items += self._node.read()
        return False

    def check(self) -> None:
        pass

    def give_back(self, why: BaseException | None) -> None:
        self.why = why
        self.back.set()


@pytest.fixture
def loop():  # type: ignore[no-untyped-def]
    stop = threading.Event()
    lp = PortLoop(stop)
    lp.start()
    yield lp
    stop.set()
    lp.wake()
    lp.join(5)
    lp.close()


def test_bytes_run_the_step_and_a_lost_port_gives_the_node_back(loop):
    boards = PtyBoards(2)
    lent = [Lent(n) for n in boards.names]
    for r in lent:
        assert loop.hand_over(r)
    os.write(boards.masters[1], wiregen.handshake(1))
    deadline = time.monotonic() + 5
    while not lent[1].items and time.monotonic() < deadline:
        time.sleep(0.02)
    assert lent[1].items and not lent[0].items
    boards.close(0)
    assert lent[0].back.wait(5) and isinstance(lent[0].why, TransportError)
    assert not lent[1].back.is_set()  # the other is still the loop's
    loop.stop.set()
    loop.wake()
    assert lent[1].back.wait(5)  # let go before its port is closed
    for r in lent:
        r.node.close()
    boards.close_all()


def test_a_port_the_loop_cannot_wait_on_is_given_back_with_why(loop):
    boards = PtyBoards(1)
    r = Lent(boards.names[0])
    os.close(r.node.port.fd)  # closed under pyserial: its number names nothing
    assert loop.hand_over(r)
    assert r.back.wait(5) and isinstance(r.why, LeakmonError) and "cannot wait on" in str(r.why)
    r.node.port.fd = None  # (pyserial's close would close that number again)
    r.node.close()
    boards.close_all()


def test_the_end_gives_every_node_back_and_refuses_new_ones():
    stop = threading.Event()
    lp = PortLoop(stop)
    lp.start()
    boards = PtyBoards(3)
    lent = [Lent(n) for n in boards.names]
    for r in lent[:2]:
        assert lp.hand_over(r)
    time.sleep(0.2)
    stop.set()
    lp.wake()
    lp.join(5)
    assert not lp.is_alive()
    assert all(r.back.is_set() and r.why is None for r in lent[:2])
    assert not lp.hand_over(lent[2])
    lp.close()
    lp.wake()  # after close: nothing written anywhere
    for r in lent:
        r.node.close()
    boards.close_all()
