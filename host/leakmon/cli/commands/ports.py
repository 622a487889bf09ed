"""`leakmon ports`: the serial ports of this machine, and which look like our boards;
with --probe, what each one is (leakmon node, MicroPython REPL, busy, unknown)."""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from leakmon.deploy.fleetflash import PortInfo

HELP = "list serial ports, marking those that look like MicroPython boards (--probe: ask them)"


def add_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="one JSON object per port")
    p.add_argument("--probe", action="store_true",
                   help="ask each port what it is: a leakmon node (board, firmware, protocol, sensors, rate), a "
                        "board at its REPL (MicroPython version), busy or unknown; a port that does not identify "
                        "itself as a MicroPython board is only listened to, never written to")
    p.add_argument("--port", action="append", default=[],
                   help="also this port (a pty, a link, a pyserial URL) that the system does not list; repeatable")


def board_guess(vid: int | None, pid: int | None) -> str | None:
    """The board a USB id belongs to (hardware/boards/*.toml), or its vendor if it makes
    MicroPython boards; None for anything else."""
    if vid is None:
        return None
    from leakmon.deploy.flash import MICROPYTHON_VIDS, board_profiles

    for b in board_profiles().values():
        if any(v == vid and (p is None or p == pid) for v, p in b.usb):
            return b.name
    return MICROPYTHON_VIDS.get(vid)


def run(args: argparse.Namespace) -> int:
    from leakmon.deploy import fleetflash

    system = fleetflash.comports()
    given, notes = fleetflash.select_ports(args.port, all_boards=False, listed=[])
    keys = {fleetflash.same_device_key(p.device) for p in system}
    ports = system + [p for p in given if fleetflash.same_device_key(p.device) not in keys]
    for n in notes + fleetflash.duplicate_serials(ports):
        print(f"leakmon: {n}", file=sys.stderr, flush=True)
    if args.probe:
        return run_probe(args, ports)
    for info in ports:
        board = board_guess(info.vid, info.pid)
        d = {"device": info.device, "vid": info.vid, "pid": info.pid, "serial_number": info.serial_number,
             "description": info.description, "looks_like": board}
        if args.json:
            print(json.dumps(d))
        else:
            vidpid = info.usb_id or "-"
            mark = f"[{board}]" if board else ""
            print(f"{info.device:20} {vidpid:10} {info.serial_number or '-':18} {mark:14} {info.description}")
    return 0


def run_probe(args: argparse.Namespace, ports: "list[PortInfo]") -> int:
    from leakmon.deploy import probe

    for r in probe.probe_all(ports):
        if args.json:
            print(json.dumps(r.as_dict()), flush=True)
            continue
        if r.state == "node":
            rate = f"{r.rate_hz:g} Hz" if r.rate_hz else "-"
            what = (f"leakmon node: board {r.board}, firmware {r.fw_version}, protocol v{r.protocol}, "
                    f"sensors {', '.join(r.sensors) or 'none'}, {rate}")
        elif r.state == "repl":
            what = f"MicroPython at its REPL: {r.micropython} ({r.machine})"
        else:
            what = f"{r.state}: {r.detail}"
        print(f"{r.device:20} {r.usb_id or '-':10} {r.usb_serial or '-':18} {what}", flush=True)
    return 0
