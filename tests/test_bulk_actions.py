"""Bulk actions (issue 12, item 3): every action through the API and the page form.

Each action: success, an outsider gets 404, a viewer gets 403 on writes, one bad id
refuses the whole request, a failure part-way leaves nothing changed. Exports carry
scores equal to NumPy's cosine over the stored vectors; the ZIP is streamed.
"""

from __future__ import annotations

import csv
import io
import json
import uuid
import zipfile

import numpy as np
import pytest
from django.core.files.storage import default_storage
from django.http import StreamingHttpResponse
from django.urls import reverse
from rest_framework.test import APIClient

from datasets.models import Asset, ProjectMembership, Tag
from similarity import tasks
from similarity.actions import archive as zip_archive
from similarity.models import Embedding, QueryImage
from tests import factories

pytestmark = pytest.mark.django_db


@pytest.fixture
def images(dataset_a, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        made = [factories.asset(dataset_a, f"img{i}.png", factories.pattern_image(i % 3, seed=i))
                for i in range(6)]
    tasks.embed_project(dataset_a.project_id)
    return made


@pytest.fixture
def plain(dataset_a):
    """Six images, not embedded: for checks that never read a vector (faster)."""
    return [factories.asset(dataset_a, f"img{i}.png", factories.pattern_image(i % 3, seed=i))
            for i in range(6)]


@pytest.fixture
def viewer(project_a):
    user = factories.user("carol")
    ProjectMembership.objects.create(project=project_a, user=user, role="viewer")
    client = APIClient()
    client.force_authenticate(user)
    return client


@pytest.fixture
def outsider(bob):
    client = APIClient()
    client.force_authenticate(bob)
    return client


def url(project_id, name: str) -> str:
    return f"/api/projects/{project_id}/actions/{name}/"


def post(client, project_id, name, ids, params=None, query=None):
    body = {"ids": [a.pk for a in ids], "params": params or {}}
    if query is not None:
        body["query"] = query
    return client.post(url(project_id, name), body, format="json")


def unit(asset) -> np.ndarray:
    stored = Embedding.objects.get(asset=asset).vector
    vector = np.asarray(getattr(stored, "to_list", lambda: stored)(), dtype=np.float64)
    return vector / np.linalg.norm(vector)


def body_of(response) -> bytes:
    if getattr(response, "streaming", False):
        return b"".join(response.streaming_content)
    return response.content


# --- listing and the checks every action shares -------------------------------------------


def test_editors_see_every_action_and_viewers_only_the_reads(api, viewer, project_a):
    names = [a["name"] for a in api.get(f"/api/projects/{project_a.pk}/actions/").json()]
    assert names == ["tag", "copy", "move", "export-csv", "export-json", "download-zip", "delete"]
    seen = [a["name"] for a in viewer.get(f"/api/projects/{project_a.pk}/actions/").json()]
    assert seen == ["export-csv", "export-json", "download-zip"]


@pytest.mark.parametrize("name", ["tag", "copy", "move", "delete", "export-csv", "export-json",
                                  "download-zip"])
def test_outsiders_get_404_and_another_projects_asset_refuses_the_request(
        name, api, outsider, plain, dataset_a, dataset_b):
    images = plain
    project = dataset_a.project_id
    target = factories.dataset(dataset_a.project, "target")
    params = {"tag": "x", "dataset": target.pk}
    assert post(outsider, project, name, images[:2], params).status_code == 404
    other = factories.asset(dataset_b, "theirs.png")
    assert post(api, project, name, [images[0], other], params).status_code == 404
    assert api.post(url(project, name), {"ids": ["nope"], "params": params},
                    format="json").status_code == 404
    # nothing happened to the visible one either
    assert Asset.objects.filter(pk=images[0].pk, dataset=dataset_a).exists()
    assert not Tag.objects.exists()
    assert Asset.objects.count() == 7


@pytest.mark.parametrize("name", ["tag", "copy", "move", "delete"])
def test_viewers_get_403_on_writes(name, viewer, plain, dataset_a):
    images = plain
    target = factories.dataset(dataset_a.project, "target")
    response = post(viewer, dataset_a.project_id, name, images[:2],
                    {"tag": "x", "dataset": target.pk})
    assert response.status_code == 403
    assert Asset.objects.filter(dataset=dataset_a).count() == 6 and not Tag.objects.exists()


def test_unknown_action_is_404_and_bad_requests_say_why(api, plain, dataset_a):
    images = plain
    project = dataset_a.project_id
    assert post(api, project, "launch", images[:1]).status_code == 404
    empty = api.post(url(project, "tag"), {"ids": [], "params": {"tag": "x"}}, format="json")
    assert empty.status_code == 400 and "at least one" in empty.json()["detail"]
    shapeless = api.post(url(project, "tag"), [1, 2], format="json")
    assert shapeless.status_code == 400
    missing = post(api, project, "tag", images[:1], {})
    assert missing.status_code == 400 and "Tag is required" in missing.json()["detail"]
    other_project = factories.dataset(factories.project("C"), "elsewhere")
    wrong = post(api, project, "move", images[:1], {"dataset": other_project.pk})
    assert wrong.status_code == 400 and "dataset of this project" in wrong.json()["detail"]


# --- writes ------------------------------------------------------------------------------------


def test_tag_creates_the_projects_tag_once_and_counts_new_ones(api, images, dataset_a):
    project = dataset_a.project_id
    first = post(api, project, "tag", images[:3], {"tag": "cracked casing"})
    assert first.status_code == 200, first.content
    assert first.json() | {"message": ""} == {"action": "tag", "count": 3, "message": "",
                                              "tag": "cracked casing", "added": 3}
    again = post(api, project, "tag", images[1:5], {"tag": "cracked casing"}).json()
    assert again["added"] == 2
    tag = Tag.objects.get()
    assert tag.project_id == project
    assert set(tag.assets.values_list("pk", flat=True)) == {a.pk for a in images[:5]}


def test_copy_makes_new_assets_with_copied_files_that_the_worker_embeds(
        api, images, dataset_a, django_capture_on_commit_callbacks):
    target = factories.dataset(dataset_a.project, "review")
    with django_capture_on_commit_callbacks(execute=True):
        response = post(api, dataset_a.project_id, "copy", images[:2], {"dataset": target.pk})
    assert response.status_code == 200 and response.json()["count"] == 2
    copies = list(Asset.objects.filter(dataset=target).order_by("pk"))
    assert [c.original_filename for c in copies] == ["img0.png", "img1.png"]
    for source, copy in zip(images[:2], copies, strict=True):
        assert copy.file.name != source.file.name
        assert copy.file.read() == source.file.open("rb").read()
    assert set(Embedding.objects.filter(asset__in=copies).values_list("status", flat=True)) == {
        "pending"}
    tasks.embed_project(dataset_a.project_id)  # what the worker runs
    for source, copy in zip(images[:2], copies, strict=True):
        assert float(unit(source) @ unit(copy)) > 0.999  # same file, same vector
    assert Asset.objects.filter(dataset=dataset_a).count() == 6  # the originals stay


def test_move_changes_the_dataset_and_keeps_the_vectors(api, images, dataset_a):
    target = factories.dataset(dataset_a.project, "review")
    before = {a.pk: unit(a) for a in images[:3]}
    response = post(api, dataset_a.project_id, "move", images[:3], {"dataset": target.pk})
    assert response.status_code == 200 and response.json()["count"] == 3
    assert set(Asset.objects.filter(dataset=target).values_list("pk", flat=True)) == set(before)
    rows = Embedding.objects.filter(asset_id__in=before)
    assert {row.status for row in rows} == {"done"}
    assert {row.project_id for row in rows} == {str(dataset_a.project_id)}
    for pk, vector in before.items():
        assert np.allclose(unit(Asset.objects.get(pk=pk)), vector)


def test_delete_removes_rows_vectors_and_files_after_commit(
        api, images, dataset_a, django_capture_on_commit_callbacks):
    names = [a.file.name for a in images[:3]]
    with django_capture_on_commit_callbacks(execute=True):
        response = post(api, dataset_a.project_id, "delete", images[:3])
    assert response.status_code == 200 and response.json()["count"] == 3
    assert not Asset.objects.filter(pk__in=[a.pk for a in images[:3]]).exists()
    assert not Embedding.objects.filter(asset_id__in=[a.pk for a in images[:3]]).exists()
    assert not any(default_storage.exists(name) for name in names)
    assert Asset.objects.filter(dataset=dataset_a).count() == 3


# --- one transaction ---------------------------------------------------------------------------


def fail_on_second(monkeypatch, method: str):
    original = getattr(Asset, method)
    calls = []

    def flaky(self, *args, **kwargs):
        calls.append(self.pk)
        if len(calls) == 2:
            raise RuntimeError("disk full")
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Asset, method, flaky)
    return calls


def test_a_failed_move_moves_nothing(api, images, dataset_a, monkeypatch):
    target = factories.dataset(dataset_a.project, "review")
    calls = fail_on_second(monkeypatch, "save")
    with pytest.raises(RuntimeError):
        post(api, dataset_a.project_id, "move", images[:3], {"dataset": target.pk})
    assert len(calls) == 2
    assert Asset.objects.filter(dataset=dataset_a).count() == 6
    assert not Asset.objects.filter(dataset=target).exists()


def test_a_failed_delete_deletes_nothing_and_keeps_the_files(
        api, images, dataset_a, monkeypatch, django_capture_on_commit_callbacks):
    calls = fail_on_second(monkeypatch, "delete")
    with django_capture_on_commit_callbacks(execute=True), pytest.raises(RuntimeError):
        post(api, dataset_a.project_id, "delete", images[:3])
    assert len(calls) == 2
    assert Asset.objects.filter(dataset=dataset_a).count() == 6
    assert Embedding.objects.filter(asset__dataset=dataset_a, status="done").count() == 6
    assert all(default_storage.exists(a.file.name) for a in images)


def test_a_failed_copy_leaves_no_rows_and_no_files(api, images, dataset_a, monkeypatch):
    target = factories.dataset(dataset_a.project, "review")
    files_before = sorted(default_storage.listdir(f"assets/{dataset_a.pk}")[1])
    calls = fail_on_second(monkeypatch, "save")
    with pytest.raises(RuntimeError):
        post(api, dataset_a.project_id, "copy", images[:3], {"dataset": target.pk})
    assert len(calls) == 2
    assert not Asset.objects.filter(dataset=target).exists()
    folder = f"assets/{target.pk}"
    assert not default_storage.exists(folder) or not default_storage.listdir(folder)[1]
    assert sorted(default_storage.listdir(f"assets/{dataset_a.pk}")[1]) == files_before


def test_a_failed_tag_tags_nothing(api, images, dataset_a):
    from django.db.models.signals import m2m_changed

    def broken(action, **kwargs):
        if action == "pre_add":
            raise RuntimeError("lost connection")

    m2m_changed.connect(broken, sender=Tag.assets.through, dispatch_uid="test-broken-tag")
    try:
        with pytest.raises(RuntimeError):
            post(api, dataset_a.project_id, "tag", images[:2], {"tag": "never"})
    finally:
        m2m_changed.disconnect(sender=Tag.assets.through, dispatch_uid="test-broken-tag")
    assert not Tag.objects.exists()  # created first, rolled back with the rest


def test_a_tag_with_control_characters_is_a_400_not_a_database_error(api, images, dataset_a):
    response = post(api, dataset_a.project_id, "tag", images[:1], {"tag": "bad\x00tag"})
    assert response.status_code == 400
    assert "control characters" in response.json()["detail"]
    assert not Tag.objects.exists()


# --- exports and the ZIP -------------------------------------------------------------------------


def expected_scores(images, positives, negatives=()):
    query = np.mean([unit(a) for a in positives], axis=0)
    if negatives:
        query = query - 0.5 * np.mean([unit(a) for a in negatives], axis=0)
    query /= np.linalg.norm(query)
    return {a.pk: float(unit(a) @ query) for a in images}


def test_csv_has_the_columns_and_numpy_scores(api, viewer, images, dataset_a):
    chosen = images[2:6]
    query = {"positive": [images[0].pk, images[1].pk], "negative": [images[2].pk]}
    response = post(viewer, dataset_a.project_id, "export-csv", chosen, query=query)
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert response["Content-Disposition"].startswith("attachment;")
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert list(rows[0]) == ["id", "filename", "group", "score", "query"]
    assert [int(r["id"]) for r in rows] == [a.pk for a in chosen]
    assert [r["filename"] for r in rows] == [a.original_filename for a in chosen]
    assert {r["group"] for r in rows} == {"cams"}
    want = expected_scores(images, images[:2], images[2:3])
    for row in rows:
        assert abs(float(row["score"]) - want[int(row["id"])]) < 1e-4
        assert row["query"] == f"positive={images[0].pk},{images[1].pk} negative={images[2].pk}"


def test_json_has_the_same_rows_and_scores_against_an_outside_image(
        api, alice, bob, images, dataset_a):
    vector = np.random.default_rng(3).normal(size=unit(images[0]).shape[0])
    outside = QueryImage.objects.create(project_id=str(dataset_a.project_id), user=alice,
                                        name="probe.png", model_key=Embedding.objects.first()
                                        .model_key, vector=vector.tolist())
    response = post(api, dataset_a.project_id, "export-json", images,
                    query={"image": str(outside.pk)})
    assert response.status_code == 200
    body = json.loads(response.content)
    assert body["query"] == {"positive": [], "negative": [], "image": str(outside.pk)}
    assert [item["id"] for item in body["items"]] == [a.pk for a in images]
    assert set(body["items"][0]) == {"id", "filename", "group", "score", "query"}
    stored = QueryImage.objects.get(pk=outside.pk).vector
    stored = np.asarray(getattr(stored, "to_list", lambda: stored)(), dtype=np.float64)
    stored /= np.linalg.norm(stored)
    for item, asset in zip(body["items"], images, strict=True):
        assert abs(item["score"] - float(unit(asset) @ stored)) < 1e-4
    # with examples too, the image counts as one more example (as the image search does)
    mixed = {"image": str(outside.pk), "positive": [images[0].pk], "negative": [images[1].pk]}
    body = json.loads(post(api, dataset_a.project_id, "export-json", images[2:],
                           query=mixed).content)
    query = np.mean([stored, unit(images[0])], axis=0) - 0.5 * unit(images[1])
    query /= np.linalg.norm(query)
    for item, asset in zip(body["items"], images[2:], strict=True):
        assert abs(item["score"] - float(unit(asset) @ query)) < 1e-4
    assert body["items"][0]["query"] == (
        f"image={outside.pk} positive={images[0].pk} negative={images[1].pk}")
    # without a query: no scores, same rows
    plain = json.loads(post(api, dataset_a.project_id, "export-json", images[:2]).content)
    assert [item["score"] for item in plain["items"]] == [None, None]
    # someone else's query image, or a random one, is not found
    theirs = QueryImage.objects.create(project_id=str(dataset_a.project_id), user=bob,
                                       name="theirs.png", model_key="k", vector=vector.tolist())
    for image in (str(theirs.pk), str(uuid.uuid4()), "junk"):
        assert post(api, dataset_a.project_id, "export-json", images[:1],
                    query={"image": image}).status_code == 404


def test_export_cells_never_become_spreadsheet_formulas(api, dataset_a):
    asset = factories.asset(dataset_a, "=HYPERLINK(evil).png")
    response = post(api, dataset_a.project_id, "export-csv", [asset])
    row = next(csv.DictReader(io.StringIO(response.content.decode())))
    assert row["filename"].startswith("'=")


def test_zip_is_streamed_and_holds_the_original_bytes(viewer, images, dataset_a):
    duplicate = factories.asset(dataset_a, "img0.png", factories.pattern_image(1, seed=9))
    chosen = [*images[:3], duplicate]
    response = post(viewer, dataset_a.project_id, "download-zip", chosen)
    assert response.status_code == 200
    assert isinstance(response, StreamingHttpResponse)
    assert response["Content-Type"] == "application/zip"
    archive = zipfile.ZipFile(io.BytesIO(body_of(response)))
    assert archive.testzip() is None
    assert archive.namelist() == ["img0.png", "img1.png", "img2.png", "img0 (2).png"]
    for name, asset in zip(archive.namelist(), chosen, strict=True):
        assert archive.read(name) == asset.file.open("rb").read()


def test_stream_zip_never_holds_more_than_a_chunk(tmp_path):
    from django.core.files import File

    data = np.random.default_rng(0).bytes(3 * zip_archive.CHUNK + 123)
    path = tmp_path / "big.bin"
    path.write_bytes(data)

    class Source:
        def open(self, mode):
            return File(open(path, mode))

    chunks = list(zip_archive.stream_zip([("big.bin", Source()), ("note.txt", b"hello")]))
    assert max(len(chunk) for chunk in chunks) <= zip_archive.CHUNK + 1024
    assert sum(1 for chunk in chunks if chunk) >= 4
    archive = zipfile.ZipFile(io.BytesIO(b"".join(chunks)))
    assert archive.read("big.bin") == data and archive.read("note.txt") == b"hello"


# --- the page form -------------------------------------------------------------------------------


def test_page_form_tags_and_goes_back_with_a_message(web, images, dataset_a):
    back = reverse("datasets:dataset", args=[dataset_a.pk])
    response = web.post(reverse("similarity:action", args=[dataset_a.project_id, "tag"]),
                        {"ids": [images[0].pk, images[1].pk], "tag-tag": "blurry", "next": back},
                        follow=True)
    assert response.redirect_chain[-1][0] == back
    assert "Tagged 2 images" in response.content.decode()
    assert Tag.objects.get(name="blurry").assets.count() == 2


def test_tags_show_on_the_asset_page_and_filter_the_dataset_page(web, api, images, dataset_a):
    post(api, dataset_a.project_id, "tag", images[:2], {"tag": "night shift"})
    page = web.get(reverse("datasets:asset", args=[images[0].pk])).content.decode()
    assert "?tag=night%20shift" in page and ">night shift</a>" in page
    grid = web.get(reverse("datasets:dataset", args=[dataset_a.pk]), {"tag": "night shift"})
    shown = grid.content.decode()
    assert "2 files match" in shown
    assert {f'data-asset-id="{a.pk}"' in shown for a in images} == {True, False}
    assert sum(f'data-asset-id="{a.pk}"' in shown for a in images) == 2


def test_viewers_toolbar_offers_only_reads(client, viewer, images, dataset_a):
    from django.contrib.auth import get_user_model

    client.force_login(get_user_model().objects.get(username="carol"))
    for url in (reverse("similarity:results", args=[images[0].pk]),
                reverse("datasets:dataset", args=[dataset_a.pk])):
        page = client.get(url).content.decode()
        assert "Export CSV" in page and "Download ZIP" in page
        assert "Add a tag" not in page and "Delete…" not in page and "Move to dataset" not in page


def test_page_delete_without_confirmation_asks_first(web, images, dataset_a):
    action = reverse("similarity:action", args=[dataset_a.project_id, "delete"])
    ids = [a.pk for a in images[:3]]
    page = web.post(action, {"ids": ids, "next": "/"})
    assert page.status_code == 200 and "Delete 3 images?" in page.content.decode()
    assert Asset.objects.filter(pk__in=ids).count() == 3
    done = web.post(action, {"ids": ids, "next": "/", "confirm": "1"})
    assert done.status_code == 302 and not Asset.objects.filter(pk__in=ids).exists()


def test_page_toolbar_is_on_results_and_dataset_pages(web, images, dataset_a):
    results = web.get(reverse("similarity:results", args=[images[0].pk])).content.decode()
    assert 'data-select-toolbar' in results and 'name="query-positive-id"' in results
    assert "Add a tag" in results and "Delete…" in results  # alice edits the project
    assert f'value="{images[1].pk}" form="similarity-select"' in results
    grid = web.get(reverse("datasets:dataset", args=[dataset_a.pk])).content.decode()
    assert 'data-select-toolbar' in grid and "Move to dataset" in grid and "Delete" in grid


# --- a host site ---------------------------------------------------------------------------------


@pytest.mark.integration
def test_actions_on_a_uuid_host_with_per_asset_narrowing():
    from tests.hosts.runner import run_host_suite

    run_host_suite("tests.hosts.uuid_settings", "actions_uuid.py")


def test_a_query_of_more_than_100_examples_is_refused_with_the_cap(api, images, dataset_a):
    """The query an action scores against had no cap (a 2.5 MB form carried ~350k ids)."""
    many = [str(n) for n in range(1, 102)]
    response = post(api, dataset_a.project_id, "export-csv", images[:2],
                    query={"positive": many})
    assert response.status_code == 400
    assert "at most 100 examples" in response.json()["detail"]
    response = post(api, dataset_a.project_id, "export-csv", images[:2],
                    query={"positive": [str(images[0].pk)], "negative": many})
    assert response.status_code == 400
    ok = post(api, dataset_a.project_id, "export-csv", images[:2],
              query={"positive": [str(a.pk) for a in images[:3]]})
    assert ok.status_code == 200
