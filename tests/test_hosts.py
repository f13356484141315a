"""The app installed into other Django sites, each in its own process (own settings).

tests/hosts holds a minimal host with its own `Photo` model (an ImageField and an `album`
foreign key as the project), its own base template and URLs, and no `datasets` app; and a
host with no project at all. Each suite runs the whole path there: migrate, upload,
embed through the worker code, readiness, notifications, search, API, admin, includes.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.integration


@pytest.mark.parametrize(
    ("settings_module", "suite"),
    [("tests.hosts.photos_settings", "host_photos.py"),
     ("tests.hosts.sitewide_settings", "host_sitewide.py")],
)
def test_host_suite_passes(settings_module, suite):
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": settings_module}
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
         "--confcutdir", str(ROOT / "tests" / "hosts"), "--ds", settings_module,
         "--create-db", str(ROOT / "tests" / "hosts" / suite)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-6000:]
    assert " passed" in output and "failed" not in output
