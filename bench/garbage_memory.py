"""Peak memory of every recording command on a recording of garbage, against the
same command on a small recording of the same garbage, in the same run: memory must
not grow with the input whatever the bytes (issue: reliability, round two).

    .venv/bin/python bench/garbage_memory.py --mib 1024     # the full check, minutes
    .venv/bin/python bench/garbage_memory.py --mib 64       # what the CI test runs

Two kinds of garbage, each wrapped in valid recording chunks so that every byte
reaches the decoders: random bytes, and a header that claims the longest payload
repeated (A5 4C 01 03 00 00 00 04 ...), which once made the vectorized framer
allocate about 400 times its input.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RECIPE = ROOT / "hardware" / "recipes" / "part_0p5l.toml"
CHUNK = 1 << 20
KINDS = {
    "random": lambda n: os.urandom(n),
    "max-length headers": lambda n: (bytes.fromhex("A54C010300000004") * (n // 8 + 1))[:n],
}


def write_garbage(path: Path, mib: int, kind: str) -> None:
    sys.path.insert(0, str(ROOT / "host"))
    from leakmon.link.recording import KIND_RX, RecordingWriter

    block = KINDS[kind](CHUNK)
    with RecordingWriter(path, {}) as w:
        for _ in range(mib):
            w.write(block, KIND_RX)


def commands(path: Path, out_dir: Path) -> dict[str, list[str]]:
    lk = [sys.executable, "-m", "leakmon"]
    return {
        "replay": lk + ["replay", "--fast", str(path)],
        "export": lk + ["export", str(path), "-o", str(out_dir / "out.csv")],
        "analyze": lk + ["analyze", "--json", str(path)],
        "test": lk + ["test", "--recipe", str(RECIPE), "--recording", str(path)],
    }


def peak_rss_mib(argv: list[str]) -> tuple[float, int]:
    """Peak resident memory of one command in a fresh process, and its exit status."""
    probe = ("import resource, subprocess, sys; r = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, "
             "stderr=subprocess.DEVNULL); print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, r.returncode)")
    out = subprocess.run([sys.executable, "-c", probe, *argv], capture_output=True, text=True, check=True).stdout
    kib, status = out.split()
    return int(kib) / 1024, int(status)


def measure(mib_small: int, mib_big: int) -> list[tuple[str, str, float, float, int]]:
    rows = []
    with tempfile.TemporaryDirectory(prefix="leakmon-garbage-") as tmp:
        d = Path(tmp)
        for kind in KINDS:
            small, big = d / "small.lkr", d / "big.lkr"
            write_garbage(small, mib_small, kind)
            write_garbage(big, mib_big, kind)
            for name, argv in commands(big, d).items():
                rss_small, _ = peak_rss_mib(commands(small, d)[name])
                rss_big, status = peak_rss_mib(argv)
                rows.append((kind, name, rss_small, rss_big, status))
            small.unlink()
            big.unlink()
    return rows


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mib", type=int, default=1024, help="size of the big garbage recording (default 1024)")
    ap.add_argument("--small-mib", type=int, default=1, help="size of the baseline recording (default 1)")
    args = ap.parse_args()
    print(f"peak RSS per command: {args.small_mib} MiB of garbage against {args.mib} MiB, same run")
    print(f"{'garbage':<20} {'command':<8} {f'{args.small_mib} MiB':>10} {f'{args.mib} MiB':>10} {'ratio':>6} "
          f"{'peak/input':>10} exit")
    for kind, name, a, b, status in measure(args.small_mib, args.mib):
        print(f"{kind:<20} {name:<8} {a:9.0f}M {b:9.0f}M {b / a:6.2f} {b / args.mib:10.3f} {status}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
