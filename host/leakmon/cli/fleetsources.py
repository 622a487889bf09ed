"""What `gateway` and the embedded `serve` share: many nodes (--port repeated, or
--sim N virtual boards), each with a node id; and a stop event for SIGTERM/Ctrl-C."""

from __future__ import annotations

import argparse
import os
import re
import signal
import sys
import threading
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from leakmon.cli.argtypes import non_negative, positive
from leakmon.errors import LeakmonError, SimulatorError
from leakmon.fleet.edge import ESTIMATE_EVERY_S


def add_node_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--port", action="append", default=[], metavar="PORT",
                   help="serial port or pyserial URL of a node; repeat for several")
    p.add_argument("--usb", action="append", default=[], metavar="SERIAL",
                   help="a node by its USB serial number, found in sysfs or udev's /dev/serial/by-id "
                        "($LEAKMON_SERIAL_BY_ID moves it) at every (re)open: a re-plugged board is "
                        "followed whatever its new name; repeat")
    p.add_argument("--sim", type=int, nargs="?", const=1, default=0, metavar="N",
                   help="run N virtual boards (default 1)")
    p.add_argument("--node-id", action="append", default=[], metavar="ID",
                   help="node id of each --port / virtual board, in order (default: the USB serial "
                        "number, else the port name; sim<k> for virtual boards)")
    p.add_argument("--scenario", default="steady_leak", help="virtual board scenario: a shipped name or a .toml path")
    p.add_argument("--seed", type=int, default=1, help="seed of the first virtual board (the k-th gets seed+k)")
    p.add_argument("--speed", type=non_negative, default=1.0,
                   help="virtual board device-time speed-up; 0 = as fast as possible (default 1)")
    p.add_argument("--baud", type=int, default=115200, help="baud rate for a UART link (default 115200)")
    p.add_argument("--window", type=float, default=600.0, metavar="S", help="leak-rate fit window, s (default 600)")
    p.add_argument("--estimate-every", type=positive, default=ESTIMATE_EVERY_S, metavar="S",
                   help=f"publish each channel's leak estimate every S s of device time (default {ESTIMATE_EVERY_S:g}); "
                        "a node's channels are estimated together from running sums (~0.15 ms of CPU a channel at "
                        "600 s of 10 Hz), so S sets how many channels a core carries; onset alarms go out on the "
                        "block that raises them whatever S is")
    p.add_argument("--estimate-every-max", type=positive, metavar="S",
                   help="while the process is busy (0.9 of a CPU core or more over a minute) double the estimate "
                        "cadence, minute by minute, up to S s of device time; halve it back to --estimate-every, "
                        "minute by minute, under 0.7 (default: never stretched)")
    p.add_argument("--duration", type=float, metavar="S", help="stop after S seconds of device time")
    p.add_argument("--notes", action="store_true",
                   help="read operator notes from stdin, one per line: '<node_id> hatch|note <text>'")


def _sanitize(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "-", text).strip("-.")[:64] or "node"


def _default_id(port: str) -> str:
    try:
        from serial.tools import list_ports

        for info in list_ports.comports():
            if info.device == port and info.serial_number:
                return _sanitize(info.serial_number)
    except Exception:  # noqa: BLE001 - no USB enumeration here: fall back to the name
        pass
    return _sanitize(Path(port).name or port)


def estimate_every_max(args: argparse.Namespace) -> float | None:
    """--estimate-every-max, checked against --estimate-every."""
    if args.estimate_every_max is not None and args.estimate_every_max < args.estimate_every:
        raise LeakmonError(f"--estimate-every-max {args.estimate_every_max:g} is shorter than "
                           f"--estimate-every {args.estimate_every:g}")
    return args.estimate_every_max


FDS_PER_PORT = 8  # a port: its tty and pyserial's two abort pipes; a virtual board: its pipes; a spare
FDS_BESIDE_PORTS = 256  # the broker, the spool, the database, Python's own


def make_room_for_nodes(args: argparse.Namespace) -> None:
    """Raise this process's open-files limit (soft, up to the hard one) to what the nodes'
    ports need, or refuse in one line; called before anything is opened. The usual soft
    limit, 1024, holds ~100 ports."""
    import resource

    ports = len(args.port) + len(args.usb) or max(args.sim, 1)
    need = FDS_PER_PORT * ports + FDS_BESIDE_PORTS
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY or soft >= need:
        return
    if hard != resource.RLIM_INFINITY and hard < need:
        raise LeakmonError(f"{ports} nodes need about {need} open files, and this process may open {hard} "
                           "(ulimit -Hn): raise that limit, or split the nodes over several gateways")
    resource.setrlimit(resource.RLIMIT_NOFILE, (need, hard))


def open_nodes(args: argparse.Namespace, stack: ExitStack) -> list[Any]:
    """NodeSources for --port/--sim (leakmon.fleet.runner), opened and closed by stack."""
    from leakmon.fleet.runner import NodeSource
    from leakmon.link.node import Node
    from leakmon.link.usbports import usb_opener

    if (args.port or args.usb) and args.sim:
        raise LeakmonError("give --port/--usb or --sim, not both")
    ports = [*args.port, *args.usb]
    ids = list(args.node_id)
    n = len(ports) if ports else max(args.sim, 1)
    if len(ids) > n:
        raise LeakmonError(f"{len(ids)} --node-id for {n} node(s)")
    from leakmon.fleet.envelope import check_id

    for nid in ids:
        try:
            check_id(nid)
        except ValueError as e:
            raise LeakmonError(f"--node-id: {e}") from e
    sources = []
    if ports:
        for k, port in enumerate(ports):
            serial_no = port if k >= len(args.port) else None
            nid = ids[k] if k < len(ids) else (_sanitize(serial_no) if serial_no else _default_id(port))
            if serial_no is None:
                sources.append(NodeSource(nid, stack.enter_context(Node.open(port, args.baud)), info={"port": port}))
                continue
            # Found again by its serial number at every reopen, under whatever name it has then.
            def found(device: str, nid: str = nid) -> None:
                log(f"node {nid}: on {os.path.realpath(device)}")

            opener = usb_opener(serial_no, args.baud, found)
            sources.append(NodeSource(nid, stack.enter_context(Node(opener(), opener)), info={"usb_serial": serial_no}))
        return sources
    from leakmon.sim import scenario as scenario_mod
    from leakmon.sim.board import VirtualBoard

    scen = scenario_mod.load(args.scenario)
    for k in range(n):
        board = stack.enter_context(VirtualBoard(scen, args.seed + k, args.speed))

        def alive(board: VirtualBoard = board) -> None:
            if board.poll() is not None:
                raise SimulatorError(f"virtual board stopped (exit {board.poll()}): {board.log_tail(1)}")

        nid = ids[k] if k < len(ids) else f"sim{k}"
        print(f"leakmon: node {nid}: virtual board on {board.port} (scenario {args.scenario}, seed {args.seed + k})",
              file=sys.stderr)
        sources.append(NodeSource(nid, stack.enter_context(Node.open(board.port, args.baud)), alive,
                                  {"scenario": args.scenario, "seed": str(args.seed + k)}))
    return sources


def start_notes(args: argparse.Namespace, outbox: Any, node_ids: list[str]) -> None:
    """--notes: a thread that turns stdin lines into notes (they go through the outbox)."""
    if not args.notes:
        return
    from leakmon.fleet.notes import NoteWriter, read_lines

    writer = NoteWriter(outbox, node_ids)
    threading.Thread(target=read_lines, args=(sys.stdin, writer, log), name="leakmon-notes", daemon=True).start()


def stop_on_signals() -> threading.Event:
    """An event set by SIGTERM (a supervisor stopping us) so that we close cleanly."""
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda signum, frame: stop.set())
    return stop


def log(msg: str) -> None:
    print(f"leakmon: {msg}", file=sys.stderr, flush=True)
