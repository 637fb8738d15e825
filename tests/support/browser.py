"""Debian's Chromium, driven by Playwright, for the web UI's browser tests.

Playwright is told which browser to run (`executable_path`): it never downloads one.
Without Chromium (or Playwright) the browser tests skip, except in CI, where every test
must run: `make install-test` installs Debian's `chromium` package."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from .net import is_ci
from .server import ARTIFACTS_DIR

if TYPE_CHECKING:
    from playwright.sync_api import Browser

CHROMIUM = Path(os.environ.get("SUPPORTCHAT_TEST_CHROMIUM", "/usr/bin/chromium"))
SCREENSHOTS = ARTIFACTS_DIR / "screenshots"
WEB_BUILD = Path(__file__).resolve().parents[2] / "src" / "supportchat" / "webui"


def _missing() -> str | None:
    try:
        import playwright  # noqa: F401
    except ImportError:
        return "Playwright is not installed: run `make install-test`"
    if not os.access(CHROMIUM, os.X_OK):
        return f"{CHROMIUM} is missing: run `make install-test` (Debian's chromium package)"
    if not (WEB_BUILD / "index.html").is_file():
        return f"the web UI is not built ({WEB_BUILD}): run `make install`"
    return None


def browser_or_skip() -> None:
    problem = _missing()
    if problem is not None:
        if is_ci():
            pytest.fail(f"{problem} (CI must run the browser tests)", pytrace=False)
        pytest.skip(problem)


@contextmanager
def chromium() -> Iterator[Browser]:
    """A headless Chromium for one test module."""
    browser_or_skip()
    from playwright.sync_api import sync_playwright

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
