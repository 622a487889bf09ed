"""`leakmon dashboard`: the web page for the crew, the lab and the public."""

from __future__ import annotations

import argparse
import getpass
import secrets
import sys
from collections.abc import Callable
from contextlib import ExitStack
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

from leakmon import units
from leakmon.analysis.estimate import DEFAULT_WINDOW_S
from leakmon.analysis.tracker import LeakTracker
from leakmon.cli.argtypes import positive
from leakmon.cli.dbsource import add_db_source_args
from leakmon.cli.session import add_source_args, describe, open_source
from leakmon.errors import ConfigError, LeakmonError
from leakmon.wire import messages

if TYPE_CHECKING:  # the dashboard's modules load only when this command runs
    from leakmon.dashboard.feed import Feed
    from leakmon.dashboard.site import Site

HANDSHAKE_WAIT_S = 10.0  # --broker: how long to wait for the node's handshake (retained: at once if it has a gateway)
HELP = "a web dashboard: live plots, alarms, hatches, notes, link health and a public status page"


def add_args(p: argparse.ArgumentParser) -> None:
    add_source_args(p)
    p.add_argument("--recording", metavar="FILE", help="show a recording instead of a live node")
    add_db_source_args(p)
    g = p.add_argument_group("live from the fleet's broker instead of a port")
    g.add_argument("--broker", metavar="URL", help="mqtt://reader@host[:port] or mqtts://...: the --node's frames "
                   "as its gateway publishes them; the password from $LEAKMON_MQTT_PASSWORD or --mqtt-password-file")
    g.add_argument("--mqtt-password-file", metavar="FILE", help="file whose first line is the broker password")
    g.add_argument("--mqtt-ca", metavar="FILE", help="CA certificate of a mqtts:// broker (default: the system's)")
    p.add_argument("--listen", default="127.0.0.1:8050", metavar="HOST:PORT",
                   help="where the web server listens (default 127.0.0.1:8050)")
    p.add_argument("--state", default="leakmon-dashboard", metavar="DIR",
                   help="folder for users, sessions, alarms and notes (default ./leakmon-dashboard)")
    p.add_argument("--secure-cookies", action="store_true",
                   help="mark session cookies Secure: set it when the page is served over HTTPS (a TLS proxy)")
    p.add_argument("--site", metavar="SCENARIO", help="segments, hatches and sensors of a real node's site "
                   "(a scenario name or .toml; --sim uses its --scenario); with several --node, or none, the "
                   "[[sensors]] say which node each is on (node = \"...\") and the page weighs the whole site")
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


def build_site(args: argparse.Namespace, hello: messages.Hello | None, limit_pa: float | None,
               nodes: list[tuple[str, messages.Hello | None]] | None = None,
               moves: list[tuple[float, str, bool]] | None = None) -> Site:
    """Segments and hatches from the scenario (--sim) or the --site file; else one segment a
    channel. nodes: the nodes of a site on several (--node repeated), whose channels are
    keyed k * 256 + c and placed by the file's [[sensors]] (node = "..." where wired alike).
    moves: the operators' hatch moves read from the fleet's database, (t_s, hatch, open?)."""
    from leakmon.dashboard.site import Hatch, Segment, Site

    simulated = not (args.port or args.recording or args.db or args.store or args.broker)
    channels = hello.channels if hello is not None else []
    if simulated:
        from leakmon.sim import scenario as scenario_mod

        sc = scenario_mod.load(args.scenario)
        by_addr = {(sp.bus, sp.mux_channel if sp.mux_addr is not None else 0xFF, sp.addr): sp.segment
                   for sp in sc.sensors}
        chan = {c.channel: by_addr.get((c.bus, c.mux, c.addr)) or sc.segments[0].name for c in channels}
        # the simulated crew's hatch moves are known in advance; a real crew logs its own
        hatches = tuple(Hatch(ln.name, ln.a, ln.b, ln.initially > 0.5, tuple((t, f > 0.5) for t, f in ln.schedule))
                        for ln in sc.links if ln.kind == "hatch")
        return Site(sc.name, tuple(Segment(s.name, s.volume_m3) for s in sc.segments), hatches, chan, limit_pa)
    if not args.site:
        if nodes is not None and len(nodes) > 1:
            raise LeakmonError("several nodes need --site FILE: it says which sensor is in which segment")
        return Site("node", tuple(Segment(f"ch{c.channel}") for c in channels), (),
                    {c.channel: f"ch{c.channel}" for c in channels}, limit_pa)
    from leakmon.cli import siteview
    from leakmon.config.site import load_site

    cfg = load_site(args.site)
    if nodes is not None and len(nodes) > 1:
        site = siteview.load_site(args.site)
        chan = {key: site.station.names[seg] for key, seg in siteview.nodes_segments(site, nodes).items()}
    else:
        node_id = nodes[0][0] if nodes else None
        by_addr = {(sp.bus, sp.mux, sp.addr): sp.segment for sp in cfg.sensors if sp.node in (None, node_id)}
        chan = {c.channel: by_addr.get((c.bus, c.mux, c.addr)) or cfg.segments[0].name for c in channels}
    segs = {s.name for s in cfg.segments}
    hatches = tuple(Hatch(ln.name, ln.a, ln.b, ln.initially > 0.5,
                          tuple(sorted((t, o) for t, name, o in moves or () if name == ln.name)))
                    for ln in cfg.links if ln.kind == "hatch" and ln.a in segs and ln.b in segs)
    return Site(cfg.name, tuple(Segment(s.name, s.volume_m3) for s in cfg.segments), hatches, chan, limit_pa,
                "operator (fleet notes)")


def _nodes(args: argparse.Namespace) -> list[str]:
    """The node of --db/--store/--broker, or a site's nodes (--node repeated with --site, or
    none given when the --site file names them: node = "..." in [[sensors]])."""
    nodes = list(args.node or [])
    if not nodes and args.site:
        from leakmon.cli import siteview

        nodes = list(siteview.load_site(args.site).nodes)
    if not nodes:
        raise LeakmonError("--db, --store and --broker show a node: give it with --node NODE (a site on several "
                           "nodes: --node repeated, with --site FILE)")
    if len(set(nodes)) != len(nodes):
        raise LeakmonError("--node: a node named twice")
    if len(nodes) > 1 and not args.site:
        raise LeakmonError("several --node: show them together as a site with --site FILE, or one at a time")
    return [str(n) for n in nodes]


def _check_sources(args: argparse.Namespace) -> None:
    given = [flag for flag, on in (("--port", args.port), ("--sim", args.sim),
                                   ("--recording", args.recording), ("--db", args.db), ("--store", args.store),
                                   ("--broker", args.broker)) if on]
    if len(given) > 1:
        raise LeakmonError(f"{' and '.join(given)}: give one source")
    if (args.node or args.t_from or args.t_to) and not (args.db or args.store or args.broker):
        raise LeakmonError("--node goes with --db, --store or --broker; --from and --to with --db or --store")
    if args.broker and (args.t_from or args.t_to):
        raise LeakmonError("--broker shows what is live; for a time range read the database (--db or --store)")


def run(args: argparse.Namespace) -> int:
    if args.add_user:
        return add_user(args)
    _check_sources(args)
    from leakmon.dashboard.feed import Feed, NodeFeed, TableFeed, recording_hello, recording_tables, table_series
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
            feed = TableFeed(Path(args.recording).name, table_series(recording_tables(args.recording)), tracker)
            site = build_site(args, recording_hello(args.recording), limit_pa)
            text = f"recording {Path(args.recording).name}"
        elif args.db or args.store:
            feed, site, text = _history_feed(args, tracker, limit_pa)
        elif args.broker:
            feed, site, text, opts.rate_hz = _broker_feed(args, tracker, stack, limit_pa)
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


def _hatch_move(site_path: str) -> Callable[[str], tuple[str, bool]]:
    """An operator's hatch note ('close NAME' / 'open NAME') -> (hatch, open?), by the site's hatches."""
    from leakmon.cli import siteview, sitehatch

    return partial(sitehatch.parse_operator_line, siteview.load_site(site_path))


def _history_feed(args: argparse.Namespace, tracker: LeakTracker, limit_pa: float | None) -> tuple[Feed, Site, str]:
    """A node's (or a site's nodes') time range from the fleet's database, decoded as
    analyze --db decodes it; several nodes on the first one's clock (dbsource.combine)."""
    from leakmon.cli import dbsource
    from leakmon.dashboard.feed import TableFeed

    node_ids = _nodes(args)
    data = [dbsource.load_db_series(args, n) for n in node_ids]
    series, _ = dbsource.combine(data)
    hellos = [(n, d.stream.hello) for n, d in zip(node_ids, data, strict=True)]
    notes = dbsource.db_notes(args, data)
    moves = dbsource.hatch_moves(notes, _hatch_move(args.site)) if args.site else None
    site = build_site(args, data[0].stream.hello, limit_pa, hellos, moves)
    label = f"{', '.join(node_ids)}, {args.t_from or 'first frame'} to {args.t_to or 'now'}"
    chunks = ((key, t, p, temp) for key, (t, p, temp) in series.items())
    remarks = [(node, t_s, text) for node, t_s, kind, text in notes if kind == "note"]
    return TableFeed(f"node {', '.join(node_ids)}", chunks, tracker, remarks), site, label


def _broker_feed(args: argparse.Namespace, tracker: LeakTracker, stack: ExitStack,
                 limit_pa: float | None) -> tuple[Feed, Site, str, float]:  # fmt: skip
    """A node's (or a site's nodes') frames live from the broker, as a reader. Several
    nodes go on the first one's clock by the gateways' receipt times of their first frames."""
    from leakmon.dashboard.feed import LiveNode, SourceFeed
    from leakmon.fleet.creds import MQTT_PASSWORD_ENV, parse_broker, read_secret
    from leakmon.fleet.watch import NodeWatch

    node_ids = _nodes(args)
    addr = parse_broker(args.broker)
    password = read_secret(args.mqtt_password_file, MQTT_PASSWORD_ENV, "broker")
    watches = []
    for node_id in node_ids:
        w = NodeWatch(addr, password, node_id, args.mqtt_ca)
        w.connect()
        stack.callback(w.close)
        watches.append(w)
    several = len(watches) > 1
    hellos = [w.wait_hello(HANDSHAKE_WAIT_S, samples=several) for w in watches]
    for h in hellos:
        print(describe(h), file=sys.stderr)
    ref = watches[0].wall_minus_device_s
    nodes = [LiveNode(f"node {n}", w, h, k << 8, w.wall_minus_device_s - ref if k else 0.0)
             for k, (n, w, h) in enumerate(zip(node_ids, watches, hellos, strict=True))]
    site = build_site(args, hellos[0], limit_pa, list(zip(node_ids, hellos, strict=True)))
    move = _hatch_move(args.site) if args.site else None
    return (SourceFeed(nodes, tracker, ", ".join(node_ids), move), site, f"{', '.join(node_ids)} via {addr}",
            1e6 / min(h.period_us for h in hellos))
