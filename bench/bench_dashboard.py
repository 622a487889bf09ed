"""The dashboard's two costs: zooming into a day of 10 Hz data, and the 1 Hz live stream.

Zoom: 24 h of 10 Hz from 4 sensors (864,000 points a trace, 3.46 M in all), and the same
3.46 M points as one trace, asked over real HTTP for the whole day at 1,200 pixel columns.
Baseline, same run: the same request answered with every point (no decimation).

Live: 16 channels with an hour of updates; what the event stream does each second (rows
since the last message, the overview, the records, as JSON), against the baseline of
re-sending the hour each second. With Chromium present, the page's own CPU use at 1 Hz with
16 traces, from the browser's Performance metrics over --browser-s seconds.

    .venv/bin/python bench/bench_dashboard.py [--browser-s 20]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from leakmon.analysis.tracker import LeakUpdate
from leakmon.dashboard.app import build_app
from leakmon.dashboard.auth import Sessions, hash_password
from leakmon.dashboard.decimate import minmax_per_pixel
from leakmon.dashboard.history import History
from leakmon.dashboard.hub import Hub
from leakmon.dashboard.site import Segment, Site
from leakmon.dashboard.store import Store

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "dashboard"))
from dashfix import Client, serve_in_thread  # noqa: E402  (the tests' loopback server helper)

DAY_S = 86400.0
USER = ("bench", "bench-password")


def make_hub(tmp: Path, channels: int, raw_capacity: int, update_capacity: int) -> Hub:
    store = Store(tmp / f"db{channels}.sqlite")
    store.set_user(*USER[:1], "operator", hash_password(USER[1]))
    site = Site("bench", tuple(Segment(f"s{c}", 50.0) for c in range(channels)), (),
                {c: f"s{c}" for c in range(channels)})
    return Hub(site, store, History(raw_capacity, update_capacity))


def best_ms(fn: object, repeat: int = 5) -> float:
    best = math.inf
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()  # type: ignore[operator]
        best = min(best, (time.perf_counter() - t0) * 1e3)
    return best


def zoom(tmp: Path) -> None:
    print("zoom: whole day at 1,200 px, best of 5")
    print(f"{'layout':<34}{'points':>11}{'decimate ms':>13}{'HTTP ms':>10}{'sent':>8}"
          f"{'all-points JSON ms':>20}{'ratio':>8}")
    rng = np.random.default_rng(1)
    for channels, rate_hz in ((4, 10.0), (1, 40.0)):
        n = int(DAY_S * rate_hz)
        hub = make_hub(tmp, channels, n, 10)
        t = np.arange(n) / rate_hz
        for ch in range(channels):
            p = 101325.0 - 0.05 * t + rng.normal(0, 0.5, n)
            hub.history.add_raw(ch, t, p, 295.0 + 0 * t)
        url, stop = serve_in_thread(build_app(hub, Sessions(hub.store, b"k" * 32)))
        c = Client(url)
        assert c.login(*USER) == 200
        v = hub.history.raw[0].view()
        dec = best_ms(lambda: minmax_per_pixel(v[0], [v[1], v[2]], 0.0, DAY_S, 1200))
        http = best_ms(lambda: c.request(f"/api/range?ch=0&t0=0&t1={DAY_S}&width=1200"))
        sent = len(json.loads(c.request(f"/api/range?ch=0&t0=0&t1={DAY_S}&width=1200")[1])["raw"]["t_s"])
        # Baseline: every point of the range, only turned into JSON (the transfer and the
        # browser's parsing would come on top, so the ratio is a lower bound).
        full = best_ms(lambda: json.dumps({"t_s": v[0].tolist(), "p": v[1].tolist(), "k": v[2].tolist()}),
                       repeat=1)
        name = f"{channels} x {n:,} ({rate_hz:g} Hz, 24 h)"
        print(f"{name:<34}{n:>11,}{dec:>13.1f}{http:>10.1f}{sent:>8,}{full:>20.0f}{full / http:>7.0f}x")
        stop()
        hub.store.close()
        del hub


def update(ch: int, t_s: float) -> LeakUpdate:
    r = 0.01 * (1 + ch % 3)
    return LeakUpdate(t_s, ch, 101325.0 - r * t_s, 295.0, r, r - 0.002, r + 0.002, 0.001, r * 648.0, 6000, 100.0)


def live(tmp: Path) -> None:
    channels = 16
    hub = make_hub(tmp, channels, 10, 4 * 3600)
    for s in range(3600):
        for ch in range(channels):
            hub.add_update(update(ch, float(s)))
    since = {ch: 3599.0 for ch in range(channels)}
    t_next = [3600.0]

    def one_second() -> int:
        for ch in range(channels):
            hub.add_update(update(ch, t_next[0]))
        msg = hub.live(since)
        for k, rows in msg["rows"].items():
            since[int(k)] = rows["t_s"][-1]
        msg.update(overview=hub.overview(), alarms=hub.store.alarms(100), notes=hub.store.notes(100),
                   hatch_events=hub.store.hatch_events(100))
        t_next[0] += 1.0
        return len(json.dumps(msg, separators=(",", ":")))

    size = one_second()
    ms = best_ms(one_second, repeat=20)
    full = best_ms(lambda: json.dumps(hub.live({}, max_rows=10**9)), repeat=3)
    print(f"\nlive: {channels} channels, 1 message a second, an hour of history held")
    print(f"  event-stream message: {ms:.2f} ms of server CPU, {size / 1024:.1f} kB "
          f"-> {ms / 10:.2f}% of one core at 1 Hz")
    print(f"  baseline, re-sending the hour each second: {full:.0f} ms ({full / ms:.0f}x)")
    hub.store.close()


def browser(tmp: Path, seconds: float) -> None:
    chromium, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if not (chromium and driver):
        print("\nbrowser: no chromium/chromedriver, skipped")
        return
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    channels = 16
    hub = make_hub(tmp, channels, 10 * 3600 * 10, 3600 * 4)
    hub.site = Site("bench", tuple(Segment(f"s{c}", 50.0) for c in range(channels)), (),
                    {c: f"s{c}" for c in range(channels)})
    stop_feed = threading.Event()

    def feed() -> None:  # one update a channel a second, as a 1 Hz live view gets them
        s = 0.0
        while not stop_feed.is_set():
            for ch in range(channels):
                hub.add_update(update(ch, s))
            hub.t_now_s = s
            s += 1.0
            time.sleep(1.0)

    threading.Thread(target=feed, daemon=True).start()
    app = build_app(hub, Sessions(hub.store, b"k" * 32))
    url, stop = serve_in_thread(app)
    opts = webdriver.ChromeOptions()
    opts.binary_location = chromium
    for a in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,1000"):
        opts.add_argument(a)
    drv = webdriver.Chrome(service=Service(executable_path=driver), options=opts)
    try:
        drv.get(url + "/login")
        drv.find_element("id", "name").send_keys(USER[0])
        drv.find_element("id", "password").send_keys(USER[1] + "\n")
        time.sleep(2)
        drv.execute_script("document.querySelector('nav [data-view=channels]').click()")
        time.sleep(3)
        drv.execute_cdp_cmd("Performance.enable", {})

        def metrics() -> dict[str, float]:
            return {m["name"]: m["value"] for m in drv.execute_cdp_cmd("Performance.getMetrics", {})["metrics"]}

        m0, t0 = metrics(), time.monotonic()
        time.sleep(seconds)
        m1, wall = metrics(), time.monotonic() - t0
        task = (m1["TaskDuration"] - m0["TaskDuration"]) / wall * 100
        script = (m1["ScriptDuration"] - m0["ScriptDuration"]) / wall * 100
        layout = (m1["LayoutDuration"] - m0["LayoutDuration"]) / wall * 100
        print(f"\nbrowser: {channels} traces x 3 plots, live at 1 Hz, {wall:.0f} s in headless Chromium")
        print(f"  page main-thread busy {task:.1f}% (script {script:.1f}%, layout {layout:.1f}%), "
              f"JS heap {m1['JSHeapUsedSize'] / 2**20:.1f} MB")
        size = sum(os.path.getsize(p) for p in Path(build_app.__code__.co_filename).parent.glob("static/*.*"))
        print(f"  page's own code (html, js, css): {size / 1024:.1f} kB; uPlot: "
              f"{os.path.getsize(Path(build_app.__code__.co_filename).parent / 'static/vendor/uPlot.iife.min.js') / 1024:.1f} kB")
    finally:
        drv.quit()
        stop_feed.set()
        stop()
        hub.store.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--browser-s", type=float, default=20.0, help="seconds of live page measured (0: skip)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        zoom(Path(d))
        live(Path(d))
        if args.browser_s > 0:
            browser(Path(d), args.browser_s)
    print(f"\nmachine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at the end")


if __name__ == "__main__":
    main()
