"""Benchmark: the gateway's live path (decode, frame keys, ingest, estimates; a null outbox)
of a git revision against the working tree, in one process, frame by frame in turn.

This virtual machine's speed moves by 15-30 % within seconds (bench/RESULTS.md), more than
most changes to the live path are worth, so two runs one after the other, or two processes
side by side, do not tell a 10 % change from the machine. Here the revision's package is
extracted (git archive) and imported under another name beside the working tree's; both
are warmed to steady state on the same nodes (--warm-frames: 600 s windows full), then
each timed frame index is fed to one and then the other (the order alternating), so that
both see the machine at the same moments. Printed: CPU us per channel-second of each, and
new/old over all frames and per 10 frames.

    .venv/bin/python bench/bench_live_ab.py --base 5fe9c95 [--nodes 40] [--frames 160]
"""

from __future__ import annotations

import argparse
import importlib
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import ModuleType

import numpy as np
from bench_fleet import NullOutbox, node_frames

ROOT = Path(__file__).resolve().parents[1]
ALIAS = "leakmon_base"


def extract(rev: str, into: Path) -> None:
    """host/leakmon of rev as package ALIAS under into (its imports renamed; the shipped
    firmware modules, found by the installed package's path mapping, stay leakmon's)."""
    tar = subprocess.run(["git", "-C", str(ROOT), "archive", rev, "host/leakmon"], check=True,
                         capture_output=True).stdout  # fmt: skip
    subprocess.run(["tar", "-x", "-C", str(into)], input=tar, check=True)
    pkg = into / ALIAS
    (into / "host" / "leakmon").rename(pkg)
    pattern = re.compile(r"\bleakmon(?=[. ]|$)", re.MULTILINE)
    for f in list(pkg.rglob("*.py")) + list(pkg.rglob("*.pyi")):
        text = pattern.sub(ALIAS, f.read_text())
        f.write_text(text.replace(f"{ALIAS}.firmware", "leakmon.firmware"))


def feed_all(edges: list[tuple[object, object]], streams: list[tuple[bytes, list[bytes]]], i: int) -> None:
    for (s, e), (_, fr) in zip(edges, streams):
        if not getattr(s, "cut_taps", None):  # (a revision before EdgeNode.follow: its own cut)
            e.on_bytes(fr[i])  # type: ignore[attr-defined]
        e.on_items(s.feed(fr[i]))  # type: ignore[attr-defined]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--base", required=True, help="git revision to compare the working tree against")
    ap.add_argument("--nodes", type=int, default=40)
    ap.add_argument("--channels", type=int, default=10)
    ap.add_argument("--warm-frames", type=int, default=640, help="frames (1 s each) fed first, untimed")
    ap.add_argument("--frames", type=int, default=160, help="frames timed, each fed to both in turn")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        extract(a.base, Path(tmp))
        sys.path.insert(0, tmp)
        mods: dict[str, tuple[ModuleType, ModuleType]] = {
            name: (importlib.import_module(f"{name}.fleet.edge"), importlib.import_module(f"{name}.wire.stream"))
            for name in (ALIAS, "leakmon")}  # fmt: skip
        streams = [node_frames(a.channels, a.warm_frames + a.frames, 10, k) for k in range(a.nodes)]
        setups: dict[str, tuple[list[tuple[object, object]], NullOutbox]] = {}
        for name, (edge, stream) in mods.items():
            out = NullOutbox()
            edges = [(stream.NodeStream(), edge.EdgeNode(f"n{k}", out, 600.0)) for k in range(a.nodes)]
            for (s, e), (hs, _) in zip(edges, streams):
                if hasattr(e, "follow"):
                    e.follow(s)  # as the gateway's runner does
                else:
                    e.on_bytes(hs)
                e.on_items(s.feed(hs))
            for i in range(a.warm_frames):
                feed_all(edges, streams, i)
            setups[name] = (edges, out)
        cpu = {name: np.zeros(a.frames) for name in setups}
        for j in range(a.frames):
            for name in (setups if j % 2 == 0 else list(setups)[::-1]):
                c0 = time.thread_time()
                feed_all(setups[name][0], streams, a.warm_frames + j)
                cpu[name][j] = time.thread_time() - c0
    old, new = cpu[ALIAS], cpu["leakmon"]
    msgs = {name: out.n for name, (_, out) in setups.items()}
    if msgs[ALIAS] != msgs["leakmon"]:
        raise SystemExit(f"bench: the two published {msgs[ALIAS]} and {msgs['leakmon']} messages")
    per = a.nodes * a.channels * 1e-6  # channel-seconds a frame index, in us
    tens = new[: a.frames // 10 * 10].reshape(-1, 10).sum(1) / old[: a.frames // 10 * 10].reshape(-1, 10).sum(1)
    print(f"live path, {a.nodes} nodes x {a.channels} ch at 10 Hz, 600 s windows, an estimate every 10 s, "
          f"{a.frames} frames each after {a.warm_frames}, in turn ({msgs['leakmon']} messages each)")
    print(f"  {a.base:>12}: {old.sum() / a.frames / per:6.1f} us CPU per channel-second")
    print(f"  {'working tree':>12}: {new.sum() / a.frames / per:6.1f} us CPU per channel-second")
    print(f"  new/old {new.sum() / old.sum():.3f}; per 10 frames median {np.median(tens):.3f} "
          f"(range {tens.min():.3f}-{tens.max():.3f})")


if __name__ == "__main__":
    main()
