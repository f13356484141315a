"""Pages and API answers cost a constant number of queries, whatever the number of rows."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from similarity import tasks
from tests import factories

pytestmark = pytest.mark.django_db


def embedded(dataset, count, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        made = [factories.asset(dataset, f"{len(dataset.assets.all())}-{i}.png",
                                factories.pattern_image(i % 3, seed=i)) for i in range(count)]
    tasks.embed_project(dataset.project_id)
    return made


def queries(call) -> int:
    with CaptureQueriesContext(connection) as captured:
        response = call()
    assert response.status_code == 200
    return len(captured.captured_queries)


@pytest.mark.parametrize("route", ["api", "page"])
def test_similar_costs_the_same_for_5_or_25_results(web, api, dataset_a, route,
                                                    django_capture_on_commit_callbacks):
    first = embedded(dataset_a, 5, django_capture_on_commit_callbacks)[0]

    def call():
        if route == "api":
            return api.get(f"/api/assets/{first.pk}/similar/")
        return web.get(reverse("similarity:results", args=[first.pk]))

    call()  # warm the per-process vector cache
    few = queries(call)
    embedded(dataset_a, 20, django_capture_on_commit_callbacks)
    call()
    assert queries(call) == few


def test_dataset_page_costs_the_same_for_5_or_25_tiles(web, dataset_a,
                                                      django_capture_on_commit_callbacks):
    embedded(dataset_a, 5, django_capture_on_commit_callbacks)
    url = reverse("datasets:dataset", args=[dataset_a.pk])
    few = queries(lambda: web.get(url))
    embedded(dataset_a, 20, django_capture_on_commit_callbacks)
    assert queries(lambda: web.get(url)) == few
    assert few <= 15


def test_asset_list_api_costs_the_same_for_5_or_25(api, dataset_a,
                                                   django_capture_on_commit_callbacks):
    embedded(dataset_a, 5, django_capture_on_commit_callbacks)
    few = queries(lambda: api.get("/api/assets/"))
    embedded(dataset_a, 20, django_capture_on_commit_callbacks)
    assert queries(lambda: api.get("/api/assets/")) == few
