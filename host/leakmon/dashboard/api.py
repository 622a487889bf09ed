"""The JSON API the pages call: state, the live event stream (server-sent events), zoom
ranges decimated on the server, CSV export, the operator's writes, and the public status."""

from __future__ import annotations

import asyncio
import json
import math
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import numpy as np
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from leakmon.dashboard.auth import SESSION_COOKIE
from leakmon.dashboard.guards import ctx, current_user, forbidden
from leakmon.dashboard.hub import Hub

MAX_WIDTH_PX = 4000
MAX_CSV_ROWS = 2_000_000
SHELVE_MAX_MIN = 24 * 60


def finite(obj: Any) -> Any:
    """obj with every NaN or infinity replaced by None: JSON has no such numbers, and the
    browser's JSON.parse rejects them (a first estimate can have an infinite interval)."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [finite(v) for v in obj]
    return obj


def dumps(obj: Any) -> str:
    try:
        return json.dumps(obj, separators=(",", ":"), allow_nan=False)
    except ValueError:  # only then pay for the walk
        return json.dumps(finite(obj), separators=(",", ":"), allow_nan=False)


class JSONResponse(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return dumps(content).encode("utf-8")


def _hub(request: Request) -> Hub:
    return ctx(request).hub


def _float(request: Request, name: str, default: float) -> float:
    try:
        v = float(request.query_params.get(name, default))
    except ValueError:
        return default
    return v if math.isfinite(v) else default


def _records(hub: Hub) -> dict[str, Any]:
    """Alarms, notes and hatch changes: what every plot annotates and the alarm list shows."""
    return {"alarms": hub.store.alarms(100), "notes": hub.store.notes(100),
            "hatch_events": hub.store.hatch_events(100)}


async def me(request: Request) -> Response:
    user = current_user(request)
    if user is None:
        return forbidden("login required", 401)
    return JSONResponse({**user, "csrf": ctx(request).sessions.csrf_token(request.cookies.get(SESSION_COOKIE))})


async def state(request: Request) -> Response:
    hub = _hub(request)
    return JSONResponse({"site": hub.site.as_dict(), "source": hub.source_text, "t_s": hub.t_now_s,
                         "overview": hub.overview(), **_records(hub), **hub.live({}, max_rows=4000)})


async def events(request: Request) -> Response:
    """Server-sent events: one message a second with the rows each channel got since the last
    one, the latest values, the overview and the records (a few kB for 16 traces)."""
    hub = _hub(request)
    interval_s = request.app.state.live_interval_s
    stopping = request.app.state.stopping

    async def stream() -> AsyncIterator[str]:
        since: dict[int, float] = {}
        for ch in hub.history.updates:  # the page loads the past from /api/state first
            r = hub.history.updates[ch]
            with hub.history.lock:
                if len(r):
                    since[ch] = float(r.view()[0, -1])
        yield "retry: 2000\n\n"
        while not stopping.is_set() and not await request.is_disconnected():
            msg = hub.live(since)
            for ch, rows in msg["rows"].items():
                since[int(ch)] = rows["t_s"][-1]
            msg.update(overview=hub.overview(), **_records(hub))
            yield f"data: {dumps(msg)}\n\n"
            t_next = time.monotonic() + interval_s
            while not stopping.is_set() and time.monotonic() < t_next:
                await asyncio.sleep(min(0.25, interval_s))

    return StreamingResponse(stream(), media_type="text/event-stream", headers={"Cache-Control": "no-store"})


async def range_(request: Request) -> Response:
    """Zoom: one channel over [t0, t1], raw samples min/max per pixel column, and its leak
    updates thinned to the same width; server time in the answer."""
    hub = _hub(request)
    t_start = time.perf_counter()
    ch = int(_float(request, "ch", 0))
    t0, t1 = _float(request, "t0", -math.inf), _float(request, "t1", math.inf)
    width = int(min(max(_float(request, "width", 1000), 1), MAX_WIDTH_PX))
    raw = hub.history.raw_range(ch, t0, t1, width)
    upd = hub.history.update_range(ch, t0, t1, width)
    return JSONResponse({"channel": ch, "raw": raw, "updates": upd,
                         "server_ms": (time.perf_counter() - t_start) * 1e3})


async def export_csv(request: Request) -> Response:
    """Raw values of the visible range, every sample (not the decimated picture), of one or
    more channels (ch=0,1,2)."""
    hub = _hub(request)
    try:
        chans = [int(c) for c in request.query_params.get("ch", "0").split(",")][:64]
    except ValueError:
        return forbidden("ch must be channel numbers separated by commas", 400)
    t0, t1 = _float(request, "t0", -math.inf), _float(request, "t1", math.inf)
    lines = ["channel,t_s,pressure_pa,temperature_k"]
    for ch in chans:
        rows = hub.history.raw_rows(ch, t0, t1)[:, :MAX_CSV_ROWS]
        lines += [f"{ch},{t:.3f},{p:.3f},{k:.4f}" for t, p, k in rows.T.tolist()]
    name = "-".join(f"ch{c}" for c in chans)
    return Response("\n".join(lines) + "\n", media_type="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="leakmon-{name}.csv"'})


async def _json(request: Request) -> dict[str, Any]:
    try:
        body = json.loads((await request.body())[:8192] or b"{}")
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _alarm_action(action: str) -> Callable[[Request], Any]:
    async def handler(request: Request) -> Response:
        hub, user = _hub(request), request.state.user["name"]
        alarm_id = int(request.path_params["alarm_id"])
        if hub.store.alarm(alarm_id) is None:
            return forbidden("no such alarm", 404)
        if action == "ack":
            ok = hub.store.acknowledge(alarm_id, user)
        elif action == "clear":
            ok = hub.store.clear(alarm_id, user)
        else:
            minutes = (await _json(request)).get("minutes", 60)
            if not isinstance(minutes, (int, float)) or not 0 < minutes <= SHELVE_MAX_MIN:
                return forbidden(f"minutes must be in (0, {SHELVE_MAX_MIN}]", 400)
            ok = hub.store.shelve(alarm_id, user, time.time() + 60.0 * minutes)
        if not ok:
            return forbidden(f"cannot {action} alarm {alarm_id} in its state", 409)
        return JSONResponse(hub.store.alarm(alarm_id))
    return handler


async def add_note(request: Request) -> Response:
    hub = _hub(request)
    text = str((await _json(request)).get("text", "")).strip()
    if not text:
        return forbidden("a note needs text", 400)
    note_id = hub.store.add_note(request.state.user["name"], text, hub.t_now_s)
    return JSONResponse({"id": note_id})


async def set_hatch(request: Request) -> Response:
    hub = _hub(request)
    name = request.path_params["name"]
    if name not in {h.name for h in hub.site.hatches}:
        return forbidden("no such hatch", 404)
    is_open = (await _json(request)).get("open")
    if not isinstance(is_open, bool):
        return forbidden("open must be true or false", 400)
    hub.store.set_hatch(name, is_open, hub.t_now_s, request.state.user["name"])
    return JSONResponse({"hatch": name, "open": is_open})


def public_status(hub: Hub) -> dict[str, Any]:
    """Coarse and read-only: a status word, the station rate's hourly means rounded to
    0.1 mmHg/day, and when it was last updated. No pressure, no channel, no raw value."""
    active = [a for a in hub.store.alarms(50)
              if a["kind"] == "leak onset" and a["state"] in ("raised", "acknowledged", "shelved")]
    trend = list(hub.trend)
    hourly: list[list[float]] = []
    if trend:
        t = np.array([p[0] for p in trend])
        v = np.array([p[1] for p in trend])
        hour = np.floor(t / 3600.0)
        for h in np.unique(hour)[-7 * 24:]:
            hourly.append([float(h), round(float(v[hour == h].mean()), 1)])
    link = max((h.last_seen_wall or 0.0 for h in hub.links.values()), default=0.0)
    return {"status": "leak under investigation" if active else "normal",
            "rate_trend_mmhg_per_day_hourly": hourly,
            "last_update_utc": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(link)) if link else None}


async def public_api(request: Request) -> Response:
    return JSONResponse(public_status(_hub(request)))


def routes(viewer: Callable[[Any], Any], operator: Callable[[Any], Any]) -> list[Route]:
    return [
        Route("/api/me", me),
        Route("/api/state", viewer(state)),
        Route("/api/events", viewer(events)),
        Route("/api/range", viewer(range_)),
        Route("/api/export.csv", viewer(export_csv)),
        Route("/api/public", public_api),
        Route("/api/alarms/{alarm_id:int}/ack", operator(_alarm_action("ack")), methods=["POST"]),
        Route("/api/alarms/{alarm_id:int}/shelve", operator(_alarm_action("shelve")), methods=["POST"]),
        Route("/api/alarms/{alarm_id:int}/clear", operator(_alarm_action("clear")), methods=["POST"]),
        Route("/api/notes", operator(add_note), methods=["POST"]),
        Route("/api/hatches/{name}", operator(set_hatch), methods=["POST"]),
    ]
