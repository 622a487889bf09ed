"""`leakmon test --recipe FILE`: a pressure-decay test (fill, stabilize, measure,
vent) judged against its recipe, on a node, the virtual board or a recording.

Exit status: 0 the part passes, 3 it does not (FAIL_* or ABORTED), 1 an error.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import asdict
from pathlib import Path

import numpy as np

from leakmon.analysis.recipe import ResultCode, evaluate, load_recipe
from leakmon.cli.session import add_source_args, describe, load_series, open_source
from leakmon.errors import ConfigError
from leakmon.wire.stream import SampleBlock

HELP = "run a pressure-decay test recipe on a node, the virtual board or a recording"
EXIT_NOT_PASSED = 3


def add_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--recipe", required=True, type=Path, help="recipe TOML ([recipe] table, see hardware/recipes/)")
    add_source_args(p)
    p.add_argument("--recording", metavar="FILE", help="judge a recording instead of a live node")
    p.add_argument("--start", type=float, metavar="S",
                   help="device time at which fill starts (default: the scenario's fill phase with --sim, else 0)")
    p.add_argument("--channel", type=int, default=0, help="sensor channel on the part (default 0)")
    p.add_argument("--json", action="store_true", help="the verdict as one JSON object")
    # --site: name the part's segment instead of its channel (cli/siteview.py)
    p.add_argument("--site", metavar="FILE", help="site (or scenario) file, with --segment")
    p.add_argument("--segment", metavar="NAME", help="with --site: test the sensor in this segment")


def fill_start(args: argparse.Namespace) -> float:
    if args.start is not None:
        return float(args.start)
    if args.port or args.recording:
        return 0.0
    from leakmon.sim import scenario as scenario_mod

    phases = {ph.name: ph for ph in scenario_mod.load(args.scenario).phases}
    return phases["fill"].start_s if "fill" in phases else 0.0


def live_series(args: argparse.Namespace, until_s: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Samples of one channel from the node (or virtual board) until device time until_s."""
    blocks: list[SampleBlock] = []
    with ExitStack() as stack:
        node, alive = open_source(args, stack)
        hello = node.handshake()
        print(describe(hello), file=sys.stderr)
        if args.site:
            args.channel = _site_channel(args, hello)
        t_last = -1.0
        while t_last < until_s:
            alive()
            for item in node.read():
                if isinstance(item, SampleBlock) and item.channel == args.channel:
                    blocks.append(item)
                    t_last = float(item.t_s[-1])
    return tuple(np.concatenate([getattr(b, k) for b in blocks]) for k in ("t_s", "pressure_pa", "temperature_k"))  # type: ignore[return-value]


def run(args: argparse.Namespace) -> int:
    recipe = load_recipe(args.recipe)
    start = fill_start(args)
    end = start + recipe.measure_end_s + recipe.vent_s
    report_tail: Callable[[], None] = lambda: None
    if args.recording:
        stream, by_channel, report_tail = load_series(args.recording)
        if args.site:
            args.channel = _site_channel(args, stream.hello)
        if args.channel not in by_channel:
            raise ConfigError(f"{args.recording}: no samples of channel {args.channel} (have {sorted(by_channel)})")
        t, p, temp = by_channel[args.channel]
    else:
        t, p, temp = live_series(args, end)
    verdict = evaluate(recipe, t - start, p, temp)
    if args.json:
        print(json.dumps({k: (v.value if isinstance(v, ResultCode) else v) for k, v in asdict(verdict).items()}))
    else:
        print(f"{verdict.code.value}: {verdict.message}")
        print(f"  fill {verdict.fill_pressure_pa:.0f} Pa, stabilize drop {verdict.stabilize_drop_pa:.1f} Pa, "
              f"leak {verdict.leak_rate_pa_per_s:+.4f} Pa/s (limit {verdict.limit:g} {verdict.unit})")
    report_tail()
    return 0 if verdict.code is ResultCode.PASS else EXIT_NOT_PASSED


def _site_channel(args: argparse.Namespace, hello: object) -> int:
    """--site/--segment: the channel of the sensor in that segment."""
    from leakmon.cli import siteview

    site = siteview.load_site(args.site)
    names = site.station.names
    if args.segment not in names:
        raise ConfigError(f"--segment: no segment {args.segment!r} in {args.site} (segments: {', '.join(names)})")
    segment_of = siteview.channel_segments(site, hello)  # type: ignore[arg-type]
    chans = sorted(ch for ch, seg in segment_of.items() if names[seg] == args.segment)
    if not chans:
        raise ConfigError(f"{args.site}: no sensor of this node sits in segment {args.segment!r}")
    return chans[0]
