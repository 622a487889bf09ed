"""`leakmon monitor`: live leak rate from a node or the virtual board."""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from contextlib import ExitStack
from typing import TYPE_CHECKING

from leakmon import units
from leakmon.analysis.estimate import DEFAULT_WINDOW_S
from leakmon.analysis.tracker import LeakTracker
from leakmon.cli.argtypes import positive
from leakmon.cli.session import (
    add_alarm_args,
    add_reconnect_arg,
    add_source_args,
    alarm_settings,
    describe,
    monitor_updates,
    open_source,
    print_event,
    print_updates,
    reconnecting,
    sensor_labels,
    summary,
    warn,
)
from leakmon.errors import LeakmonError
from leakmon.link.node import Node
from leakmon.wire import messages

if TYPE_CHECKING:
    from leakmon.cli.sitehatch import OperatorInput
    from leakmon.cli.sitelive import SitePanel

HELP = "live leak rate from a node or the virtual board"


def add_args(p: argparse.ArgumentParser) -> None:
    add_source_args(p)
    p.add_argument("--duration", type=positive, metavar="S", help="stop after S seconds of device time")
    p.add_argument("--window", type=positive, default=DEFAULT_WINDOW_S, metavar="S",
                   help=f"sliding window of the leak-rate fit in seconds (default {DEFAULT_WINDOW_S:g})")
    p.add_argument("--json", action="store_true", help="one JSON object per update")
    p.add_argument("--view", action="store_true",
                   help="a live screen: a row per sensor, link health and a pressure plot, redrawn in place")
    p.add_argument("--unit", default="hPa", help="pressure unit of --view: Pa, hPa, kPa, mbar, mmHg, psi")
    p.add_argument("--limit", metavar="P",
                   help="time until the pressure falls to P (e.g. 520mmHg), from the model that holds")
    add_alarm_args(p)
    add_reconnect_arg(p)
    # --site: each group's mass balance and the verdict per segment, live (cli/siteview.py)
    p.add_argument("--site", metavar="FILE", help="site (or scenario) file: --view adds each group's leak, "
                   "a verdict per segment and the planner's next step; type 'close HATCH' / 'open HATCH' "
                   "(Enter) to tell it a hatch moved")


def parse_limit(args: argparse.Namespace) -> float | None:
    try:
        return units.parse_pressure(args.limit) if args.limit else None
    except ValueError as e:
        raise LeakmonError(f"--limit: {e}") from e


def show_view(node: Node, tracker: LeakTracker, alive: Callable[[], None], hello: messages.Hello,
              args: argparse.Namespace) -> None:
    """Redraw the live screen at most twice a second (each update is one frame, <= 2 s)."""
    from leakmon.cli.liveview import HOME_CLEAR, LiveView

    limit = tracker.limit_pa
    color = sys.stdout.isatty() and "NO_COLOR" not in os.environ
    view = LiveView(sensor_labels(hello, args), args.unit, limit, color, history_s=min(args.window, 3600.0))
    panel = _site_panel(args, hello)
    operator = _operator(panel)
    title = (f"leakmon  {hello.board} firmware {hello.fw_version}  {1e6 / hello.period_us:g} Hz  "
             f"window {args.window:g} s")
    t0, f0, shown = time.monotonic(), node.stream.stats.frames, 0.0

    def draw() -> None:
        fps = (node.stream.stats.frames - f0) / max(time.monotonic() - t0, 1e-9)
        screen = view.render(title, node.stream.stats, node.stream.decoder.stats.crc_errors, fps)
        sys.stdout.write(HOME_CLEAR + screen)
        sys.stdout.flush()

    def on_event(e: messages.Event) -> None:
        if e.name != "boot":
            view.note(f"t={e.t_ticks_us / 1e6:.1f} s {e.name} channel {e.channel} detail {e.detail} {e.text}".rstrip())

    def say(text: str) -> None:  # link lost and back: inside the screen, drawn at once
        view.note(text)
        draw()

    read = reconnecting(node, args.reconnect, say) if args.reconnect else None
    try:
        for u in monitor_updates(node, tracker, args.duration, alive, on_event, read):
            view.update(u)
            if panel is not None and operator is not None:  # --site: 'close HATCH' typed on stdin
                operator.drain(u.t_s, panel.note_move, view.note)
            if panel is not None and panel.add(u.channel, u.t_s, u.pressure_pa, u.temperature_k):
                view.panel = panel.lines(limit)
            if time.monotonic() - shown >= 0.5:
                draw()
                shown = time.monotonic()
    finally:
        draw()


def run(args: argparse.Namespace) -> int:
    with ExitStack() as stack:
        node, alive = open_source(args, stack)
        hello = node.handshake()
        print(describe(hello), file=sys.stderr)
        days, catch = alarm_settings(args)
        tracker = LeakTracker(args.window, limit_pa=parse_limit(args), false_alarm_days=days,
                              catch_pa_per_s=catch)
        try:
            if args.view:
                show_view(node, tracker, alive, hello, args)
            else:
                read = reconnecting(node, args.reconnect, warn) if args.reconnect else None
                print_updates(monitor_updates(node, tracker, args.duration, alive, print_event, read), args.json)
        except KeyboardInterrupt:
            print("leakmon: stopped", file=sys.stderr)
        print(summary(node.stream), file=sys.stderr)
    return 0


def _site_panel(args: argparse.Namespace, hello: messages.Hello) -> SitePanel | None:
    """--site: the live segment panel, or None."""
    if not args.site:
        return None
    from leakmon.cli import sitelive, siteview

    site = siteview.load_site(args.site)
    return sitelive.SitePanel(site, siteview.channel_segments(site, hello))


def _operator(panel: SitePanel | None) -> OperatorInput | None:
    """--site: hatch moves typed on stdin ('close HATCH', 'open HATCH') feed the live panel."""
    if panel is None:
        return None
    from leakmon.cli.sitehatch import OperatorInput

    return OperatorInput(panel.site, sys.stdin)
