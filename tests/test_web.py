"""The web incident room in a real browser (headless Chromium through Playwright) against a real
server: uvicorn on loopback over real Postgres (LISTEN/NOTIFY drives the live streams) and the
real ClickHouse engine holding an hour of seeded signals.

The page signs in from the ``#token=`` fragment, shows the empty list, picks up an incident
declared through the API live (the tenant-wide SSE stream, no reload), opens it, draws the
seeded series with its anomalies, the blast radius graph, gets a note posted through the API
live in the timeline, sets the status from the UI, and logs no console error on the way. A bad
token lands on the sign-in box with the API's problem detail.
"""

from __future__ import annotations

import re
import shutil
import time
import uuid
from pathlib import Path

import httpx
import pytest

from api.server import BackgroundServer
from opscopilot.cli_api import make_token
from opscopilot.settings import Settings
from operators.topology import EdgeEvent
from schemas.anomaly import AnomalyEvent
from schemas.batch import SignalBatch
from schemas.validate import validate_record

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--disable-gpu", "--disable-background-networking", "--disable-component-update", "--no-first-run"]
SHOTS = Path("/tmp/web-shots")
SERVICE = "checkout-api"

pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(),
                                reason=f"the web test drives headless Chromium at {CHROMIUM}; it is not installed")


def seed(store, tenant: str, now: int) -> None:
    """An hour up to now of error_rate and latency_p95_ms for checkout-api with a spike in the
    last 12 minutes (and its anomalies), a deploy before it, and a small service graph."""
    rows = []
    spike_from = now - 12 * 60_000
    for i in range(240):
        ts = now - 60 * 60_000 + i * 15_000
        hot = ts >= spike_from
        wiggle = (i * 7919 % 13) / 13
        rows.append(validate_record({"tenant": tenant, "kind": "metric", "service": SERVICE, "name": "error_rate",
                                     "value": (0.32 if hot else 0.01) + 0.01 * wiggle, "ts": ts}, now, now))
        rows.append(validate_record({"tenant": tenant, "kind": "metric", "service": SERVICE, "name": "latency_p95_ms",
                                     "value": (480.0 if hot else 120.0) + 25 * wiggle, "ts": ts}, now, now))
    rows.append(validate_record({"tenant": tenant, "kind": "change", "service": SERVICE, "change_id": "web-chg-1",
                                 "change_type": "deploy", "version": "v42", "author": "ana",
                                 "ts": spike_from - 90_000, "body": "deploy checkout-api v42"}, now, now))
    store.write(SignalBatch(rows, []))
    store.write_anomalies([
        AnomalyEvent(tenant=tenant, service=SERVICE, name="error_rate", series="error_rate", ts=spike_from + k * 15_000,
                     value=0.32, score=0.99, expected=0.012, lower=0.0, upper=0.03, direction=1, kind="spike",
                     parts={}, detector="test", ingest_ts=now)
        for k in range(6)])
    store.write_topology_events(tenant, [EdgeEvent(now - 30 * 60_000, "web", SERVICE, "observed", 40.0),
                                         EdgeEvent(now - 30 * 60_000, SERVICE, "db", "observed", 25.0)])


@pytest.fixture
def room(pg_store, store):
    tenant = f"web{uuid.uuid4().hex[:8]}"
    seed(store, tenant, int(time.time() * 1000))
    server = BackgroundServer(Settings.from_env({}), pg_store.url, store, host="127.0.0.1", port=0).start()
    token = make_token(pg_store, tenant, "admin", "web-test")
    url = f"http://127.0.0.1:{server.port}"
    http = httpx.Client(base_url=url, timeout=20, headers={"Authorization": f"Bearer {token}"})
    try:
        yield {"url": url, "token": token, "tenant": tenant, "http": http}
    finally:
        http.close()
        server.stop()


def test_incident_room_live_in_a_browser(room, tmp_path):
    from playwright.sync_api import expect, sync_playwright

    url, http = room["url"], room["http"]
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1440, "height": 960})
            page.set_default_timeout(15_000)
            errors: list[str] = []
            page.on("console", lambda m: errors.append(f"console.{m.type}: {m.text}") if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(f"pageerror: {e}"))

            # signed in from the fragment, which leaves the address bar; the list is empty, the stream live
            page.goto(f"{url}/#token={room['token']}")
            expect(page.locator("#who")).to_contain_text(room["tenant"])
            expect(page.locator("#who")).to_contain_text("admin")
            assert "token" not in page.url
            assert page.evaluate("sessionStorage.getItem('opscopilot.token')") == room["token"]
            expect(page.locator("#list")).to_contain_text("No incidents")
            expect(page.locator('#live[data-state="live"]')).to_be_visible()
            page.evaluate("window.__sameDocument = true")

            # an incident declared through the API appears live, without a reload
            r = http.post("/v1/incidents", json={"title": "Checkout errors after deploy", "severity": "high",
                                                 "service": SERVICE}, headers={"Idempotency-Key": uuid.uuid4().hex})
            assert r.status_code == 201, r.text
            inc = r.json()
            item = page.locator(f'#list a.inc[data-id="{inc["id"]}"]')
            expect(item).to_be_visible()
            expect(item).to_contain_text("Checkout errors after deploy")
            expect(item.locator(".pill.sev")).to_have_text("high")
            assert page.evaluate("window.__sameDocument === true"), "the page reloaded"

            # open it: header, timeline (live), chart of the seeded series with its anomalies, blast radius
            item.click()
            expect(page).to_have_url(re.compile(rf"#/incident/{inc['id']}$"))
            expect(page.locator("#inc-head h1")).to_have_text("Checkout errors after deploy")
            expect(page.locator("#timeline")).to_contain_text("declared by web-test")
            expect(page.locator('#tl-live[data-state="live"]')).to_be_visible()
            chart = page.locator(f'.chart[data-service="{SERVICE}"][data-metric="error_rate"]')
            expect(chart.locator("path.line")).to_have_count(1)
            assert chart.locator("path.line").get_attribute("d").count("L") >= 50
            expect(chart.locator(".anomaly-marks circle")).to_have_count(6)
            expect(chart.locator(".chg.own")).to_have_count(1)
            expect(page.locator(f'.chart[data-service="{SERVICE}"][data-metric="latency_p95_ms"] path.line')).to_have_count(1)
            expect(page.locator(f'#radius .node.root[data-service="{SERVICE}"]')).to_be_visible()
            expect(page.locator('#radius .node.predicted[data-service="web"]')).to_be_visible()

            # a note posted through the API shows up in the open timeline live
            note = f"rolled back v42 ({uuid.uuid4().hex[:6]})"
            r = http.post(f"/v1/incidents/{inc['id']}/notes", json={"body": note},
                          headers={"Idempotency-Key": uuid.uuid4().hex})
            assert r.status_code == 201, r.text
            entry = page.locator("#timeline .tl-entry.kind-note", has_text=note)
            expect(entry).to_be_visible()
            expect(entry).to_contain_text("web-test")

            # a responder action from the page: the status, reflected in the header, list and timeline
            page.locator('#inc-head button[data-status="mitigated"]').click()
            expect(page.locator("#inc-head .pill.status")).to_have_text("mitigated")
            expect(item.locator(".pill.status")).to_have_text("mitigated")
            expect(page.locator("#timeline .tl-entry.kind-status")).to_contain_text("set status mitigated")
            assert http.get(f"/v1/incidents/{inc['id']}").json()["status"] == "mitigated"

            shot = tmp_path / "incident-room.png"
            page.screenshot(path=str(shot))
            SHOTS.mkdir(parents=True, exist_ok=True)
            shutil.copy(shot, SHOTS / "incident-room.png")
            assert not errors, "\n".join(errors)

            # a bad token: back to the sign-in box with the API's problem detail
            bad = browser.new_page()
            bad.goto(f"{url}/#token=oc_not-a-real-token")
            expect(bad.locator("#signin")).to_be_visible()
            expect(bad.locator("#signin-error")).to_contain_text("unknown or revoked API token")
            expect(bad.locator("#app")).to_be_hidden()
        finally:
            browser.close()
