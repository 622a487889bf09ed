"""The one stream core gives what the two decoders before it gave (tests/vectors/decode_v1.json,
written by them: decode_capture.py --before): on the golden wire vectors, and on a capture with garbage, false syncs, forged headers, torn frames, bit
flips, a tick wrap, a sequence wrap, a reboot with another tick width and link drops, fed
live in reads of 4096, 61 and 1 bytes, and decoded as a whole recording."""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "vectors"))
import decode_capture  # noqa: E402

WANT = json.loads(decode_capture.OUT.read_text())


@pytest.fixture(scope="module")
def capture() -> tuple[bytes, list[int]]:
    data, drops = decode_capture.capture()
    assert hashlib.sha256(data).hexdigest() == WANT["sha256"], "the capture itself changed"
    assert drops == WANT["drops"]
    return data, drops


@pytest.mark.parametrize("read_size", decode_capture.READ_SIZES)
def test_live_path_gives_the_same_blocks_messages_and_counters(capture, read_size):
    got = decode_capture.live_result(*capture, read_size)
    want = WANT["live"][str(read_size)]
    assert got["counters"] == want["counters"]
    assert got["messages"] == want["messages"]
    assert (got["blocks"], got["block_heads"], got["samples"]) == (want["blocks"], want["block_heads"], want["samples"])


def test_golden_wire_vectors_give_the_same_items():
    got = decode_capture.live_result(decode_capture.vectors_stream(), [], 4096)
    assert got == WANT["vectors"] and got["blocks"] == 3


def test_whole_recording_gives_the_same_table_and_counters(capture, tmp_path):
    got = decode_capture.recording_result(*capture, tmp_path)
    assert got == WANT["recording"]


def test_the_capture_exercises_what_it_claims():
    c = WANT["live"]["4096"]["counters"]
    assert c["decoder.crc_errors"] > 50 and c["decoder.oversize"] > 0 and c["decoder.bytes_skipped"] > 1000
    assert c["link.lost_frames"] > 0 and c["link.unknown_types"] > 0 and len(WANT["drops"]) >= 3
    assert WANT["recording"]["rows"] == 10 * WANT["live"]["4096"]["blocks"]
