"""Duplicates, Most unusual and the map on a host with slug-like string keys (pins on
boards; run by tests/test_map.py through run_host_suite under tests.hosts.char_settings).
"""

from __future__ import annotations

import pytest
from django.urls import reverse

from similarity import insight_tasks
from tests.hosts import scenario
from tests.hosts.profiles import PinHost
from tests.hosts.scenario import API_PREFIX

# the shared scenario's fixtures (not its tests: only this file's run here)
add_asset, insider = scenario.add_asset, scenario.insider
make_project, outsider = scenario.make_project, scenario.outsider

pytestmark = pytest.mark.django_db

PAGES = ("insight-duplicates", "insight-outliers", "insight-map", "insight-map-data",
         "insight-map-thumbs")
APIS = ("duplicates", "outliers", "map")


@pytest.fixture
def host():
    return PinHost()


def test_pages_apis_and_outsiders_with_string_keys(host, make_project, insider, outsider,
                                                   client, api_for):
    project, assets = make_project(4)
    assert insight_tasks.run_until_done(host.scope(project))[-1]["rows"] == 4
    client.force_login(insider)
    for name in PAGES:
        assert client.get(reverse(f"similarity:{name}", args=[project.pk])).status_code == 200
    data = api_for(insider).get(f"{API_PREFIX}projects/{project.pk}/map/").json()
    assert sorted(data["ids"]) == sorted(asset.pk for asset in assets)
    for name in APIS:
        assert api_for(insider).get(
            f"{API_PREFIX}projects/{project.pk}/{name}/").status_code == 200
    client.force_login(outsider)
    for name in PAGES:
        assert client.get(reverse(f"similarity:{name}", args=[project.pk])).status_code == 404
    for name in APIS:
        assert api_for(outsider).get(
            f"{API_PREFIX}projects/{project.pk}/{name}/").status_code == 404


def test_diverse_picks_with_string_keys(host, make_project, insider, outsider, client, api_for):
    project, assets = make_project(4)
    keys = [asset.pk for asset in assets]
    api = api_for(insider)
    url = f"{API_PREFIX}projects/{project.pk}/diverse/"
    answer = api.post(url, {"count": 3, "ids": keys[:3]}, format="json")
    assert answer.status_code == 200, answer.content
    assert sorted(i["asset"]["id"] for i in answer.json()["results"]) == sorted(keys[:3])
    client.force_login(insider)
    # a key with a NUL names no image (PostgreSQL refuses NUL in text): it is left out
    page = client.get(reverse("similarity:curate-diverse", args=[project.pk]),
                      {"id": [keys[0], keys[1], "bad\x00key"], "count": 5})
    assert page.status_code == 200 and page.content.decode().count('<li class="tile') == 2
    assert api_for(outsider).post(url, {"count": 3}, format="json").status_code == 404
