"""The guards every request goes through: who is logged in, and for a write an
operator's session from a page of this server with its CSRF token (same Origin too).
The pages (app.py) and the JSON API (api.py) both wrap their handlers in these."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response

from leakmon.dashboard.auth import SESSION_COOKIE, LoginLimiter, Sessions, same_origin
from leakmon.dashboard.hub import Hub


@dataclass
class Ctx:
    hub: Hub
    sessions: Sessions
    limiter: LoginLimiter
    secure_cookies: bool = False


def ctx(request: Request) -> Ctx:
    c: Ctx = request.app.state.ctx
    return c


def current_user(request: Request) -> dict[str, str] | None:
    return ctx(request).sessions.user(request.cookies.get(SESSION_COOKIE))


def forbidden(why: str, status: int = 403) -> JSONResponse:
    return JSONResponse({"error": why}, status_code=status)


Handler = Callable[[Request], Awaitable[Response]]


def viewer(handler: Handler) -> Handler:
    """Any logged-in user (viewer or operator); pages redirect to the login, the API says 401."""
    async def wrapped(request: Request) -> Response:
        if current_user(request) is None:
            if request.url.path.startswith("/api/"):
                return forbidden("login required", 401)
            return RedirectResponse("/login", status_code=303)
        return await handler(request)
    return wrapped


def operator(handler: Handler) -> Handler:
    """A write: an operator's session, from a page of this server, with its CSRF token."""
    async def wrapped(request: Request) -> Response:
        c = ctx(request)
        cookie = request.cookies.get(SESSION_COOKIE)
        user = c.sessions.user(cookie)
        if user is None:
            return forbidden("login required", 401)
        if not same_origin(request.headers.get("origin"), request.headers.get("host")):
            return forbidden("cross-site request refused")
        if not c.sessions.csrf_ok(cookie, request.headers.get("x-csrf-token")):
            return forbidden("missing or wrong CSRF token")
        if user["role"] != "operator":
            return forbidden(f"{user['role']}s may not change anything")
        request.state.user = user
        return await handler(request)
    return wrapped
