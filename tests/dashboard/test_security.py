"""Roles and refusals over real HTTP against a running `leakmon dashboard --sim`: every write
checks the session, the role, the Origin and the CSRF token on the server; forged sessions,
cross-site posts and a viewer's acknowledge are refused; logins are rate-limited; there is
no default password."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import time
import urllib.parse
from pathlib import Path

import pytest
from dashfix import LEAKMON, OPERATOR, VIEWER, Client, Dashboard, add_user, dashboard  # noqa: F401  (fixture)
from itsdangerous import URLSafeTimedSerializer

EVIL = "http://evil.example"


def wait_alarm(c: Client, timeout_s: float = 120.0) -> int:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        alarms = c.get_json("/api/state")["alarms"]
        if alarms:
            return int(alarms[-1]["id"])
        time.sleep(0.5)
    raise AssertionError("no alarm within the time")


def notes(c: Client) -> list[str]:
    return [n["text"] for n in c.get_json("/api/state")["notes"]]


def test_viewer_acknowledge_is_refused_and_operator_allowed(dashboard: Dashboard) -> None:
    op, viewer = dashboard.client(), dashboard.client()
    assert op.login(*OPERATOR) == 200 and viewer.login(*VIEWER) == 200
    alarm_id = wait_alarm(viewer)
    status, body = viewer.post_json(f"/api/alarms/{alarm_id}/ack", {}, viewer.csrf())
    assert status == 403, body
    assert viewer.get_json("/api/state")["alarms"][-1]["ack_by"] is None
    for path, obj in (("/api/notes", {"text": "viewer note"}), ("/api/hatches/cabin-airlock", {"open": False})):
        assert viewer.post_json(path, obj, viewer.csrf())[0] == 403
    assert "viewer note" not in notes(op)
    # The same request from the operator goes through: the refusals above are about the role.
    status, body = op.post_json(f"/api/alarms/{alarm_id}/ack", {}, op.csrf())
    assert status == 200 and body["ack_by"] == OPERATOR[0] and body["state"] == "acknowledged"
    status, body = op.post_json(f"/api/alarms/{alarm_id}/shelve", {"minutes": 5}, op.csrf())
    assert status == 200 and body["state"] == "shelved" and body["shelved_by"] == OPERATOR[0]
    assert op.post_json(f"/api/alarms/{alarm_id}/shelve", {"minutes": -1}, op.csrf())[0] == 400
    status, body = op.post_json(f"/api/alarms/{alarm_id}/clear", {}, op.csrf())
    assert status == 200 and body["state"] == "cleared"
    assert op.post_json("/api/hatches/cabin-airlock", {"open": False}, op.csrf())[0] == 200
    assert op.get_json("/api/state")["overview"]["hatches"] == {"cabin-airlock": False}


def test_forged_and_ended_sessions_are_refused(dashboard: Dashboard) -> None:
    c = dashboard.client()
    assert c.request("/api/state")[0] == 401
    status, body, _ = c.request("/")  # urllib follows the 303 to the login page
    assert status == 200 and b'action="/login"' in body
    for cookie in ("garbage", URLSafeTimedSerializer(b"not-our-key", salt="leakmon-session").dumps({"sid": "x"}),
                   # signed with the real key, but no such session on the server
                   URLSafeTimedSerializer((dashboard.state / "secret.key").read_bytes(),
                                          salt="leakmon-session").dumps({"sid": "made-up"})):
        status, body, _ = c.request("/api/state", headers={"Cookie": f"leakmon_session={cookie}"})
        assert status == 401, body
        status, _, _ = c.request("/api/notes", json.dumps({"text": "forged"}).encode(),
                                 {"Cookie": f"leakmon_session={cookie}", "Content-Type": "application/json",
                                  "Origin": dashboard.url, "X-CSRF-Token": "x"}, "POST")
        assert status == 401
    # A real session works, and stops working after logout even though its signature is valid.
    assert c.login(*OPERATOR) == 200
    cookie = next(k.value for k in c.jar if k.name == "leakmon_session")
    csrf = c.csrf()
    assert c.request("/logout", b"", {"Origin": dashboard.url, "X-CSRF-Token": csrf}, "POST")[0] == 200
    status, _, _ = c.request("/api/state", headers={"Cookie": f"leakmon_session={cookie}"})
    assert status == 401


def test_cross_site_posts_are_refused(dashboard: Dashboard) -> None:
    op = dashboard.client()
    assert op.login(*OPERATOR) == 200
    csrf = op.csrf()
    form = urllib.parse.urlencode({"text": "cross-site"}).encode()
    # A form on another site posting with the operator's cookie: no token, foreign Origin.
    status, _, _ = op.request("/api/notes", form, {"Content-Type": "application/x-www-form-urlencoded",
                                                   "Origin": EVIL}, "POST")
    assert status == 403
    # Even with the token (had it leaked), a foreign Origin is refused; and no token is refused.
    assert op.post_json("/api/notes", {"text": "cross-site"}, csrf, origin=EVIL)[0] == 403
    assert op.post_json("/api/notes", {"text": "cross-site"}, None)[0] == 403
    assert op.post_json("/api/notes", {"text": "cross-site"}, "0" * 64)[0] == 403
    assert "cross-site" not in notes(op)
    assert op.post_json("/api/notes", {"text": "same-site"}, csrf)[0] == 200
    assert "same-site" in notes(op)
    # Login CSRF: a login form posted from another site.
    assert dashboard.client().login(*OPERATOR, origin=EVIL) == 403


def test_login_is_rate_limited(dashboard: Dashboard) -> None:
    c = dashboard.client()
    codes = [c.login("mallory", f"guess-{i}") for i in range(5)]
    assert codes == [401] * 5
    assert c.login("mallory", "guess-6") == 429
    # Another user from the same address is not locked out by mallory's guesses.
    assert dashboard.client().login(*VIEWER) == 200


def test_security_headers_and_public_access(dashboard: Dashboard) -> None:
    c = dashboard.client()
    status, body, hdr = c.request("/public")
    assert status == 200 and b"<form" not in body
    csp = hdr["content-security-policy"]
    assert "default-src 'self'" in csp and "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert c.request("/api/public")[0] == 200
    for path in ("/api/state", "/api/range?ch=0", "/api/export.csv?ch=0", "/api/events"):
        assert c.request(path)[0] == 401, path


def test_csv_export_has_every_raw_sample_of_the_range(dashboard: Dashboard) -> None:
    c = dashboard.client()
    assert c.login(*VIEWER) == 200
    status, body, hdr = c.request("/api/export.csv?ch=1&t0=10&t1=20")
    assert status == 200 and hdr["content-type"].startswith("text/csv")
    lines = body.decode().splitlines()
    assert lines[0] == "channel,t_s,pressure_pa,temperature_k"
    t = [float(x.split(",")[1]) for x in lines[1:]]
    assert 95 <= len(t) <= 105 and min(t) >= 10 and max(t) <= 20  # 10 Hz for 10 s
    assert all(0.05 < b - a < 0.15 for a, b in zip(t, t[1:]))
    status, body, _ = c.request("/api/export.csv?ch=0,1&t0=10&t1=20")
    chans = [ln.split(",")[0] for ln in body.decode().splitlines()[1:]]
    assert status == 200 and set(chans) == {"0", "1"} and 190 <= len(chans) <= 210
    assert c.request("/api/export.csv?ch=zero")[0] == 400


def test_no_default_password(tmp_path: Path) -> None:
    state = tmp_path / "state"
    r = add_user(state, "vera", "viewer-pass-2", "viewer")
    assert r.returncode == 0, r.stderr
    first = [ln for ln in r.stderr.splitlines() if "first run" in ln]
    assert len(first) == 1 and "operator" in first[0]
    password = first[0].split("password ")[1].split()[0]
    assert len(password) >= 12
    # Shown once: the second run does not print it again, and it is in no file as text.
    r2 = add_user(state, "vera", "viewer-pass-3", "viewer")
    assert r2.returncode == 0 and "first run" not in r2.stderr and password not in r2.stderr
    for f in state.iterdir():
        assert password.encode() not in f.read_bytes(), f
    assert stat.S_IMODE(os.stat(state / "secret.key").st_mode) == 0o600
    assert stat.S_IMODE(os.stat(state).st_mode) == 0o700
    r3 = add_user(state, "short", "abc", "viewer")
    assert r3.returncode == 1 and r3.stderr.strip() == "leakmon: a password needs at least 8 characters"


@pytest.mark.parametrize("args, message", [
    (["--listen", "nonsense"], "leakmon: --listen wants HOST:PORT"),
    (["--db", "postgresql://x"], "leakmon: --sim and --db: give one source"),
    (["--broker", "mqtt://viewer@localhost"], "leakmon: --sim and --broker: give one source"),
    (["--node", "a1"], "leakmon: --node goes with --db, --store or --broker"),
    (["--limit", "12 parsecs"], "leakmon: --limit:"),
])
def test_bad_arguments_are_one_line(tmp_path: Path, args: list[str], message: str) -> None:
    r = subprocess.run([*LEAKMON, "dashboard", "--sim", "--state", str(tmp_path / "s"), *args],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 1 and r.stderr.startswith(message) and "Traceback" not in r.stderr, r.stderr
