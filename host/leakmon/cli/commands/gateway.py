"""`leakmon gateway`: publish what nodes send, and their live estimates, to an MQTT broker."""

from __future__ import annotations

import argparse
import os
from contextlib import ExitStack
from pathlib import Path

from leakmon.cli.argtypes import positive
from leakmon.cli.fleetsources import (
    add_node_args,
    estimate_every_max,
    make_room_for_nodes,
    log,
    open_nodes,
    start_notes,
    stop_on_signals,
)
from leakmon.errors import LeakmonError

HELP = "publish nodes' frames, estimates and alarms to an MQTT broker (spooled to disk while it is away)"


def add_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--broker", required=True, metavar="URL",
                   help="mqtt://user@host[:port] or mqtts://... ; the password comes from "
                        "$LEAKMON_MQTT_PASSWORD or --mqtt-password-file, never from the command line")
    p.add_argument("--mqtt-password-file", metavar="FILE", help="file whose first line is the broker password (chmod 600)")
    p.add_argument("--mqtt-ca", metavar="FILE", help="CA certificate of a mqtts:// broker (default: the system's)")
    p.add_argument("--gateway-id", metavar="ID", help="this gateway's id (default: the broker user name)")
    p.add_argument("--spool", metavar="DIR", help="disk spool folder (default ~/.local/state/leakmon/spool-<gateway id>)")
    p.add_argument("--spool-max-mb", type=float, default=1024.0, metavar="MB",
                   help="spool bound; past it the oldest data is dropped and counted (default 1024)")
    p.add_argument("--no-store-confirm", action="store_true",
                   help="let spooled data go at the broker's acknowledgement instead of when `serve` confirms it "
                        "stored it (for a broker with no leakmon serve behind it)")
    p.add_argument("--store-confirm-timeout", type=positive, default=10.0, metavar="S",
                   help="send spooled data again if `serve` has not confirmed storing it within S seconds; "
                        "the wait doubles while nothing is confirmed, up to 300 s (default 10)")
    p.add_argument("--ha-discovery", action="store_true",
                   help="Home Assistant MQTT discovery: a device per node, leak-rate and pressure sensors per channel")
    add_node_args(p)


def run(args: argparse.Namespace) -> int:
    try:
        from leakmon.fleet.creds import MQTT_PASSWORD_ENV, parse_broker, read_secret
        from leakmon.fleet.publisher import Publisher
        from leakmon.fleet.runner import run_nodes
        from leakmon.fleet.spool import Spool
    except ImportError as e:
        raise LeakmonError(f"gateway needs the fleet extra ({e.name} is missing): pip install 'leakmon[fleet]'") from e

    every_max_s = estimate_every_max(args)
    make_room_for_nodes(args)
    addr = parse_broker(args.broker)
    password = read_secret(args.mqtt_password_file, MQTT_PASSWORD_ENV, "broker")
    gateway_id = args.gateway_id or addr.username
    if not gateway_id:
        raise LeakmonError("--gateway-id is needed when the broker URL has no user name")
    state = Path(os.environ.get("XDG_STATE_HOME", Path.home() / ".local" / "state")) / "leakmon"
    spool = Spool(Path(args.spool) if args.spool else state / f"spool-{gateway_id}", int(args.spool_max_mb * 1e6))
    if spool.backlog:
        log(f"spool holds {spool.backlog} messages from before; they go first, flagged historical")
    try:
        pub = Publisher(addr, password, gateway_id, spool, ca_file=args.mqtt_ca, confirm=not args.no_store_confirm,
                        confirm_timeout_s=args.store_confirm_timeout, home_assistant=args.ha_discovery, log=log)
    except ValueError as e:
        raise LeakmonError(str(e)) from e
    stop = stop_on_signals()
    pub.start()
    log(f"gateway {gateway_id} publishing to {addr}")
    try:
        with ExitStack() as stack:
            sources = open_nodes(args, stack)
            start_notes(args, pub, [s.node_id for s in sources])
            try:
                threads = run_nodes(sources, pub, stop, gateway_id=gateway_id, window_s=args.window,
                                    duration_s=args.duration, check=pub.check, log=log,
                                    home_assistant=args.ha_discovery, estimate_every_s=args.estimate_every,
                                    estimate_every_max_s=every_max_s)
            except KeyboardInterrupt:
                stop.set()
                threads = []
                log("stopped")
            for t in threads:
                log(f"node {t.src.node_id}: {t.edge.frames_out} frames, {t.edge.estimates_out} estimates published")
    finally:
        if not pub.drain(10.0):
            log(f"{spool.backlog} messages stay in the spool {spool.folder} for the next start")
        pub.close(drain_s=0.0)
        if spool.stats.dropped:
            log(f"the spool was full: {spool.stats.dropped} messages were dropped")
    pub.check()
    return 0
