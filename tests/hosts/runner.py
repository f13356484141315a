"""Run one host suite in its own pytest process, under that host's settings module.

Each host site has its own settings (asset model, key types, access policy), which one
Django process cannot switch between; feature test files call this to prove their
feature on a host shaped like a real site, not only on the demo.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HOSTS = ROOT / "tests" / "hosts"


def run_host_suite(settings_module: str, suite: str, timeout: int = 600) -> str:
    """Run ``tests/hosts/<suite>`` under ``settings_module``; assert it passed; its output."""
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": settings_module,
           # host databases named after this run's own: concurrent runs never share one
           "SIMILARITY_HOST_DB_PREFIX": os.environ.get("ASSETSITE_DB_NAME", "assetsite_tests")}
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
         "--confcutdir", str(HOSTS), "--ds", settings_module,
         "--create-db", str(HOSTS / suite)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-6000:]
    assert " passed" in output and "failed" not in output, output[-6000:]
    return output
