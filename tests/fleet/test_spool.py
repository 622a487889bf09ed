"""The gateway's disk spool: order, release on acknowledgement, restart, torn tail, bound."""

from __future__ import annotations

from pathlib import Path

from leakmon.fleet.spool import Spool


def _fill(s: Spool, n: int, start: int = 0) -> None:
    for i in range(start, start + n):
        s.append(f"leakmon/a1/frame", i.to_bytes(4, "little") * 50)


def _values(recs) -> list[int]:
    return [int.from_bytes(r.payload[:4], "little") for r in recs]


def test_replays_in_order_from_the_first_unacknowledged(tmp_path: Path) -> None:
    s = Spool(tmp_path, max_bytes=1 << 20, segment_bytes=2000)  # many small segments
    _fill(s, 100)
    first = s.read(60)
    assert _values(first) == list(range(60))
    for r in first[:10] + first[20:30]:  # acknowledged out of order
        s.ack(r.index)
    assert s.backlog == 90
    s.rewind()  # a new connection: from the first record not acknowledged
    again = s.read(1000)
    assert _values(again) == list(range(10, 100))
    for r in again:
        s.ack(r.index)
    assert s.backlog == 0
    assert len(list(tmp_path.glob("*.seg"))) == 1  # acknowledged segments are deleted
    s.close()


def test_survives_a_restart_and_cuts_a_torn_record(tmp_path: Path) -> None:
    s = Spool(tmp_path, segment_bytes=1500)
    _fill(s, 30)
    for r in s.read(12):
        s.ack(r.index)
    s.close()
    last = sorted(tmp_path.glob("*.seg"))[-1]
    with open(last, "ab") as f:
        f.write(b"\x10\x00\x00\x00torn")  # a power cut in the middle of a record
    s2 = Spool(tmp_path, segment_bytes=1500)
    assert s2.backlog == 18
    assert _values(s2.read(100)) == list(range(12, 30))
    _fill(s2, 5, start=30)  # appends go after the good records
    assert _values(s2.read(100)) == list(range(30, 35))
    s2.close()


def test_bounded_drops_the_oldest_and_counts_it(tmp_path: Path) -> None:
    s = Spool(tmp_path, max_bytes=20_000, segment_bytes=5_000)
    _fill(s, 500)  # ~108 kB offered to a 20 kB spool while the broker is away
    size = sum(p.stat().st_size for p in tmp_path.glob("*.seg"))
    assert size <= 20_000 + 5_000
    kept = _values(s.read(10_000))
    assert s.stats.dropped + len(kept) == 500
    assert kept == list(range(500 - len(kept), 500))  # the newest, in order
    s.close()


def test_one_gateway_per_spool(tmp_path: Path) -> None:
    import pytest

    from leakmon.fleet import FleetError

    s = Spool(tmp_path)
    with pytest.raises(FleetError, match="in use by another gateway"):
        Spool(tmp_path)
    s.close()
    Spool(tmp_path).close()  # free again once closed
