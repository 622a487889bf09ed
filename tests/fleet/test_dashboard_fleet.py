"""The dashboard on the fleet's sources: a node live from a real Mosquitto (`--broker`, as a
reader, decoded from the gateway's retained handshake and its frames) and a node's time
range from the embedded store (`--store`). Each must bring the airlock's leak alarm after
the hole opened (tests/dashboard/leak_onset.toml: 300 s of device time), as the port and
recording sources do (tests/dashboard/test_sources.py)."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from fleet.fleetkit import gateway_args, wait_until

from leakmon.fleet import AuthError, envelope
from leakmon.fleet.creds import parse_broker
from leakmon.fleet.mqttclient import connect, make_client
from leakmon.fleet.watch import NodeWatch

pytestmark = pytest.mark.slow
TESTS = Path(__file__).resolve().parents[1]
SCENARIO = TESTS / "dashboard" / "leak_onset.toml"
LEAK_ONSET_S = 300.0
VIEWER = ("victor", "viewer-pass-1")


def _dash():  # tests/dashboard's helpers (that folder is not a package: load the file once)
    import importlib.util
    import sys

    if "dashfix" in sys.modules:
        return sys.modules["dashfix"]
    spec = importlib.util.spec_from_file_location("dashfix", TESTS / "dashboard" / "dashfix.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules["dashfix"] = mod
    spec.loader.exec_module(mod)
    return mod


def start(tmp: Path, source: list[str], env: dict[str, str], site: Path = SCENARIO) -> tuple[subprocess.Popen[str], str]:
    d = _dash()
    state = tmp / "state"
    d.set_user(state, *VIEWER, "viewer")
    port = d.free_port()
    proc = subprocess.Popen([*d.LEAKMON, "dashboard", *source, "--site", str(site), "--state", str(state),
                             "--listen", f"127.0.0.1:{port}"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True, env={**os.environ, **env})
    return proc, f"http://127.0.0.1:{port}"


def airlock_alarm(proc: subprocess.Popen[str], url: str, timeout_s: float = 90.0) -> dict[str, object]:
    state = _dash().wait_state(proc, url, lambda s: any(a["segment"] == "airlock" for a in s["alarms"]), timeout_s,
                               VIEWER)
    return {**next(a for a in state["alarms"] if a["segment"] == "airlock"), "_state": state}


def frames_seen(broker, node_id: str, n: int, timeout_s: float) -> int:
    """Wait until a reader has seen n of the node's frames go by on the broker."""
    addr = parse_broker(f"mqtt://reader@127.0.0.1:{broker.port}")
    c = make_client(addr, broker.users["reader"], "counter", clean_session=True)
    seen = [0]
    c.on_message = lambda *a: seen.__setitem__(0, seen[0] + 1)
    connect(c, addr)
    c.subscribe(envelope.topic(node_id, "frame"), 1)
    c.loop_start()
    try:
        wait_until(lambda: seen[0] >= n, timeout_s)
    finally:
        c.loop_stop()
        c.disconnect()
    return seen[0]


def publish_notes(broker, node_id: str, hatch: list[str], remarks: list[str]) -> None:
    """As `gateway --notes` sends them (envelope + JSON on leakmon/<node>/note), as the gateway's user."""
    addr = parse_broker(f"mqtt://gw-a@127.0.0.1:{broker.port}")
    c = make_client(addr, broker.users["gw-a"], "notes", clean_session=True)
    connect(c, addr)
    c.loop_start()
    t_us = time.time_ns() // 1000
    notes = [{"kind": "hatch", "text": t} for t in hatch] + [{"kind": "note", "text": t} for t in remarks]
    for k, note in enumerate(notes):
        c.publish(envelope.topic(node_id, "note"), envelope.pack_json(node_id, 1, k + 1, t_us + k, note), qos=1) \
            .wait_for_publish(5)
    c.loop_stop()
    c.disconnect()


def stop(proc: subprocess.Popen[str]) -> str:
    proc.terminate()
    try:
        _, err = proc.communicate(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        _, err = proc.communicate()
    return err


def test_dashboard_live_from_the_broker(broker, procs, tmp_path: Path) -> None:
    """The page joins after the gateway's handshake: the retained one decodes the frames."""
    gw = procs("gw-a", *gateway_args(broker, "gw-a", ["a1"], tmp_path / "spool", "--scenario", str(SCENARIO),
                                     "--speed", "80", "--duration", "1500",
                                     "--no-store-confirm"))  # no serve here: nothing is sent twice
    assert frames_seen(broker, "a1", 40, 60) >= 40, gw.log  # the handshake is long gone when the page starts
    proc, url = start(tmp_path, ["--broker", f"mqtt://reader@127.0.0.1:{broker.port}", "--node", "a1"],
                      {"LEAKMON_MQTT_PASSWORD": broker.users["reader"]})
    try:
        a = airlock_alarm(proc, url)
        assert float(a["t_alarm_s"]) >= LEAK_ONSET_S, a  # type: ignore[arg-type]
        state = a["_state"]
        link = state["links"][0]  # type: ignore[index]
        assert link["connected"] and link["frames"] > 10 and link["lost_frames"] == 0, link
        assert state["site"]["channels"] == {"0": "cabin", "1": "airlock"}  # type: ignore[index]
        c = _dash().Client(url)
        c.login(*VIEWER)
        # Notes typed to `gateway --notes` reach the page: a hatch move into its hatch log (the
        # mass balance weighs by it), a remark among the notes, a move it cannot place said so.
        publish_notes(broker, "a1", ["close cabin-airlock", "close nosuch"], ["leak check by JD"])
        assert wait_until(lambda: c.get_json("/api/state")["overview"]["hatches"] == {"cabin-airlock": False}, 20), \
            c.get_json("/api/state")["hatch_events"]
        notes = [n["text"] for n in c.get_json("/api/state")["notes"]]
        assert "leak check by JD" in notes and any("not understood" in n and "nosuch" in n for n in notes), notes
        # The gateway stops: its node says offline (retained), and the page says the link is lost.
        gw.popen.terminate()
        assert gw.wait(30) == 0, gw.log
        assert wait_until(lambda: any(x["kind"] == "link lost" for x in c.get_json("/api/state")["alarms"]), 20), \
            c.get_json("/api/state")["alarms"]
        assert not c.get_json("/api/state")["links"][0]["connected"]
    finally:
        err = stop(proc)
        gw.popen.terminate()
    assert "Traceback" not in err, err


def test_dashboard_refuses_a_wrong_broker_password(broker, tmp_path: Path) -> None:
    proc, _ = start(tmp_path, ["--broker", f"mqtt://reader@127.0.0.1:{broker.port}", "--node", "a1"],
                    {"LEAKMON_MQTT_PASSWORD": "not-" + broker.users["reader"]})
    _, err = proc.communicate(timeout=60)
    assert proc.returncode != 0
    lines = [ln for ln in err.splitlines() if ln.startswith("leakmon:")]
    assert len(lines) == 1 and "refused" in lines[0] and "Traceback" not in err, err
    assert broker.users["reader"] not in err


def test_watch_refuses_an_envelope_naming_another_node(broker) -> None:
    """gw-a may publish on a1's topics; an envelope there that names a2 is refused, not decoded."""
    w = NodeWatch(parse_broker(f"mqtt://reader@127.0.0.1:{broker.port}"), broker.users["reader"], "a1")
    w.connect()
    try:
        c = make_client(parse_broker(f"mqtt://gw-a@127.0.0.1:{broker.port}"), broker.users["gw-a"], "forger",
                        clean_session=True)
        connect(c, parse_broker(f"mqtt://gw-a@127.0.0.1:{broker.port}"))
        c.loop_start()
        info = c.publish(envelope.topic("a1", "frame"), envelope.pack("a2", 1, 1, 0, b"\xa5\x5a\x01\x03"), qos=1)
        info.wait_for_publish(5)
        c.publish(envelope.topic("a1", "frame"), b"not an envelope", qos=1).wait_for_publish(5)
        got: list[object] = []
        assert wait_until(lambda: (got.extend(w.read()), w.refused >= 2)[1], 10), w.refused
        assert got == [] and w.stream.stats.frames == 0
        c.loop_stop()
        c.disconnect()
    finally:
        w.close()
    with pytest.raises(AuthError):
        NodeWatch(parse_broker(f"mqtt://reader@127.0.0.1:{broker.port}"), "wrong", "a1").connect()
    assert mqtt  # the client library the fleet uses


def test_dashboard_history_from_the_store(procs, tmp_path: Path) -> None:
    """What `serve --store` kept, shown afterwards from the file: no server, no board."""
    p = procs("serve", ["serve", "--sim", "--scenario", str(SCENARIO), "--speed", "0", "--duration", "900",
                        "--store", "lab.sqlite", "--notes"], {},
              stdin_text="sim0 hatch close cabin-airlock\nsim0 note leak check by JD\n")
    assert p.wait(120) == 0, p.log
    proc, url = start(tmp_path, ["--store", str(tmp_path / "lab.sqlite"), "--node", "sim0"], {})
    try:
        a = airlock_alarm(proc, url)
        assert LEAK_ONSET_S <= float(a["t_alarm_s"]) <= 900.0, a  # type: ignore[arg-type]
        # the operator's hatch move, stored by serve, is in the page's hatch log
        state = a["_state"]
        events = [(e["hatch"], e["open"], e["user"]) for e in state["hatch_events"]]  # type: ignore[index]
        assert events == [("cabin-airlock", 0, "operator (fleet notes)")], events
        assert state["overview"]["hatches"] == {"cabin-airlock": False}  # type: ignore[index]
        # and the remark is among the page's notes, under its node
        remarks = [(n["user"], n["text"]) for n in state["notes"]]  # type: ignore[index]
        assert ("sim0", "leak check by JD") in remarks, remarks
    finally:
        err = stop(proc)
    assert "Traceback" not in err, err
    proc, _ = start(tmp_path / "again", ["--store", str(tmp_path / "lab.sqlite"), "--node", "nosuch"], {})
    _, err = proc.communicate(timeout=60)
    assert proc.returncode != 0 and err.strip().startswith("leakmon:") and "nosuch" in err and "Traceback" not in err, err


TWO_ROOMS = Path(__file__).resolve().parent / "two_rooms.toml"


def two_node_site(tmp: Path, nodes: tuple[str, str]) -> Path:
    """two_rooms.toml with its sensors on two nodes: each board runs the whole site, so each
    node has a cabin and an airlock sensor, at the same addresses (the file says whose)."""
    text = TWO_ROOMS.read_text().split("[[sensors]]")[0]
    for node in nodes:
        for mux, seg in ((0, "cabin"), (1, "airlock")):
            text += (f'[[sensors]]\nchip = "BMP390"\nbus = 0\naddr = 0x77\nmux_addr = 0x70\nmux_channel = {mux}\n'
                     f'segment = "{seg}"\nnode = "{node}"\n\n')
    path = tmp / "site.toml"
    path.write_text(text)
    return path


def verdicts(proc: subprocess.Popen[str], url: str, timeout_s: float = 90.0) -> dict[str, object]:
    """The overview once the mass balance has weighed the site (source "mass balance")."""
    def weighed(state: dict[str, object]) -> bool:
        v = state["overview"]["verdicts"]  # type: ignore[index]
        return bool(v) and all(x["source"] == "mass balance" for x in v.values()) \
            and v["airlock"]["state"] == "leak" and v["cabin"]["state"] != "undecided"

    return _dash().wait_state(proc, url, weighed, timeout_s, VIEWER)


def check_two_nodes(state: dict[str, object], nodes: tuple[str, str]) -> None:
    # node k's channel c is k * 256 + c, placed by the site file
    assert state["site"]["channels"] == {"0": "cabin", "1": "airlock", "256": "cabin", "257": "airlock"}  # type: ignore[index]
    v = state["overview"]["verdicts"]  # type: ignore[index]
    assert v["airlock"]["state"] == "leak" and v["cabin"]["state"] == "tight", v  # the hole is in the airlock


def test_dashboard_site_on_two_nodes_live_from_the_broker(broker, procs, tmp_path: Path) -> None:
    gw = procs("gw-a", *gateway_args(broker, "gw-a", ["a1", "a2"], tmp_path / "spool", "--scenario", str(TWO_ROOMS),
                                     "--speed", "40", "--duration", "3000", "--no-store-confirm"))
    assert frames_seen(broker, "a2", 10, 60) >= 10, gw.log
    site = two_node_site(tmp_path, ("a1", "a2"))
    proc, url = start(tmp_path, ["--broker", f"mqtt://reader@127.0.0.1:{broker.port}", "--node", "a1", "--node", "a2"],
                      {"LEAKMON_MQTT_PASSWORD": broker.users["reader"]}, site)
    try:
        state = verdicts(proc, url)
        check_two_nodes(state, ("a1", "a2"))
        links = {link["node"]: link for link in state["links"]}  # type: ignore[union-attr]
        assert set(links) == {"node a1", "node a2"} and all(x["connected"] for x in links.values()), links
    finally:
        err = stop(proc)
        gw.popen.terminate()
    assert "Traceback" not in err, err


def test_dashboard_site_on_two_nodes_from_the_store(procs, tmp_path: Path) -> None:
    p = procs("serve", ["serve", "--sim", "2", "--scenario", str(TWO_ROOMS), "--speed", "0", "--duration", "600",
                        "--store", "lab.sqlite"], {})
    assert p.wait(120) == 0, p.log
    site = two_node_site(tmp_path, ("sim0", "sim1"))
    # the site file names the nodes: no --node needed
    proc, url = start(tmp_path, ["--store", str(tmp_path / "lab.sqlite")], {}, site)
    try:
        check_two_nodes(verdicts(proc, url), ("sim0", "sim1"))
    finally:
        err = stop(proc)
    assert "Traceback" not in err, err
