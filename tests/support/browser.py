"""Debian's Chromium, driven by Playwright, for the web UI's browser tests.

Playwright is told which browser to run (`executable_path`): it never downloads one.
Without Chromium (or the web build, or axe-core) the browser tests skip, except in CI,
where every test must run: `make install-test` installs all three."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from playwright.sync_api import Browser, sync_playwright

from .net import is_ci
from .server import ARTIFACTS_DIR

CHROMIUM = Path(os.environ.get("SUPPORTCHAT_TEST_CHROMIUM", "/usr/bin/chromium"))
SCREENSHOTS = ARTIFACTS_DIR / "screenshots"
ROOT = Path(__file__).resolve().parents[2]
WEB_BUILD = ROOT / "src" / "supportchat" / "webui"
# axe-core, the accessibility checker, from tests/js (npm ci).
AXE = ROOT / "tests" / "js" / "node_modules" / "axe-core" / "axe.min.js"


def _skip_unless_ci(problem: str) -> None:
    if is_ci():
        pytest.fail(f"{problem} (CI must run the browser tests)", pytrace=False)
    pytest.skip(problem)


def browser_or_skip() -> None:
    if not os.access(CHROMIUM, os.X_OK):
        _skip_unless_ci(f"{CHROMIUM} is missing: run `make install-test` (Debian's chromium)")
    if not (WEB_BUILD / "index.html").is_file():
        _skip_unless_ci(f"the web UI is not built ({WEB_BUILD}): run `make install`")


def axe_or_skip() -> Path:
    if not AXE.is_file():
        _skip_unless_ci(f"{AXE} is missing: run `make install-test`")
    return AXE


@contextmanager
def chromium() -> Iterator[Browser]:
    """A headless Chromium for one test module."""
    browser_or_skip()
    with sync_playwright() as playwright:
        # --no-sandbox: the tests run as root in CI, where Chromium's sandbox refuses to
        # start; the pages under test are this project's own.
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=["--no-sandbox", "--disable-dev-shm-usage"]
        )
        try:
            yield browser
        finally:
            browser.close()


def screenshot_path(name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return SCREENSHOTS / f"{name}.png"
