"""Benchmark: the gateway's publisher (spool -> paho -> Mosquitto, QoS 1), CPU per message,
with paho's own in-flight limit at the publisher's window (as before) against off (now),
in the same run, on a private Mosquitto.

--messages envelopes of --bytes (a frame of 10 channels x 10 rows is ~700 bytes) are put
into the spool at once, as a gateway does after a broker outage or a burst of nodes, and
the publisher sends them all; this process's CPU time from the first put to the last
PUBACK is divided by the messages. With a limit, paho scans every message in flight at
each PUBACK (Client._update_inflight), so its cost grows with the backlog.

    .venv/bin/python bench/bench_publisher.py [--messages 50000] [--bytes 700] [--repeat 2]
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # test-only: private servers

import argparse
import os
import secrets
import shutil
import tempfile
import time

import servers

from leakmon.fleet import envelope
from leakmon.fleet.creds import parse_broker
from leakmon.fleet.publisher import Publisher
from leakmon.fleet.spool import Spool


class WindowLimited(Publisher):
    """The publisher as it was: paho's in-flight limit set to the window."""

    _PAHO_INFLIGHT = 10000


def once(cls: type[Publisher], broker: servers.Broker, folder: Path, messages: list[tuple[str, bytes]]) -> float:
    """CPU microseconds a message."""
    pub = cls(parse_broker(f"mqtt://gw@127.0.0.1:{broker.port}"), broker.users["gw"], "gw", Spool(folder),
              confirm=False, log=lambda m: None)
    pub.start()
    c0 = time.process_time()
    for topic, payload in messages:
        pub.put(topic, payload)
    if not pub.drain(600):
        raise SystemExit(f"bench: the broker did not acknowledge {pub.spool.backlog} messages")
    cpu = time.process_time() - c0
    pub.close(0)
    return cpu / len(messages) * 1e6


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--messages", type=int, default=50_000)
    ap.add_argument("--bytes", type=int, default=700)
    ap.add_argument("--repeat", type=int, default=2)
    a = ap.parse_args()
    if not servers.have_mosquitto():
        raise SystemExit("bench: needs mosquitto (scripts/setup.sh installs it)")
    root = Path(tempfile.mkdtemp(prefix="leakmon-bench-"))
    root.chmod(0o711)
    users = {"gw": secrets.token_urlsafe(12)}
    broker = servers.Broker(root / "mq", users, ["user gw", "topic write leakmon/#"])
    broker.folder.mkdir(parents=True)
    broker.folder.chmod(0o755)
    broker.start()
    try:
        body = os.urandom(a.bytes)
        msgs = [(envelope.topic(f"n{k % 1000}", "frame"), envelope.pack(f"n{k % 1000}", 1, k, 0, body))
                for k in range(a.messages)]  # fmt: skip
        print(f"{a.messages} messages of {a.bytes} bytes through spool, paho and Mosquitto (CPU us a message)")
        for r in range(a.repeat):
            before = once(WindowLimited, broker, root / f"spool-before-{r}", msgs)
            now = once(Publisher, broker, root / f"spool-now-{r}", msgs)
            print(f"  paho limit at the window (before) {before:7.1f}   off (now) {now:7.1f}   x{before / now:.2f}")
    finally:
        broker.stop()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
