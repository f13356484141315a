"""A member of project A sees nothing of project B: every page and API route answers 404."""

from __future__ import annotations

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from datasets.models import Asset, Dataset
from tests import factories

pytestmark = pytest.mark.django_db


@pytest.fixture
def b_objects(dataset_b):
    asset = factories.asset(dataset_b, "secret.png")
    return dataset_b.project, dataset_b, asset


def page_urls(project, dataset, asset):
    return [
        ("get", reverse("datasets:project", args=[project.pk])),
        ("get", reverse("datasets:dataset", args=[dataset.pk])),
        ("get", reverse("datasets:asset", args=[asset.pk])),
        ("get", reverse("datasets:asset-file", args=[asset.pk])),
        ("get", reverse("datasets:asset-thumbnail", args=[asset.pk])),
        ("post", reverse("datasets:dataset-create", args=[project.pk])),
        ("post", reverse("datasets:dataset-rename", args=[dataset.pk])),
        ("post", reverse("datasets:dataset-delete", args=[dataset.pk])),
        ("post", reverse("datasets:dataset-upload", args=[dataset.pk])),
        ("post", reverse("datasets:asset-delete", args=[asset.pk])),
        ("get", reverse("similarity:results", args=[asset.pk])),
        ("get", reverse("similarity:readiness", args=[project.pk])),
        ("get", reverse("similarity:failed", args=[project.pk])),
        ("post", reverse("similarity:reindex", args=[project.pk])),
    ]


def api_urls(project, dataset, asset):
    return [
        ("get", f"/api/projects/{project.pk}/"),
        ("get", f"/api/datasets/{dataset.pk}/"),
        ("patch", f"/api/datasets/{dataset.pk}/"),
        ("delete", f"/api/datasets/{dataset.pk}/"),
        ("get", f"/api/assets/{asset.pk}/"),
        ("patch", f"/api/assets/{asset.pk}/"),
        ("delete", f"/api/assets/{asset.pk}/"),
        ("get", f"/api/assets/{asset.pk}/similar/"),
        ("get", f"/api/projects/{project.pk}/similarity/"),
        ("post", f"/api/projects/{project.pk}/similarity/reindex/"),
    ]


def test_other_projects_pages_answer_404(web, b_objects):
    for method, url in page_urls(*b_objects):
        response = getattr(web, method)(url, {"name": "x"} if method == "post" else None)
        assert response.status_code == 404, (method, url, response.status_code)
    assert Dataset.objects.filter(pk=b_objects[1].pk).exists()
    assert Asset.objects.filter(pk=b_objects[2].pk).exists()


def test_other_projects_api_routes_answer_404(api, b_objects):
    for method, url in api_urls(*b_objects):
        response = getattr(api, method)(url, {"name": "x"}, format="json")
        assert response.status_code == 404, (method, url, response.status_code)
    assert Dataset.objects.get(pk=b_objects[1].pk).name == "other"


def test_lists_contain_only_own_projects(api, dataset_a, b_objects):
    factories.asset(dataset_a, "mine.png")
    assert [p["id"] for p in api.get("/api/projects/").json()["results"]] == [dataset_a.project_id]
    assert [d["id"] for d in api.get("/api/datasets/").json()["results"]] == [dataset_a.pk]
    names = [a["original_filename"] for a in api.get("/api/assets/").json()["results"]]
    assert names == ["mine.png"]
    # Filtering by the other project's dataset id yields nothing, not its assets.
    assert api.get(f"/api/assets/?dataset={b_objects[1].pk}").json()["results"] == []


def test_writes_naming_another_projects_dataset_are_refused(api, b_objects):
    response = api.post(
        "/api/assets/",
        {"dataset": b_objects[1].pk, "file": factories.upload("x.png", factories.image_bytes())},
        format="multipart",
    )
    assert response.status_code == 400
    assert "dataset" in response.json()
    response = api.post("/api/datasets/", {"project": b_objects[0].pk, "name": "sneaky"})
    assert response.status_code == 400
    assert Asset.objects.count() == 1


def test_anonymous_gets_login_redirect_and_401(client, b_objects):
    for method, url in page_urls(*b_objects):
        response = getattr(client, method)(url)
        assert response.status_code == 302 and "/accounts/login/" in response["Location"], url
    anonymous = APIClient()
    for method, url in api_urls(*b_objects):
        assert getattr(anonymous, method)(url).status_code in (401, 403), url


def test_viewer_cannot_upload_delete_or_reindex(client, dataset_a, alice):
    viewer = factories.user("viewer")
    dataset_a.project.memberships.create(user=viewer, role="viewer")
    asset = factories.asset(dataset_a, "a.png")
    client.force_login(viewer)
    assert client.get(reverse("datasets:dataset", args=[dataset_a.pk])).status_code == 200
    upload = factories.upload("b.png", factories.image_bytes())
    assert client.post(reverse("datasets:dataset-upload", args=[dataset_a.pk]),
                       {"files": upload}).status_code == 403
    assert client.post(reverse("datasets:asset-delete", args=[asset.pk])).status_code == 403
    assert client.post(reverse("similarity:reindex", args=[dataset_a.project_id])).status_code == 403
    api = APIClient()
    api.force_authenticate(viewer)
    assert api.delete(f"/api/assets/{asset.pk}/").status_code == 403
    assert api.post(f"/api/projects/{dataset_a.project_id}/similarity/reindex/").status_code == 403
    response = api.post("/api/assets/", {"dataset": dataset_a.pk, "file": factories.upload(
        "c.png", factories.image_bytes())}, format="multipart")
    assert response.status_code == 400  # the dataset is not a valid target for a viewer
    assert Asset.objects.count() == 1


def test_api_denies_by_default_even_if_host_allows_any(settings, b_objects):
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.AllowAny"],
    }
    anonymous = APIClient()
    assert anonymous.get("/api/assets/").status_code in (401, 403)
    assert anonymous.get(f"/api/assets/{b_objects[2].pk}/similar/").status_code in (401, 403)
    assert anonymous.get("/api/notifications/").status_code in (401, 403)
