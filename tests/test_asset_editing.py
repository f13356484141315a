"""The asset page and the API edit an image's metadata and tags (issue 24, item 7)."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from datasets.models import ProjectMembership, Tag
from tests import factories

pytestmark = pytest.mark.django_db


@pytest.fixture
def asset(dataset_a, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        made = factories.asset(dataset_a, "shot.png", metadata={"camera": "front", "iso": 200})
    tag = Tag.objects.create(project=dataset_a.project, name="blurry")
    tag.assets.add(made)
    return made


def test_the_page_edits_metadata_rows_keeping_unchanged_types(web, asset):
    page = web.get(reverse("datasets:asset", args=[asset.pk])).content.decode()
    assert 'data-testid="metadata-form"' in page and 'value="front"' in page
    response = web.post(reverse("datasets:asset-metadata", args=[asset.pk]), {
        "key": ["camera", "iso", "", "weather", ""],
        "value": ["side", "200", "", "rain", ""],
    })
    assert response.status_code == 302
    asset.refresh_from_db()
    assert asset.metadata == {"camera": "side", "iso": 200, "weather": "rain"}  # 200 stays a number
    # a cleared row removes its key
    web.post(reverse("datasets:asset-metadata", args=[asset.pk]),
             {"key": ["camera", ""], "value": ["side", ""]})
    asset.refresh_from_db()
    assert asset.metadata == {"camera": "side"}


def test_nested_metadata_survives_an_edit_of_another_row(web, asset):
    asset.metadata = {"camera": "front", "lens": {"mm": 50}}
    asset.save()
    page = web.get(reverse("datasets:asset", args=[asset.pk])).content.decode()
    assert 'value="{&quot;mm&quot;: 50}"' in page  # shown as JSON
    web.post(reverse("datasets:asset-metadata", args=[asset.pk]),
             {"key": ["camera", "lens"], "value": ["side", '{"mm": 50}']})
    asset.refresh_from_db()
    assert asset.metadata == {"camera": "side", "lens": {"mm": 50}}


@pytest.mark.parametrize("keys, values, words", [
    (["camera", "camera"], ["a", "b"], "Row 2: the key “camera” is already used above."),
    (["", "lens"], ["orphan", "wide"], "Row 1: the value “orphan” needs a key."),
    (["k" * 101], ["v"], "Row 1: the key is longer than 100 characters."),
    (["note"], ["x" * 2001], "Row 1: the value is longer than 2000 characters."),
])
def test_a_refused_edit_keeps_what_was_typed_and_names_the_row(web, asset, keys, values, words):
    response = web.post(reverse("datasets:asset-metadata", args=[asset.pk]),
                        {"key": keys, "value": values})
    assert response.status_code == 400
    body = response.content.decode()
    assert words in body and f'value="{keys[-1]}"' in body
    asset.refresh_from_db()
    assert asset.metadata == {"camera": "front", "iso": 200}  # nothing half-written


def test_tags_are_removed_and_added_on_the_page(web, asset):
    page = web.get(reverse("datasets:asset", args=[asset.pk])).content.decode()
    assert 'aria-label="Remove the tag blurry"' in page
    web.post(reverse("datasets:asset-tag", args=[asset.pk]), {"remove": "blurry"})
    assert list(asset.tags.values_list("name", flat=True)) == []
    assert Tag.objects.filter(name="blurry").exists()  # the project's tag stays
    web.post(reverse("datasets:asset-tag", args=[asset.pk]), {"add": "  night  "})
    assert list(asset.tags.values_list("name", flat=True)) == ["night"]
    response = web.post(reverse("datasets:asset-tag", args=[asset.pk]), {"add": "   "}, follow=True)
    assert "shot.png: A tag cannot be empty." in response.content.decode()


def test_viewers_see_but_cannot_edit(asset, dataset_a):
    viewer = factories.user("viewer-edit")
    ProjectMembership.objects.create(project=dataset_a.project, user=viewer, role="viewer")
    client = Client()
    client.force_login(viewer)
    page = client.get(reverse("datasets:asset", args=[asset.pk])).content.decode()
    assert 'data-testid="metadata-form"' not in page and "Remove the tag" not in page
    assert "&quot;camera&quot;: &quot;front&quot;" in page  # read-only, as JSON
    assert client.post(reverse("datasets:asset-metadata", args=[asset.pk]),
                       {"key": ["x"], "value": ["y"]}).status_code == 403
    assert client.post(reverse("datasets:asset-tag", args=[asset.pk]),
                       {"remove": "blurry"}).status_code == 403
    assert asset.tags.count() == 1


def test_the_api_reads_and_replaces_tags_and_validates_metadata(api, asset, bob):
    url = f"/api/assets/{asset.pk}/"
    assert api.get(url).json()["tags"] == ["blurry"]
    response = api.patch(url, {"tags": ["night", "night", " rain "],
                               "metadata": {"camera": "side"}}, format="json")
    assert response.status_code == 200, response.content
    assert sorted(response.json()["tags"]) == ["night", "rain"]
    asset.refresh_from_db()
    assert asset.metadata == {"camera": "side"}
    assert sorted(asset.tags.values_list("name", flat=True)) == ["night", "rain"]
    nested = api.patch(url, {"metadata": {"lens": {"mm": 50}}}, format="json")
    assert nested.status_code == 200 and nested.json()["metadata"] == {"lens": {"mm": 50}}
    for bad, words in (({"metadata": {"a": "x" * 2001}}, "longer than 2000"),
                       ({"metadata": {"": 1}}, "the key is empty"),
                       ({"metadata": []}, "JSON object"),
                       ({"tags": [""]}, "may not be blank")):
        refused = api.patch(url, bad, format="json")
        assert refused.status_code == 400 and words in str(refused.json()), refused.json()
    listed = api.get("/api/assets/", {"dataset": asset.dataset_id}).json()
    assert sorted(listed["results"][0]["tags"]) == ["night", "rain"]
    from rest_framework.test import APIClient

    outsider = APIClient()
    outsider.force_authenticate(bob)
    assert outsider.patch(url, {"tags": []}, format="json").status_code == 404
