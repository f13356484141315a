"""UUID keys on scans and workspaces; the host's membership policy."""

import pytest

from tests.hosts.profiles import ScanHost
from tests.hosts.scenario import *  # noqa: F403 (the shared host scenario)


@pytest.fixture
def host():
    return ScanHost()
