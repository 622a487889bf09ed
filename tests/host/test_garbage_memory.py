"""Memory stays bounded whatever the bytes: every recording command's peak memory on
8 MiB of garbage is that of the same command on 1 MiB, and within a small constant of
the same command on an empty recording (bench/garbage_memory.py runs the same check at
1 GiB). The old framer stayed bounded too, by its decode step, but at ~400x that step."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("garbage_memory", ROOT / "bench" / "garbage_memory.py")
assert _spec is not None and _spec.loader is not None
garbage_memory = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(garbage_memory)


@pytest.mark.parametrize("kind", list(garbage_memory.KINDS))
def test_peak_memory_does_not_grow_with_garbage(tmp_path: Path, kind: str) -> None:
    empty, small, big = tmp_path / "empty.lkr", tmp_path / "small.lkr", tmp_path / "big.lkr"
    garbage_memory.write_garbage(empty, 0, kind)
    garbage_memory.write_garbage(small, 1, kind)
    garbage_memory.write_garbage(big, 8, kind)
    for name in ("replay", "export", "analyze", "test"):
        rss_empty, _ = garbage_memory.peak_rss_mib(garbage_memory.commands(empty, tmp_path)[name])
        rss_small, _ = garbage_memory.peak_rss_mib(garbage_memory.commands(small, tmp_path)[name])
        rss_big, status = garbage_memory.peak_rss_mib(garbage_memory.commands(big, tmp_path)[name])
        assert status in (0, 1), (name, status)
        # 7 MiB more input may cost a few MiB of buffers, never a multiple of the input.
        assert rss_big - rss_small < 8, (kind, name, rss_small, rss_big)
        # Decoding works a 1 MiB step at a time: a few copies of it, not hundreds.
        assert rss_big - rss_empty < 40, (kind, name, rss_empty, rss_big)
