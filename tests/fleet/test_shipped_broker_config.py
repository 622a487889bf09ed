"""The Mosquitto configuration and ACL we ship start a real broker, and the ACL does
what docs/fleet.md says (a gateway writes only its nodes)."""

from __future__ import annotations

import json
import re
import secrets
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
import servers

from leakmon.fleet import AuthError
from leakmon.fleet.creds import parse_broker
from leakmon.fleet.mqttclient import connect, make_client

SHIPPED = Path(__file__).resolve().parents[2] / "hardware" / "fleet"


def test_shipped_config_and_acl_run(server_root: Path) -> None:
    if not servers.have_mosquitto():
        servers.require("Mosquitto")
    folder = Path(tempfile.mkdtemp(dir=server_root))
    folder.chmod(0o755)
    users = {"gw-site-a": secrets.token_urlsafe(12), "grafana": secrets.token_urlsafe(12)}
    acl = (SHIPPED / "acl.example").read_text().splitlines()
    broker = servers.Broker(folder, users, acl)
    conf = (SHIPPED / "mosquitto.conf").read_text()
    conf = conf.replace("/etc/mosquitto/leakmon.passwd", str(folder / "passwd"))
    conf = conf.replace("/etc/mosquitto/leakmon.acl", str(folder / "acl")).replace("/var/lib/mosquitto/", f"{folder}/")
    conf = re.sub(r"^listener 1883 127.0.0.1$", f"listener {broker.port} 127.0.0.1", conf, flags=re.M)
    broker.raw_conf = conf  # the fixture writes passwd and acl; the rest is the shipped file
    broker.start()
    try:
        addr = parse_broker(f"mqtt://gw-site-a@127.0.0.1:{broker.port}")
        gw = make_client(addr, users["gw-site-a"], "t-gw", clean_session=True)
        connect(gw, addr)
        raddr = parse_broker(f"mqtt://grafana@127.0.0.1:{broker.port}")
        rd = make_client(raddr, users["grafana"], "t-rd", clean_session=True)
        connect(rd, raddr)
        got: list[str] = []
        rd.on_message = lambda c, u, m: got.append(m.topic)
        rd.subscribe("leakmon/#", 1)
        for _ in range(10):
            rd.loop(0.02)
        for t in ("leakmon/chamber-1/info", "leakmon/line-7/info", "leakmon/chamber-2/info"):
            gw.publish(t, json.dumps({"node_id": t.split("/")[1]}), qos=1)
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline and len(got) < 2:
            gw.loop(0.02)
            rd.loop(0.02)
        assert sorted(got) == ["leakmon/chamber-1/info", "leakmon/chamber-2/info"]  # line-7 is gw-site-b's
        with pytest.raises(AuthError):
            connect(make_client(addr, "wrong", "t-bad", clean_session=True), addr)
        cfg = subprocess.run(["grep", "-c", "max_queued_messages 1000000", str(SHIPPED / "mosquitto.conf")],
                             capture_output=True, text=True)
        assert cfg.stdout.strip() == "1"
    finally:
        broker.stop()
