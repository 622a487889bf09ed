"""`leakmon plan --site FILE`: which hatch to close (or open) next and how long to hold it,
from what a recording has shown so far (or from nothing, given the leak's size)."""

from __future__ import annotations

import argparse
import json
import math
from collections.abc import Callable

import numpy as np

from leakmon import units
from leakmon.cli import siteview
from leakmon.cli.argtypes import non_negative, positive
from leakmon.cli.session import load_series
from leakmon.errors import LeakmonError

HELP = "isolation planner: the next hatch to close or open, and how long to hold"


def add_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--site", required=True, metavar="FILE", help="site (or scenario) file: segments, hatches, sensors")
    p.add_argument("--recording", metavar="FILE", help="what is known so far: a recording of this site")
    p.add_argument("--leak", type=positive, metavar="KG_PER_DAY",
                   help="the leak's size in kg/day (default: the station total the recording shows)")
    p.add_argument("--confidence", type=positive, default=0.99, metavar="C", help="verdict confidence (default 0.99)")
    p.add_argument("--max-closed", type=int, metavar="N", help="close at most N hatches at once (default: any)")
    p.add_argument("--keep-open", default="", metavar="NAMES", help="comma-separated hatches the crew must not close")
    p.add_argument("--thermal-k", type=non_negative, default=0.0, metavar="K",
                   help="slow sensor-vs-gas temperature mismatch over a hold, kelvin (default 0)")
    p.add_argument("--period", type=positive, default=1.0, metavar="S",
                   help="sample period without a recording (default 1 s)")
    p.add_argument("--json", action="store_true", help="the plan as one JSON object")


def run(args: argparse.Namespace) -> int:
    if not 0.5 < args.confidence < 1.0:
        raise LeakmonError(f"--confidence must be between 0.5 and 1, got {args.confidence:g}")
    site = siteview.load_site(args.site)
    hatch_names = [h.name for h in site.station.hatches]
    keep = [x.strip() for x in args.keep_open.split(",") if x.strip()]
    for name in keep:
        if name not in hatch_names:
            raise LeakmonError(f"--keep-open: no hatch {name!r} in {args.site} (hatches: {', '.join(hatch_names)})")
    closable = [h not in keep for h in hatch_names]
    verdict, period, now_open = None, args.period, site.timeline.state_at(-math.inf)
    report_tail: Callable[[], None] = lambda: None
    if args.recording:
        stream, by_channel, report_tail = load_series(args.recording)
        segment_of = siteview.channel_segments(site, stream.hello)
        result = siteview.analyse(site, by_channel, segment_of, args.confidence)
        verdict, now_open = result.verdict, site.timeline.state_at(result.t_end_s)
        t0 = next(iter(by_channel.values()))[0]
        period = float(np.median(np.diff(t0))) if len(t0) > 1 else period
    leak = args.leak / units.SECONDS_PER_DAY if args.leak else (verdict.total_kg_per_s if verdict else math.nan)
    if not leak > 0:
        raise LeakmonError("give --leak KG_PER_DAY (the recording shows no station-wide leak to plan for)"
                           if args.recording else "give --leak KG_PER_DAY or --recording FILE")
    try:
        p = siteview.plan_for(site, verdict, now_open, leak, period, args.max_closed, closable, args.thermal_k)
    except ValueError as e:
        raise LeakmonError(f"plan: {e}") from e
    if args.json:
        print(json.dumps(siteview.plan_object(site, p)))
    else:
        undecided = ", ".join(site.station.names[i] for i in p.suspects) or "none"
        print(f"undecided: {undecided}; leak {leak * units.SECONDS_PER_DAY:.3g} kg/day, confidence "
              f"{args.confidence:.0%}")
        for line in siteview.plan_text(site, p):
            print(line)
    report_tail()
    return 0
