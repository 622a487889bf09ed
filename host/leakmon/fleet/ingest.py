"""From MQTT messages to rows: checks every message before anything is stored.

Refused (counted, logged once per node and reason, never stored):
- an envelope whose node id is not the node of its topic (a forged node id);
- a frame whose bytes are not one whole wire frame with a good CRC;
- a gateway time (t_us) before 1970 or from 2200 on: no clock is there, and the database
  could not file it (its day's partition; and past 2^53 us the staged write's float
  arithmetic would round it, so a redelivery would not be known for one);
- an estimate, alarm, note or info that is not the JSON its kind promises;
- a note or info holding, anywhere, a NUL character, a lone surrogate (JSON "\\ud800":
  no UTF-8 for it), or NaN or infinity (not JSON to jsonb): the databases cannot store
  them, and the failed write would stop serve at every redelivery;
A refused message is still acknowledged to the broker: sending it again cannot mend it.
"""

from __future__ import annotations

import json
import math
import struct
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from leakmon import wire
from leakmon.errors import ProtocolError
from leakmon.fleet import envelope

NOTE_KINDS = ("hatch", "note")
MAX_NOTE_CHARS = 4096
_WIRE_HDR = struct.Struct("<2sBBHH")
T_US_END = 7_258_118_400_000_000  # 2200-01-01 UTC, us since 1970: gateway times are in [0, this)

FrameRow = tuple[str, int, int, int, int, int, bool, bytes]
EstimateRow = tuple[str, int, int, int, int, float, float, float, float, float, float, float, int, float, bool]
AlarmRow = tuple[str, int, int, int, int, float, float | None, float, float | None]
NoteRow = tuple[str, int, int, int, str, str, str]
NodeRow = tuple[str, str, str, int]


@dataclass
class Batch:
    """Rows of one batch, keyed (node_id, boot, seq[, channel]); times t_us, us since 1970."""

    frames: list[FrameRow] = field(default_factory=list)
    estimates: list[EstimateRow] = field(default_factory=list)
    alarms: list[AlarmRow] = field(default_factory=list)
    notes: list[NoteRow] = field(default_factory=list)
    nodes: dict[str, NodeRow] = field(default_factory=dict)
    rejected: Counter[str] = field(default_factory=Counter)
    # what to confirm to the gateways once committed: (node of the topic, kind, boot) -> seqs
    confirm: dict[tuple[str, str, int], list[int]] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.frames) + len(self.estimates) + len(self.alarms) + len(self.notes) + len(self.nodes)


def check_frame(node_id: str, data: bytes) -> tuple[int, int]:
    """(message type, wire seq) of one whole, intact wire frame."""
    if len(data) < wire.OVERHEAD:
        raise ProtocolError(f"node {node_id}: a frame of {len(data)} bytes")
    sync, version, msg_type, seq, plen = _WIRE_HDR.unpack_from(data, 0)
    if sync != wire.SYNC or version != wire.VERSION or plen + wire.OVERHEAD != len(data):
        raise ProtocolError(f"node {node_id}: not one whole v{wire.VERSION} wire frame")
    end = wire.HEADER_SIZE + plen
    if wire.crc16(data, 2, end) != data[end] | (data[end + 1] << 8):
        raise ProtocolError(f"node {node_id}: frame CRC does not match")
    return int(msg_type), int(seq)


def _num(d: dict[str, Any], key: str) -> float:
    v = d.get(key)
    if v is None:
        return math.nan
    if not isinstance(v, (int, float)) or isinstance(v, bool):
        raise ProtocolError(f"{key} is not a number")
    try:
        return float(v)
    except OverflowError:  # an integer of hundreds of digits
        raise ProtocolError(f"{key} is out of range") from None


def _count(d: dict[str, Any], key: str) -> int:
    """A whole number the database keeps as a 4-byte integer."""
    v = _num(d, key)
    if not (0 <= v < 2**31 and v == int(v)):
        raise ProtocolError(f"{key} is not a count")
    return int(v)


def _opt(d: dict[str, Any], key: str) -> float | None:
    return None if d.get(key) is None else _num(d, key)


def _storable_json(obj: Any) -> str:
    """The JSON text of a note or info, or ProtocolError for what the databases cannot store:
    a NUL in a string or key (PostgreSQL's text and jsonb), a lone surrogate (no UTF-8),
    NaN or infinity (not JSON, refused by jsonb)."""
    todo = [obj]
    while todo:
        x = todo.pop()
        if isinstance(x, str):
            if "\x00" in x:
                raise ProtocolError("a NUL character, which the database cannot store")
            try:
                x.encode("utf-8")
            except UnicodeEncodeError:
                raise ProtocolError("a lone surrogate character, which has no UTF-8") from None
        elif isinstance(x, dict):
            todo.extend(x.keys())
            todo.extend(x.values())
        elif isinstance(x, list):
            todo.extend(x)
    try:
        return json.dumps(obj, allow_nan=False)
    except ValueError:
        raise ProtocolError("NaN or infinity, which JSON cannot hold") from None


def _channel(d: dict[str, Any]) -> int:
    ch = d.get("channel")
    if not isinstance(ch, int) or not 0 <= ch < 256:
        raise ProtocolError("channel is not 0..255")
    return ch


def add(batch: Batch, topic: str, payload: bytes) -> None:
    """Add the rows of one message, or count why it was refused."""
    where = envelope.parse_topic(topic)
    if where is None:
        batch.rejected["topic outside the scheme"] += 1
        return
    node_id, kind = where
    try:
        if kind == "info":
            info = json.loads(payload)
            if not isinstance(info, dict) or info.get("node_id") != node_id:
                raise ProtocolError("info names another node")
            batch.nodes[node_id] = (node_id, str(info.get("gateway", "")), _storable_json(info), 0)
            return
        if kind not in envelope.STORED_KINDS:
            return  # state and other topics are not stored
        env = envelope.unpack(payload)
        batch.confirm.setdefault((node_id, kind, env.boot), []).append(env.seq)
        if env.node_id != node_id:
            raise ProtocolError(f"forged node id {env.node_id!r} on the topic of {node_id!r}")
        if not 0 <= env.t_us < T_US_END:
            raise ProtocolError("gateway time outside 1970-2200")
        _add_kind(batch, kind, env)
    except RecursionError:  # JSON nested past the parser's depth
        batch.rejected[f"{node_id}: malformed {kind}: nested too deep"] += 1
    except (ProtocolError, ValueError, TypeError, KeyError, AttributeError) as e:
        reason = str(e) if isinstance(e, ProtocolError) else f"malformed {kind}: {e}"
        batch.rejected[f"{node_id}: {reason}"] += 1


def _add_kind(batch: Batch, kind: str, env: envelope.Envelope) -> None:
    key = (env.node_id, env.boot, env.seq)
    if kind == "frame":
        msg_type, wire_seq = check_frame(env.node_id, env.body)
        batch.frames.append((*key, env.t_us, msg_type, wire_seq, env.historical, env.body))
    elif kind == "estimate":
        rows = env.json()
        if not isinstance(rows, list):
            raise ProtocolError("estimate is not a list")
        for r in rows:
            batch.estimates.append((*key, _channel(r), env.t_us, _num(r, "t_s"), _num(r, "pressure_pa"),
                                    _num(r, "temperature_k"), _num(r, "leak_rate_pa_per_s"),
                                    _num(r, "leak_rate_ci95_low_pa_per_s"), _num(r, "leak_rate_ci95_high_pa_per_s"),
                                    _num(r, "leak_rate_stderr_pa_per_s"), _count(r, "n_samples"),
                                    _num(r, "n_eff"), env.historical))
    elif kind == "alarm":
        r = env.json()
        batch.alarms.append((*key, _channel(r), env.t_us, _num(r, "alarm_t_s"), _opt(r, "alarm_onset_t_s"),
                             _num(r, "leak_rate_pa_per_s"), _opt(r, "false_alarm_spacing_s")))
    elif kind == "note":
        r = env.json()
        note_kind, text = r.get("kind"), r.get("text")
        if note_kind not in NOTE_KINDS or not isinstance(text, str) or len(text) > MAX_NOTE_CHARS:
            raise ProtocolError(f"a note needs kind in {NOTE_KINDS} and a text of at most {MAX_NOTE_CHARS} characters")
        batch.notes.append((*key, env.t_us, note_kind, text, _storable_json(r)))


def confirmations(batch: Batch) -> list[tuple[str, bytes]]:
    """(topic, payload) telling each node's gateway which of its messages are stored (or
    refused for good), so that its spool may let them go: leakmon/<node>/stored."""
    out = []
    for (node_id, kind, boot), seqs in batch.confirm.items():
        seqs.sort()
        ranges: list[list[int]] = []
        for s in seqs:
            if ranges and s <= ranges[-1][1] + 1:
                ranges[-1][1] = max(ranges[-1][1], s)
            else:
                ranges.append([s, s])
        out.append((envelope.topic(node_id, "stored"), json.dumps({"kind": kind, "boot": boot, "seqs": ranges}).encode()))
    return out
