"""The dashboard in a real browser (Debian's headless Chromium), against
`leakmon dashboard --sim --scenario leak_onset.toml --speed 60` (dashfix.dashboard).

Any console error in the browser fails the test. Screenshots of every view at a fixed
window size go to tests/dashboard/screenshots/ (git-ignored)."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from dashfix import OPERATOR, SCREENSHOTS, VIEWER, Dashboard, browser, dashboard  # noqa: F401  (fixtures)

pytestmark = pytest.mark.slow

LEAK_ONSET_S = 300.0  # device time the hole opens (leak_onset.toml)
# The detector must raise the alarm within this much device time of the onset (measured
# ~100 s: a few 10 s blocks of the whitened CUSUM at this leak).
DETECT_BUDGET_S = 180.0
# And the page must show a raised alarm within this much wall time: one event-stream second
# plus rendering, with room for a loaded machine. Measured in wall time, not device time:
# at --speed 60 a feed catching up after a stall runs device time far ahead in a second.
# Measured 0.24-0.52 s on a quiet machine and 5.5 s once in a full CI run on 2 busy cores
# (at 60x; 0.7-1.0 s at 120x on 2 cores kept busy by another job);
# a page that does not update live never shows it (the wait below gives up at 120 s).
PAGE_BUDGET_WALL_S = 15.0
ZOOM_BUDGET_MS = 200.0


def console_errors(drv: Any) -> list[str]:
    return [e["message"] for e in drv.get_log("browser") if e["level"] == "SEVERE"]


def assert_clean_console(drv: Any) -> None:
    errs = console_errors(drv)
    assert not errs, errs


def wait_for(drv: Any, js: str, timeout_s: float = 60.0, poll_s: float = 0.2) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        v = drv.execute_script(js)
        if v:
            return v
        time.sleep(poll_s)
    raise AssertionError(f"timed out after {timeout_s} s waiting for: {js}\nconsole: {console_errors(drv)}")


def login(drv: Any, url: str, user: tuple[str, str]) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    drv.delete_all_cookies()
    drv.get(url + "/login")
    drv.find_element(By.ID, "name").send_keys(user[0])
    # Keyboard only: Tab to the password, Enter submits.
    drv.find_element(By.ID, "name").send_keys(Keys.TAB)
    drv.switch_to.active_element.send_keys(user[1] + Keys.ENTER)
    wait_for(drv, "return typeof App !== 'undefined' && App.S.overview && document.querySelectorAll('#diagram .seg').length")


def shot(drv: Any, name: str) -> None:
    drv.save_screenshot(str(SCREENSHOTS / f"{name}.png"))


def test_views_alarm_ack_zoom_and_public(dashboard: Dashboard, browser: Any) -> None:
    drv, url = browser, dashboard.url
    drv.get(url + "/")  # not logged in: the login page
    assert drv.current_url == url + "/login"
    shot(drv, "login")
    login(drv, url, OPERATOR)

    # Overview: both segments, with a verdict in words, and the hatch between them.
    segs = drv.execute_script("return [...document.querySelectorAll('#diagram .seg')].map(g => g.dataset.segment)")
    assert segs == ["cabin", "airlock"]
    assert drv.execute_script("return document.querySelectorAll('#diagram .hatch').length") == 1
    assert "kg/day" in drv.execute_script("return document.getElementById('kgday').textContent")
    label = drv.execute_script("return document.getElementById('diagram').getAttribute('aria-label')")
    assert "cabin: " in label and "hatch cabin-airlock open" in label  # the diagram in words too
    shot(drv, "overview")
    assert_clean_console(drv)

    # The leak's alarm is raised within DETECT_BUDGET_S of device time after its onset, and
    # reaches the page within PAGE_BUDGET_WALL_S of wall time after it was raised.
    row = wait_for(drv, """const r = App.S.records.alarms.find(a => a.kind === 'leak onset' && a.t_alarm_s >= 300);
        return r && document.querySelector(`#alarms tr[data-id="${r.id}"]`) ?
               {id: r.id, t_alarm: r.t_alarm_s, raised_wall: r.raised_wall} : null""", timeout_s=120, poll_s=0.05)
    seen_wall = time.time()
    assert LEAK_ONSET_S <= row["t_alarm"] <= LEAK_ONSET_S + DETECT_BUDGET_S, row
    assert seen_wall - row["raised_wall"] <= PAGE_BUDGET_WALL_S, (row, seen_wall)
    # The banner says it in words, not only in colour.
    assert "not acknowledged" in drv.execute_script("return document.getElementById('banner').textContent")

    # The operator acknowledges it with the keyboard: focus the button, press Enter.
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    drv.find_element(By.CSS_SELECTOR, "nav [data-view=alarms]").send_keys(Keys.ENTER)
    btn = drv.find_element(By.CSS_SELECTOR, f'button[data-alarm="{row["id"]}"][data-act="ack"]')
    btn.send_keys(Keys.ENTER)
    wait_for(drv, f"""const a = App.S.records.alarms.find(a => a.id === {row["id"]});
        return a && a.state === 'acknowledged' && a.ack_by === '{OPERATOR[0]}' &&
               document.querySelector('#alarms tr[data-id="{row["id"]}"] .state').textContent.includes('ACKNOWLEDGED')""",
             timeout_s=10)
    shot(drv, "alarms")

    # A note, shown as an annotation on the plots.
    drv.find_element(By.CSS_SELECTOR, "nav [data-view=notes]").send_keys(Keys.ENTER)
    drv.find_element(By.ID, "note").send_keys("sealant applied" + Keys.ENTER)
    wait_for(drv, "return App.S.records.notes.some(n => n.text === 'sealant applied')", timeout_s=10)
    shot(drv, "notes")
    drv.find_element(By.CSS_SELECTOR, "nav [data-view=notes]").send_keys(Keys.ARROW_RIGHT)  # to Link health
    wait_for(drv, "return document.querySelectorAll('#links tr').length > 1")
    shot(drv, "links")

    # Channels: live plots, then a zoom request answered within its budget.
    drv.find_element(By.CSS_SELECTOR, "nav [data-view=channels]").send_keys(Keys.ENTER)
    wait_for(drv, "return document.querySelectorAll('#plots .uplot').length === 3")
    time.sleep(1.5)
    shot(drv, "channels-live")
    drv.execute_script("document.querySelectorAll('#plots .plot')[2].scrollIntoView()")
    shot(drv, "channels-rate")
    png = drv.execute_script("return Plots.png(2)")
    assert png.startswith("data:image/png;base64,") and len(png) > 5000
    assert len(drv.find_elements(By.CSS_SELECTOR, "button.png")) == 3
    ms = drv.execute_async_script("""const done = arguments[arguments.length - 1];
        const t = App.S.overview.station.t_s; App.fixedRange(0, t).then(done);""")
    assert ms < ZOOM_BUDGET_MS, f"zoom took {ms:.0f} ms in the browser"
    assert "points in" in drv.execute_script("return document.getElementById('zoominfo').textContent")
    shot(drv, "channels-zoom")
    drv.get(url + "/report")
    wait_for(drv, "return document.querySelectorAll('#segments tr').length > 1 && document.querySelector('#rate .uplot')")
    shot(drv, "report")
    assert_clean_console(drv)

    # A viewer sees no controls, and the server refuses the viewer's acknowledge (403).
    login(drv, url, VIEWER)
    drv.find_element(By.CSS_SELECTOR, "nav [data-view=alarms]").send_keys(Keys.ENTER)
    assert drv.execute_script("return document.querySelectorAll('button[data-act]').length") == 0
    status = drv.execute_async_script("""const done = arguments[arguments.length - 1];
        fetch('/api/alarms/1/ack', {method: 'POST', headers: {'X-CSRF-Token': App.S.me.csrf}}).then(r => done(r.status));""")
    assert status == 403
    shot(drv, "viewer-alarms")
    drv.get_log("browser")  # the refused fetch logs a 403 on purpose: not an error of the page

    # The public page: no login, status and trend, no raw data.
    drv.delete_all_cookies()
    drv.get(url + "/public")
    wait_for(drv, "return document.getElementById('status').textContent.length > 1 && document.querySelector('#trend .uplot')")
    text = drv.execute_script("return document.body.innerText")
    assert "hPa" not in text and "Pa/s" not in text
    assert not drv.execute_script("return document.querySelectorAll('button, input, form').length")
    shot(drv, "public")
    assert_clean_console(drv)


def test_public_api_has_no_raw_data(dashboard: Dashboard) -> None:
    s = dashboard.client().get_json("/api/public")
    assert set(s) == {"status", "rate_trend_mmhg_per_day_hourly", "last_update_utc"}
    flat = json.dumps(s)
    for word in ("pressure", "temperature", "channel", "t_s", "ci95"):
        assert word not in flat
    # Rounded hourly means only.
    assert all(len(p) == 2 and p[1] == round(p[1], 1) for p in s["rate_trend_mmhg_per_day_hourly"])
