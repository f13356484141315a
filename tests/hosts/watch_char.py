"""Saved searches on a host with slug-like string keys (pins on boards, the host's owner
policy): save on the reusable app's results page, the worker code matches new pins, the
owner is notified and sees them on the matches page; an outsider gets 404 everywhere."""

from __future__ import annotations

import re

import pytest
from django.test import Client
from django.urls import reverse

from similarity import tasks
from similarity.models import Notification, SavedSearch, SavedSearchMatch
from tests.hosts import scenario
from tests.hosts.profiles import PinHost
from tests.hosts.scenario import API_PREFIX, PAGES_PREFIX, SECRET

# the shared scenario's fixtures (not its tests)
insider, outsider = scenario.insider, scenario.outsider
add_asset, make_project = scenario.add_asset, scenario.make_project

pytestmark = pytest.mark.django_db


@pytest.fixture
def host():
    return PinHost()


def tile_ids(page: str) -> list[str]:
    return re.findall(r'<li class="tile" data-asset-id="([^"]+)"', page)


def test_saved_search_watches_new_pins(host, make_project, add_asset, insider, outsider,
                                       api_for):
    board, pins = make_project(4)
    scope = host.scope(board)
    client = Client()
    client.force_login(insider)
    results = client.get(reverse("similarity:results", args=[pins[0].pk]))
    assert results.status_code == 200
    page = results.content.decode()
    assert 'data-testid="save-search"' in page and 'data-testid="threshold"' in page
    create = reverse("similarity:saved-search-create")
    assert create.startswith(PAGES_PREFIX)
    response = client.post(create, {"project_id": scope, "name": "look-alikes",
                                    "positive": str(pins[0].pk), "threshold": "-1"})
    assert response.status_code == 302, response.content[:500]
    search = SavedSearch.objects.get(owner=insider)
    assert search.positive_ids == [str(pins[0].pk)] and search.project_id == scope

    # an outsider can neither save on this board nor see the search
    other = Client()
    other.force_login(outsider)
    assert other.post(create, {"project_id": scope, "name": "mine",
                               "positive": str(pins[0].pk)}).status_code == 404
    for name in ("matches", "run"):
        assert other.get(reverse(f"similarity:saved-search-{name}",
                                 args=[search.pk])).status_code == 404
    assert other.post(reverse("similarity:saved-search-rename", args=[search.pk]),
                      {"name": "x"}).status_code == 404
    assert api_for(outsider).get(f"{API_PREFIX}saved-searches/{search.pk}/").status_code == 404

    new = [add_asset(board, f"{SECRET} new pin {i}") for i in range(2)]
    tasks.embed_project(scope)  # what the worker runs: check_new is called per batch
    note = Notification.objects.get(key__startswith="similarity-watch:")
    assert note.recipient == insider
    assert note.message == "2 new images look like “look-alikes”"
    assert set(SavedSearchMatch.objects.values_list("asset_id", flat=True)) == {
        str(pin.pk) for pin in new}
    assert note.url.startswith(PAGES_PREFIX)
    shown = client.get(note.url)
    assert shown.status_code == 200
    assert sorted(tile_ids(shown.content.decode())) == sorted(str(pin.pk) for pin in new)
    assert other.get(note.url).status_code == 404
    api = api_for(insider).get(f"{API_PREFIX}saved-searches/{search.pk}/matches/").json()
    assert sorted(str(row["asset"]["id"]) for row in api["results"]) == sorted(
        str(pin.pk) for pin in new)
