"""`leakmon flash`: deploy the node firmware to a board (or the virtual board), or to
every board of a testbed at once (--all, or --port given several times)."""

from __future__ import annotations

import argparse
import shutil
import sys
import threading
import time
from pathlib import Path
from typing import IO, TYPE_CHECKING

if TYPE_CHECKING:
    from leakmon.deploy.flash import Artifact, BoardProfile
    from leakmon.deploy.fleetflash import BoardResult, PortInfo

HELP = "deploy the node firmware to a board (or many at once) over its REPL"
REDRAW_S = 0.1  # a terminal's progress lines are redrawn at most this often


def add_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--port", action="append", default=[],
                   help="serial port or pyserial URL of a board (default: find one by USB id); give it several "
                        "times to flash those boards in parallel")
    p.add_argument("--all", dest="all_boards", action="store_true",
                   help="flash every board found by USB id, in parallel")
    p.add_argument("--jobs", type=int, metavar="N", help="with several boards: at most N at a time (default: all)")
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
    net = p.add_argument_group("a board with a network: it also publishes its frames straight to an MQTT broker")
    net.add_argument("--mqtt", metavar="URL", help="mqtt://USER@HOST[:PORT]: the broker and the board's own MQTT user "
                                                   "(password: LEAKMON_MQTT_PASSWORD or --mqtt-password-file; it goes "
                                                   "into the file mqtt.pw on the board, never on a command line)")
    net.add_argument("--mqtt-password-file", metavar="FILE", help="file whose first line is the board's MQTT password")
    net.add_argument("--node-id", help="the board's node id in the topics (default: its MQTT user)")
    net.add_argument("--wlan-ssid", help="Pico W / ESP32: the WLAN to join (key: LEAKMON_WLAN_KEY or --wlan-key-file)")
    net.add_argument("--wlan-key-file", metavar="FILE", help="file whose first line is the WLAN key")
    net.add_argument("--mqtt-lib", type=Path, metavar="DIR",
                     help="folder holding umqtt/simple.py (default: the one scripts/setup.sh fills from PyPI)")


def run(args: argparse.Namespace) -> int:
    from leakmon.deploy import flash, fleetflash
    from leakmon.errors import ConfigError

    board = flash.board_profile(args.board) if args.board else None
    config = flash.load_config(args.config) if args.config else None
    if args.jobs is not None and args.jobs < 1:
        raise ConfigError(f"--jobs must be at least 1, not {args.jobs}")
    extra = None
    if args.mqtt:
        if args.all_boards or len(args.port) > 1:
            raise ConfigError("--mqtt flashes one board at a time: each board has its own MQTT user")
        config, extra = network_config(args, config)
    elif args.wlan_ssid or args.node_id:
        raise ConfigError("--wlan-ssid and --node-id go with --mqtt")
    if not args.all_boards and len(args.port) <= 1:
        return run_one(args, args.port[0] if args.port else flash.find_port(board), board, config, extra)
    ports, notes = fleetflash.select_ports(args.port, args.all_boards, board)
    for n in notes:
        print(f"leakmon: {n}", file=sys.stderr, flush=True)
    if len(ports) == 1 and not args.all_boards:
        return run_one(args, ports[0].device, board, config)
    view = FleetView(ports, sys.stderr)
    try:
        results = fleetflash.flash_fleet(ports, board, args.compile, config, view.update,
                                         reset=not args.no_reset, workers=args.jobs)
    except fleetflash.FleetInterrupted as e:  # where each board was, then the usual Ctrl-C exit
        view.close()
        print_table(e.results, sys.stdout)
        raise KeyboardInterrupt from None
    view.close()
    print_table(results, sys.stdout)
    failed = [r for r in results if not r.ok]
    if failed:
        print(f"leakmon: {len(failed)} of {len(results)} boards failed", file=sys.stderr)
        return 1
    return 0


def network_config(args: argparse.Namespace, config: bytes | None) -> "tuple[bytes, list[Artifact]]":
    """config.json with the board's broker and WLAN, and the files that go with it."""
    from leakmon.deploy import netconfig
    from leakmon.errors import ConfigError
    from leakmon.fleet import envelope
    from leakmon.fleet.creds import MQTT_PASSWORD_ENV, parse_broker, read_secret

    addr = parse_broker(args.mqtt)
    if addr.tls:
        raise ConfigError("--mqtt: a board publishes over plain MQTT here (mqtts:// on the board is not done); "
                          "keep its broker listener on the local network")
    if not addr.username:
        raise ConfigError("--mqtt: name the board's MQTT user, mqtt://USER@HOST")
    try:
        user = envelope.check_id(addr.username, "MQTT user")
        node_id = envelope.check_id(args.node_id or user)
    except ValueError as e:
        raise ConfigError(f"--mqtt: {e}") from e
    password = read_secret(args.mqtt_password_file, MQTT_PASSWORD_ENV, "broker")
    if not password:
        raise ConfigError(f"--mqtt: no password for {user}: set {MQTT_PASSWORD_ENV} or give --mqtt-password-file")
    key = read_secret(args.wlan_key_file, "LEAKMON_WLAN_KEY", "WLAN") if args.wlan_ssid else None
    net = netconfig.BoardNetwork(addr.host, addr.port, user, node_id, password, args.wlan_ssid, key)
    return netconfig.network_files(config or netconfig.shipped_config(), net, args.mqtt_lib)


def run_one(args: argparse.Namespace, url: str, board: "BoardProfile | None", config: bytes | None,
            extra: "list[Artifact] | None" = None) -> int:
    from leakmon.deploy import flash
    from leakmon.errors import TransportError

    def progress(line: str) -> None:
        print(f"leakmon: {line}", file=sys.stderr, flush=True)

    progress(f"flashing the board on {url}")
    try:
        report = flash.deploy(url, board, args.compile, config, progress, reset=not args.no_reset, extra=extra)
    except TransportError as e:
        if not str(e).startswith("link lost"):
            raise
        raise TransportError(f"the port went away mid-flash ({e}): unplugged or powered off? flash it again "
                             "to repair it") from e
    summary = f"{len(report.copied)} copied, {len(report.unchanged)} unchanged"
    if report.hello is not None:
        h = report.hello
        summary += (f"; node {h.board} firmware {h.fw_version} protocol v{h.proto_major}.{h.proto_minor} "
                    f"with {len(h.channels)} sensor(s) is running")
    print(f"leakmon: {summary}", file=sys.stderr)
    return 0


class FleetView:
    """One progress line per board: rewritten in place on a terminal, else a line
    each time a board moves to its next phase (connecting, copying, verified, ...)."""

    def __init__(self, ports: "list[PortInfo]", stream: IO[str]) -> None:
        self.stream = stream
        self.tty = stream.isatty()
        self.names = [f"board{i} {p.device}" for i, p in enumerate(ports)]
        self.phase = ["connecting"] * len(ports)
        self.detail = [""] * len(ports)
        self.files = [0] * len(ports)
        self.copied = [0] * len(ports)
        self.lock = threading.Lock()
        self.drawn = 0
        self.last_draw = 0.0
        if self.tty:
            self._draw(force=True)
        else:
            for i in range(len(ports)):
                self._line(i)

    def update(self, i: int, note: str) -> None:
        with self.lock:
            old = self.phase[i]
            if " B  copied" in note or " B  unchanged" in note:
                self.files[i] += 1
                self.copied[i] += " B  copied" in note
                self.phase[i] = "copying"
                self.detail[i] = f"{self.files[i]} files, {self.copied[i]} copied"
            elif note.startswith("verified"):
                self.phase[i], self.detail[i] = "verified", note
            elif note.startswith("soft reset"):
                self.phase[i], self.detail[i] = "waiting for HELLO", ""
            elif note == "done":
                self.phase[i], self.detail[i] = "done", ""
            elif note.startswith("FAILED"):
                self.phase[i], self.detail[i] = "FAILED", note.removeprefix("FAILED: ")
            elif "removed" not in note:
                self.detail[i] = note
                if not self.tty:
                    print(f"leakmon: {self.names[i]}: {note}", file=self.stream, flush=True)
            if self.tty:
                self._draw(force=self.phase[i] in ("done", "FAILED"))
            elif self.phase[i] != old:
                self._line(i)

    def _text(self, i: int) -> str:
        return f"{self.names[i]}: {self.phase[i]}" + (f" ({self.detail[i]})" if self.detail[i] else "")

    def _line(self, i: int) -> None:
        print(f"leakmon: {self._text(i)}", file=self.stream, flush=True)

    def _draw(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self.last_draw < REDRAW_S:
            return
        self.last_draw = now
        up = f"\x1b[{self.drawn}F" if self.drawn else ""
        width = shutil.get_terminal_size().columns - 1  # a wrapped line would break the redraw
        body = "".join(f"\x1b[2K{('leakmon: ' + self._text(i))[:width]}\n" for i in range(len(self.names)))
        self.stream.write(up + body)
        self.stream.flush()
        self.drawn = len(self.names)

    def close(self) -> None:
        if self.tty:
            with self.lock:
                self._draw(force=True)


def print_table(results: "list[BoardResult]", out: IO[str]) -> None:
    """The summary: a row per board, the failed ones with their reason in one line."""
    rows = [("#", "board", "port", "USB serial", "copied", "unchanged", "verified", "HELLO", "time", "result")]
    for r in results:
        rep = r.report
        h = rep.hello if rep is not None else None
        rows.append((
            str(r.index),
            (h.board if h is not None else (rep.platform if rep is not None and rep.platform else "-")),
            r.port.device,
            r.port.serial_number or "-",
            str(len(rep.copied)) if rep is not None else "-",
            str(len(rep.unchanged)) if rep is not None else "-",
            "yes" if rep is not None else "-",
            f"fw {h.fw_version} proto v{h.proto_major}.{h.proto_minor}" if h is not None else "-",
            f"{r.seconds:.1f} s",
            "ok" if r.ok else f"FAILED: {r.reason}",
        ))
    widths = [max(len(row[c]) for row in rows) for c in range(len(rows[0]) - 1)]
    for row in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths)) + "  " + row[-1], file=out)
