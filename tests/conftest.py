"""Shared fixtures.

BLE: ``bluez_bus`` starts a private dbus-daemon (and the ``bluetoothctl`` shim) and points
this process at it; ``fake_bluez`` runs the simulated BlueZ service in the test's event
loop, with no straps (tests add them). The real bleak code talks to it unmodified.

Browser: ``chromium`` is one headless Debian chromium (Playwright) for a test module;
``pages`` opens the pages of one test in it and closes them when the test ends (see
tests/support/browser.py, which also starts the server a module's pages talk to).
"""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from hypothesis import settings

from support.browser import Pages, browser
from support.fake_bluez import BusEnvironment, FakeBlueZ

# Property tests explore the same examples on every run (a red CI must mean a real
# regression, not a new random draw); `--hypothesis-seed`/profiles still work locally.
settings.register_profile("deterministic", derandomize=True, database=None)
settings.load_profile("deterministic")


@pytest.fixture
def bluez_bus() -> Iterator[BusEnvironment]:
    """A private system-style D-Bus with ``DBUS_SYSTEM_BUS_ADDRESS`` set to it."""
    if shutil.which("dbus-daemon") is None:
        pytest.skip(
            "dbus-daemon not installed (Debian package `dbus`; tests/install-system-deps.sh)"
        )
    env = BusEnvironment()
    env.start()
    restore = env.apply()
    try:
        yield env
    finally:
        restore()
        env.stop()


@pytest.fixture
async def fake_bluez(bluez_bus: BusEnvironment) -> AsyncIterator[FakeBlueZ]:
    """The simulated ``org.bluez`` on ``bluez_bus``, in this test's event loop."""
    from vagus.sources.ble import release_bluez

    fake = FakeBlueZ(bluez_bus.address)
    async with fake:
        try:
            yield fake
        finally:
            await release_bluez()


@pytest.fixture(autouse=True)
def _isolated_data_dir(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No test touches the user's real session store: VAGUS_DATA_DIR points at a temp dir
    unless the test sets its own."""
    monkeypatch.setenv("VAGUS_DATA_DIR", str(tmp_path_factory.mktemp("vagus-data")))


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    """A headless Debian chromium (Playwright's sync API) for the module's tests; skips,
    saying how to install it, where there is none."""
    with browser() as b:
        yield b


@pytest.fixture
def pages(chromium: Any) -> Iterator[Pages]:
    """The test's pages (:class:`support.browser.Pages`), closed when it ends."""
    opened = Pages(chromium)
    try:
        yield opened
    finally:
        opened.close()
