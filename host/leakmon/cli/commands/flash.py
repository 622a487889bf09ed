"""`leakmon flash`: deploy the node firmware to a board (or the virtual board)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

HELP = "deploy the node firmware to a board over its REPL"


def add_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--port", help="serial port or pyserial URL of the board (default: find one by USB id)")
    p.add_argument("--board", help="the board you expect (a name from hardware/boards, or sim): checked before "
                                   "and after flashing, and used to find its port")
    p.add_argument("--config", type=Path, help="node configuration to write as config.json (default: the shipped one)")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--source", dest="compile", action="store_const", const="never",
                      help="copy .py sources, do not compile to .mpy")
    mode.add_argument("--mpy", dest="compile", action="store_const", const="always",
                      help="require .mpy (fail if mpy-cross cannot match the board)")
    p.set_defaults(compile="auto")
    p.add_argument("--no-reset", action="store_true", help="leave the board at its REPL after copying")
    p.add_argument("--baud", type=int, default=115200, help="baud rate for a UART link (default 115200)")


def run(args: argparse.Namespace) -> int:
    from leakmon.deploy import flash

    board = flash.board_profile(args.board) if args.board else None
    config = flash.load_config(args.config) if args.config else None
    url = args.port or flash.find_port(board)

    def progress(line: str) -> None:
        print(f"leakmon: {line}", file=sys.stderr, flush=True)

    progress(f"flashing the board on {url}")
    report = flash.deploy(url, board, args.compile, config, progress, reset=not args.no_reset)
    summary = f"{len(report.copied)} copied, {len(report.unchanged)} unchanged"
    if report.hello is not None:
        h = report.hello
        summary += (f"; node {h.board} firmware {h.fw_version} protocol v{h.proto_major}.{h.proto_minor} "
                    f"with {len(h.channels)} sensor(s) is running")
    print(f"leakmon: {summary}", file=sys.stderr)
    return 0
