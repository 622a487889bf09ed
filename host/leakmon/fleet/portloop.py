"""One thread that reads every node's serial port through one wait (epoll on Linux).

A thread per node blocked on its own port costs more than the node's work once a
gateway has a few hundred ports: when frames arrive together, hundreds of threads wake
and hand the interpreter lock to one another (about 25 context switches per frame), and
each idle port woke on its own timeout. Here a node's thread does what blocks (the
handshake, reopening a re-plugged port) and then hands its node over; this loop waits on
all the handed-over ports at once (epoll on Linux) and, for each that has bytes, runs the
node's step (read what is there, decode, estimate, publish) in this one thread. A step
that loses the port, fails, or finishes hands the node back to its thread with why.
"""

from __future__ import annotations

import os
import selectors
import threading
import time
from collections.abc import Callable
from typing import Protocol

from leakmon.errors import LeakmonError
from leakmon.link.node import Node
from leakmon.link.portpoll import PortPoller

CHECK_EVERY_S = 1.0  # each node's liveness check (a virtual board that died) and the longest wait


class Reading(Protocol):
    """A node's thread as the loop sees it."""

    @property
    def node(self) -> Node: ...

    def step(self) -> bool:
        """Read what the port holds and process it; True when the node is done."""

    def check(self) -> None:
        """Raise if the node can no longer run (its virtual board died)."""

    def give_back(self, why: BaseException | None) -> None:
        """The loop lets go of the node: None when it is done or the loop stops, else the
        error that stopped it (a TransportError: the port was lost)."""


class PortLoop(threading.Thread):
    """Reads the handed-over nodes' ports, one wait for all, until stop is set."""

    def __init__(self, stop: threading.Event) -> None:
        super().__init__(name="leakmon-ports", daemon=True)
        self.stop = stop
        self._lock = threading.Lock()
        self._incoming: list[Reading] = []
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)
        self._closed = False
        self._ended = False  # the loop has let go of every node: hand_over() is refused

    @staticmethod
    def can_take(node: Node) -> bool:
        """A tty on Linux can be waited on here; loop://, socket:// and the like, and ports on
        other systems, are read by their own thread (link/portpoll.py)."""
        return PortPoller.fds_of(node.port) is not None

    def hand_over(self, r: Reading) -> bool:
        """Give the loop a node (False, and nothing taken, once the loop has ended)."""
        with self._lock:
            if self._ended:
                return False
            self._incoming.append(r)
        self.wake()
        return True

    def wake(self) -> None:
        with self._lock:
            if self._closed:
                return
            try:
                os.write(self._wake_w, b"x")
            except BlockingIOError:
                pass  # the pipe is full of wake-ups already

    def close(self) -> None:
        """After the loop has ended (join): its wake-up pipe."""
        with self._lock:
            if not self._closed:
                self._closed = True
                os.close(self._wake_r)
                os.close(self._wake_w)

    def run(self) -> None:
        # epoll on Linux (kqueue on the BSDs): a wait costs what is ready, not what is
        # registered, which with a thousand ports and frames arriving one by one matters.
        sel = selectors.DefaultSelector()
        by_fd: dict[int, Reading] = {}
        failure: BaseException | None = None

        def release(fd: int, why: BaseException | None) -> None:
            r = by_fd.pop(fd)
            try:
                sel.unregister(fd)
            except (KeyError, ValueError, OSError):
                pass  # closed meanwhile: the selector has dropped it already
            r.give_back(why)

        try:
            sel.register(self._wake_r, selectors.EVENT_READ)
            next_check = time.monotonic() + CHECK_EVERY_S
            while not self.stop.is_set():
                with self._lock:
                    incoming, self._incoming = self._incoming, []
                for r in incoming:
                    fds = PortPoller.fds_of(r.node.port)
                    if fds is None:  # closed meanwhile: its thread finds out why
                        r.give_back(None)
                        continue
                    try:
                        sel.register(fds[0], selectors.EVENT_READ)
                    except (KeyError, ValueError, OSError) as e:
                        r.give_back(LeakmonError(f"cannot wait on {r.node.port.port}: {e}"))
                        continue
                    by_fd[fds[0]] = r
                    # Bytes may already wait in the node's own backlog (read during its handshake).
                    self._step(fds[0], r, release)
                for key, _ in sel.select(CHECK_EVERY_S):
                    fd = key.fd
                    if fd == self._wake_r:
                        try:
                            os.read(self._wake_r, 4096)
                        except BlockingIOError:
                            pass
                    elif fd in by_fd:
                        self._step(fd, by_fd[fd], release)
                if time.monotonic() >= next_check:
                    next_check = time.monotonic() + CHECK_EVERY_S
                    for fd, r in list(by_fd.items()):
                        try:
                            r.check()
                        except Exception as e:  # noqa: BLE001 - handed to the node's thread, which reports it
                            release(fd, e)
        except BaseException as e:
            failure = e
            raise
        finally:
            # First refuse new nodes, then give every node back: with the loop's failure, so
            # that the gateway stops with it rather than ending its nodes as if done.
            with self._lock:
                self._ended = True
                incoming, self._incoming = self._incoming, []
            why = None if failure is None else LeakmonError(f"the port loop failed: {failure!r}")
            for fd in list(by_fd):
                release(fd, why)
            for r in incoming:
                r.give_back(why)
            sel.close()

    @staticmethod
    def _step(fd: int, r: Reading, release: Callable[[int, BaseException | None], None]) -> None:
        try:
            done = r.step()
        except Exception as e:  # noqa: BLE001 - a lost port or a failure: the node's thread deals with it
            release(fd, e)
            return
        if done:
            release(fd, None)
