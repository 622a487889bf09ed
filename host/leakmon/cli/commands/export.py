"""`leakmon export`: a recording's decoded, compensated samples as CSV or Parquet.

One row per sample per channel, in the order the node sent them (frame by frame,
within a frame channel by channel): t_s (device time), channel, pressure_pa,
temperature_k, seq (of the SAMPLES frame).

`leakmon export --db URL --node NODE [--from T] [--until T]` (or `--store FILE`) exports a
node's time range straight from what `leakmon serve` stored, read and decoded batch by
batch: the same rows as the export of a recording of the same frames. (`--to` is the
format here, so the end of the range is `--until`.) Several --node: a `node` column first.
"""

from __future__ import annotations

import argparse
import itertools
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import numpy as np

from leakmon.cli import dbsource, session
from leakmon.cli.progress import PROGRESS_STEP_BYTES, Progress
from leakmon.errors import LeakmonError, ProtocolError
from leakmon.link.recording import (
    RecordingError,
    RecordingReader,
    decode_recording,
    open_recording,
    report_tail,
)
from leakmon.wire.stream import SampleTable

HELP = "export a recording's (or a node's stored) compensated samples to CSV or Parquet"
COLUMNS = ("t_s", "channel", "pressure_pa", "temperature_k", "seq")


def add_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("file", metavar="FILE", nargs="?", help="a recording made by `leakmon record` "
                   "(or give --db/--store and --node)")
    p.add_argument("--to", choices=("csv", "parquet"), default="csv", help="output format (default csv)")
    p.add_argument("-o", "--output", metavar="OUT", help="output file (default: FILE with .csv/.parquet; - = stdout for csv)")
    dbsource.add_db_source_args(p, end_flags=("--until",))


def tables(reader: RecordingReader, progress: Progress) -> Iterator[SampleTable]:
    try:
        for table in decode_recording(reader, chunk_bytes=PROGRESS_STEP_BYTES):
            progress.update(reader.position)
            yield table
    except ProtocolError as e:
        raise RecordingError(f"{reader.path}: {e}") from e
    progress.close()


Tables = Iterator[tuple[str | None, SampleTable]]  # (node, its samples); node None: no node column


def write_csv(out: IO[str], ts: Tables, with_node: bool = False) -> int:
    out.write(",".join(("node",) * with_node + COLUMNS) + "\n")
    n = 0
    for node, t in ts:
        cols = (t.t_s.tolist(), t.channel.tolist(), t.pressure_pa.tolist(), t.temperature_k.tolist(), t.seq.tolist())
        head = f"{node}," if with_node else ""
        out.write("".join(f"{head}{a!r},{b},{c!r},{d!r},{e}\n" for a, b, c, d, e in zip(*cols)))
        n += len(t)
    return n


def write_parquet(path: Path, ts: Tables, with_node: bool = False) -> int:
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError as e:
        raise LeakmonError("parquet export needs pyarrow: pip install 'leakmon[parquet]'") from e
    fields = [("t_s", pa.float64()), ("channel", pa.uint8()), ("pressure_pa", pa.float64()),
              ("temperature_k", pa.float64()), ("seq", pa.uint16())]
    schema = pa.schema([("node", pa.dictionary(pa.int32(), pa.string()))] * with_node + fields)
    n = 0
    with pq.ParquetWriter(str(path), schema) as w:
        for node, t in ts:
            arrays: list[Any] = [pa.array(np.ascontiguousarray(a)) for a in
                                 (t.t_s, t.channel, t.pressure_pa, t.temperature_k, t.seq)]
            if with_node:
                arrays.insert(0, pa.DictionaryArray.from_arrays(np.zeros(len(t), np.int32), [str(node)]))
            w.write_table(pa.Table.from_arrays(arrays, schema=schema))
            n += len(t)
    return n


def write(out: str, fmt: str, ts: Tables, with_node: bool = False) -> int:
    try:
        if fmt == "parquet":
            return write_parquet(Path(out), ts, with_node)
        if out == "-":
            return write_csv(sys.stdout, ts, with_node)
        with open(out, "w", encoding="utf-8", newline="") as f:
            return write_csv(f, ts, with_node)
    except OSError as e:
        raise LeakmonError(f"cannot write {out}: {e.strerror or e}") from e


def run_db(args: argparse.Namespace) -> int:
    """Nodes' time ranges from the database, batch by batch (memory stays bounded). With
    several --node, a first column says whose each row is, node after node (each on its
    own device clock)."""
    from leakmon.fleet.readback import RowDecoder

    if not args.node:
        raise LeakmonError("--db/--store: say which node with --node NODE (repeat it for several)")
    if len(set(args.node)) != len(args.node):
        raise LeakmonError("--node: a node named twice")
    out = args.output or f"{args.node[0] if len(args.node) == 1 else 'nodes'}.{args.to}"
    if out == "-" and args.to != "csv":
        raise LeakmonError("parquet cannot go to stdout: give -o FILE")
    firsts = []
    for node in args.node:  # every address, node and range checked before a file is made
        rows = dbsource.db_rows(args, node)
        first = next(rows, None)
        if first is None:
            raise dbsource.empty_range(args, node)
        firsts.append((node, itertools.chain([first], rows)))
    decoders = [RowDecoder() for _ in firsts]

    def tables() -> Tables:
        for (node, rows), dec in zip(firsts, decoders):
            yield from ((node, t) for t in dec.tables(rows))

    n = write(out, args.to, tables(), with_node=len(args.node) > 1)
    for (node, _), dec in zip(firsts, decoders):
        print(f"leakmon: node {node}: {dec.rows} frames, {dec.lost_frames} lost", file=sys.stderr)
    print(f"leakmon: {n} samples to {out}", file=sys.stderr)
    return 0


def run(args: argparse.Namespace) -> int:
    if dbsource.from_db(args):
        return run_db(args)
    src = Path(args.file)
    out = args.output or str(src.with_suffix(f".{args.to}"))
    if out == "-" and args.to != "csv":
        raise LeakmonError("parquet cannot go to stdout: give -o FILE")
    with open_recording(src) as reader:
        n = write(out, args.to, ((None, t) for t in tables(reader, Progress(reader.size, "exporting"))))
        print(f"leakmon: {n} samples to {out}", file=sys.stderr)
        report_tail(reader, session.warn)
    return 0
