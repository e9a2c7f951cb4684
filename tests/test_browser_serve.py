"""The admin page, two participants, a server restart, markers and review in a real
browser against a real ``vagus serve`` (Debian's chromium under Playwright; see
tests/support/browser.py).

One server for the module; the tests run in file order and build on each other: the
session the admin page creates is the one the later tests use.
"""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from support.browser import Pages, VagusServer, screenshot, server_fixture

pytestmark = pytest.mark.timeout(150)

#: What the admin page created (filled by the first test, read by the others).
CREATED: dict[str, Any] = {}

serve = server_fixture("serve")


def _admin_url(serve: VagusServer) -> str:
    links = serve.links
    return str(links.get("admin") or links["urls"]["admin"])


def _need_created() -> None:
    if not CREATED:
        pytest.skip("the admin page test did not create the session")


def test_admin_page_creates_a_session_with_links(
    serve: VagusServer, pages: Pages, tmp_path: Path
) -> None:
    admin = _admin_url(serve)
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(admin.split("?")[0], timeout=10)
    err.value.close()
    assert err.value.code == 403
    page = pages.new()
    page.goto(admin)
    page.fill("#title", "Tuesday group")
    page.fill(".person .p-name", "ann")
    page.select_option(".person .p-kind", "sim")
    page.click("#add-person")
    page.locator(".person .p-name").nth(1).fill("bob")
    page.locator(".person .p-kind").nth(1).select_option("sim")
    page.click("#create-btn")
    page.wait_for_selector("#created .link-row")
    links = {
        row.locator(".who").inner_text().split(" · ")[0]: row.locator("code").inner_text()
        for row in page.locator("#created .link-row").all()
    }
    assert {"practitioner", "ann", "bob", "viewer"} <= set(links), links
    # A QR code is drawn for a link on request, and the session is in the list.
    page.locator("#created .link-row", has_text="ann").get_by_role("button", name="QR").click()
    assert page.locator("#created .qr svg path").count() == 1
    page.wait_for_selector("#rows tr[data-session]")
    assert "Tuesday group" in page.inner_text("#rows")
    assert "ann" in page.inner_text("#rows") and "bob" in page.inner_text("#rows")
    session = page.locator("#rows tr[data-session]").first.get_attribute("data-session")
    CREATED.update(links=links, session=session)
    screenshot(page, "admin-1440", tmp_path)
    pages.console.assert_clean()


def test_a_participant_sees_only_their_own_data(serve: VagusServer, pages: Pages) -> None:
    _need_created()
    page = pages.new(width=800, height=700)
    frames: list[dict[str, Any]] = []
    page.on(
        "websocket",
        lambda ws: ws.on(
            "framereceived",
            # a "batch" message holds several frames (docs/protocol.md)
            lambda payload: frames.extend(
                m["frames"] if (m := json.loads(payload)).get("type") == "batch" else [m]
            ),
        ),
    )
    page.goto(CREATED["links"]["ann"])
    page.wait_for_function("document.body.dataset.ready === '1'")
    page.wait_for_function("document.body.dataset.hr !== ''", timeout=30_000)
    page.wait_for_timeout(2000)
    assert page.evaluate("document.body.dataset.participant") == "ann"
    hello = next(f for f in frames if f["type"] == "hello")
    assert [p["name"] for p in hello["participants"]] == ["ann"]
    assert set(hello["state"]["beats"]) <= {"ann"}
    assert len(frames) > 5
    for f in frames:
        assert f.get("participant") in (None, "ann"), f
    assert "bob" not in page.content()
    # The practitioner sees both, side by side.
    dash = pages.new()
    dash.goto(CREATED["links"]["practitioner"])
    dash.wait_for_function("document.querySelectorAll('.card').length === 2")
    names = dash.locator(".card .pname").all_inner_texts()
    assert sorted(names) == ["ann", "bob"]
    # The viewer's dashboard is read only: the same cards, no controls.
    view = pages.new()
    view.goto(CREATED["links"]["viewer"])
    view.wait_for_function("document.querySelectorAll('.card').length === 2")
    assert view.evaluate("document.body.dataset.role") == "viewer"
    for sel in ("#p-apply", "#marker-add", "#end", "#invite"):
        assert not view.locator(sel).is_visible(), sel
    assert view.locator("#role-chip").inner_text() == "read only"
    pages.console.assert_clean()


def test_pages_keep_working_after_the_server_restarts(
    serve: VagusServer, pages: Pages, tmp_path: Path
) -> None:
    _need_created()
    # While the server is down the browser itself logs the failed connection attempts.
    pages.console.allow = ["WebSocket connection to", "ERR_CONNECTION_REFUSED"]
    breathe = pages.open(CREATED["links"]["ann"], width=800, height=700)
    dash = pages.open(CREATED["links"]["practitioner"])
    dash.fill("#p-rate", "7.5")
    dash.click("#p-apply")
    breathe.wait_for_function("document.querySelector('#rate').textContent === '7.5'")
    serve.restart()
    for p in (breathe, dash):
        p.wait_for_function("document.body.dataset.connection !== 'open'", timeout=20_000)
    # Reconnected with backoff (a few seconds at most), state restored from `hello`.
    for p in (breathe, dash):
        p.wait_for_function("document.body.dataset.connection === 'open'", timeout=30_000)
    # The live data flows again into both pages ...
    hr0 = breathe.evaluate("document.body.dataset.hr")
    breathe.wait_for_function(f"document.body.dataset.hr !== '{hr0}'", timeout=30_000)
    dash.wait_for_function("document.querySelectorAll('.card').length === 2")
    assert not breathe.locator("#state").inner_text().startswith("session ended")
    # the pacer as it was before the restart (the server sets it again on resume)
    breathe.wait_for_function("document.querySelector('#rate').textContent === '7.5'")
    # ... and the pacer set from the dashboard reaches the breathing view again.
    dash.fill("#p-rate", "8.5")
    dash.click("#p-apply")
    breathe.wait_for_function("document.querySelector('#rate').textContent === '8.5'")
    breathe.wait_for_function("document.querySelector('#pacer').dataset.scale !== ''")
    assert dash.inner_text("#pacer-now").startswith("now 8.5/min")
    pages.console.assert_clean()


def test_a_dashboard_marker_is_stored_and_on_the_review_timeline(
    serve: VagusServer, pages: Pages, tmp_path: Path
) -> None:
    _need_created()
    dash = pages.open(CREATED["links"]["practitioner"])
    dash.wait_for_timeout(1500)
    # M stamps the moment; the note is typed after it; Enter adds it.
    stamped = dash.evaluate("window.vagusDashboard.sock.serverNow()")
    dash.keyboard.press("m")
    dash.wait_for_timeout(600)
    dash.keyboard.type("eyes closed")
    dash.keyboard.press("Enter")
    dash.wait_for_function("document.querySelector('#markers').textContent.includes('eyes closed')")
    t_marker = float(dash.locator("#markers li[data-t]").first.get_attribute("data-t") or "nan")
    assert abs(t_marker - stamped) < 0.5, (t_marker, stamped)
    screenshot(dash, "dashboard-1440", tmp_path)
    # End the session (the dialog asks first); it is saved.
    dash.click("#end")
    dash.click("#end-confirm")
    dash.wait_for_function("document.body.dataset.connection === 'ended'", timeout=20_000)
    session = CREATED["session"]
    export = ["export", session, "--participant", "ann", "--format", "json", "-o", "-"]
    export += ["--data-dir", str(serve.data_dir)]
    out = subprocess.run(
        [sys.executable, "-m", "vagus", *export],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    # (The session's own start and end markers are stored beside it.)
    stored = [
        e
        for e in json.loads(out.stdout)["events"]
        if e["type"] == "marker" and e["text"] == "eyes closed"
    ]
    assert len(stored) == 1
    assert abs(stored[0]["t_s"] - t_marker) < 1e-3
    # The review page shows it on the timeline, and seeks there from the marker list.
    review = pages.open(CREATED["links"]["practitioner"].replace("/dashboard?", "/review?"))
    tick = review.locator(".timeline .tick.marker", has_text="")
    titles = [t.get_attribute("title") or "" for t in tick.all()]
    assert sum("eyes closed" in t for t in titles) == 1, titles
    review.locator("#markers li", has_text="eyes closed").locator("a").click()
    review.wait_for_function(f"Math.abs(Number(document.body.dataset.reviewT) - {t_marker}) < 2")
    review.click('.speed[data-speed="0"]')
    review.click("#play")
    review.wait_for_function("document.querySelectorAll('.card').length === 2")
    review.wait_for_function(
        "document.querySelector('.num[data-metric=\"hr_bpm\"]').dataset.value !== ''",
        timeout=30_000,
    )
    screenshot(review, "review-1440", tmp_path)
    pages.console.assert_clean()
