"""The alarm life cycle in the store: raised -> acknowledged (who, when) -> cleared, with a
shelve that expires by itself; operations out of order are refused, not applied."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from leakmon.dashboard.store import Store


def test_alarm_life_cycle(tmp_path: Path) -> None:
    s = Store(tmp_path / "db.sqlite")
    a = s.raise_alarm("leak onset", "leak in zvezda", 0, "zvezda", 320.0, 300.0)
    assert s.alarm(a)["state"] == "raised"  # type: ignore[index]
    assert not s.clear(a, "olga")  # an alarm nobody has seen cannot be cleared
    assert s.acknowledge(a, "olga")
    r = s.alarm(a)
    assert r is not None and r["state"] == "acknowledged" and r["ack_by"] == "olga"
    assert abs(r["ack_wall"] - time.time()) < 5
    assert not s.acknowledge(a, "ivan")  # the first acknowledgement stands
    assert s.alarm(a)["ack_by"] == "olga"  # type: ignore[index]
    assert s.shelve(a, "olga", time.time() + 0.3)
    assert s.alarm(a)["state"] == "shelved"  # type: ignore[index]
    time.sleep(0.4)
    assert s.alarm(a)["state"] == "acknowledged"  # type: ignore[index]  (the shelf expired)
    assert s.clear(a, "olga")
    assert s.alarm(a)["state"] == "cleared"  # type: ignore[index]
    assert not s.acknowledge(a, "olga") and not s.shelve(a, "olga", time.time() + 60)
    s.close()


def test_state_survives_a_restart_and_roles_are_checked(tmp_path: Path) -> None:
    s = Store(tmp_path / "db.sqlite")
    s.add_note("olga", "sealant applied", 1234.5)
    s.set_hatch("zarya-zvezda", False, 1300.0, "olga")
    with pytest.raises(ValueError, match="operator, viewer"):
        s.set_user("eve", "admin", "x")
    s.close()
    s2 = Store(tmp_path / "db.sqlite")
    assert [n["text"] for n in s2.notes()] == ["sealant applied"]
    assert s2.hatch_events()[0]["open"] == 0
    s2.close()
