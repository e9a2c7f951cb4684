"""The breathing view and the dashboard in a real browser against a real ``vagus demo``.

Debian's chromium under Playwright (see tests/support/browser.py). One demo server for the
module (a simulated participant breathing with the pacer, in real time); the tests run in
file order, the slowest check (coherence needs 64 s of beats) last, so the whole module
takes about as long as that one window.
"""

from __future__ import annotations

import itertools
import math
import statistics
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from support.browser import Pages, VagusServer, sample_pacer, screenshot, server_fixture

#: The rate the demo starts with: fast, so 30 s of sampling hold 10 breaths.
START_RATE_BPM = 20.0

pytestmark = pytest.mark.timeout(150)

demo = server_fixture("demo", "--rate", str(START_RATE_BPM))


def _unwrap(phases: list[float]) -> list[float]:
    out = [phases[0]]
    for p in phases[1:]:
        d = p - out[-1] % 1.0
        d -= math.floor(d + 0.5)  # wrapped to [-0.5, 0.5)
        out.append(out[-1] + d)
    return out


def _slope(xs: list[float], ys: list[float]) -> float:
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    num = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True))
    return num / sum((x - mx) ** 2 for x in xs)


def _upward_crossings(samples: list[tuple[float, float, float]], level: float) -> list[float]:
    """Times at which the drawn scale rises through ``level`` (linear interpolation)."""
    out = []
    for (t0, s0, _), (t1, s1, _) in itertools.pairwise(samples):
        if s0 < level <= s1:
            out.append(t0 + (level - s0) / (s1 - s0) * (t1 - t0))
    return out


def _max_phase_jump(samples: list[tuple[float, float, float]], max_rate_bpm: float) -> float:
    """The largest step of the drawn phase beyond what the fastest rate explains (cycles),
    allowing the 30 % a view may speed up for a moment to absorb a clock correction."""
    worst = 0.0
    for (t0, _, p0), (t1, _, p1) in itertools.pairwise(samples):
        d = p1 - p0
        d -= math.floor(d + 0.5)
        worst = max(worst, abs(d) - (t1 - t0) * 1.3 * max_rate_bpm / 60.0)
    return worst


def test_pages_without_their_token_are_refused(demo: VagusServer) -> None:
    base = demo.base
    session = demo.links["session"]
    for path in (
        f"/s/{session}/breathe",
        f"/s/{session}/dashboard",
        f"/s/{session}/breathe?token=wrong-token-0123456789abcdef",
        f"/s/{session}/dashboard?token=" + demo.links["urls"]["participant"].split("token=")[1],
    ):
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(base + path, timeout=10)
        err.value.close()
        assert err.value.code == 403, path
    # The static files need no token; the page with its own token loads.
    with urllib.request.urlopen(base + "/static/js/pacer.js", timeout=10) as r:
        assert r.status == 200
    with urllib.request.urlopen(demo.links["urls"]["participant"], timeout=10) as r:
        assert b"breathe.js" in r.read()


def test_pacer_drawn_size_follows_the_configured_rate(
    demo: VagusServer, pages: Pages, tmp_path: Path
) -> None:
    page = pages.open(demo.links["urls"]["participant"])
    page.wait_for_function("document.querySelector('#pacer').dataset.scale !== ''")
    samples = sample_pacer(page, 30.0)  # the 30 s: 10 breaths at the start rate
    assert len(samples) > 30 * 20, f"only {len(samples)} frames drawn in 30 s"
    # The drawn size: its period from the times it rises through the middle of its range.
    lo = min(s for _, s, _ in samples)
    hi = max(s for _, s, _ in samples)
    assert hi - lo > 0.4, f"the shape barely moves: scale {lo:.3f}-{hi:.3f}"
    ups = _upward_crossings(samples, (lo + hi) / 2)
    assert len(ups) >= 4
    period_s = _slope(list(range(len(ups))), ups)
    expected_s = 60.0 / START_RATE_BPM
    assert abs(period_s - expected_s) / expected_s < 0.05, (period_s, expected_s)
    # The words follow the shape.
    assert page.inner_text("#cue") in ("breathe in", "breathe out", "hold")
    assert page.inner_text("#rate") == f"{START_RATE_BPM:g}"
    screenshot(page, "breathe-1440", tmp_path)
    pages.console.assert_clean()


def test_practitioner_rate_change_reaches_the_breathing_view_without_a_jump(
    demo: VagusServer, pages: Pages
) -> None:
    breathe, dash = pages.participant_and_practitioner(demo)
    breathe.wait_for_function("document.querySelector('#pacer').dataset.phase !== ''")
    # Sample the breathing view in the background (every frame) while the rate changes.
    breathe.evaluate(
        """() => { window.__samples = []; const el = document.querySelector('#pacer');
        const step = () => {
          const p = el.dataset.phase, t = Number(el.dataset.t), s = window.__samples;
          if (p !== '' && (!s.length || s[s.length - 1][0] !== t))
            s.push([t, Number(el.dataset.scale), Number(p)]);
          if (!window.__stop) requestAnimationFrame(step); };
        requestAnimationFrame(step); }"""
    )
    time.sleep(3.0)
    new_rate = 12.0
    dash.fill("#p-rate", f"{new_rate:g}")
    clicked_ms = dash.evaluate(
        "() => { document.querySelector('#p-apply').click(); return Date.now(); }"
    )
    breathe.wait_for_function(f"document.querySelector('#rate').textContent === '{new_rate:g}'")
    seen_ms = float(breathe.evaluate("() => Number(document.body.dataset.pacerSeenUnixMs)"))
    seen_s = float(breathe.evaluate("() => performance.now() / 1000"))
    # Issue 11: the change reaches the participant's view within 1 s.
    assert seen_ms - clicked_ms < 1000.0, f"seen {seen_ms - clicked_ms:.0f} ms after the click"
    time.sleep(8.0)
    rows = breathe.evaluate("() => { window.__stop = true; return window.__samples; }")
    samples = [(r[0], r[1], r[2]) for r in rows]
    # No jump in the drawn phase at the change (nor anywhere): each frame's step is what
    # the faster rate explains, within 0.01 cycle.
    assert _max_phase_jump(samples, START_RATE_BPM) < 0.01
    # After the change the drawn phase advances at the new rate (within 5 %), once the
    # view has worked off the few ms (or, with a coarse server clock, up to ~1 s) between
    # the server's stamp of the change and its arrival, at most 30 % faster or slower.
    after = [s for s in samples if s[0] >= seen_s + 3.0]
    ph = _unwrap([s[2] for s in after])
    rate = _slope([s[0] for s in after], ph) * 60.0
    assert abs(rate - new_rate) / new_rate < 0.05, rate
    assert "applied" in dash.inner_text("#p-sent")
    # Back to the start rate for the other tests.
    dash.fill("#p-rate", f"{START_RATE_BPM:g}")
    dash.click("#p-apply")
    breathe.wait_for_function(
        f"document.querySelector('#rate').textContent === '{START_RATE_BPM:g}'"
    )
    pages.console.assert_clean()


@pytest.mark.parametrize(("width", "height"), [(375, 667), (1440, 900)])
def test_views_fit_phone_and_desktop(
    demo: VagusServer, pages: Pages, tmp_path: Path, width: int, height: int
) -> None:
    for kind, url in (
        ("breathe", demo.links["urls"]["participant"]),
        ("dashboard", demo.links["urls"]["practitioner"]),
    ):
        page = pages.open(
            url, width=width, height=height, is_mobile=width < 500, has_touch=width < 500
        )
        page.wait_for_timeout(800)
        scroll_w = page.evaluate("document.documentElement.scrollWidth")
        client_w = page.evaluate("document.documentElement.clientWidth")
        assert scroll_w <= client_w, (
            f"{kind} at {width}x{height} scrolls sideways ({scroll_w} > {client_w})"
        )
        controls = (
            ["#stop", "#sound", "#open-controls", "#mark"]  # a solo session: its own pacer
            if kind == "breathe"
            else ["#p-apply", "#marker-add", "#rec-toggle", "#end", "#invite"]
        )
        for sel in controls:
            el = page.locator(sel)
            el.scroll_into_view_if_needed()
            box = el.bounding_box()
            assert box is not None, f"{sel} not shown on {kind} at {width}x{height}"
            assert box["x"] >= 0 and box["x"] + box["width"] <= client_w, f"{sel} off screen"
            assert box["width"] >= 24 and box["height"] >= 24, f"{sel} too small to tap"
            assert el.is_enabled()
        screenshot(page, f"{kind}-{width}", tmp_path)
        page.context.close()
    pages.console.assert_clean()


def test_breathing_view_first_notice_dark_reduced_motion_and_tone(
    demo: VagusServer, pages: Pages, tmp_path: Path
) -> None:
    page = pages.open(
        demo.links["urls"]["participant"],
        width=800,
        height=700,
        first_notice_seen=False,
        reduced_motion="reduce",
        color_scheme="dark",
    )
    # Dark when the system says so: a dark background, light text.
    bg = page.evaluate("getComputedStyle(document.body).backgroundColor")
    fg = page.evaluate("getComputedStyle(document.body).color")
    lum = [sum(int(v) for v in c[c.index("(") + 1 : -1].split(",")[:3]) for c in (bg, fg)]
    assert lum[0] < 150 < lum[1], (bg, fg)
    # A first session says once, gently, how to breathe; not again after that.
    notice = page.locator("#first-notice")
    assert notice.is_visible()
    assert "not deeply" in notice.inner_text() and "light-headed" in notice.inner_text()
    page.click("#fn-ok")
    assert not notice.is_visible()
    page.reload()
    page.wait_for_function("document.body.dataset.ready === '1'")
    assert not page.locator("#first-notice").is_visible()
    # Reduced motion: a slow fill bar and the word instead of the scaling shape.
    bar = page.locator("#fillbar")
    bar.wait_for(state="visible")
    widths = set()
    for _ in range(6):
        widths.add(bar.locator("div").evaluate("el => el.style.width"))
        page.wait_for_timeout(250)
    assert len(widths) > 2, widths
    # The tone is off until a tap, then on (Web Audio; nothing to assert about the sound
    # itself here but that the page says so and raises no error).
    assert page.get_attribute("#sound", "aria-pressed") == "false"
    page.click("#sound")
    assert page.get_attribute("#sound", "aria-pressed") == "true"
    page.wait_for_timeout(600)
    page.click("#sound")
    assert page.get_attribute("#sound", "aria-pressed") == "false"
    screenshot(page, "breathe-reduced-motion", tmp_path)
    pages.console.assert_clean()


def test_solo_participant_sets_the_pacer_and_adds_a_marker(
    demo: VagusServer, pages: Pages, tmp_path: Path
) -> None:
    breathe, dash = pages.participant_and_practitioner(
        demo, width=375, height=667, is_mobile=True, has_touch=True
    )
    breathe.click("#open-controls")
    breathe.fill("#c-rate", "10")
    breathe.select_option("#c-ratio", "0.5")
    breathe.click("#c-apply")
    breathe.wait_for_function("document.querySelector('#rate').textContent === '10'")
    breathe.wait_for_function("document.querySelector('#c-sent').textContent === 'applied'")
    # The new ratio starts with the next inhale (vagus.core.pacer): within one 6 s breath.
    now_text = "document.querySelector('#pacer-now').textContent"
    dash.wait_for_function(f"{now_text} === 'now 10/min · in:out 1:1'", timeout=15_000)
    screenshot(breathe, "breathe-375-controls", tmp_path)
    breathe.click("#c-close")
    breathe.click("#mark")
    items = "[...document.querySelectorAll('#markers li')]"
    dash.wait_for_function(f"{items}.some((li) => li.textContent.endsWith('marker'))")
    # Back to the module's rate for the tests after this one.
    breathe.click("#open-controls")
    breathe.fill("#c-rate", f"{START_RATE_BPM:g}")
    breathe.select_option("#c-ratio", "0.4")
    breathe.click("#c-apply")
    breathe.wait_for_function(
        f"document.querySelector('#rate').textContent === '{START_RATE_BPM:g}'"
    )
    pages.console.assert_clean()


def test_dashboard_invite_links_with_copy_and_qr(demo: VagusServer, pages: Pages) -> None:
    dash = pages.open(demo.links["urls"]["practitioner"])
    dash.click("#invite")
    rows = dash.locator("#links .link-row")
    urls = rows.locator("code").all_inner_texts()
    assert demo.links["urls"]["participant"] in urls
    assert demo.links["urls"]["viewer"] in urls
    assert dash.locator("#qr-box .qr svg path").count() == 1
    assert rows.first.get_by_role("button", name="copy").is_visible()
    pages.console.assert_clean()


def test_recording_stops_and_starts_from_the_dashboard(demo: VagusServer, pages: Pages) -> None:
    breathe, dash = pages.participant_and_practitioner(demo)
    dash.on("dialog", lambda d: d.accept())  # "Stop recording?" asks first
    assert dash.inner_text("#rec") == "● recording"
    dash.click("#rec-toggle")
    dash.wait_for_function("document.querySelector('#rec').dataset.recording === 'false'")
    breathe.wait_for_function(
        "document.querySelector('#state .text').textContent === 'connected · not recording'"
    )
    assert dash.inner_text("#rec-toggle") == "start recording"
    dash.click("#rec-toggle")
    dash.wait_for_function("document.querySelector('#rec').dataset.recording === 'true'")
    breathe.wait_for_function("document.querySelector('#state .text').textContent === 'connected'")
    pages.console.assert_clean()


def test_hr_and_coherence_update_from_live_data(
    demo: VagusServer, pages: Pages, tmp_path: Path
) -> None:
    breathe, dash = pages.participant_and_practitioner(demo)
    # HR: a number that keeps changing with the beats.
    breathe.wait_for_function("document.body.dataset.hr !== ''", timeout=20_000)
    hr0 = breathe.evaluate("document.body.dataset.hr")
    breathe.wait_for_function(f"document.body.dataset.hr !== '{hr0}'", timeout=15_000)
    assert 30 < float(breathe.evaluate("document.body.dataset.hr")) < 200
    hr_text = dash.locator('.num[data-metric="hr_bpm"] .val').inner_text()
    assert hr_text.isdigit()
    # Coherence needs 64 s of beats (75 % of them): wait for the first value, then a new one
    # 5 s later; until then the views say it is computing, never an invented number.
    assert (
        breathe.inner_text("#coh-label") == "coherence: computing (64 s)"
        or breathe.evaluate("document.body.dataset.coherence") != ""
    )
    breathe.wait_for_function("document.body.dataset.coherence !== ''", timeout=90_000)
    c0 = breathe.evaluate("document.body.dataset.coherence")
    breathe.wait_for_function(f"document.body.dataset.coherence !== '{c0}'", timeout=15_000)
    c1 = float(breathe.evaluate("document.body.dataset.coherence"))
    assert c1 >= 0
    assert breathe.inner_text("#coh-label").startswith("coherence ")
    dash.wait_for_function(
        "document.querySelector('.num[data-metric=\"coherence_ratio\"]').dataset.value !== ''"
    )
    # RSA amplitude per breath (mean over 60 s) from the session's rsa events.
    dash.wait_for_function(
        "document.querySelector('.num[data-metric=\"rsa_60s_bpm\"]').dataset.value !== ''"
    )
    rsa_tip = dash.locator('.num[data-metric="rsa_60s_bpm"]').get_attribute("aria-label") or ""
    assert "peak-to-trough" in rsa_tip and "60 s" in rsa_tip
    # The dashboard's numbers carry their formula and window.
    tip = dash.locator('.num[data-metric="rmssd_30s_ms"]').get_attribute("aria-label") or ""
    assert "30 s" in tip and "ΔNN" in tip
    dash.wait_for_timeout(500)
    screenshot(breathe, "breathe-coherence", tmp_path)
    screenshot(dash, "dashboard-1440-live", tmp_path)
    pages.console.assert_clean()
