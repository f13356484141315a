"""Slug-like CharField keys on pins and boards; a FileField; the host's owner policy."""

import pytest

from tests.hosts.profiles import PinHost
from tests.hosts.scenario import *  # noqa: F403 (the shared host scenario)


@pytest.fixture
def host():
    return PinHost()


def test_a_board_whose_key_is_site_is_an_ordinary_project(host, insider, add_asset, api_for):
    """A slug key may be any word, "site" included: it must not be taken for the
    site-wide scope (no project)."""
    from similarity import tasks
    from similarity.embedding import readiness
    from similarity.search import find_similar
    from tests.hosts.archive.models import Board
    from tests.hosts.scenario import API_PREFIX, assert_ranked_like_numpy

    board = Board.objects.create(slug="site", title="Site photos", owner=insider)
    pins = [add_asset(board, f"site pin {i}") for i in range(3)]
    scope = host.scope(board)
    tasks.embed_project(scope)
    state = readiness.get_readiness(scope)
    assert (state.state, state.embedded) == ("ready", 3)
    assert_ranked_like_numpy(find_similar(pins[0]), scope, pins[0], "most")
    body = api_for(insider).get(f"{API_PREFIX}projects/{scope}/similarity/").json()
    assert (body.get("project"), body.get("embedded")) == ("site", 3), body
    assert api_for(insider).get(f"{API_PREFIX}assets/{pins[0].pk}/similar/").status_code == 200
