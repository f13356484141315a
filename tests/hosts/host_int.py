"""4-byte AutoField keys; pictures -> folder -> library (two hops); staff-only default."""

import pytest

from tests.hosts.profiles import PictureHost
from tests.hosts.scenario import *  # noqa: F403 (the shared host scenario)


@pytest.fixture
def host():
    return PictureHost()
