"""Flash many boards at once: a testbed of 4 to 32 boards on one host.

Each board is flashed by leakmon.deploy.flash.deploy in its own thread (the work
is waiting on serial round trips, so threads overlap it well), with the firmware
built once per .mpy version for all of them. A board that fails is reported with
one line and does not stop the others.

Which boards: the ports given (a port named twice, or through a link to the same
device, counts once), and with `all_boards` every port whose USB id says
MicroPython board. Two boards with the same USB serial number are reported: a
testbed that tells boards apart by serial cannot tell those two apart.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

from leakmon.deploy import flash
from leakmon.errors import LeakmonError, TransportError

MAX_WORKERS = 32

Progress = Callable[[int, str], None]  # (board index, note)


@dataclass(frozen=True)
class PortInfo:
    """A serial port and what USB says about it (nothing for a pty or a URL)."""

    device: str
    vid: int | None = None
    pid: int | None = None
    serial_number: str | None = None
    description: str = ""

    @property
    def usb_id(self) -> str | None:
        return f"{self.vid:04x}:{self.pid:04x}" if self.vid is not None and self.pid is not None else None


def comports() -> list[PortInfo]:
    """The serial ports the OS lists, sorted by device."""
    from serial.tools import list_ports

    return [PortInfo(p.device, p.vid, p.pid, getattr(p, "serial_number", None) or None,
                     getattr(p, "description", None) or "")
            for p in sorted(list_ports.comports(), key=lambda p: p.device)]


def same_device_key(port: str) -> str:
    """Two names of one device (a link and its target) give one key; URLs stay as they are."""
    return port if "://" in port else os.path.realpath(port)


def is_micropython(p: PortInfo, board: flash.BoardProfile | None = None) -> bool:
    """The port's USB id is a MicroPython board's (or the given board's)."""
    if p.vid is None:
        return False
    if board is not None and board.usb:
        return any(p.vid == v and (pid is None or p.pid == pid) for v, pid in board.usb)
    known = set(flash.MICROPYTHON_VIDS) | {v for b in flash.board_profiles().values() for v, _ in b.usb}
    return p.vid in known


def select_ports(ports: Sequence[str], all_boards: bool, board: flash.BoardProfile | None = None,
                 listed: list[PortInfo] | None = None) -> tuple[list[PortInfo], list[str]]:
    """The ports to work on, each device once (the name first given), with what USB
    says about them, and notes for the user (duplicate ports and serial numbers)."""
    listed = comports() if listed is None else listed
    by_key = {same_device_key(p.device): p for p in listed}
    chosen: dict[str, PortInfo] = {}
    notes: list[str] = []
    for n, name in enumerate(ports):
        key = same_device_key(name)
        if key in chosen:
            first = chosen[key].device
            notes.append(f"{name} given twice: counted once" if name in ports[:n] else
                         f"{name} and {first} are one device: counted once")
            continue
        p = by_key.get(key)
        chosen[key] = PortInfo(name, p.vid, p.pid, p.serial_number, p.description) if p else PortInfo(name)
    if all_boards:
        found = [p for p in listed if is_micropython(p, board)]
        if not found and not ports:
            known = ", ".join(f"{v:04x} {n}" for v, n in flash.MICROPYTHON_VIDS.items())
            here = ", ".join(p.device for p in listed) or "none"
            raise TransportError(f"no board found by USB id (vendors {known} and the board files'); "
                                 f"serial ports here: {here}")
        for p in found:
            chosen.setdefault(same_device_key(p.device), p)
    wanted = list(chosen.values())
    return wanted, notes + duplicate_serials(wanted)


def duplicate_serials(ports: Sequence[PortInfo]) -> list[str]:
    """A note for each USB serial number that more than one port reports."""
    by_serial: dict[str, list[str]] = {}
    for p in ports:
        if p.serial_number:
            by_serial.setdefault(p.serial_number, []).append(p.device)
    return [f"{' and '.join(devs)} report the same USB serial number {sn}: both are used, "
            "but the serial cannot tell them apart" for sn, devs in by_serial.items() if len(devs) > 1]


@dataclass
class BoardResult:
    """One board's flash: the report when it worked, the reason (one line) when not."""

    index: int
    port: PortInfo
    report: flash.FlashReport | None = None
    reason: str = ""
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.report is not None and not self.reason


class BuildCache:
    """flash.build once per .mpy version, shared by the boards' threads."""

    def __init__(self, compile_mode: str, config: bytes | None) -> None:
        self.compile_mode = compile_mode
        self.config = config
        self._lock = threading.Lock()
        self._built: dict[int | None, tuple[list[flash.Artifact], list[str]]] = {}

    def builder(self, note: flash.FlashNote) -> flash.Builder:
        def build(mpy: int | None) -> list[flash.Artifact]:
            with self._lock:
                if mpy not in self._built:
                    notes: list[str] = []
                    self._built[mpy] = (flash.build(mpy, self.compile_mode, self.config, notes.append), notes)
                arts, notes = self._built[mpy]
            for n in notes:  # every board gets the build's notes (.mpy mismatch)
                note(n)
            return arts

        return build


class Interrupted(LeakmonError):
    """The user stopped the fleet (Ctrl-C): each board stops at its next step."""


class FleetInterrupted(KeyboardInterrupt):
    """Ctrl-C during flash_fleet, once every board has stopped; .results says where each was."""

    def __init__(self, results: list[BoardResult]) -> None:
        super().__init__("interrupted")
        self.results = results


def flash_one(index: int, port: PortInfo, cache: BuildCache, board: flash.BoardProfile | None,
              progress: Progress, reset: bool = True, handshake_s: float = 10.0,
              cancel: threading.Event | None = None) -> BoardResult:
    """Flash one board; never raises: what went wrong is the result's reason."""
    result = BoardResult(index, port)
    t0 = time.monotonic()
    last = ["none"]

    def note(text: str) -> None:
        if cancel is not None and cancel.is_set():
            raise Interrupted(f"interrupted (last step done: {last[0]}): flash it again to finish")
        last[0] = " ".join(text.split())
        progress(index, text)

    try:
        result.report = flash.deploy(port.device, board, cache.compile_mode, cache.config, note, reset=reset,
                                     handshake_s=handshake_s, builder=cache.builder(note))
    except LeakmonError as e:
        result.reason = str(e).splitlines()[0] if str(e) else type(e).__name__
        if isinstance(e, TransportError) and result.reason.startswith("link lost"):
            result.reason = (f"the port went away mid-flash (last step done: {last[0]}): unplugged or powered off? "
                             "flash it again to repair it")
    except Exception as e:  # one board's surprise must not take the others down  # noqa: BLE001
        result.reason = f"unexpected {type(e).__name__}: {e}".splitlines()[0]
    result.seconds = time.monotonic() - t0
    progress(index, "done" if result.ok else f"FAILED: {result.reason}")
    return result


def flash_fleet(ports: Sequence[PortInfo], board: flash.BoardProfile | None = None, compile_mode: str = "auto",
                config: bytes | None = None, progress: Progress = lambda i, s: None, reset: bool = True,
                workers: int | None = None, handshake_s: float = 10.0) -> list[BoardResult]:
    """Flash every port, workers at a time (default: all at once); results in port order."""
    cache = BuildCache(compile_mode, config)
    cancel = threading.Event()
    n = max(1, min(workers or len(ports), MAX_WORKERS, len(ports) or 1))
    pool = ThreadPoolExecutor(max_workers=n, thread_name_prefix="flash")
    futures: list[Future[BoardResult]] = []
    try:
        futures += [pool.submit(flash_one, i, p, cache, board, progress, reset=reset, handshake_s=handshake_s,
                               cancel=cancel)
                   for i, p in enumerate(ports)]
        return [f.result() for f in futures]
    except KeyboardInterrupt:  # each board stops at its next step, leaving what a next flash repairs
        cancel.set()
        raise FleetInterrupted([f.result() for f in futures]) from None
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
