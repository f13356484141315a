"""Saved searches and the threshold on a host site with string keys (tests/hosts)."""

from __future__ import annotations

import pytest

from tests.hosts.runner import run_host_suite


@pytest.mark.integration
def test_saved_searches_on_the_char_host():
    run_host_suite("tests.hosts.char_settings", "watch_char.py")
