"""Who may do what: Argon2id password hashes, signed expiring session cookies backed by a
session row (logout and a password change end them), CSRF tokens bound to the session, an
Origin check on every write, and a login rate limit.

There is no default password: the first run makes an operator with a random password that
is shown once on the terminal (never logged, never on a command line), or the operator sets
one with `leakmon dashboard --add-user NAME --role operator` (password read from stdin).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import time
from collections import deque
from pathlib import Path

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from itsdangerous import BadSignature, URLSafeTimedSerializer

from leakmon.dashboard.store import Store

SESSION_COOKIE = "leakmon_session"
LOGIN_COOKIE = "leakmon_login"  # double-submit token for the login form (login CSRF)
SESSION_MAX_AGE_S = 8 * 3600  # a shift
LOGIN_FAILURES_ALLOWED = 5
LOGIN_WINDOW_S = 60.0

_hasher = PasswordHasher()  # Argon2id with the library's current recommended parameters


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


# A hash to check against when the user does not exist, so that a wrong name costs the
# same time as a wrong password (no user enumeration by timing).
_DUMMY_HASH = hash_password(secrets.token_urlsafe(16))


def load_secret(state_dir: Path) -> bytes:
    """The key that signs sessions: made once, readable by the owner only."""
    path = state_dir / "secret.key"
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(secrets.token_bytes(32))
    return path.read_bytes()


def ensure_first_operator(store: Store) -> str | None:
    """With no user yet: make 'operator' with a random password and return it (once)."""
    if store.user_count():
        return None
    password = secrets.token_urlsafe(12)
    store.set_user("operator", "operator", hash_password(password))
    return password


class Sessions:
    def __init__(self, store: Store, secret: bytes, max_age_s: float = SESSION_MAX_AGE_S) -> None:
        self.store = store
        self.secret = secret
        self.max_age_s = max_age_s
        self._signer = URLSafeTimedSerializer(secret, salt="leakmon-session")

    def login(self, name: str, password: str) -> str | None:
        """A signed cookie value for a new session, or None if the name or password is wrong."""
        user = self.store.user(name)
        ok = verify_password(user["hash"] if user else _DUMMY_HASH, password)
        if not (ok and user):
            return None
        sid = secrets.token_urlsafe(32)
        self.store.add_session(sid, name, time.time() + self.max_age_s)
        return self._signer.dumps({"sid": sid})

    def _sid(self, cookie: str | None) -> str | None:
        if not cookie:
            return None
        try:
            data = self._signer.loads(cookie, max_age=int(self.max_age_s))
        except BadSignature:  # also SignatureExpired
            return None
        sid = data.get("sid") if isinstance(data, dict) else None
        return sid if isinstance(sid, str) else None

    def user(self, cookie: str | None) -> dict[str, str] | None:
        """{name, role} of a valid, unexpired, not-logged-out session; None otherwise."""
        sid = self._sid(cookie)
        return self.store.session_user(sid) if sid else None

    def logout(self, cookie: str | None) -> None:
        sid = self._sid(cookie)
        if sid:
            self.store.end_session(sid)

    def csrf_token(self, cookie: str | None) -> str:
        """The token a page of this session sends back with every write."""
        sid = self._sid(cookie) or ""
        return hmac.new(self.secret, b"csrf:" + sid.encode(), hashlib.sha256).hexdigest()

    def csrf_ok(self, cookie: str | None, token: str | None) -> bool:
        return bool(token) and self._sid(cookie) is not None and hmac.compare_digest(
            self.csrf_token(cookie), token or "")


class LoginLimiter:
    """Failed logins in a sliding window: at most `per_user` for one user name (guessing one
    account) and `per_address` from one client address (guessing many); memory bounded by
    dropping the oldest keys."""

    def __init__(self, per_user: int = LOGIN_FAILURES_ALLOWED, per_address: int = 6 * LOGIN_FAILURES_ALLOWED,
                 window_s: float = LOGIN_WINDOW_S, max_keys: int = 10000) -> None:
        self.per_user = per_user
        self.per_address = per_address
        self.window_s = window_s
        self.max_keys = max_keys
        self._fails: dict[str, deque[float]] = {}

    def _keys(self, address: str, user: str) -> list[tuple[str, int]]:
        return [(f"ip:{address}", self.per_address), (f"user:{user}", self.per_user)]

    def _recent(self, key: str, now: float) -> deque[float]:
        q = self._fails.get(key, deque())
        while q and q[0] < now - self.window_s:
            q.popleft()
        return q

    def retry_after_s(self, address: str, user: str) -> float:
        """0 if a login may be tried now, else seconds to wait."""
        now = time.monotonic()
        wait = 0.0
        for key, allowed in self._keys(address, user):
            q = self._recent(key, now)
            if len(q) >= allowed:
                wait = max(wait, q[-allowed] + self.window_s - now)
        return wait

    def failed(self, address: str, user: str) -> None:
        now = time.monotonic()
        for key, _ in self._keys(address, user):
            q = self._recent(key, now)
            q.append(now)
            self._fails[key] = q
        while len(self._fails) > self.max_keys:
            self._fails.pop(next(iter(self._fails)))


def same_origin(origin: str | None, host: str | None) -> bool:
    """A browser's write must come from a page of this server: Origin (sent by every modern
    browser on a POST) names our host. A missing Origin is accepted only with a valid CSRF
    token, which the caller checks as well."""
    if origin is None:
        return True
    if not host:
        return False
    return origin in (f"http://{host}", f"https://{host}")
