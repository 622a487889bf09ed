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
# MicroPython type stubs per port, each in its own folder (they replace the stdlib
# stubs, so they must not land in site-packages): tests type-check the firmware.
for port in rp2 esp32 stm32; do
    if [ ! -d ".venv/mpstubs/$port" ]; then
        .venv/bin/python -m pip install --quiet --target ".venv/mpstubs/$port" "micropython-$port-stubs==1.29.0.post1"
    fi
done
if ! .venv/bin/python -c 'import shutil,sys; sys.exit(shutil.which("micropython") is None)' 2>/dev/null \
   && [ ! -x .venv/bin/micropython ]; then
    echo "setup: note: no 'micropython' command; the virtual board needs the MicroPython unix port on PATH" >&2
fi
# --- dashboard: uPlot from npm (pinned; npm checks the registry's integrity hash) into a
# git-ignored folder the dashboard serves, so the page never loads anything from the network;
# and Debian's chromium with its matching chromedriver for the browser tests.
uplot_version=1.6.32
vendor=host/leakmon/dashboard/static/vendor
if [ ! -f "$vendor/uPlot-$uplot_version.stamp" ]; then
    if ! command -v npm >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq npm >/dev/null
    fi
    if command -v npm >/dev/null 2>&1; then
        tmp=$(mktemp -d)
        (cd "$tmp" && npm pack --silent "uplot@$uplot_version" >/dev/null && tar -xzf "uplot-$uplot_version.tgz")
        mkdir -p "$vendor"
        cp "$tmp/package/dist/uPlot.iife.min.js" "$tmp/package/dist/uPlot.min.css" "$vendor/"
        cp "$tmp/package/LICENSE" "$vendor/uPlot.LICENSE"
        rm -rf "$tmp"
        rm -f "$vendor"/uPlot-*.stamp && touch "$vendor/uPlot-$uplot_version.stamp"
    else
        echo "setup: note: no npm; 'leakmon dashboard' needs uPlot in $vendor" >&2
    fi
fi
if ! command -v chromium >/dev/null 2>&1 || ! command -v chromedriver >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null
    else
        echo "setup: note: the dashboard's browser tests need Debian's chromium and chromium-driver (apt, as root)" >&2
    fi
fi
# Fleet (leakmon gateway/serve): the tests start private Mosquitto and PostgreSQL servers,
# so the Debian packages must be there. Installed when we are root, else the command is printed.
fleet_missing=""
command -v mosquitto >/dev/null 2>&1 || fleet_missing="$fleet_missing mosquitto"
ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1 || fleet_missing="$fleet_missing postgresql"
if [ -n "$fleet_missing" ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "setup: installing$fleet_missing (fleet tests)" >&2
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $fleet_missing >/dev/null
    else
        echo "setup: note: the fleet tests need Mosquitto and PostgreSQL: sudo apt-get install -y$fleet_missing" >&2
    fi
fi
# --- boards with a network (issue 15): micropython-lib's MQTT client, umqtt.simple, from PyPI
# (pinned by its hash) into .venv/mplib, where `leakmon flash --mqtt` takes it for the board.
# pip cannot fetch it itself (its sdist is made for MicroPython's installer: no setup.py), so
# the registry's simple index is read here. Nothing fetched is committed.
umqtt_version=1.3.4
umqtt_sha256=b6a2520239e3992c63a7de9370ee9b3d9d27819a90359c521f1c0f7ccab8d12f
if [ ! -f ".venv/mplib/umqtt-$umqtt_version.stamp" ]; then
    if .venv/bin/python - "$umqtt_version" "$umqtt_sha256" <<'PY'
import hashlib, io, re, sys, tarfile, urllib.request
from pathlib import Path
version, sha = sys.argv[1], sys.argv[2]
name = f"micropython-umqtt.simple-{version}.tar.gz"
index = urllib.request.urlopen("https://pypi.org/simple/micropython-umqtt-simple/", timeout=60).read().decode()
url = next(u for u in re.findall(r'href="([^"#]+)', index) if u.endswith("/" + name))
data = urllib.request.urlopen(url, timeout=60).read()
if hashlib.sha256(data).hexdigest() != sha:
    sys.exit(f"setup: {name}: sha256 does not match the pinned one")
src = tarfile.open(fileobj=io.BytesIO(data)).extractfile(f"micropython-umqtt.simple-{version}/umqtt/simple.py")
out = Path(".venv/mplib/umqtt")
out.mkdir(parents=True, exist_ok=True)
(out / "simple.py").write_bytes(src.read())
PY
    then
        rm -f .venv/mplib/umqtt-*.stamp && touch ".venv/mplib/umqtt-$umqtt_version.stamp"
    else
        echo "setup: note: could not fetch umqtt.simple from PyPI; 'leakmon flash --mqtt' needs it in .venv/mplib" >&2
    fi
fi
