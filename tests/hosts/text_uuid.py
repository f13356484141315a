"""Text search on a host with UUID keys and per-asset narrowing (issue 22; run by
tests/test_text_search.py through run_host_suite under tests.hosts.uuid_settings).

The archive host hides restricted scans from members who are not superusers: they are
never a text search's result, and outsiders get 404 from the API and the page.
"""

from __future__ import annotations

import numpy as np
import pytest
from django.urls import reverse

from similarity import tasks
from similarity.models import Embedding
from similarity.testing import make_siglip_checkpoint
from similarity.vectors import model_keys, text_model
from tests.hosts import scenario
from tests.hosts.archive.models import Scan
from tests.hosts.profiles import ScanHost
from tests.hosts.scenario import API_PREFIX

add_asset, insider = scenario.add_asset, scenario.insider
make_project, outsider = scenario.make_project, scenario.outsider

pytestmark = pytest.mark.django_db


@pytest.fixture(scope="session")
def siglip_folder(tmp_path_factory):
    return make_siglip_checkpoint(tmp_path_factory.mktemp("siglip") / "tiny-siglip")


@pytest.fixture
def host(settings, siglip_folder):
    settings.SIMILARITY = {**settings.SIMILARITY, "TEXT_MODEL_NAME": str(siglip_folder),
                           "QUERY_EMBEDDING": "web"}
    yield ScanHost()
    text_model.forget_text_models()


def numpy_order(scope: str, text: str, order: str, hidden=()) -> list[str]:
    query = text_model.get_text_tower().embed_texts([text])[0].astype(np.float64)
    query /= np.linalg.norm(query)
    rows = Embedding.objects.filter(project_id=scope, model_key=model_keys.text_model_key(),
                                    status="done")
    scored = []
    for asset_id, vector in rows.values_list("asset_id", "vector"):
        if str(asset_id) in {str(pk) for pk in hidden}:
            continue
        values = vector.to_list() if hasattr(vector, "to_list") else vector
        unit = np.asarray(values, dtype=np.float64)
        scored.append((float(unit @ query / np.linalg.norm(unit)), str(asset_id)))
    scored.sort(key=lambda t: (-t[0], t[1]) if order == "most" else (t[0], t[1]))
    return [pk for _, pk in scored]


def test_text_search_ranks_like_numpy_and_hides_restricted_scans(
        host, make_project, insider, outsider, api_for):
    project, assets = make_project(8)
    scope = host.scope(project)
    assert Embedding.objects.filter(project_id=scope, model_key=model_keys.text_model_key(),
                                    status="done").count() == 8
    hidden = {assets[1].pk, assets[2].pk}
    Scan.objects.filter(pk__in=hidden).update(restricted=True)
    for order in ("most", "least"):
        body = api_for(insider).post(f"{API_PREFIX}projects/{scope}/similar/",
                                     {"text": "a dark round part", "order": order, "limit": 5},
                                     format="json").json()
        assert body["query"] == {"text": "a dark round part"}
        got = [str(item["asset"]["id"]) for item in body["results"]]
        assert got == numpy_order(scope, "a dark round part", order, hidden)[:5]
    assert api_for(outsider).post(f"{API_PREFIX}projects/{scope}/similar/", {"text": "part"},
                                  format="json").status_code == 404


def test_the_text_results_page_for_insiders_only(host, make_project, insider, outsider,
                                                 client):
    project, _assets = make_project(3)
    scope = host.scope(project)
    tasks.embed_project(scope)
    url = reverse("similarity:text-search", args=[scope]) + "?q=blue+stripes"
    client.force_login(insider)
    page = client.get(url)
    assert page.status_code == 200
    html = page.content.decode()
    assert "“blue stripes”" in html and html.count('data-asset-id="') == 3
    assert "text model" in html  # the legend says whose space the scores are in
    client.force_login(outsider)
    assert client.get(url).status_code == 404
