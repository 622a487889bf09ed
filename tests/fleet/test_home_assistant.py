"""`gateway --ha-discovery` against the real broker: what Home Assistant would read."""

from __future__ import annotations

import json
import time
from pathlib import Path

from fleet.fleetkit import gateway_args
from leakmon.fleet.creds import parse_broker
from leakmon.fleet.mqttclient import connect, make_client


def test_discovery_configs_and_states(broker, procs, tmp_path: Path) -> None:
    args, env = gateway_args(broker, "gw-a", ["a1"], tmp_path / "spool", "--speed", "30", "--duration", "30",
                             "--ha-discovery", "--no-store-confirm")
    gw = procs("gw", args, env)
    assert gw.wait(60) == 0, gw.log
    addr = parse_broker(f"mqtt://reader@127.0.0.1:{broker.port}")
    c = make_client(addr, broker.users["reader"], "t-ha", clean_session=True)
    connect(c, addr)
    got: dict[str, bytes] = {}
    c.on_message = lambda cl, u, m: got.__setitem__(m.topic, bytes(m.payload))
    c.subscribe([("homeassistant/#", 1), ("leakmon/+/ha/#", 1), ("leakmon/+/state", 1)])
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and len(got) < 4:
        c.loop(0.05)
    cfg = json.loads(got["homeassistant/sensor/a1/ch0_leak_rate/config"])
    assert cfg["unique_id"] == "leakmon_a1_ch0_leak_rate" and cfg["unit_of_measurement"] == "Pa/s"
    assert cfg["device"]["identifiers"] == ["leakmon_a1"]
    assert json.loads(got["homeassistant/sensor/a1/ch0_pressure/config"])["device_class"] == "pressure"
    state = json.loads(got[cfg["state_topic"]])  # the retained last estimate, plain JSON
    assert 50_000 < state["pressure_pa"] < 200_000 and isinstance(state["leak_rate_pa_per_s"], float)
    assert cfg["availability"][0]["topic"] == "leakmon/a1/state"
    assert json.loads(got["leakmon/a1/state"])["state"] == "offline"  # the gateway stopped
