"""`leakmon record`: save every byte a node sends, losslessly, while showing the leak rate."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from typing import Any

from leakmon import __version__
from leakmon.analysis.estimate import DEFAULT_WINDOW_S
from leakmon.analysis.tracker import LeakTracker, LeakUpdate
from leakmon.cli import session
from leakmon.cli.argtypes import positive
from leakmon.errors import TransportError
from leakmon.link.node import Node
from leakmon.link.recording import KIND_TX, RecordingWriter

HELP = "record everything a node sends to a file, losslessly (replay and export read it)"


def add_args(p: argparse.ArgumentParser) -> None:
    session.add_source_args(p)
    p.add_argument("-o", "--output", required=True, metavar="FILE", help="recording to write (e.g. run.lkr)")
    p.add_argument("--duration", type=positive, metavar="S", help="stop after S seconds of device time (what the last read brought is kept "
                   "too: nothing received is dropped, so a fast board's file may run a little past S)")
    p.add_argument("--window", type=positive, default=DEFAULT_WINDOW_S, metavar="S",
                   help=f"sliding window of the leak-rate fit shown while recording (default {DEFAULT_WINDOW_S:g})")
    p.add_argument("--json", action="store_true", help="one JSON object per update")
    p.add_argument("-q", "--quiet", action="store_true", help="show no updates, only the summary")
    session.add_reconnect_arg(p)
    # --site: hatch moves typed while recording become notes in the recording (cli/siteview.py)
    p.add_argument("--site", metavar="FILE", help="site (or scenario) file; lines 'close HATCH' / 'open HATCH' "
                   "typed on stdin are recorded with the device time, for `analyze --site`")


def metadata(args: argparse.Namespace) -> dict[str, Any]:
    """What a replay needs to show what this run showed: the source and the view's options."""
    meta: dict[str, Any] = {"leakmon": __version__, "window_s": args.window, "duration_s": args.duration}
    if args.port:
        meta["source"] = args.port
    else:
        meta.update(source="sim", scenario=args.scenario, seed=args.seed, speed=args.speed)
    return meta


@contextmanager
def _sigterm_as_ctrl_c() -> Iterator[None]:
    """A service manager's SIGTERM ends a recording as cleanly as Ctrl-C does."""
    def handler(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def run(args: argparse.Namespace) -> int:
    with ExitStack() as stack:
        stack.enter_context(_sigterm_as_ctrl_c())
        writer = stack.enter_context(RecordingWriter(args.output, metadata(args)))
        node, alive = session.open_source(args, stack)
        node.rx_taps.append(writer.write)
        node.tx_taps.append(lambda data: writer.write(data, KIND_TX))
        try:
            hello = node.handshake()
            print(session.describe(hello), file=sys.stderr)
            read = session.reconnecting(node, args.reconnect, session.warn, writer.note) if args.reconnect else None
            batches = session.node_batches(node, alive, read)
            updates = session.updates_from(batches, LeakTracker(args.window), args.duration, session.print_event)
            if args.site:
                updates = _with_operator(updates, args.site, writer)
            if args.quiet:
                for _ in updates:
                    pass
            else:
                session.print_updates(updates, args.json)
            writer.note("stopped", reason="duration")
        except KeyboardInterrupt:
            print("leakmon: stopped", file=sys.stderr)
        except TransportError as e:
            writer.note("link-lost", error=str(e))
            print(f"leakmon: {e}", file=sys.stderr)
            return _done(writer, node, status=1)
        return _done(writer, node, status=0)
    return 0  # pragma: no cover (ExitStack does not swallow)


def _done(writer: RecordingWriter, node: Node, status: int) -> int:
    writer.close()
    print(session.summary(node.stream), file=sys.stderr)
    print(f"leakmon: recorded {writer.bytes_rx} bytes in {writer.elapsed_s():.1f} s to {writer.path}", file=sys.stderr)
    return status


def _with_operator(updates: Iterator[LeakUpdate], site_path: str, writer: RecordingWriter) -> Iterator[LeakUpdate]:
    """--site: note the operator's hatch moves (stdin lines) between updates."""
    from leakmon.cli import sitehatch, siteview

    op = sitehatch.OperatorInput(siteview.load_site(site_path), sys.stdin)
    for u in updates:
        op.drain(u.t_s, writer.note, lambda text: print(text, file=sys.stderr))
        yield u
