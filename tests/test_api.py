"""REST API: token auth, upload, filters, schema."""

from __future__ import annotations

import json

import pytest
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from datasets.models import Asset
from tests import factories

pytestmark = pytest.mark.django_db


def test_token_auth_and_multipart_upload(alice, dataset_a):
    token = Token.objects.create(user=alice)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    response = client.post(
        "/api/assets/",
        {"dataset": dataset_a.pk, "file": factories.upload("a.jpg", factories.image_bytes("JPEG")),
         "metadata": json.dumps({"camera": "front"})},
        format="multipart",
    )
    assert response.status_code == 201, response.content
    body = response.json()
    asset = Asset.objects.get(pk=body["id"])
    assert asset.metadata == {"camera": "front"}
    assert body["kind"] == "image" and body["project"] == dataset_a.project_id
    download = client.get(body["file_url"])
    assert download.status_code == 200 and download["X-Content-Type-Options"] == "nosniff"
    assert b"".join(download.streaming_content)[:2] == b"\xff\xd8"


def test_one_file_per_api_request(api, dataset_a):
    files = [factories.upload(f"{i}.png", factories.image_bytes(seed=i)) for i in range(2)]
    response = api.post("/api/assets/", {"dataset": dataset_a.pk, "file": files}, format="multipart")
    assert response.status_code == 400 and "one file per request" in response.json()["file"]
    assert not Asset.objects.exists()


def test_upload_rejection_names_the_file(api, dataset_a):
    response = api.post("/api/assets/", {"dataset": dataset_a.pk,
                                         "file": factories.upload("evil.jpg", b"<html>")},
                        format="multipart")
    assert response.status_code == 400
    assert response.json()["file"][0].startswith("evil.jpg: ")
    assert not Asset.objects.exists()


def test_list_filters(api, dataset_a, project_a):
    other = factories.dataset(project_a, "second")
    factories.asset(dataset_a, "front_1.png", metadata={"camera": "front", "note": "a b"})
    factories.asset(dataset_a, "side_1.png", metadata={"camera": "side"})
    factories.asset(other, "front_2.png", metadata={"camera": "front"})

    def names(query):
        return sorted(a["original_filename"] for a in api.get(f"/api/assets/?{query}").json()["results"])

    assert names(f"dataset={dataset_a.pk}") == ["front_1.png", "side_1.png"]
    assert names("search=front") == ["front_1.png", "front_2.png"]
    assert names("metadata=camera:front") == ["front_1.png", "front_2.png"]
    assert names(f"metadata=camera:front&dataset={other.pk}") == ["front_2.png"]
    assert names("metadata=note:a b") == ["front_1.png"]
    assert api.get("/api/assets/?dataset=abc").status_code == 400
    assert api.get("/api/assets/?metadata=nocolon").status_code == 400


def test_dataset_crud_for_editors(api, project_a):
    response = api.post("/api/datasets/", {"project": project_a.pk, "name": "fresh"})
    assert response.status_code == 201
    pk = response.json()["id"]
    assert api.patch(f"/api/datasets/{pk}/", {"name": "renamed"}).json()["name"] == "renamed"
    assert api.post("/api/datasets/", {"project": project_a.pk, "name": "renamed"}).status_code == 400
    assert api.delete(f"/api/datasets/{pk}/").status_code == 204


def test_metadata_patch(api, dataset_a):
    asset = factories.asset(dataset_a, "a.png")
    response = api.patch(f"/api/assets/{asset.pk}/", {"metadata": {"k": "v"}}, format="json")
    assert response.status_code == 200
    asset.refresh_from_db()
    assert asset.metadata == {"k": "v"}
    assert api.patch(f"/api/assets/{asset.pk}/", {"metadata": [1]}, format="json").status_code == 400


def test_schema_and_docs(api):
    schema = api.get("/api/schema/?format=json")
    assert schema.status_code == 200
    paths = json.loads(schema.content)["paths"]
    for path in ("/api/assets/", "/api/assets/{asset_id}/similar/",
                 "/api/projects/{project_id}/similarity/", "/api/notifications/"):
        assert path in paths
    assert api.get("/api/docs/").status_code == 200


def test_page_size_is_capped_with_more_rows_than_the_cap(api, dataset_a):
    """?limit= asks for a million: the page holds exactly the cap (200), the count all 250."""
    from similarity.models import Notification

    scope = str(dataset_a.project_id)
    Notification.objects.bulk_create(
        [Notification(project_id=scope, message=f"note {i}") for i in range(250)])
    Asset.objects.bulk_create(
        [Asset(dataset=dataset_a, file=f"synthetic/{i}.png", original_filename=f"{i}.png",
               kind="image", content_type="image/png") for i in range(250)])
    for url in ("/api/notifications/", "/api/assets/"):
        body = api.get(f"{url}?limit=1000000").json()
        assert (len(body["results"]), body["count"]) == (200, 250), url
        assert body["next"] is not None
        assert len(api.get(url).json()["results"]) == 50  # the default page


def test_a_nul_character_in_the_asset_filters_is_a_400_not_a_500(api, dataset_a):
    """Found by schemathesis' negative generation (PostgreSQL text cannot hold NUL)."""
    for params in ({"search": "a\x00b"}, {"metadata": "camera:\x00"}):
        response = api.get("/api/assets/", params)
        assert response.status_code == 400, (params, response.content[:200])
        assert set(response.json()) == set(params)
