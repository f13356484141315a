"""Bulk actions on a host with UUID keys and per-asset narrowing (run by
tests/test_bulk_actions.py through run_host_suite under tests.hosts.uuid_settings).

The archive host hides restricted scans from members who are not superusers: an action
naming one of them is a 404 for the whole request, exactly as a search never shows it.
"""

from __future__ import annotations

import csv
import io
import json
import zipfile

import numpy as np
import pytest
from django.contrib.auth import get_user_model
from django.http import StreamingHttpResponse
from django.urls import reverse

from similarity.models import Embedding
from tests.hosts import scenario
from tests.hosts.archive.models import Scan
from tests.hosts.profiles import ScanHost
from tests.hosts.scenario import API_PREFIX, stored_unit_vectors

# the shared scenario's fixtures (not its tests: only this file's run here)
add_asset, insider = scenario.add_asset, scenario.insider
make_project, outsider = scenario.make_project, scenario.outsider

pytestmark = pytest.mark.django_db


@pytest.fixture
def host():
    return ScanHost()


def action(client, project, name, assets, query=None):
    body = {"ids": [str(a.pk) for a in assets], "params": {}}
    if query is not None:
        body["query"] = query
    return client.post(f"{API_PREFIX}projects/{project.pk}/actions/{name}/", body, format="json")


def test_results_page_has_the_toolbar_with_uuid_checkboxes(host, make_project, insider, client):
    _project, assets = make_project(4)
    client.force_login(insider)
    page = client.get(reverse("similarity:results", args=[assets[0].pk])).content.decode()
    assert "data-select-toolbar" in page and "Find similar to selection" in page
    for asset in assets:
        assert f'name="ids" value="{asset.pk}" form="similarity-select"' in page
    for label in ("Export CSV", "Export JSON", "Download ZIP", "Delete"):
        assert label in page
    assert "Add a tag" not in page  # a host action this host did not name
    assert f'name="query-positive-id" value="{assets[0].pk}"' in page


def test_exports_score_like_numpy_with_uuid_ids(host, make_project, insider, api_for):
    project, assets = make_project(6)
    query = {"positive": [str(assets[0].pk), str(assets[1].pk)], "negative": [str(assets[2].pk)]}
    response = action(api_for(insider), project, "export-csv", assets[3:], query)
    assert response.status_code == 200, response.content
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert list(rows[0]) == ["id", "filename", "group", "score", "query"]
    assert [row["id"] for row in rows] == [str(a.pk) for a in assets[3:]]
    assert {row["group"] for row in rows} == {project.name}
    ids, matrix = stored_unit_vectors(str(project.pk))
    vector = matrix[[ids.index(a.pk) for a in assets[:2]]].mean(axis=0)
    vector = vector - 0.5 * matrix[ids.index(assets[2].pk)]
    vector /= np.linalg.norm(vector)
    for row in rows:
        expected = float(matrix[ids.index(Scan.objects.get(pk=row["id"]).pk)] @ vector)
        assert abs(float(row["score"]) - expected) < 1e-4
    body = json.loads(action(api_for(insider), project, "export-json", assets[3:], query).content)
    assert [item["id"] for item in body["items"]] == [str(a.pk) for a in assets[3:]]


def test_per_asset_narrowing_refuses_hidden_scans(host, make_project, insider, api_for):
    project, assets = make_project(4)
    hidden = assets[1]
    Scan.objects.filter(pk=hidden.pk).update(restricted=True)
    client = api_for(insider)
    for name in ("export-csv", "download-zip", "delete"):
        assert action(client, project, name, [assets[0], hidden]).status_code == 404
    # a hidden scan as the query is refused too
    assert action(client, project, "export-csv", [assets[0]],
                  {"positive": [str(hidden.pk)]}).status_code == 404
    assert Scan.objects.count() == 4
    root = get_user_model().objects.create_superuser("root", password="pw")
    project.members.add(root)
    assert action(api_for(root), project, "export-csv", [assets[0], hidden]).status_code == 200


def test_zip_is_streamed_with_the_original_bytes(host, make_project, insider, api_for):
    project, assets = make_project(3)
    response = action(api_for(insider), project, "download-zip", assets)
    assert response.status_code == 200 and isinstance(response, StreamingHttpResponse)
    archive = zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content)))
    assert len(archive.namelist()) == 3
    for name, asset in zip(archive.namelist(), assets, strict=True):
        assert name.endswith(".png")
        assert archive.read(name) == asset.scan.open("rb").read()


def test_delete_and_outsiders(host, make_project, insider, outsider, api_for):
    project, assets = make_project(4)
    assert action(api_for(outsider), project, "delete", assets[:2]).status_code == 404
    assert action(api_for(outsider), project, "export-csv", assets[:2]).status_code == 404
    response = action(api_for(insider), project, "delete", assets[:2])
    assert response.status_code == 200 and response.json()["count"] == 2
    assert not Scan.objects.filter(pk__in=[a.pk for a in assets[:2]]).exists()
    assert not Embedding.objects.filter(asset_id__in=[a.pk for a in assets[:2]]).exists()
    assert Scan.objects.count() == 2


@pytest.mark.parametrize("who", ["anonymous", "outsider"])
def test_action_urls_show_outsiders_nothing(host, make_project, outsider, api_for, client, who):
    project, assets = make_project(2)
    ids = [str(a.pk) for a in assets]
    user = outsider if who == "outsider" else None
    if user is not None:
        client.force_login(user)
    api = api_for(user)
    page_urls = [reverse("similarity:action", args=[str(project.pk), name])
                 for name in ("export-csv", "download-zip", "delete")]
    api_urls = [f"{API_PREFIX}projects/{project.pk}/actions/",
                *(f"{API_PREFIX}projects/{project.pk}/actions/{name}/"
                  for name in ("export-csv", "download-zip", "delete"))]
    for url in page_urls:
        for response in (client.get(url), client.post(url, {"ids": ids, "confirm": "1"})):
            if who == "anonymous":
                assert response.status_code == 302 and "/login/" in response["Location"]
            else:
                assert response.status_code in (404, 405), (url, response.status_code)
            assert scenario.SECRET not in response.content.decode()
    for url in api_urls:
        for response in (api.get(url), api.post(url, {"ids": ids}, format="json")):
            allowed = (401, 403) if who == "anonymous" else (404, 405)
            assert response.status_code in allowed, (url, response.status_code)
            assert scenario.SECRET not in response.content.decode()
    assert Scan.objects.filter(pk__in=ids).count() == 2
