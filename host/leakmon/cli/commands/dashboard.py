"""`leakmon dashboard`: the web page for the crew, the lab and the public."""

from __future__ import annotations

import argparse
import getpass
import secrets
import sys
from contextlib import ExitStack
from pathlib import Path
from typing import TYPE_CHECKING

from leakmon import units
from leakmon.analysis.estimate import DEFAULT_WINDOW_S
from leakmon.analysis.tracker import LeakTracker
from leakmon.cli.argtypes import positive
from leakmon.cli.session import add_source_args, describe, open_source
from leakmon.errors import ConfigError, LeakmonError
from leakmon.wire import messages

if TYPE_CHECKING:  # the dashboard's modules load only when this command runs
    from leakmon.dashboard.site import Site

HELP = "a web dashboard: live plots, alarms, hatches, notes, link health and a public status page"


def add_args(p: argparse.ArgumentParser) -> None:
    add_source_args(p)
    p.add_argument("--recording", metavar="FILE", help="show a recording instead of a live node")
    p.add_argument("--db", metavar="URL", help="the fleet's database (not available yet)")
    p.add_argument("--broker", metavar="URL", help="the fleet's MQTT broker (not available yet)")
    p.add_argument("--listen", default="127.0.0.1:8050", metavar="HOST:PORT",
                   help="where the web server listens (default 127.0.0.1:8050)")
    p.add_argument("--state", default="leakmon-dashboard", metavar="DIR",
                   help="folder for users, sessions, alarms and notes (default ./leakmon-dashboard)")
    p.add_argument("--secure-cookies", action="store_true",
                   help="mark session cookies Secure: set it when the page is served over HTTPS (a TLS proxy)")
    p.add_argument("--site", metavar="SCENARIO", help="segments, hatches and sensors of a real node's site "
                   "(a scenario name or .toml; --sim uses its --scenario)")
    p.add_argument("--window", type=positive, default=DEFAULT_WINDOW_S, metavar="S",
                   help=f"sliding window of the leak-rate fit in seconds (default {DEFAULT_WINDOW_S:g})")
    p.add_argument("--limit", metavar="P", help="pressure at which the crew must act, for the time to "
                   "the limit (e.g. 490mmHg)")
    p.add_argument("--history-hours", type=positive, default=24.0, metavar="H",
                   help="hours of raw samples kept in memory for zooming (default 24)")
    p.add_argument("--add-user", metavar="NAME", help="add or change a user and exit; the password is read "
                   "from standard input (a random one is made and shown once if it is empty)")
    p.add_argument("--role", choices=("operator", "viewer"), default="viewer", help="role of --add-user")


def add_user(args: argparse.Namespace) -> int:
    from leakmon.dashboard.auth import hash_password
    from leakmon.dashboard.server import open_state

    store, _, first = open_state(Path(args.state))
    if first is not None and args.add_user != "operator":
        print(f"leakmon: first run: made user 'operator' with password {first}", file=sys.stderr)
    password = getpass.getpass(f"password for {args.add_user}: ") if sys.stdin.isatty() else sys.stdin.readline()
    password = password.rstrip("\n")
    shown = ""
    if not password:
        password = shown = secrets.token_urlsafe(12)
    if len(password) < 8:
        raise ConfigError("a password needs at least 8 characters")
    store.set_user(args.add_user, args.role, hash_password(password))
    store.close()
    print(f"leakmon: user {args.add_user} ({args.role}) set" + (f", password {shown}" if shown else ""),
          file=sys.stderr)
    return 0


def build_site(args: argparse.Namespace, hello: messages.Hello | None, limit_pa: float | None) -> Site:
    """Segments and hatches from the scenario (--sim) or --site; else one segment a channel."""
    from leakmon.dashboard.site import Hatch, Segment, Site

    name = args.scenario if not (args.port or args.recording) else args.site
    channels = hello.channels if hello is not None else []
    if not name:
        return Site("node", tuple(Segment(f"ch{c.channel}") for c in channels), (),
                    {c.channel: f"ch{c.channel}" for c in channels}, limit_pa)
    from leakmon.sim import scenario as scenario_mod

    sc = scenario_mod.load(name)
    by_addr = {(sp.bus, sp.mux_channel if sp.mux_addr is not None else 0xFF, sp.addr): sp.segment
               for sp in sc.sensors}
    chan = {c.channel: by_addr.get((c.bus, c.mux, c.addr)) or sc.segments[0].name for c in channels}
    simulated_crew = not (args.port or args.recording)  # a real crew logs its own hatch changes
    hatches = tuple(Hatch(ln.name, ln.a, ln.b, ln.initially > 0.5,
                          tuple((t, f > 0.5) for t, f in ln.schedule) if simulated_crew else ())
                    for ln in sc.links if ln.kind == "hatch")
    return Site(sc.name, tuple(Segment(s.name, s.volume_m3) for s in sc.segments), hatches, chan, limit_pa)


def run(args: argparse.Namespace) -> int:
    if args.add_user:
        return add_user(args)
    if args.db or args.broker:
        raise LeakmonError("--db and --broker need the fleet service, which is not part of this version")
    from leakmon.dashboard.feed import Feed, NodeFeed, RecordingFeed, recording_hello
    from leakmon.dashboard.server import Options, parse_listen, serve

    host, port = parse_listen(args.listen)
    try:
        limit_pa = units.parse_pressure(args.limit) if args.limit else None
    except ValueError as e:
        raise LeakmonError(f"--limit: {e}") from e
    opts = Options(host=host, port=port, state_dir=Path(args.state), history_h=args.history_hours,
                   secure_cookies=args.secure_cookies)
    tracker = LeakTracker(args.window)
    with ExitStack() as stack:
        feed: Feed
        if args.recording:
            feed = RecordingFeed(args.recording, tracker)
            site = build_site(args, recording_hello(args.recording), limit_pa)
            text = f"recording {Path(args.recording).name}"
        else:
            node, alive = open_source(args, stack)
            hello = node.handshake()
            print(describe(hello), file=sys.stderr)
            site = build_site(args, hello, limit_pa)
            opts.rate_hz = 1e6 / hello.period_us
            scenario_name = Path(args.scenario).stem  # a name, not a path of this machine
            text = f"node {args.port}" if args.port else f"virtual board, scenario {scenario_name}, speed {args.speed:g}"
            feed = NodeFeed(node, hello, tracker, args.port or "virtual board", alive, reconnect=bool(args.port))
        return serve(site, feed, opts, text)
