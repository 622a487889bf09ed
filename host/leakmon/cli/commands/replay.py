"""`leakmon replay`: a recording through the same pipeline and view as `monitor`."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable, Iterator

from leakmon.analysis.estimate import DEFAULT_WINDOW_S
from leakmon.analysis.tracker import LeakTracker
from leakmon.cli import session
from leakmon.cli.argtypes import positive
from leakmon.errors import ProtocolError
from leakmon.link.recording import (
    RecordingError,
    open_recording,
    play,
    report_tail,
)
from leakmon.wire.stream import Item, NodeStream

HELP = "replay a recording: the leak rate exactly as the live run showed it"


def add_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("file", metavar="FILE", help="a recording made by `leakmon record`")
    pace = p.add_mutually_exclusive_group()
    pace.add_argument("--speed", type=positive, default=1.0, help="replay at X times the recorded pace (default 1)")
    pace.add_argument("--fast", action="store_true", help="as fast as possible")
    p.add_argument("--duration", type=positive, metavar="S",
                   help="stop after S seconds of device time (default: as the recording run did)")
    p.add_argument("--window", type=positive, metavar="S",
                   help=f"sliding window of the leak-rate fit (default: as the recording run had it, "
                        f"else {DEFAULT_WINDOW_S:g})")
    p.add_argument("--json", action="store_true", help="one JSON object per update")


def run(args: argparse.Namespace) -> int:
    with open_recording(args.file) as reader:
        meta = reader.header.meta
        window_s = args.window or _number(meta.get("window_s")) or DEFAULT_WINDOW_S
        duration_s = args.duration or _number(meta.get("duration_s"))
        stream = NodeStream()
        announced = False

        def announce(batches: Iterable[list[Item]]) -> Iterator[list[Item]]:
            nonlocal announced
            for batch in batches:
                if not announced and stream.ready and stream.hello is not None:
                    print(session.describe(stream.hello), file=sys.stderr)
                    announced = True
                yield batch

        batches = announce(play(reader, stream, None if args.fast else args.speed))
        try:
            session.print_updates(session.updates_from(batches, LeakTracker(window_s), duration_s,
                                                       session.print_event), args.json)
        except ProtocolError as e:
            raise RecordingError(f"{args.file}: {e}") from e
        print(session.summary(stream), file=sys.stderr)
        report_tail(reader, session.warn)
        if stream.hello is None:
            raise RecordingError(f"{args.file}: no HELLO from the node in the recording, nothing to decode")
    return 0


def _number(v: object) -> float | None:
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0 else None
