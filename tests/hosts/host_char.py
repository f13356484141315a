"""Slug-like CharField keys on pins and boards; a FileField; the host's owner policy."""

import pytest

from tests.hosts.profiles import PinHost
from tests.hosts.scenario import *  # noqa: F403 (the shared host scenario)


@pytest.fixture
def host():
    return PinHost()
