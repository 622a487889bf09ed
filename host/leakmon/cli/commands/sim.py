"""`leakmon sim`: a virtual board on a pseudo-terminal, until Ctrl-C.

Open the printed device with anything that opens a serial port: leakmon monitor
--port, leakmon flash --port, mpremote connect, picocom.
"""

from __future__ import annotations

import argparse
import signal
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from leakmon.cli.argtypes import non_negative, positive
from leakmon.errors import SimulatorError

if TYPE_CHECKING:
    from leakmon.sim.board import VirtualBoard
    from leakmon.sim.scenario import Scenario

HELP = "run a virtual board (or a testbed of them) on pseudo-terminals until Ctrl-C"


def add_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--scenario", action="append",
                   help="scenario: a shipped name or a .toml path (default steady_leak); with --boards, "
                        "give it several times to deal them out to the boards in turn")
    p.add_argument("--seed", type=int, default=1, help="noise seed (default 1; board i of a testbed gets seed+i)")
    p.add_argument("--boards", type=int, metavar="N",
                   help="a testbed of N virtual boards, each with its own pty, flash folder, scenario and seed; "
                        "--link DIR makes DIR/board0 .. DIR/board{N-1}, --flash DIR keeps DIR/board{i}")
    p.add_argument("--silent", type=int, action="append", default=[], metavar="I",
                   help="with --boards: board I is a port that never answers (repeatable)")
    p.add_argument("--cut-mid-flash", type=int, action="append", default=[], metavar="I",
                   help="with --boards: cut board I's power the first time a file is half-written on it "
                        "(repeatable)")
    p.add_argument("--speed", type=non_negative, default=1.0,
                   help="device-time speed-up; 0 = as fast as the link takes data (default 1)")
    p.add_argument("--link", type=Path, help="also make a stable symlink to the device here (e.g. /tmp/leakmon0); "
                                             "with --boards, a folder for the links")
    p.add_argument("--flash", type=Path, metavar="DIR",
                   help="the board's flash folder, kept across runs (default: a temporary one)")
    p.add_argument("--empty", action="store_true",
                   help="start with no firmware installed (default with --flash: the folder as it is)")
    p.add_argument("--drop-unread", action="store_true",
                   help="a board on a network (flashed with --mqtt): what nobody reads on its port for 2 s is "
                        "dropped, as by a board's USB with no host, instead of holding the board up")
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

    stop_on_sigterm()
    names = args.scenario or ["steady_leak"]
    if args.boards is not None:
        return run_testbed(args, [(n, scenario_mod.load(n)) for n in names])
    if len(names) > 1 or args.silent or args.cut_mid_flash:
        raise SimulatorError("several --scenario, --silent and --cut-mid-flash need --boards N")
    args.scenario = names[0]
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
                         install_firmware=install, link=args.link, drop_unread=args.drop_unread)
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


def stop_on_sigterm() -> None:
    """SIGTERM (kill, a CI runner, systemd) stops the boards as cleanly as Ctrl-C; and
    Ctrl-C works even when a shell started us in the background with SIGINT ignored."""
    def stop(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)


def run_testbed(args: argparse.Namespace, scenarios: list[tuple[str, "Scenario"]]) -> int:
    """`--boards N`: the boards' links (or ports) on stdout, one a line, then serve until Ctrl-C."""
    from leakmon.sim.testbed import Testbed

    if args.truth is not None:
        raise SimulatorError("--truth writes one scenario's truth: run it without --boards")
    bed = Testbed(args.boards, scenarios, args.seed, args.speed, empty=args.empty, link_dir=args.link,
                  flash_root=args.flash, silent=frozenset(args.silent), cut_mid_flash=frozenset(args.cut_mid_flash))
    try:
        with bed:
            for s in bed.slots:
                where = f"{bed.link(s.index)} -> {s.port}" if args.link else s.port
                what = ("never answers" if s.silent is not None else
                        f"scenario {s.scenario}, seed {s.seed}, flash {s.board.flash_dir if s.board else '-'}"
                        + (", power cut mid-flash" if s.cut_pending else ""))
                print(f"leakmon: {s.name} on {where}: {what}", file=sys.stderr)
            print(f"leakmon: {bed.n} boards at speed {args.speed:g}; Ctrl-C stops them", file=sys.stderr, flush=True)
            for s in bed.slots:
                print(bed.link(s.index) or s.port, flush=True)
            while True:
                for line in bed.poll():
                    print(f"leakmon: {line}", file=sys.stderr, flush=True)
                time.sleep(0.02)
    except KeyboardInterrupt:
        print("leakmon: stopped", file=sys.stderr)
    return 0
