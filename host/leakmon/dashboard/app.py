"""The Starlette app: pages, login and logout, security headers, and the guards every write
goes through (a session, the operator role, same Origin and the session's CSRF token).
The JSON API and the event stream are in api.py."""

from __future__ import annotations

import secrets
import threading
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import (
    HTMLResponse,
    JSONResponse,
    PlainTextResponse,
    RedirectResponse,
    Response,
)
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from leakmon.dashboard import api
from leakmon.dashboard.auth import (
    LOGIN_COOKIE,
    SESSION_COOKIE,
    LoginLimiter,
    Sessions,
    same_origin,
)
from leakmon.dashboard.guards import Ctx, ctx, forbidden, operator, viewer
from leakmon.dashboard.hub import Hub

STATIC = Path(str(resources.files("leakmon.dashboard") / "static"))
UPLOT_JS = STATIC / "vendor" / "uPlot.iife.min.js"

SECURITY_HEADERS = {
    # Only our own files: no CDN, no inline script, nothing framed.
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
                               "connect-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    # Not "no-referrer": with it Chrome sends "Origin: null" on our own form posts.
    "Referrer-Policy": "same-origin",
}


def page(name: str, **subst: str) -> HTMLResponse:
    html = (STATIC / name).read_text(encoding="utf-8")
    for k, v in subst.items():
        html = html.replace("{{" + k + "}}", v)
    return HTMLResponse(html)


async def login_page(request: Request) -> Response:
    token = secrets.token_urlsafe(24)
    resp = page("login.html", token=token, error="")
    resp.set_cookie(LOGIN_COOKIE, token, httponly=True, samesite="strict", secure=ctx(request).secure_cookies)
    return resp


async def login(request: Request) -> Response:
    c = ctx(request)
    if not same_origin(request.headers.get("origin"), request.headers.get("host")):
        return forbidden("cross-site request refused")
    body = (await request.body())[:4096].decode("utf-8", "replace")
    form = {k: v[0] for k, v in parse_qs(body).items()}
    token = request.cookies.get(LOGIN_COOKIE)
    if not token or not secrets.compare_digest(token, form.get("token", "")):
        return forbidden("missing or wrong login token (reload the login page)")
    name = form.get("name", "")[:64]
    client = request.client.host if request.client else "?"
    wait = c.limiter.retry_after_s(client, name)
    if wait > 0:
        return PlainTextResponse(f"too many failed logins: try again in {wait:.0f} s", status_code=429,
                                 headers={"Retry-After": str(int(wait) + 1)})
    cookie = c.sessions.login(name, form.get("password", "")[:256])
    if cookie is None:
        c.limiter.failed(client, name)
        failed = page("login.html", token=token, error="Wrong name or password.")
        failed.status_code = 401
        return failed
    resp = RedirectResponse("/", status_code=303)
    resp.set_cookie(SESSION_COOKIE, cookie, max_age=int(c.sessions.max_age_s), httponly=True,
                    samesite="strict", secure=c.secure_cookies)
    resp.delete_cookie(LOGIN_COOKIE)
    return resp


async def logout(request: Request) -> Response:
    c = ctx(request)
    cookie = request.cookies.get(SESSION_COOKIE)
    if not same_origin(request.headers.get("origin"), request.headers.get("host")) or \
            not c.sessions.csrf_ok(cookie, request.headers.get("x-csrf-token")):
        return forbidden("cross-site request refused")
    c.sessions.logout(cookie)
    resp = JSONResponse({"ok": True})
    resp.delete_cookie(SESSION_COOKIE)
    return resp


@viewer
async def index(request: Request) -> Response:
    return page("index.html")


@viewer
async def report(request: Request) -> Response:
    return page("report.html")


async def public(request: Request) -> Response:
    return page("public.html")


async def favicon(request: Request) -> Response:
    return Response(status_code=204)  # pages say icon "data:,"; this is for the JSON answers


class SecurityHeaders:
    """Pure ASGI middleware (cheap on the event stream): our headers on every response."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.headers = [(k.lower().encode(), v.encode()) for k, v in SECURITY_HEADERS.items()]

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with(message: Any) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = list(message.get("headers", [])) + self.headers
            await send(message)

        await self.app(scope, receive, send_with)


def build_app(hub: Hub, sessions: Sessions, limiter: LoginLimiter | None = None,
              secure_cookies: bool = False, live_interval_s: float = 1.0) -> Any:
    routes = [
        Route("/", index),
        Route("/report", report),
        Route("/public", public),
        Route("/favicon.ico", favicon),
        Route("/login", login_page, methods=["GET"]),
        Route("/login", login, methods=["POST"]),
        Route("/logout", logout, methods=["POST"]),
        *api.routes(viewer, operator),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]
    app = Starlette(routes=routes)
    app.state.ctx = Ctx(hub, sessions, limiter or LoginLimiter(), secure_cookies)
    app.state.live_interval_s = live_interval_s
    app.state.stopping = threading.Event()  # set on shutdown: the event streams end
    return SecurityHeaders(app)
