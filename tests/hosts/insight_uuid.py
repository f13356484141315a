"""Duplicates, Most unusual and the map on a host with UUID keys and per-asset narrowing
(run by tests/test_map.py through run_host_suite under tests.hosts.uuid_settings).

The archive host hides restricted scans from members who are not superusers: they never
appear in groups, rankings, the map or its thumbnails. Outsiders get 404 everywhere.
"""

from __future__ import annotations

import pytest
from django.urls import reverse

from similarity import insight_tasks
from tests.hosts import scenario
from tests.hosts.archive.models import Scan
from tests.hosts.profiles import ScanHost
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
    return ScanHost()


@pytest.fixture
def analysed(host, make_project):
    project, assets = make_project(5)
    outcomes = insight_tasks.run_until_done(host.scope(project))
    assert outcomes[-1]["rows"] == 5
    return project, assets


def test_pages_and_apis_answer_with_uuid_ids(host, analysed, insider, client, api_for):
    project, assets = analysed
    client.force_login(insider)
    for name in PAGES[:3]:
        response = client.get(reverse(f"similarity:{name}", args=[project.pk]))
        assert response.status_code == 200, name
    html = client.get(reverse("similarity:insight-outliers", args=[project.pk])).content.decode()
    assert all(f'data-asset-id="{asset.pk}"' in html for asset in assets)
    api = api_for(insider)
    for name in APIS:
        assert api.get(f"{API_PREFIX}projects/{project.pk}/{name}/").status_code == 200, name
    data = api.get(f"{API_PREFIX}projects/{project.pk}/map/").json()
    assert sorted(data["ids"]) == sorted(str(asset.pk) for asset in assets)
    assert data["groups"] == [] and set(data["group"]) == {-1}  # no group relation here
    ranked = api.get(f"{API_PREFIX}projects/{project.pk}/outliers/").json()["results"]
    assert {item["asset"]["id"] for item in ranked} == {str(asset.pk) for asset in assets}
    thumbs = client.get(reverse("similarity:insight-map-thumbs", args=[project.pk]),
                        {"ids": ",".join(str(a.pk) for a in assets[:2])}).json()
    assert {t["id"] for t in thumbs["thumbnails"]} == {str(a.pk) for a in assets[:2]}


def test_restricted_scans_are_hidden_everywhere(host, analysed, insider, client, api_for):
    project, assets = analysed
    hidden = assets[0]
    Scan.objects.filter(pk=hidden.pk).update(restricted=True)
    api = api_for(insider)
    data = api.get(f"{API_PREFIX}projects/{project.pk}/map/").json()
    assert data["count"] == 4 and str(hidden.pk) not in data["ids"]
    ranked = api.get(f"{API_PREFIX}projects/{project.pk}/outliers/").json()
    assert ranked["count"] == 4
    assert str(hidden.pk) not in {item["asset"]["id"] for item in ranked["results"]}
    groups = api.get(f"{API_PREFIX}projects/{project.pk}/duplicates/",
                     {"threshold": 0.5}).json()["results"]
    assert str(hidden.pk) not in {i["asset"]["id"] for g in groups for i in g["assets"]}
    client.force_login(insider)
    thumbs = client.get(reverse("similarity:insight-map-thumbs", args=[project.pk]),
                        {"ids": str(hidden.pk)}).json()
    assert thumbs["thumbnails"] == []


def test_outsiders_get_404(host, analysed, outsider, client, api_for):
    project, _assets = analysed
    client.force_login(outsider)
    for name in PAGES:
        assert client.get(reverse(f"similarity:{name}", args=[project.pk])).status_code == 404
    api = api_for(outsider)
    for name in APIS:
        assert api.get(f"{API_PREFIX}projects/{project.pk}/{name}/").status_code == 404


def test_diverse_picks_with_uuid_ids_and_restricted_scans(host, analysed, insider, outsider,
                                                          client, api_for):
    """Curation on a host with UUID keys and no dataset relation: the whole project or a
    selection of ids; restricted scans are never picked; leakage and coverage need two
    datasets, which this host has not, and say so."""
    project, assets = analysed
    Scan.objects.filter(pk=assets[0].pk).update(restricted=True)
    api = api_for(insider)
    url = f"{API_PREFIX}projects/{project.pk}/diverse/"
    answer = api.post(url, {"count": 10}, format="json")
    assert answer.status_code == 200, answer.content
    picked = [item["asset"]["id"] for item in answer.json()["results"]]
    assert sorted(picked) == sorted(str(a.pk) for a in assets[1:])  # all 4 visible, once
    chosen = [str(a.pk) for a in assets[:3]]
    some = api.post(url, {"count": 10, "ids": chosen}, format="json").json()
    assert sorted(i["asset"]["id"] for i in some["results"]) == sorted(chosen[1:])
    assert api.post(url, {"count": 3, "ids": ["not-a-uuid"]}, format="json").status_code == 400
    assert api.get(f"{API_PREFIX}projects/{project.pk}/leakage/",
                   {"a": "x", "b": "y"}).status_code == 400
    client.force_login(insider)
    page = client.get(reverse("similarity:curate-diverse", args=[project.pk]), {"count": 3})
    assert page.status_code == 200 and page.content.decode().count('<li class="tile') == 3
    leak = client.get(reverse("similarity:insight-leakage", args=[project.pk]))
    assert "does not have two yet" in leak.content.decode()
    assert api_for(outsider).post(url, {"count": 3}, format="json").status_code == 404
