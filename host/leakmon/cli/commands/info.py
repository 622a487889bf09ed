"""`leakmon info`: handshake with a node and show what it reports about itself."""

from __future__ import annotations

import argparse
import json
from contextlib import ExitStack
from typing import Any

from leakmon.cli import session
from leakmon.wire import messages

HELP = "show what a node reports: board, firmware, protocol, channels, period"


def add_args(p: argparse.ArgumentParser) -> None:
    session.add_source_args(p)
    p.add_argument("--json", action="store_true", help="one JSON object")


def hello_dict(h: messages.Hello) -> dict[str, Any]:
    return {
        "board": h.board,
        "firmware": h.fw_version,
        "protocol": f"{h.proto_major}.{h.proto_minor}",
        "period_s": h.period_us / 1e6,
        "rate_hz": 1e6 / h.period_us if h.period_us else None,
        "rows_per_frame": h.rows_per_frame,
        "ticks_bits": h.ticks_bits,
        "channels": [
            {"channel": c.channel, "chip": c.chip_name, "chip_code": c.chip, "bus": c.bus,
             "mux": None if c.mux == 0xFF else c.mux, "address": c.addr, "raw_size": c.raw_size}
            for c in h.channels
        ],
    }


def format_hello(d: dict[str, Any]) -> str:
    lines = [
        f"board      {d['board']}",
        f"firmware   {d['firmware']}",
        f"protocol   v{d['protocol']}",
        f"period     {d['period_s'] * 1e3:g} ms ({d['rate_hz'] or 0:g} Hz), {d['rows_per_frame']} rows per frame",
        f"channels   {len(d['channels'])}",
    ]
    for c in d["channels"]:
        mux = "-" if c["mux"] is None else str(c["mux"])
        lines.append(f"  ch{c['channel']:<3} {c['chip']:8} bus {c['bus']}  mux {mux:>3}  address 0x{c['address']:02x}")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    with ExitStack() as stack:
        node, _alive = session.open_source(args, stack)
        d = hello_dict(node.handshake())
    print(json.dumps(d) if args.json else format_hello(d))
    return 0
