"""`leakmon ports`: the serial ports of this machine."""

from __future__ import annotations

import argparse
import json

HELP = "list serial ports"


def add_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="one JSON object per port")


def run(args: argparse.Namespace) -> int:
    from serial.tools import list_ports

    for info in sorted(list_ports.comports(), key=lambda i: i.device):
        d = {"device": info.device, "vid": info.vid, "pid": info.pid, "serial_number": info.serial_number,
             "description": info.description}
        if args.json:
            print(json.dumps(d))
        else:
            vidpid = f"{info.vid:04x}:{info.pid:04x}" if info.vid is not None and info.pid is not None else "-"
            print(f"{info.device:20} {vidpid:10} {info.serial_number or '-':18} {info.description}")
    return 0
