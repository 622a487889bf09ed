"""The dashboard's other sources: a node on a port (`--port`, here the virtual board's
pseudo-terminal with `--site` for the layout) and a recording (`--recording`). Each must
bring the leak's alarm in the right segment, after the hole opened (leak_onset.toml: 300 s)."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

import pytest
from dashfix import (LEAKMON, SCENARIO, VIEWER, Client, Dashboard, free_port, set_user, start_dashboard,
                     stop_dashboard, wait_state)

pytestmark = pytest.mark.slow
LEAK_ONSET_S = 300.0


def serve(tmp: Path, source: list[str]) -> Dashboard:
    state = tmp / "state"
    set_user(state, *VIEWER, "viewer")
    port = free_port()
    proc = subprocess.Popen([*LEAKMON, "dashboard", *source, "--state", str(state), "--listen", f"127.0.0.1:{port}"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    return Dashboard(f"http://127.0.0.1:{port}", proc, state)


def airlock_alarm(d: Dashboard, timeout_s: float = 120.0) -> dict[str, object]:
    state = wait_state(d.proc, d.url, lambda s: any(a["segment"] == "airlock" for a in s["alarms"]), timeout_s)
    assert state["site"]["channels"] == {"0": "cabin", "1": "airlock"}
    return next(dict(a) for a in state["alarms"] if a["segment"] == "airlock")


def test_port_source_rides_out_an_unplug(tmp_path: Path) -> None:
    """The cable is pulled for a second at 400 s of device time: the dashboard says so (an
    alarm, then a note with the gap) and carries on with the same node. (At 120x the 600 s
    the test waits for take 5 s; the second of wall time unplugged is 120 s of device time.)"""
    link = tmp_path / "node0"
    scenario = tmp_path / "unplug.toml"
    scenario.write_text(SCENARIO.read_text() + "\n[board]\ndisconnect_at_s = 400.0\ndisconnect_s = 1.0\n")
    sim = subprocess.Popen([*LEAKMON, "sim", "--scenario", str(scenario), "--speed", "120", "--link", str(link)],
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while not link.exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        d = serve(tmp_path, ["--port", str(link), "--site", str(SCENARIO)])
        try:
            a = airlock_alarm(d)
            assert float(a["t_alarm_s"]) >= LEAK_ONSET_S  # type: ignore[arg-type]
            c = Client(d.url)
            assert c.login(*VIEWER) == 200
            deadline = time.monotonic() + 120
            state = c.get_json("/api/state")
            while time.monotonic() < deadline and not (state["t_s"] > 600 and state["notes"]):
                time.sleep(0.25)
                state = c.get_json("/api/state")
            assert any(al["kind"] == "link lost" for al in state["alarms"]), state["alarms"]
            assert any("link back after" in n["text"] and n["user"] == "link" for n in state["notes"]), state["notes"]
            assert state["t_s"] > 600 and state["links"][0]["connected"]
        finally:
            stop_dashboard(d)
    finally:
        sim.send_signal(signal.SIGINT)
        sim.wait(timeout=20)


def test_recording_source(tmp_path: Path) -> None:
    rec = tmp_path / "onset.lmr"
    r = subprocess.run([*LEAKMON, "record", "--sim", "--scenario", str(SCENARIO), "--speed", "0",
                        "--duration", "600", "-o", str(rec)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    d = serve(tmp_path, ["--recording", str(rec), "--site", str(SCENARIO)])
    try:
        a = airlock_alarm(d)
        assert LEAK_ONSET_S <= float(a["t_alarm_s"]) <= LEAK_ONSET_S + 120  # type: ignore[arg-type]
        c = Client(d.url)
        assert c.login(*VIEWER) == 200
        r2 = c.get_json("/api/range?ch=1&t0=0&t1=1e9&width=200")
        assert len(r2["raw"]["t_s"]) == 400 and r2["raw"]["t_s"][-1] >= 590
    finally:
        stop_dashboard(d)


def test_ctrl_c_with_an_open_event_stream_stops_cleanly(tmp_path: Path) -> None:
    d = start_dashboard(tmp_path, str(SCENARIO), 60)
    try:
        c = Client(d.url)
        assert c.login(*VIEWER) == 200
        stream = c.opener.open(d.url + "/api/events", timeout=30)
        assert stream.readline().startswith(b"retry:")
        d.proc.send_signal(signal.SIGINT)
        t0 = time.monotonic()
        rc = d.proc.wait(timeout=30)
        assert rc == 0 and time.monotonic() - t0 < 10.0
        assert stream.read() is not None  # the stream was ended by the server, not cut
        time.sleep(0.5)
        assert "Traceback" not in "".join(d.stderr) and "ERROR" not in "".join(d.stderr), d.stderr
    finally:
        stop_dashboard(d)
