"""Runs the live path of several nodes at once into one Outbox: a thread per node for what
blocks (its handshake, reopening a re-plugged port), and one thread that reads all their
ports through one wait (fleet.portloop, epoll on Linux) for the frames. Used by `gateway`
(Outbox = broker) and by the embedded `serve` (Outbox = SQLite)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from leakmon.errors import HandshakeError, LeakmonError, TransportError
from leakmon.fleet.edge import ESTIMATE_EVERY_S, EdgeNode, Outbox
from leakmon.fleet.load import Cadence, LoadWatch
from leakmon.fleet.portloop import PortLoop
from leakmon.link.node import Node
from leakmon.link.reconnect import Gap, ReconnectingReader
from leakmon.wire import messages
from leakmon.wire.stream import Item, SampleBlock

HANDSHAKE_RETRY_S = 2.0
RECONNECT_RETRY_S = 0.1  # a re-plugged board is looked for this often: finding it costs a directory listing
STOP_WAIT_S = 10.0  # for the port loop and every node's thread to end, in all


@dataclass
class NodeSource:
    node_id: str
    node: Node
    alive: Callable[[], None] = lambda: None  # raises when a virtual board died
    info: dict[str, str] = field(default_factory=dict)  # extra retained info (port, USB serial, segment labels)


class NodeThread(threading.Thread):
    def __init__(self, src: NodeSource, outbox: Outbox, stop: threading.Event, *, gateway_id: str,
                 window_s: float, duration_s: float | None, log: Callable[[str], None],
                 home_assistant: bool = False, estimate_every_s: float = ESTIMATE_EVERY_S,
                 loop: PortLoop | None = None) -> None:
        super().__init__(name=f"leakmon-node-{src.node_id}", daemon=True)
        self.src = src
        self.stop = stop
        self.duration_s = duration_s
        self.log = log
        self.edge = EdgeNode(src.node_id, outbox, window_s, gateway_id, estimate_every_s=estimate_every_s,
                             home_assistant=home_assistant)
        self.error: BaseException | None = None
        self.done = threading.Event()
        # The cadence run_nodes wants (a gateway busy may stretch it): read between reads,
        # by whichever thread has the node then (this one, or the port loop's).
        self.estimate_every_s = estimate_every_s
        self.loop = loop
        self._back = threading.Event()
        self._why: BaseException | None = None
        self._reader: ReconnectingReader | None = None
        self._t_first: float | None = None

    @property
    def node(self) -> Node:
        return self.src.node

    # -- what the port loop calls while it has the node (fleet.portloop.Reading) ------------
    def step(self) -> bool:
        """Take what the port holds (without waiting) through the live path; True when
        duration_s of device time has run."""
        assert self._reader is not None
        return self._take(self._reader.seen(self.src.node.read()))

    def check(self) -> None:
        self.src.alive()

    def give_back(self, why: BaseException | None) -> None:
        self._why = why
        self._back.set()

    def _take(self, items: list[Item]) -> bool:
        """Items read, through the live path at the cadence wanted now; True when duration_s
        of device time has run."""
        if self.estimate_every_s != self.edge.estimate_every_s:
            self.edge.set_estimate_every(self.estimate_every_s)
        self.edge.on_items(items)
        if self.duration_s is not None:
            for it in items:
                if isinstance(it, SampleBlock):
                    self._t_first = float(it.t_s[0]) if self._t_first is None else self._t_first
                    if float(it.t_s[-1]) - self._t_first >= self.duration_s:
                        return True
        return False

    def _lend(self) -> bool:
        """Hand the node to the port loop until it gives it back; True when the node is
        done (duration reached, or stopped). A lost port is reopened here, then lent again."""
        assert self.loop is not None and self._reader is not None
        node = self.src.node
        self._back.clear()
        node.wait_s = 0.0  # the loop reads only what its wait said is there
        try:
            if not self.loop.hand_over(self):
                return True  # the loop has ended: the gateway is stopping
            self._back.wait()
        finally:
            node.wait_s = None
        why = self._why
        if why is None:
            return True
        if isinstance(why, TransportError):
            self._reader.lost(why)  # reopen until it is back (or stop), as read() would
            return False
        raise why

    def _handshake(self) -> messages.Hello | None:
        """A node that does not answer yet (still booting, busy) is asked again every few
        seconds instead of stopping the whole gateway; None if stopped meanwhile."""
        warned = False
        while not self.stop.is_set():
            self.src.alive()
            try:
                return self.src.node.handshake()
            except HandshakeError as e:
                if not warned:
                    self.log(f"node {self.src.node_id}: {e}; asking again")
                    warned = True
                self.stop.wait(HANDSHAKE_RETRY_S)
        return None

    def _gap(self, g: Gap) -> None:
        what = ("the node restarted" if g.node_restarted else
                f"{g.lost_frames} frames lost, {g.device_s:.1f} s of device time" if g.device_s is not None else
                f"{g.lost_frames} frames lost")
        self.log(f"node {self.src.node_id}: link back after {g.host_s:.1f} s: {what}")

    def run(self) -> None:
        node = self.src.node
        self.edge.follow(node.stream)
        reader = self._reader = ReconnectingReader(
            node, retry_s=RECONNECT_RETRY_S, stop=self.stop,
            on_lost=lambda e: self.log(f"node {self.src.node_id}: {e}; reconnecting"),
            on_gap=self._gap, on_reopened=self.edge.keys.reopened)  # fmt: skip
        try:
            hello = self._handshake()
            if hello is None:
                return
            self.edge.publish_info(hello, self.src.info)
            self.edge.publish_state(True)
            while not self.stop.is_set():
                self.src.alive()
                if self.loop is not None and PortLoop.can_take(node):
                    if self._lend():
                        return
                    continue
                if self._take(reader.read()):
                    return
        except LeakmonError as e:
            self.error = e
        except Exception as e:  # noqa: BLE001 - reported by the main thread as one line
            self.error = e
        finally:
            self.edge.on_items([])
            self.edge.publish_state(False)
            self.done.set()


def run_nodes(sources: list[NodeSource], outbox: Outbox, stop: threading.Event, *, gateway_id: str = "",
              window_s: float = 600.0, duration_s: float | None = None, check: Callable[[], None] = lambda: None,
              log: Callable[[str], None] = print, home_assistant: bool = False,
              estimate_every_s: float = ESTIMATE_EVERY_S, estimate_every_max_s: float | None = None,
              load: LoadWatch | None = None) -> list[NodeThread]:
    """Run every node until stop is set or each has run duration_s of device time;
    check() is called meanwhile (it raises the publisher's fatal error); a process near one
    CPU core is logged (fleet.load), and its estimate cadence stretched up to
    estimate_every_max_s if that is longer than estimate_every_s (fleet.load.Cadence)."""
    loop = PortLoop(stop)
    threads: list[NodeThread] = []
    load = load or LoadWatch(log)
    cadence = Cadence(estimate_every_s, estimate_every_max_s or estimate_every_s, log)
    try:
        loop.start()
        for s in sources:
            threads.append(NodeThread(s, outbox, stop, gateway_id=gateway_id, window_s=window_s, duration_s=duration_s,
                                      log=log, home_assistant=home_assistant, estimate_every_s=estimate_every_s,
                                      loop=loop))  # fmt: skip
            threads[-1].start()
        while not all(t.done.is_set() for t in threads):
            for t in threads:
                if t.error is not None:
                    raise t.error if isinstance(t.error, LeakmonError) else LeakmonError(
                        f"node {t.src.node_id}: {t.error}")
            check()
            if stop.is_set():
                break
            if not loop.is_alive():
                raise LeakmonError("the port loop stopped")
            cores = load.poll()
            if cores is not None and cadence.after(cores):
                for t in threads:
                    t.estimate_every_s = cadence.every_s
            stop.wait(0.1)
    finally:
        stop.set()
        loop.wake()
        deadline = time.monotonic() + STOP_WAIT_S  # one wait for them all, not one each
        for th in [loop, *threads]:
            if th.ident is not None:  # (started)
                th.join(timeout=max(0.0, deadline - time.monotonic()))
        if not loop.is_alive():
            loop.close()  # (else its pipe stays open: it may still wait on it)
    for t in threads:
        if t.error is not None:
            raise t.error if isinstance(t.error, LeakmonError) else LeakmonError(f"node {t.src.node_id}: {t.error}")
    return threads
