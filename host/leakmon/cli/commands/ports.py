"""`leakmon ports`: the serial ports of this machine, and which look like our boards."""

from __future__ import annotations

import argparse
import json

HELP = "list serial ports, marking those that look like MicroPython boards"


def add_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="one JSON object per port")


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
    from serial.tools import list_ports

    for info in sorted(list_ports.comports(), key=lambda i: i.device):
        board = board_guess(info.vid, info.pid)
        d = {"device": info.device, "vid": info.vid, "pid": info.pid, "serial_number": info.serial_number,
             "description": info.description, "looks_like": board}
        if args.json:
            print(json.dumps(d))
        else:
            vidpid = f"{info.vid:04x}:{info.pid:04x}" if info.vid is not None and info.pid is not None else "-"
            mark = f"[{board}]" if board else ""
            print(f"{info.device:20} {vidpid:10} {info.serial_number or '-':18} {mark:14} {info.description}")
    return 0
