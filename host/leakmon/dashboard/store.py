"""What the dashboard must not forget: users, sessions, alarms and their life cycle, operator
notes and hatch changes, in one SQLite file (stdlib, WAL, one lock; writes are a few a minute).

Alarm life cycle (ISA-18.2, kept simple): raised -> acknowledged (who, when) -> cleared; an
active alarm may be shelved until a wall-clock time, after which it counts as unshelved.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

SCHEMA = """
CREATE TABLE IF NOT EXISTS users (name TEXT PRIMARY KEY, role TEXT NOT NULL, hash TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS sessions (sid TEXT PRIMARY KEY, user TEXT NOT NULL, expires REAL NOT NULL);
CREATE TABLE IF NOT EXISTS alarms (
    id INTEGER PRIMARY KEY, channel INTEGER, segment TEXT, kind TEXT NOT NULL, text TEXT NOT NULL,
    t_alarm_s REAL, t_onset_s REAL, raised_wall REAL NOT NULL,
    ack_by TEXT, ack_wall REAL, shelved_by TEXT, shelved_until_wall REAL,
    cleared_by TEXT, cleared_wall REAL);
CREATE TABLE IF NOT EXISTS notes (id INTEGER PRIMARY KEY, t_s REAL, wall REAL NOT NULL, user TEXT NOT NULL,
    text TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS hatch_events (id INTEGER PRIMARY KEY, hatch TEXT NOT NULL, open INTEGER NOT NULL,
    t_s REAL, wall REAL NOT NULL, user TEXT NOT NULL);
"""

ROLES = ("operator", "viewer")
NOTE_MAX_CHARS = 500


class Store:
    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._db.row_factory = sqlite3.Row
        self._lock = threading.Lock()
        with self._lock:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.executescript(SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def _q(self, sql: str, args: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(r) for r in self._db.execute(sql, args).fetchall()]

    def _x(self, sql: str, args: tuple[Any, ...] = ()) -> int:
        """Run a write: the new row's id for an INSERT, the rows changed for anything else."""
        with self._lock:
            cur = self._db.execute(sql, args)
            return int(cur.lastrowid or 0) if sql.startswith("INSERT") else cur.rowcount

    # -- users and sessions --

    def set_user(self, name: str, role: str, password_hash: str) -> None:
        if role not in ROLES:
            raise ValueError(f"role must be one of {', '.join(ROLES)}, not {role!r}")
        self._x("INSERT INTO users VALUES (?, ?, ?) ON CONFLICT(name) DO UPDATE SET role=excluded.role, "
                "hash=excluded.hash", (name, role, password_hash))
        self._x("DELETE FROM sessions WHERE user = ?", (name,))  # a new password ends old sessions

    def user(self, name: str) -> dict[str, Any] | None:
        rows = self._q("SELECT * FROM users WHERE name = ?", (name,))
        return rows[0] if rows else None

    def user_count(self) -> int:
        return int(self._q("SELECT COUNT(*) AS n FROM users")[0]["n"])

    def add_session(self, sid: str, user: str, expires: float) -> None:
        self._x("DELETE FROM sessions WHERE expires < ?", (time.time(),))
        self._x("INSERT INTO sessions VALUES (?, ?, ?)", (sid, user, expires))

    def session_user(self, sid: str) -> dict[str, Any] | None:
        """The user of a live session, with the role the users table says now."""
        rows = self._q("SELECT u.name, u.role FROM sessions s JOIN users u ON u.name = s.user "
                       "WHERE s.sid = ? AND s.expires > ?", (sid, time.time()))
        return rows[0] if rows else None

    def end_session(self, sid: str) -> None:
        self._x("DELETE FROM sessions WHERE sid = ?", (sid,))

    # -- alarms --

    def raise_alarm(self, kind: str, text: str, channel: int | None = None, segment: str | None = None,
                    t_alarm_s: float | None = None, t_onset_s: float | None = None) -> int:
        return self._x("INSERT INTO alarms (channel, segment, kind, text, t_alarm_s, t_onset_s, raised_wall) "
                       "VALUES (?, ?, ?, ?, ?, ?, ?)", (channel, segment, kind, text, t_alarm_s, t_onset_s,
                                                         time.time()))

    def alarms(self, limit: int = 200) -> list[dict[str, Any]]:
        rows = self._q("SELECT * FROM alarms ORDER BY id DESC LIMIT ?", (limit,))
        now = time.time()
        for r in rows:
            r["state"] = alarm_state(r, now)
        return rows

    def alarm(self, alarm_id: int) -> dict[str, Any] | None:
        rows = self._q("SELECT * FROM alarms WHERE id = ?", (alarm_id,))
        if not rows:
            return None
        rows[0]["state"] = alarm_state(rows[0], time.time())
        return rows[0]

    def acknowledge(self, alarm_id: int, user: str) -> bool:
        return self._x("UPDATE alarms SET ack_by = ?, ack_wall = ? WHERE id = ? AND ack_by IS NULL "
                       "AND cleared_wall IS NULL", (user, time.time(), alarm_id)) > 0

    def shelve(self, alarm_id: int, user: str, until_wall: float) -> bool:
        return self._x("UPDATE alarms SET shelved_by = ?, shelved_until_wall = ? WHERE id = ? "
                       "AND cleared_wall IS NULL", (user, until_wall, alarm_id)) > 0

    def clear(self, alarm_id: int, user: str) -> bool:
        """Clear (reset) an acknowledged alarm: ISA-18.2 wants it seen before it goes."""
        return self._x("UPDATE alarms SET cleared_by = ?, cleared_wall = ? WHERE id = ? AND ack_by IS NOT NULL "
                       "AND cleared_wall IS NULL", (user, time.time(), alarm_id)) > 0

    # -- notes and hatches --

    def add_note(self, user: str, text: str, t_s: float | None) -> int:
        return self._x("INSERT INTO notes (t_s, wall, user, text) VALUES (?, ?, ?, ?)",
                       (t_s, time.time(), user, text[:NOTE_MAX_CHARS]))

    def notes(self, limit: int = 500) -> list[dict[str, Any]]:
        return self._q("SELECT * FROM notes ORDER BY id DESC LIMIT ?", (limit,))

    def set_hatch(self, hatch: str, is_open: bool, t_s: float | None, user: str) -> int:
        return self._x("INSERT INTO hatch_events (hatch, open, t_s, wall, user) VALUES (?, ?, ?, ?, ?)",
                       (hatch, int(is_open), t_s, time.time(), user))

    def hatch_events(self, limit: int = 500) -> list[dict[str, Any]]:
        return self._q("SELECT * FROM hatch_events ORDER BY id DESC LIMIT ?", (limit,))


def alarm_state(r: dict[str, Any], now_wall: float) -> str:
    """raised | acknowledged | shelved | cleared (a text, never a colour only)."""
    if r["cleared_wall"] is not None:
        return "cleared"
    if r["shelved_until_wall"] is not None and r["shelved_until_wall"] > now_wall:
        return "shelved"
    return "acknowledged" if r["ack_by"] is not None else "raised"
