"""Real-browser fixtures: headless Debian Chromium driven by Playwright against the live server.
Screenshots go to SHOTS (the temp folder) for a human look."""

import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

SHOTS = Path(tempfile.gettempdir())
#: How long a check waits for the page (ms). Playwright's 5 s was too short on a slow shared
#: 2-core machine under CI load, where a deferred page (its figures fetched after the frame) took
#: longer to fill in; a check still fails when the element never comes.
WAIT_MS = 20_000
expect.set_options(timeout=WAIT_MS)
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture
def browser(monkeypatch: pytest.MonkeyPatch) -> Iterator[Browser]:
    # Playwright's sync API runs an event loop in this thread; the ORM calls the live server
    # makes happen in its own thread, so Django's async-safety check does not apply here.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS
        )
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1440, "height": 1000}, locale="zh-CN")
    context.set_default_timeout(WAIT_MS)
    yield context.new_page()
    context.close()
