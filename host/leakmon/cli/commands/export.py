"""`leakmon export`: a recording's decoded, compensated samples as CSV or Parquet.

One row per sample per channel, in the order the node sent them (frame by frame,
within a frame channel by channel): t_s (device time), channel, pressure_pa,
temperature_k, seq (of the SAMPLES frame).

`leakmon export --db URL --node NODE [--from T] [--until T]` (or `--store FILE`) exports a
node's time range straight from what `leakmon serve` stored, read and decoded batch by
batch: the same rows as the export of a recording of the same frames. (`--to` is the
format here, so the end of the range is `--until`.)
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


def write_csv(out: IO[str], ts: Iterator[SampleTable]) -> int:
    out.write(",".join(COLUMNS) + "\n")
    n = 0
    for t in ts:
        cols = (t.t_s.tolist(), t.channel.tolist(), t.pressure_pa.tolist(), t.temperature_k.tolist(), t.seq.tolist())
        out.write("".join(f"{a!r},{b},{c!r},{d!r},{e}\n" for a, b, c, d, e in zip(*cols)))
        n += len(t)
    return n


def write_parquet(path: Path, ts: Iterator[SampleTable]) -> int:
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError as e:
        raise LeakmonError("parquet export needs pyarrow: pip install 'leakmon[parquet]'") from e
    schema = pa.schema([("t_s", pa.float64()), ("channel", pa.uint8()), ("pressure_pa", pa.float64()),
                        ("temperature_k", pa.float64()), ("seq", pa.uint16())])
    n = 0
    with pq.ParquetWriter(str(path), schema) as w:
        for t in ts:
            arrays: list[Any] = [t.t_s, t.channel, t.pressure_pa, t.temperature_k, t.seq]
            w.write_table(pa.Table.from_arrays([pa.array(np.ascontiguousarray(a)) for a in arrays], schema=schema))
            n += len(t)
    return n


def write(out: str, fmt: str, ts: Iterator[SampleTable]) -> int:
    try:
        if fmt == "parquet":
            return write_parquet(Path(out), ts)
        if out == "-":
            return write_csv(sys.stdout, ts)
        with open(out, "w", encoding="utf-8", newline="") as f:
            return write_csv(f, ts)
    except OSError as e:
        raise LeakmonError(f"cannot write {out}: {e.strerror or e}") from e


def run_db(args: argparse.Namespace) -> int:
    """One node's time range from the database, batch by batch (memory stays bounded)."""
    from leakmon.fleet.readback import RowDecoder

    if not args.node or len(args.node) != 1:
        raise LeakmonError("--db/--store: export one node at a time: --node NODE")
    node = args.node[0]
    out = args.output or f"{node}.{args.to}"
    if out == "-" and args.to != "csv":
        raise LeakmonError("parquet cannot go to stdout: give -o FILE")
    rows = dbsource.db_rows(args, node)  # checks the address and the node before a file is made
    first = next(rows, None)
    if first is None:
        raise dbsource.empty_range(args, node)
    dec = RowDecoder()
    n = write(out, args.to, dec.tables(itertools.chain([first], rows)))
    if dec.rows == 0:
        if out != "-":
            Path(out).unlink(missing_ok=True)
        raise dbsource.empty_range(args, node)
    print(f"leakmon: {n} samples of node {node} to {out} ({dec.rows} frames, {dec.lost_frames} lost)",
          file=sys.stderr)
    return 0


def run(args: argparse.Namespace) -> int:
    if dbsource.from_db(args):
        return run_db(args)
    src = Path(args.file)
    out = args.output or str(src.with_suffix(f".{args.to}"))
    if out == "-" and args.to != "csv":
        raise LeakmonError("parquet cannot go to stdout: give -o FILE")
    with open_recording(src) as reader:
        n = write(out, args.to, tables(reader, Progress(reader.size, "exporting")))
        print(f"leakmon: {n} samples to {out}", file=sys.stderr)
        report_tail(reader, session.warn)
    return 0
