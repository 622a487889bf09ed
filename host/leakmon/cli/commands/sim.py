"""`leakmon sim`: a virtual board on a pseudo-terminal, until Ctrl-C.

Open the printed device with anything that opens a serial port: leakmon monitor
--port, leakmon flash --port, mpremote connect, picocom.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from leakmon.cli.argtypes import non_negative, positive
from leakmon.errors import SimulatorError

if TYPE_CHECKING:
    from leakmon.sim.board import VirtualBoard

HELP = "run a virtual board on a pseudo-terminal until Ctrl-C"


def add_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--scenario", default="steady_leak", help="scenario: a shipped name or a .toml path")
    p.add_argument("--seed", type=int, default=1, help="noise seed (default 1)")
    p.add_argument("--speed", type=non_negative, default=1.0,
                   help="device-time speed-up; 0 = as fast as the link takes data (default 1)")
    p.add_argument("--link", type=Path, help="also make a stable symlink to the device here (e.g. /tmp/leakmon0)")
    p.add_argument("--flash", type=Path, metavar="DIR",
                   help="the board's flash folder, kept across runs (default: a temporary one)")
    p.add_argument("--empty", action="store_true",
                   help="start with no firmware installed (default with --flash: the folder as it is)")
    p.add_argument("--truth", type=Path, metavar="FILE",
                   help="write the scenario's ground truth (per segment: pressure, temperature, mass, leak) "
                        "to a .csv or .npz file first")
    p.add_argument("--truth-duration", type=positive, metavar="S",
                   help="device seconds the truth file covers (default: the scenario's duration_s)")
    p.add_argument("--truth-every", type=positive, default=1.0, metavar="S",
                   help="seconds between truth rows (default 1)")


def run(args: argparse.Namespace) -> int:
    from leakmon.sim import scenario as scenario_mod
    from leakmon.sim.board import VirtualBoard

    install = False if args.empty else (None if args.flash is None else False)
    sc = scenario_mod.load(args.scenario)
    if args.truth is not None:
        import numpy as np

        from leakmon.sim.truth import write_truth

        duration_s = sc.duration_s if args.truth_duration is None else args.truth_duration
        t_s = np.arange(0.0, duration_s + args.truth_every / 2, args.truth_every)
        print(f"leakmon: ground truth for {t_s[-1]:g} s of device time in {write_truth(args.truth, sc, t_s)}",
              file=sys.stderr)
    board = VirtualBoard(sc, args.seed, args.speed, flash_dir=args.flash,
                         install_firmware=install, link=args.link)
    try:
        with board:
            serve(board, args)
    except KeyboardInterrupt:  # at any moment, even before the loop: a clean stop
        print("leakmon: stopped", file=sys.stderr)
    return 0


def serve(board: "VirtualBoard", args: argparse.Namespace) -> None:
    """Tell the user where the board is, then report what it does until Ctrl-C."""
    where = f" (link {args.link})" if args.link else ""
    print(f"leakmon: virtual board on {board.port}{where}: scenario {args.scenario}, seed {args.seed}, "
          f"speed {args.speed:g}, flash {board.flash_dir}; Ctrl-C stops it", file=sys.stderr, flush=True)
    if not (board.flash_dir / "main.py").exists():
        print(f"leakmon: no main.py in {board.flash_dir}: the board waits at its REPL "
              f"(deploy the firmware with: leakmon flash --port {args.link or board.port})", file=sys.stderr)
    print(args.link or board.port, flush=True)
    while True:
        for event in board.events():
            word, _, arg = event.partition(" ")
            if word == "main":
                how = {"0": "returned", "2": "interrupted"}.get(arg, "raised")
                print(f"leakmon: main.py ended ({how}): the board is at its REPL", file=sys.stderr, flush=True)
            elif word == "port" and arg != board.port:
                print(f"leakmon: device is now {arg}", file=sys.stderr, flush=True)
        if not board.running():
            raise SimulatorError(f"virtual board stopped (exit {board.poll()}): {board.log_tail(1)}")
        time.sleep(0.2)
