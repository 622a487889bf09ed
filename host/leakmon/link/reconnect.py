"""A node reader that survives the port vanishing and coming back, reporting the gap
from sequence numbers and device time."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from leakmon import wire
from leakmon.errors import HandshakeError, TransportError
from leakmon.link.node import Node
from leakmon.wire import messages
from leakmon.wire.stream import Item, SampleBlock

SEQ_BACK = 0x8000  # frames "lost" past this: the 16-bit seq went back, the node started again


@dataclass(frozen=True, slots=True)
class Gap:
    """What a link outage cost, known at the first samples after it."""

    host_s: float  # host time from the loss to the first samples after it
    lost_frames: int | None  # from sequence numbers; None when the node restarted
    device_s: float | None  # device time with no samples; None when the node restarted
    node_restarted: bool


class ReconnectingReader:
    """node.read() that, when the port vanishes, reopens it until it is back and
    handshakes again; the outage is reported as a Gap when samples flow again."""

    def __init__(self, node: Node, retry_s: float = 0.5, give_up_s: float | None = None,
                 on_lost: Callable[[TransportError], None] = lambda e: None,
                 on_gap: Callable[[Gap], None] = lambda g: None,
                 stop: threading.Event | None = None, clock: Callable[[], float] = time.monotonic,
                 on_reopened: Callable[[], None] = lambda: None) -> None:
        self.node = node
        self.retry_s = retry_s
        self.give_up_s = give_up_s
        self.on_lost = on_lost
        self.on_gap = on_gap
        self.on_reopened = on_reopened  # the port is open again, before any byte is read from it
        self._stop = stop or threading.Event()
        self._clock = clock
        self._last_block: SampleBlock | None = None
        self._outage: tuple[float, int, SampleBlock | None] | None = None  # loss time, lost frames, last block
        self._restarted = False

    def read(self) -> list[Item]:
        try:
            items = self.node.read()
        except TransportError as e:
            self.lost(e)
            return []
        return self.seen(items)

    def lost(self, e: TransportError) -> None:
        """The port failed (read() calls this; so does a caller that read the node itself):
        reopen it until it is back and answers, as read() does."""
        self.on_lost(e)
        self._outage = (self._clock(), self.node.stream.stats.lost_frames, self._last_block)
        self._reconnect(e)

    def seen(self, items: list[Item]) -> list[Item]:
        """Items the node sent (read() calls this; so does a caller that read the node
        itself): a restart or the first samples after an outage are reported."""
        for item in items:
            if isinstance(item, messages.Event) and item.code == wire.EV_BOOT and self._outage is not None:
                self._restarted = True
            if isinstance(item, SampleBlock):
                if self._outage is not None:
                    self._report(item)
                self._last_block = item
        return items

    def _reconnect(self, cause: TransportError) -> None:
        """Until the port is back and answers, or give_up_s has passed, or stop is set."""
        start = self._clock()
        while not self._stop.is_set():
            try:
                self.node.reopen()
                self.on_reopened()
                self.node.handshake()
                return
            except (TransportError, HandshakeError) as e:
                if self.give_up_s is not None and self._clock() - start >= self.give_up_s:
                    raise TransportError(f"{cause}; not back within {self.give_up_s:g} s ({e})") from e
                self._stop.wait(self.retry_s)

    def _report(self, first: SampleBlock) -> None:
        assert self._outage is not None
        lost_at, lost_before, last = self._outage
        self._outage = None
        restarted, self._restarted = self._restarted, False
        lost: int | None = self.node.stream.stats.lost_frames - lost_before
        device_s = None
        if last is not None and len(last.t_s) and len(first.t_s):
            period_s = float(last.t_s[1] - last.t_s[0]) if len(last.t_s) > 1 else 0.0
            device_s = float(first.t_s[0] - last.t_s[-1]) - period_s
        # The boot event is often lost (sent before the port was open again), but a running
        # node's seq and clock only go forward: either going back means it restarted.
        if (lost is not None and lost >= SEQ_BACK) or (device_s is not None and device_s < -1e-6):
            restarted = True
        if restarted:
            lost = device_s = None
        self.on_gap(Gap(self._clock() - lost_at, lost, device_s, restarted))
