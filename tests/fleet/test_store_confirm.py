"""`gateway --store-confirm-timeout`: spooled data nobody confirms storing goes again,
after the stated wait, then after twice it (the real broker; no serve behind it)."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

from fleet.fleetkit import gateway_args, leakmon_cmd, wait_until
from leakmon.fleet import envelope
from leakmon.fleet.creds import parse_broker
from leakmon.fleet.mqttclient import connect, make_client


def test_unconfirmed_frames_go_again_after_the_stated_wait(broker, procs, tmp_path: Path) -> None:
    addr = parse_broker(f"mqtt://reader@127.0.0.1:{broker.port}")
    c = make_client(addr, broker.users["reader"], "t-confirm", clean_session=True)
    connect(c, addr)
    first_seen: dict[tuple[int, int], float] = {}
    again: list[float] = []  # how long after its first arrival a frame came again

    def on_message(cl, u, m) -> None:  # type: ignore[no-untyped-def]
        env = envelope.unpack(bytes(m.payload))
        key, now = (env.boot, env.seq), time.monotonic()
        if key in first_seen:
            again.append(now - first_seen[key])
        else:
            first_seen[key] = now

    c.on_message = on_message
    c.subscribe(envelope.topic("a1", "frame"), 1)
    c.loop_start()
    try:
        args, env = gateway_args(broker, "gw-a", ["a1"], tmp_path / "spool", "--speed", "5", "--duration", "600")
        args[args.index("--store-confirm-timeout") + 1] = "1.5"
        gw = procs("gw", args, env)
        gw.wait_log("not confirmed stored within 1.5 s; sending them again", 30)
        gw.wait_log("not confirmed stored within 3 s; sending them again", 30)  # the wait doubles
        assert wait_until(lambda: len(again) > 0, 10)
    finally:
        c.loop_stop()
        c.disconnect()
    # The first resend: the oldest frame unconfirmed (the gateway's first) is 1.5 s old.
    # (Later resends also repeat frames sent just before them: everything from the oldest.)
    assert 1.5 <= again[0] < 1.5 + 2.0, again[:5]
    assert gw.log.count("sending them again") >= 2


def test_a_wait_that_is_not_positive_is_refused(tmp_path: Path) -> None:
    for bad in ("0", "-1", "nan", "soon"):
        r = subprocess.run(leakmon_cmd("gateway", "--broker", "mqtt://gw@127.0.0.1:1", "--sim", "1",
                                       "--store-confirm-timeout", bad), capture_output=True, text=True, timeout=60)
        assert r.returncode == 2 and "--store-confirm-timeout" in r.stderr.splitlines()[-1], r.stderr
        assert "Traceback" not in r.stderr
