"""The browser's pacer maths (web/static/js/pacer.js) equals the core's (vagus.core.pacer).

The module runs in Debian's chromium (Playwright; see tests/support/browser.py), served
from web/ through a routed origin (no server needed), and is compared with the Python
functions on fixed cases: the breath shape over phases, rates, ratios and holds; and the
phase and shape a view draws from the latest ``pacer_state`` alone, against the core
pacer's own answer, across rate, ratio and hold changes (a deferred shape included).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import pytest

from support.browser import REPO
from vagus.core.events import PacerChange, PacerState
from vagus.core.pacer import Pacer, breath_shape

ORIGIN = "http://vagus.test"


@pytest.fixture(scope="module")
def page(chromium: Any) -> Iterator[Any]:
    pg = chromium.new_page()

    def serve(route: Any) -> None:
        path = route.request.url[len(ORIGIN) :].split("?")[0]
        if path == "/":
            route.fulfill(body="<!doctype html><title>pacer</title>", content_type="text/html")
            return
        f = REPO / "web" / path.lstrip("/")
        if f.is_file():
            route.fulfill(body=f.read_bytes(), content_type="text/javascript")
        else:
            route.fulfill(status=404, body="not found")

    pg.route(f"{ORIGIN}/**", serve)
    pg.goto(f"{ORIGIN}/")
    pg.evaluate("async () => { window.P = await import('/static/js/pacer.js'); }")
    yield pg
    pg.close()


def _state_json(s: PacerState) -> dict[str, Any]:
    return dict(s.to_json())


SETTINGS = [
    # rate, inhale fraction, hold in, hold out
    (6.0, 0.4, 0.0, 0.0),
    (6.0, 0.5, 0.0, 0.0),
    (5.5, 1 / 3, 0.0, 0.0),
    (4.0, 0.4, 2.0, 0.0),
    (4.5, 0.5, 1.5, 3.0),
    (20.0, 0.4, 0.0, 0.5),
    (40.0, 0.9, 0.0, 0.0),
    (1.0, 0.1, 30.0, 0.0),
]


def test_breath_shape_equals_the_core(page: Any) -> None:
    phases = [i / 64 for i in range(64)] + [0.0, 0.39999, 0.4, 0.40001, 0.999999]
    for rate, frac, hin, hout in SETTINGS:
        state = PacerState(0.0, "fixed", rate, frac, hin, hout, 0.0)
        got = page.evaluate(
            "([st, ps]) => ps.map((p) => window.P.breathShape(p, st))",
            [_state_json(state), phases],
        )
        for p, js in zip(phases, got, strict=True):
            py = breath_shape(p, state)
            assert py is not None
            assert js["segment"] == py.stage, (rate, frac, hin, hout, p)
            assert math.isclose(js["volume"], py.volume, abs_tol=1e-12), (rate, frac, p)
            assert math.isclose(js["progress"], py.progress, abs_tol=1e-9), (rate, frac, p)


def test_drawing_from_the_latest_state_equals_the_core_pacer(page: Any) -> None:
    pacer = Pacer()
    states: list[PacerState] = []
    changes = [
        PacerChange(0.0, 6.0, 0.4, "fixed"),
        PacerChange(17.3, 9.0, 0.4, "fixed"),  # rate only: at once
        PacerChange(31.1, 9.0, 0.5, "fixed", 1.0, 0.0),  # ratio + hold: next inhale
        PacerChange(47.9, 4.5, 0.3, "fixed", 0.0, 2.0),
        PacerChange(80.0, None, 0.4, "off"),
        PacerChange(84.2, 12.0, 0.4, "fixed"),  # on again: an inhale starts
    ]
    for c in changes:
        states += pacer.receive_change(c)
    states += pacer.advance_to(120.0)
    times = [i * 0.3731 for i in range(int(120 / 0.3731))]  # off the stage boundaries
    cases = []
    for t in times:
        latest = [s for s in states if s.t_s <= t][-1]
        cases.append([t, _state_json(latest)])
    got = page.evaluate(
        """(cases) => cases.map(([t, st]) => {
            const ph = window.P.phaseAt(st, t);
            return [ph, ph === null ? null : window.P.breathShape(ph, st)];
        })""",
        cases,
    )
    deferred = sum(1 for s in states if s.t_s not in {c.t_s for c in changes})
    assert deferred >= 2, "the case list should include deferred shapes"
    for t, (ph, shape) in zip(times, got, strict=True):
        want_phase = pacer.phase_at(t)
        want = pacer.breath_at(t)
        if want_phase is None:
            assert ph is None, t
            continue
        d = (ph - want_phase + 0.5) % 1.0 - 0.5
        assert abs(d) < 1e-9, (t, ph, want_phase)
        assert want is not None
        assert shape["segment"] == want.stage, t
        assert math.isclose(shape["volume"], want.volume, abs_tol=1e-9), t


def test_drawn_pacer_never_jumps_at_a_new_state_or_clock_estimate(page: Any) -> None:
    # A new state a few ms late (network delay), a session clock that jumps by 0.49 s while
    # that is still being absorbed, and a clock estimate that moves by 30 ms: the drawn
    # phase moves on smoothly (each frame's step stays near what the rate explains).
    steps = page.evaluate(
        """() => {
        const d = new window.P.DrawnPacer();
        const st = (t, rate, phase) => ({t_s: t, mode: 'fixed', rate_bpm: rate,
            inhale_fraction: 0.4, hold_in_s: 0, hold_out_s: 0, phase});
        d.update(st(0, 6, 0), 0);
        const out = []; let prev = d.phase(0); let now = 0; let offset = 0;
        for (let i = 1; i <= 600; i += 1) {
          now = i / 60 + offset;
          if (i === 200) {  // the server changed the rate at 3.30 s; we hear of it at 3.333
            const p = window.P.phaseAt(st(0, 6, 0), 3.30);
            d.update(st(3.30, 15, p), now);
          }
          if (i === 210) { offset -= 0.49; now -= 0.49; d.clockShift(-0.49, now); }  // clock start
          if (i === 400) { offset += 0.03; now += 0.03; d.clockShift(0.03, now); }
          const ph = d.phase(now);
          let step = ph - prev; step -= Math.floor(step + 0.5);
          out.push(step); prev = ph;
        }
        return out;
    }"""
    )
    # At most 30 % faster or slower than the fastest rate, and always forward.
    assert max(abs(s) for s in steps) <= 15 / 60 / 60 * 1.3 + 1e-12
    assert min(steps) > 0  # always forward
