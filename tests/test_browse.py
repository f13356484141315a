"""Datasets pages: filename search, metadata query, keyset pagination, menus, CRUD."""

from __future__ import annotations

import pytest
from django.urls import reverse

from datasets.models import Asset, Dataset
from datasets.queries import QueryError, parse_metadata_query
from tests import factories

pytestmark = pytest.mark.django_db


@pytest.fixture
def assets(dataset_a):
    made = []
    for i, (camera, weather) in enumerate(
        [("front", "rain"), ("front", "sun"), ("side", "rain"), ("side", "sun")]
    ):
        made.append(factories.asset(
            dataset_a, f"cam_{camera}_{i}.png", factories.image_bytes(seed=i),
            metadata={"camera": camera, "weather": weather, "iso": 100 * (i + 1),
                      "lens": {"mm": 35 if i % 2 else 50}},
        ))
    return made


def grid_names(response) -> list[str]:
    return [a.original_filename for a in response.context["assets"]]


def test_filename_search(web, dataset_a, assets):
    url = reverse("datasets:dataset", args=[dataset_a.pk])
    assert sorted(grid_names(web.get(url, {"q": "FRONT"}))) == ["cam_front_0.png", "cam_front_1.png"]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("camera=front weather=rain", ["cam_front_0.png"]),
        ("weather=sun", ["cam_front_1.png", "cam_side_3.png"]),
        ("iso=300", ["cam_side_2.png"]),  # numbers match JSON numbers
        ("lens.mm=35", ["cam_front_1.png", "cam_side_3.png"]),
        ("camera=nowhere", []),
    ],
)
def test_metadata_query(web, dataset_a, assets, query, expected):
    url = reverse("datasets:dataset", args=[dataset_a.pk])
    assert sorted(grid_names(web.get(url, {"meta": query}))) == expected


def test_bad_metadata_query_says_how_to_fix_it(web, dataset_a, assets):
    response = web.get(reverse("datasets:dataset", args=[dataset_a.pk]), {"meta": "camera"})
    assert "key=value" in response.context["query_error"]
    with pytest.raises(QueryError):
        parse_metadata_query('camera="front')
    # a key without a value used to match nothing, silently (issue 24)
    response = web.get(reverse("datasets:dataset", args=[dataset_a.pk]), {"meta": "camera="})
    assert response.context["query_error"] == ("“camera=” has no value: metadata terms look "
                                               "like key=value (e.g. camera=front).")
    with pytest.raises(QueryError, match="empty part"):
        parse_metadata_query("lens..mm=35")


def test_keyset_pagination_walks_every_asset_once(web, dataset_a, settings):
    settings.DATASETS_PAGE_SIZE = 3
    made = [factories.asset(dataset_a, f"p{i}.png", factories.image_bytes(seed=i)) for i in range(8)]
    url = reverse("datasets:dataset", args=[dataset_a.pk])
    seen, response = [], web.get(url)
    pages = 0
    while True:
        pages += 1
        seen += grid_names(response)
        older = response.context["older_url"]
        if not older:
            break
        response = web.get(url + older)
    assert pages == 3
    assert seen == [a.original_filename for a in reversed(made)]
    # and back again
    newer = response.context["newer_url"]
    assert grid_names(web.get(url + newer)) == ["p4.png", "p3.png", "p2.png"]


def test_dataset_page_has_upload_area_menu_and_readiness(web, dataset_a, assets):
    html = web.get(reverse("datasets:dataset", args=[dataset_a.pk])).content.decode()
    assert "data-upload" in html and 'data-testid="readiness"' in html
    assert html.count("data-menu-button") >= len(assets)
    assert html.index("data-upload") < html.index('data-testid="readiness"')  # icon below upload
    for label in ("Open", "Download", "Delete"):
        assert f">{label}<" in html


def test_create_rename_delete_dataset(web, project_a):
    web.post(reverse("datasets:dataset-create", args=[project_a.pk]), {"name": "new"})
    dataset = Dataset.objects.get(project=project_a, name="new")
    web.post(reverse("datasets:dataset-rename", args=[dataset.pk]), {"name": "renamed"})
    dataset.refresh_from_db()
    assert dataset.name == "renamed"
    web.post(reverse("datasets:dataset-delete", args=[dataset.pk]))
    assert not Dataset.objects.filter(pk=dataset.pk).exists()


def test_duplicate_dataset_name_is_refused(web, project_a, dataset_a):
    response = web.post(reverse("datasets:dataset-create", args=[project_a.pk]),
                        {"name": dataset_a.name}, follow=True)
    assert "already has a dataset named" in response.content.decode()


def test_page_upload_reports_each_file(web, dataset_a):
    url = reverse("datasets:dataset-upload", args=[dataset_a.pk])
    response = web.post(
        url,
        {"files": [factories.upload("good.png", factories.image_bytes()),
                   factories.upload("bad.jpg", b"<html>")]},
        HTTP_ACCEPT="application/json",
    )
    assert response.status_code == 201
    results = response.json()["results"]
    assert results[0] == {"file": "good.png", "ok": True, "id": results[0]["id"], "kind": "image"}
    assert results[1]["ok"] is False and "not an image" in results[1]["error"]
    assert Asset.objects.count() == 1


def test_page_upload_count_cap(web, dataset_a, settings):
    settings.DATASETS_MAX_FILES_PER_REQUEST = 2
    files = [factories.upload(f"{i}.png", factories.image_bytes()) for i in range(3)]
    response = web.post(reverse("datasets:dataset-upload", args=[dataset_a.pk]), {"files": files},
                        HTTP_ACCEPT="application/json")
    assert response.status_code == 400
    assert "at most 2 files" in response.json()["error"]
    assert not Asset.objects.exists()


def test_files_are_served_with_nosniff_and_download_name(web, dataset_a):
    asset = factories.asset(dataset_a, "shot.png")
    response = web.get(reverse("datasets:asset-file", args=[asset.pk]) + "?download=1")
    assert response["Content-Type"] == "image/png"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert 'filename="shot.png"' in response["Content-Disposition"]


def test_filenames_are_escaped(web, dataset_a):
    factories.asset(dataset_a, "<img src=x onerror=alert(1)>.png")
    html = web.get(reverse("datasets:dataset", args=[dataset_a.pk])).content.decode()
    assert "<img src=x onerror" not in html
    assert "&lt;img src=x onerror=alert(1)&gt;.png" in html


def test_home_redirects_to_first_project(web, project_a):
    assert web.get("/")["Location"] == reverse("datasets:project", args=[project_a.pk])


def test_keyset_pages_know_newer_rows_within_the_filtered_set_only(project_a):
    """``has_newer`` once looked at every asset of the site: the first page of a dataset
    offered a "newer" link whenever any other dataset had newer uploads."""
    from datasets.models import Asset
    from datasets.views import page_of_assets

    mine, other = factories.dataset(project_a, "mine"), factories.dataset(project_a, "other")
    own = [factories.asset(mine, f"m{n}.png") for n in range(3)]
    factories.asset(other, "newer.png")  # newer than all of mine, in another dataset
    queryset = Asset.objects.filter(dataset=mine)
    # "older than a key above all of mine" is the first page of mine: nothing newer in it
    rows, has_older, has_newer = page_of_assets(queryset, str(own[-1].pk + 1000), None, 2)
    assert [a.pk for a in rows] == [own[2].pk, own[1].pk]
    assert (has_older, has_newer) == (True, False)
    rows, has_older, has_newer = page_of_assets(queryset, str(own[1].pk), None, 2)
    assert [a.pk for a in rows] == [own[0].pk] and (has_older, has_newer) == (False, True)
