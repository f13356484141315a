"""similarity.contrib.wagtail in a real Wagtail site, in its own process (own settings).

tests/hosts/wagtailsite is a trimmed `wagtail start` project with a custom image model
(4-byte keys); tests/hosts/host_wagtail.py drives Wagtail's own admin views there: the
listing and edit page actions, results, collection permissions, uploads, file
replacement, moves and deletes, the dashboard panel, the bulk action, and (browser) a
Playwright run with axe-core checks.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.conftest import ROOT

SETTINGS = "tests.hosts.wagtail_settings"


def run_suite(*args: str) -> str:
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": SETTINGS,
           # the host database is named after this run's own, like tests/test_hosts.py
           "SIMILARITY_HOST_DB_PREFIX": os.environ.get("ASSETSITE_DB_NAME", "assetsite_tests")}
    # --confcutdir keeps tests/hosts/conftest.py (the photos host's fixtures) out.
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
         "--confcutdir", str(ROOT / "tests" / "hosts" / "wagtailsite"), "--ds", SETTINGS,
         "--create-db", str(ROOT / "tests" / "hosts" / "host_wagtail.py"), *args],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-6000:]
    assert " passed" in output and "failed" not in output and "skipped" not in output
    return output


@pytest.mark.integration
def test_wagtail_host_suite_passes():
    run_suite("-m", "not browser")


@pytest.mark.integration
@pytest.mark.browser
def test_wagtail_host_in_the_browser():
    run_suite("-m", "browser")
