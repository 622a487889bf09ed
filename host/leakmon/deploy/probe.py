"""Inventory of a testbed: what is on each serial port, asked without harm.

A port is only written to once it has identified itself as a MicroPython board:
by its USB id (a MicroPython vendor, or a board file's USB-UART bridge), by the
leakmon frames it streams, or by a MicroPython banner or prompt it prints. A port
that does none of these is listened to and left alone: it may be a GPS, a modem or
another lab instrument that a stray Ctrl-C or Ctrl-A would upset.

A leakmon node is asked INFO (it keeps streaming); a board at a plain REPL is asked
its MicroPython version in the raw REPL and left back at its normal REPL. A silent
port known only by its USB id gets Ctrl-C first (a REPL answers it): a node that
someone had STOPped, with firmware that takes Ctrl-C, is then left at its REPL.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field

import serial

from leakmon import wire
from leakmon.deploy import flash
from leakmon.deploy.fleetflash import PortInfo, is_micropython
from leakmon.deploy.rawrepl import RawRepl
from leakmon.errors import LeakmonError, TransportError
from leakmon.link.node import Node
from leakmon.wire.stream import NodeStream

LISTEN_S = 0.5  # a node streams a frame at least this often at its default rate
NOISY_LISTEN_S = 3.0  # at most this long while what comes is not yet recognisable
REPL_MARKS = (b"MicroPython", b">>> ", b"raw REPL; CTRL-B to exit")
VERSION_EXPR = ("(__import__('sys').version, getattr(__import__('sys').implementation, '_machine', ''), "
                "__import__('sys').platform, tuple(__import__('sys').implementation.version[:3]))")


@dataclass
class Probe:
    """What one port is. state: node, repl, busy, unknown, no-answer or error."""

    device: str
    usb_id: str | None
    usb_serial: str | None
    description: str
    state: str = "unknown"
    identified_by: str | None = None  # usb-id, leakmon-frames or repl-banner; None: not written to
    written: bool = False
    board: str | None = None
    fw_version: str | None = None
    protocol: str | None = None
    sensors: list[str] = field(default_factory=list)
    rate_hz: float | None = None
    micropython: str | None = None
    machine: str | None = None
    detail: str = ""

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def listen(port: serial.SerialBase, seconds: float, noisy_s: float = NOISY_LISTEN_S) -> tuple[NodeStream, bytes]:
    """Read only, for a while: the frames decoded and the last 4 kB of bytes. Bytes that
    are neither frames nor REPL text (a board booting after the open reset it) make it
    listen longer, up to noisy_s, for the node or the REPL to show itself."""
    stream = NodeStream()
    seen = bytearray()
    start = time.monotonic()
    while True:
        elapsed = time.monotonic() - start
        known = stream.decoder.stats.frames or any(m in seen for m in REPL_MARKS)
        if elapsed >= noisy_s or (elapsed >= seconds and (known or not seen)):
            break
        try:
            got = port.read(max(1, min(4096, port.in_waiting)))
        except (serial.SerialException, OSError) as e:
            raise TransportError(f"link lost: {e}") from e
        if got:
            stream.feed(got)
            seen = (seen + got)[-4096:]
    return stream, bytes(seen)


def probe_port(p: PortInfo, listen_s: float = LISTEN_S, handshake_s: float = 3.0,
               repl_timeout_s: float = 1.5) -> Probe:
    """What is on the port; never raises."""
    out = Probe(p.device, p.usb_id, p.serial_number, p.description)
    try:
        port = flash.open_port(p.device)
    except TransportError as e:
        out.state = "busy" if "is busy" in str(e) else "error"
        out.detail = str(e)
        return out
    try:
        _probe_open(port, p, out, listen_s, handshake_s, repl_timeout_s)
    except LeakmonError as e:
        out.state, out.detail = "error", str(e).splitlines()[0]
    finally:
        try:
            port.close()
        except (serial.SerialException, OSError):
            pass
    return out


def _probe_open(port: serial.SerialBase, p: PortInfo, out: Probe, listen_s: float, handshake_s: float,
                repl_timeout_s: float) -> None:
    stream, seen = listen(port, listen_s)
    if stream.decoder.stats.frames:
        out.identified_by = "leakmon-frames"
    elif any(m in seen for m in REPL_MARKS):
        out.identified_by = "repl-banner"
    elif is_micropython(p):
        out.identified_by = "usb-id"
    else:
        out.detail = ("did not identify itself as a MicroPython board (no MicroPython USB id, no leakmon frames, "
                      f"no REPL banner in {listen_s:g} s): not written to")
        return
    out.written = True
    if out.identified_by == "leakmon-frames":
        _ask_node(Node(port), out, handshake_s)
        return
    repl = RawRepl(port)
    answer = repl.interrupt()
    if wire.SYNC in answer:  # a node that had been quiet: it talks binary
        _ask_node(Node(port), out, handshake_s)
        return
    try:
        repl.enter(repl_timeout_s, abort=wire.SYNC)
    except TransportError:
        try:  # a stopped node ignores Ctrl-C and Ctrl-A but answers INFO
            _ask_node(Node(port), out, handshake_s)
        except LeakmonError:
            out.state = "no-answer"
            out.detail = "identified by its USB id, but no answer to Ctrl-C, Ctrl-A or INFO"
        return
    try:
        got = repl.eval(VERSION_EXPR)
    finally:
        repl.leave()  # back to the normal REPL, as found
    if not (isinstance(got, tuple) and len(got) == 4):
        raise TransportError(f"unreadable version from the board: {got!r:.80}")
    out.state = "repl"
    build = str(got[0]).split("; ")[-1]  # "3.4.0; MicroPython v1.22.0 on 2024-01-05"
    out.micropython = f"MicroPython {'.'.join(str(v) for v in got[3])} ({build})"
    out.machine = str(got[1]) or str(got[2])


def _ask_node(node: Node, out: Probe, handshake_s: float) -> None:
    hello = node.handshake(timeout_s=handshake_s)
    out.state = "node"
    out.board = hello.board
    out.fw_version = hello.fw_version
    out.protocol = f"{hello.proto_major}.{hello.proto_minor}"
    out.sensors = [f"{c.chip_name}@0x{c.addr:02x}" for c in hello.channels]
    out.rate_hz = 1e6 / hello.period_us if hello.period_us else None


def probe_all(ports: list[PortInfo], listen_s: float = LISTEN_S) -> list[Probe]:
    """Every port at once (each mostly waits), in the given order."""
    if not ports:
        return []
    with ThreadPoolExecutor(max_workers=min(len(ports), 32), thread_name_prefix="probe") as pool:
        return list(pool.map(lambda p: probe_port(p, listen_s), ports))
