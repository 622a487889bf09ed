"""`leakmon export`: a recording's decoded, compensated samples as CSV or Parquet.

One row per sample per channel, in the order the node sent them (frame by frame,
within a frame channel by channel): t_s (device time), channel, pressure_pa,
temperature_k, seq (of the SAMPLES frame).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import numpy as np

from leakmon.cli import session
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

HELP = "export a recording's compensated samples to CSV or Parquet"
COLUMNS = ("t_s", "channel", "pressure_pa", "temperature_k", "seq")


def add_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("file", metavar="FILE", help="a recording made by `leakmon record`")
    p.add_argument("--to", choices=("csv", "parquet"), default="csv", help="output format (default csv)")
    p.add_argument("-o", "--output", metavar="OUT", help="output file (default: FILE with .csv/.parquet; - = stdout for csv)")


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


def run(args: argparse.Namespace) -> int:
    src = Path(args.file)
    out = args.output or str(src.with_suffix(f".{args.to}"))
    if out == "-" and args.to != "csv":
        raise LeakmonError("parquet cannot go to stdout: give -o FILE")
    with open_recording(src) as reader:
        ts = tables(reader, Progress(reader.size, "exporting"))
        try:
            if args.to == "parquet":
                n = write_parquet(Path(out), ts)
            elif out == "-":
                n = write_csv(sys.stdout, ts)
            else:
                with open(out, "w", encoding="utf-8", newline="") as f:
                    n = write_csv(f, ts)
        except OSError as e:
            raise LeakmonError(f"cannot write {out}: {e.strerror or e}") from e
        print(f"leakmon: {n} samples to {out}", file=sys.stderr)
        report_tail(reader, session.warn)
    return 0
