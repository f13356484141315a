"""Debian's Chromium driven by Playwright, shared by the site's and the host sites' browser
tests. Imports nothing of the site, so host suites (their own settings) can use it too.
Playwright's own browser download is never used."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--no-first-run"]


@contextmanager
def chromium_page(base_url: str) -> Iterator[Any]:
    """A page in a fresh Chromium; every database connection opened meanwhile is closed."""
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "1"  # Playwright's sync API runs an event loop
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        context = browser.new_context(base_url=base_url)
        context.set_default_timeout(20_000)
        try:
            yield context.new_page()
        finally:
            context.close()
            browser.close()
            # Connections opened while Playwright's loop ran live in their own context;
            # close them here or the test database cannot be dropped at the end.
            from django.db import connections

            connections.close_all()
