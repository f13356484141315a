"""Searching a project with an outside image (issue 12, items 1 and 5): the page flow, the
API, the upload checks on the query endpoints, ownership, the purge, and "Add to dataset".

These tests embed in the web process (QUERY_EMBEDDING "web") so they need no worker; the
default "worker" mode is tested with a silent queue here and with a real qcluster in
test_query_image_worker.py.
"""

from __future__ import annotations

import io
import os
import re
from datetime import timedelta

import numpy as np
import pytest
from django.urls import reverse
from django.utils import timezone
from PIL import Image

from datasets.models import Asset, ProjectMembership
from similarity import tasks
from similarity.models import Embedding, ProjectReadiness, QueryImage, SavedSearch
from similarity.search import outside
from similarity.vectors import embedder
from similarity.vectors.images import load_rgb
from similarity.vectors.preprocess import load_and_preprocess, model_crop, pixels_from_crop, preprocess
from tests import factories
from tests.test_formats import SVG
from tests.test_robustness import png
from tests.test_uploads import BAD_CASES

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def web_mode(settings):
    settings.SIMILARITY = {**settings.SIMILARITY, "QUERY_EMBEDDING": "web"}


@pytest.fixture
def images(dataset_a, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        made = [factories.asset(dataset_a, f"img{i}.png", factories.pattern_image(i % 3, seed=i))
                for i in range(9)]
    tasks.embed_project(dataset_a.project_id)
    return made


OUTSIDE = factories.pattern_image(1, seed=100, size=300)


def api_url(project_id) -> str:
    return f"/api/projects/{project_id}/similar/"


def search_url(project_id) -> str:
    return reverse("similarity:image-search", args=[project_id])


def unit(vector) -> np.ndarray:
    array = np.asarray(getattr(vector, "to_list", lambda: vector)(), dtype=np.float64)
    return array / np.linalg.norm(array)


def stored_unit(asset) -> np.ndarray:
    return unit(Embedding.objects.get(asset=asset).vector)


def numpy_ranking(images, query: np.ndarray, skip=()) -> list[tuple[int, float]]:
    scored = [(float(stored_unit(a) @ query), a.pk) for a in images if a.pk not in skip]
    return [(pk, sim) for sim, pk in sorted(scored, key=lambda t: (-t[0], t[1]))]


def assert_same_ranking(body: dict, want: list[tuple[int, float]]) -> None:
    got = [(r["asset"]["id"], r["similarity"]) for r in body["results"]]
    assert len(got) == len(want)
    expected = dict(want)
    for (pk, sim), (want_pk, want_sim) in zip(got, want, strict=True):
        assert abs(expected[pk] - sim) < 2e-3  # half-precision vectors
        if pk != want_pk:  # only near-ties may swap
            assert abs(want_sim - sim) < 2e-3


def post_image(api, project_id, data: bytes = OUTSIDE, name: str = "outside.png", **extra):
    return api.post(api_url(project_id), {"image": factories.upload(name, data), **extra},
                    format="multipart")


def media_files(settings) -> list[str]:
    return [f for _, _, files in os.walk(settings.MEDIA_ROOT) for f in files]


# --- the vector ---------------------------------------------------------------------------


def test_the_model_input_survives_the_trip_to_the_worker_exactly():
    rgb = load_rgb(io.BytesIO(factories.image_bytes("JPEG", size=(640, 480))))
    assert np.array_equal(pixels_from_crop(model_crop(rgb))[0], preprocess(rgb))


def test_query_vector_is_what_the_worker_computes_for_a_stored_copy(api, images, dataset_a):
    body = post_image(api, dataset_a.project_id, limit=3).json()
    query = QueryImage.objects.get(pk=body["query"]["id"])
    worker_vector = embedder.get_embedder().embed(load_and_preprocess(io.BytesIO(OUTSIDE))[None])[0]
    assert float(unit(query.vector) @ unit(worker_vector)) > 0.9999


# --- API ----------------------------------------------------------------------------------


def test_api_image_only_ranks_like_numpy_in_the_asset_endpoints_shape(api, images, dataset_a,
                                                                     settings):
    response = post_image(api, dataset_a.project_id)
    assert response.status_code == 200, response.content
    body = response.json()
    by_asset = api.get(f"/api/assets/{images[0].pk}/similar/").json()
    assert set(body) == set(by_asset)
    query = QueryImage.objects.get(pk=body["query"]["id"])
    assert body["query"] == {
        "id": str(query.pk), "label": "outside.png",
        "url": reverse("similarity:image-results", args=[query.pk]) + "?order=most",
        "thumbnail_url": reverse("similarity:image-preview", args=[query.pk]),
    }
    assert body["queries"] == [body["query"]] and body["negatives"] == []
    assert body["scope_size"] == 9 and body["exact"] is True
    assert_same_ranking(body, numpy_ranking(images, unit(query.vector)))
    # the original file is stored nowhere: no asset, nothing in the media folder
    assert Asset.objects.count() == 9
    assert not any(name.startswith("outside") for name in media_files(settings))
    assert len(media_files(settings)) == 18  # the 9 assets' files and thumbnails only


def test_api_least_limit_and_min_similarity(api, images, dataset_a):
    body = post_image(api, dataset_a.project_id, order="least", limit=4).json()
    sims = [r["similarity"] for r in body["results"]]
    assert len(sims) == 4 and sims == sorted(sims)
    floor = sims[1]
    trimmed = post_image(api, dataset_a.project_id, order="least", limit=4,
                         min_similarity=floor).json()
    assert all(r["similarity"] >= floor for r in trimmed["results"])


@pytest.mark.parametrize("size", [(8000, 20), (20, 8000), (1, 100_000)])
def test_an_outside_image_of_any_shape_is_searched_with(api, images, dataset_a, size):
    response = api.post(api_url(dataset_a.project_id),
                        {"image": factories.upload("long.png", png(*size))}, format="multipart")
    assert response.status_code == 200, response.content
    assert len(response.json()["results"]) == len(images)


def test_api_image_counts_as_one_more_positive(api, images, dataset_a):
    positives, negatives = images[:2], images[5:6]
    response = api.post(api_url(dataset_a.project_id), {
        "image": factories.upload("outside.png", OUTSIDE),
        "positive": [a.pk for a in positives], "negative": [a.pk for a in negatives],
    }, format="multipart")
    assert response.status_code == 200, response.content
    body = response.json()
    image = unit(QueryImage.objects.get(pk=body["query"]["id"]).vector)
    mean = np.mean([image, *(stored_unit(a) for a in positives)], axis=0)
    query = mean - 0.5 * np.mean([stored_unit(a) for a in negatives], axis=0)
    query /= np.linalg.norm(query)
    used = {a.pk for a in positives + negatives}
    assert_same_ranking(body, numpy_ranking(images, query, skip=used))
    assert body["scope_size"] == 6
    assert [q["id"] for q in body["queries"]] == [body["query"]["id"], *(a.pk for a in positives)]
    assert [n["id"] for n in body["negatives"]] == [negatives[0].pk]


def test_api_image_with_only_counter_examples(api, images, dataset_a):
    body = api.post(api_url(dataset_a.project_id), {
        "image": factories.upload("outside.png", OUTSIDE), "negative": [images[0].pk],
    }, format="multipart").json()
    image = unit(QueryImage.objects.get(pk=body["query"]["id"]).vector)
    query = image - 0.5 * stored_unit(images[0])
    assert_same_ranking(body, numpy_ranking(images, query / np.linalg.norm(query),
                                            skip={images[0].pk}))


def test_api_without_image_or_positives_is_a_400(api, images, dataset_a):
    response = api.post(api_url(dataset_a.project_id), {"order": "most"}, format="json")
    assert response.status_code == 400 and "positive" in response.json()
    response = api.post(api_url(dataset_a.project_id), {"image": "aGVsbG8="}, format="json")
    assert response.status_code == 400 and response.json()["code"] == "bad_image"


def test_a_refused_search_keeps_nothing_of_the_image(api, images, dataset_a):
    # the file is fine, but one asset is both an example and a counter-example: refused
    response = api.post(api_url(dataset_a.project_id), {
        "image": factories.upload("outside.png", OUTSIDE), "positive": [images[0].pk],
        "negative": [images[0].pk],
    }, format="multipart")
    assert response.status_code == 400
    assert "both an example and a counter-example" in response.json()["detail"]
    assert not QueryImage.objects.exists()


def test_a_broker_that_refuses_the_task_keeps_nothing(api, images, dataset_a, settings,
                                                      monkeypatch):

    settings.SIMILARITY = {**settings.SIMILARITY, "QUERY_EMBEDDING": "worker"}

    def down(*args, **kwargs):
        raise ConnectionError("broker down")

    monkeypatch.setattr(outside, "_queue", down)
    response = post_image(api, dataset_a.project_id)
    assert response.status_code == 503
    assert response.json()["detail"].startswith("outside.png: the background worker's queue")
    assert not QueryImage.objects.exists()


def test_api_asset_of_another_project_is_a_404(api, images, dataset_a, dataset_b, alice):
    # alice may see project B too: its asset is still not part of a search of project A
    theirs = factories.asset(dataset_b, "theirs.png")
    ProjectMembership.objects.create(project=dataset_b.project, user=alice, role="viewer")
    response = api.post(api_url(dataset_a.project_id), {
        "image": factories.upload("outside.png", OUTSIDE), "positive": [theirs.pk],
    }, format="multipart")
    assert response.status_code == 404
    assert not QueryImage.objects.exists()


def test_outsider_gets_404_on_the_project(images, dataset_a, bob, client):
    from rest_framework.test import APIClient

    outsider = APIClient()
    outsider.force_authenticate(bob)
    assert post_image(outsider, dataset_a.project_id).status_code == 404
    client.force_login(bob)
    response = client.post(search_url(dataset_a.project_id),
                           {"image": factories.upload("outside.png", OUTSIDE)})
    assert response.status_code == 404
    assert not QueryImage.objects.exists()


def test_api_is_throttled_like_the_other_search_endpoints():
    from similarity.api import ProjectSimilarView, SearchThrottle, SimilarView

    assert ProjectSimilarView.throttle_classes == SimilarView.throttle_classes == [SearchThrottle]
    assert ProjectSimilarView.throttle_scope == SimilarView.throttle_scope


# --- hostile files, on both query endpoints -----------------------------------------------

HOSTILE = [
    *BAD_CASES,
    ("drawing.svg", SVG, "SVG is a vector or document format"),
    ("cut.jpg", factories.image_bytes("JPEG", size=(400, 300))[:3000], "corrupt or truncated"),
    ("clip.mp4", factories.MP4_HEAD, "MP4 is a video"),
    ("clip.webm", factories.WEBM_HEAD, "WebM/Matroska is a video"),
    ("frames.ppm", b"P6\n8 8\n255\n" + b"\x00" * 192, "not an image in a supported format"),
]


def refusal(endpoint: str, web, api, project_id, name: str, data: bytes):
    """(status, message, code) of one query endpoint refusing a file."""
    if endpoint == "api":
        response = api.post(api_url(project_id), {"image": factories.upload(name, data)},
                            format="multipart")
        body = response.json()
        return response.status_code, body["detail"], body["code"]
    response = web.post(search_url(project_id), {"image": factories.upload(name, data)},
                        HTTP_ACCEPT="application/json")
    body = response.json()
    return response.status_code, body["error"], body["code"]


@pytest.mark.parametrize("endpoint", ["api", "page"])
@pytest.mark.parametrize(("name", "data", "reason"), HOSTILE)
def test_hostile_files_are_refused_naming_file_and_reason(
    endpoint, web, api, dataset_a, settings, name, data, reason
):
    status, message, code = refusal(endpoint, web, api, dataset_a.project_id, name, data)
    assert (status, code) == (400, "bad_image")
    assert message.startswith(f"{name}: ") and reason in message, message
    assert not QueryImage.objects.exists()
    assert media_files(settings) == []


@pytest.mark.parametrize("endpoint", ["api", "page"])
@pytest.mark.parametrize("factor", [1.5, 3])
def test_decompression_bombs_are_refused(endpoint, web, api, dataset_a, monkeypatch, factor):
    data = factories.image_bytes("PNG", size=(100, 100))
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", int(100 * 100 / factor))
    status, message, code = refusal(endpoint, web, api, dataset_a.project_id, "bomb.png", data)
    assert (status, code) == (400, "bad_image")
    assert message.startswith("bomb.png: ") and "too many pixels" in message


@pytest.mark.parametrize("endpoint", ["api", "page"])
def test_size_cap_is_a_setting(endpoint, web, api, dataset_a, settings):
    settings.SIMILARITY = {**settings.SIMILARITY, "QUERY_IMAGE_MAX_MB": 0.001}
    status, message, code = refusal(endpoint, web, api, dataset_a.project_id, "big.png",
                                    factories.image_bytes("PNG", size=(200, 200)))
    assert (status, code) == (400, "bad_image")
    assert message == "big.png: the image is larger than 0.001 MB"


# --- the pages ----------------------------------------------------------------------------


def test_form_post_redirects_to_owner_only_results(web, images, dataset_a, client, bob):
    response = web.post(search_url(dataset_a.project_id),
                        {"image": factories.upload("outside.png", OUTSIDE), "order": "least"})
    assert response.status_code == 303
    query = QueryImage.objects.get()
    assert response["Location"] == f"/similarity/queries/{query.pk}/?order=least"
    page = web.get(response["Location"])
    assert page.status_code == 200
    html = page.content.decode()
    assert page.context["query_spec"] == {"positive": [], "negative": [], "image": str(query.pk)}
    assert page.context["project_id"] == str(dataset_a.project_id)
    assert page.context["order"] == "least"
    sims = [m.similarity for m in page.context["matches"]]
    assert len(sims) == 9 and sims == sorted(sims)
    for slot in ("image-query", "results"):
        assert f'data-testid="{slot}"' in html
    assert reverse("similarity:image-preview", args=[query.pk]) in html
    preview = web.get(reverse("similarity:image-preview", args=[query.pk]))
    assert preview["Content-Type"] == "image/jpeg"
    with Image.open(io.BytesIO(preview.content)) as shown:
        assert shown.format == "JPEG" and max(shown.size) <= 256
    assert (query.width, query.height) == (300, 300)
    # nobody else opens it, even a member of the same project
    ProjectMembership.objects.create(project=dataset_a.project, user=bob, role="editor")
    client.force_login(bob)
    for name in ("image-results", "image-preview"):
        assert client.get(reverse(f"similarity:{name}", args=[query.pk])).status_code == 404


def test_results_page_orders_and_caps(web, images, dataset_a, settings):
    settings.SIMILARITY = {**settings.SIMILARITY, "MAX_RESULTS": 5}
    web.post(search_url(dataset_a.project_id), {"image": factories.upload("o.png", OUTSIDE)})
    query = QueryImage.objects.get()
    most = web.get(reverse("similarity:image-results", args=[query.pk]), {"order": "most"})
    sims = [m.similarity for m in most.context["matches"]]
    assert len(sims) == 5 and sims == sorted(sims, reverse=True)
    assert re.search(r'aria-current="page"[^>]*data-order="most"', most.content.decode())


def test_a_user_who_lost_access_gets_404(web, images, dataset_a, alice):
    web.post(search_url(dataset_a.project_id), {"image": factories.upload("o.png", OUTSIDE)})
    query = QueryImage.objects.get()
    dataset_a.project.memberships.filter(user=alice).delete()
    assert web.get(reverse("similarity:image-results", args=[query.pk])).status_code == 404


def test_page_shows_the_refusal_without_javascript(web, dataset_a):
    response = web.post(search_url(dataset_a.project_id),
                        {"image": factories.upload("notes.txt", b"plain text")})
    assert response.status_code == 400
    assert "notes.txt: the file is not an image" in response.content.decode()


def test_model_change_in_progress_is_refused_not_mixed(api, images, dataset_a):
    ProjectReadiness.objects.filter(project_id=str(dataset_a.project_id)).update(
        active_model_key="some-other-model@1")
    response = post_image(api, dataset_a.project_id)
    assert response.status_code == 503
    assert response.json()["code"] == "unavailable"
    assert "re-embedded with another model" in response.json()["detail"]
    assert not QueryImage.objects.exists()


def test_worker_mode_without_a_worker_says_so_and_keeps_nothing(api, images, dataset_a, settings):
    settings.SIMILARITY = {**settings.SIMILARITY, "QUERY_EMBEDDING": "worker",
                           "QUERY_TIMEOUT": 0.3}
    embedder.forget_loaded_models()
    response = post_image(api, dataset_a.project_id)
    assert response.status_code == 503
    assert response.json()["detail"] == (
        "outside.png: the background worker did not answer within 0.3 s; is qcluster running?")
    assert not QueryImage.objects.exists()
    assert not embedder._loaded  # the web process never loaded the model


# --- purge ---------------------------------------------------------------------------------


def test_sweep_purges_old_unsaved_query_images(web, images, dataset_a, alice, settings):
    for name in ("old.png", "saved.png", "new.png"):
        web.post(search_url(dataset_a.project_id), {"image": factories.upload(name, OUTSIDE)})
    rows = {q.name: q for q in QueryImage.objects.all()}
    QueryImage.objects.filter(name__in=["old.png", "saved.png"]).update(
        created=timezone.now() - timedelta(hours=25))
    SavedSearch.objects.create(project_id=str(dataset_a.project_id), owner=alice, name="keep",
                               query_image=rows["saved.png"])
    assert tasks.sweep()["query_images"] == 1
    assert sorted(QueryImage.objects.values_list("name", flat=True)) == ["new.png", "saved.png"]
    settings.SIMILARITY = {**settings.SIMILARITY, "QUERY_IMAGE_HOURS": 0}
    assert tasks.sweep()["query_images"] == 1  # "new.png"; the saved one stays
    assert list(QueryImage.objects.values_list("name", flat=True)) == ["saved.png"]


# --- "Add to dataset" through the demo's hook ------------------------------------------------


def test_add_to_dataset_stores_the_file_only_when_asked(web, images, dataset_a, client):
    web.post(search_url(dataset_a.project_id), {"image": factories.upload("keep me.png", OUTSIDE)})
    query = QueryImage.objects.get()
    page = web.get(reverse("similarity:image-results", args=[query.pk])).content.decode()
    assert "Add to dataset" in page and f'value="{dataset_a.pk}"' in page
    assert Asset.objects.count() == 9
    response = web.post(reverse("similarity:image-add", args=[query.pk]),
                        {"target": str(dataset_a.pk),
                         "image": factories.upload("keep me.png", OUTSIDE)},
                        HTTP_ACCEPT="application/json")
    assert response.status_code == 201, response.content
    added = Asset.objects.get(pk=response.json()["id"])
    assert (added.dataset, added.original_filename) == (dataset_a, "keep me.png")
    assert response.json()["url"]


def test_add_it_to_starts_at_the_dataset_the_search_came_from(web, images, dataset_a):
    """Issue 24: dropped on a dataset's page, "Add it to" offers that dataset first."""
    from tests import factories as make

    second = make.dataset(dataset_a.project, "second")
    page = web.get(reverse("datasets:dataset", args=[second.pk])).content.decode()
    assert f'name="target" value="{second.pk}"' in page  # the drop zone names its dataset
    response = web.post(search_url(dataset_a.project_id),
                        {"image": factories.upload("o.png", OUTSIDE), "target": str(second.pk)})
    assert response.status_code == 303 and f"target={second.pk}" in response["Location"]
    results = web.get(response["Location"]).content.decode()
    assert f'<option value="{second.pk}" selected>second</option>' in results
    assert f'<option value="{dataset_a.pk}">' in results


def test_add_refuses_a_bad_file_and_a_foreign_target(web, images, dataset_a, dataset_b):
    web.post(search_url(dataset_a.project_id), {"image": factories.upload("o.png", OUTSIDE)})
    query = QueryImage.objects.get()
    add = reverse("similarity:image-add", args=[query.pk])
    bad = web.post(add, {"target": str(dataset_a.pk), "image": factories.upload("x.txt", b"no")},
                   HTTP_ACCEPT="application/json")
    assert bad.status_code == 400 and bad.json()["error"].startswith("x.txt: ")
    foreign = web.post(add, {"target": str(dataset_b.pk),
                             "image": factories.upload("o.png", OUTSIDE)},
                       HTTP_ACCEPT="application/json")
    assert foreign.status_code == 400 and foreign.json()["code"] == "bad_target"
    assert Asset.objects.count() == 9


def test_viewers_get_no_add_button_and_cannot_add(images, dataset_a, client):
    viewer = factories.user("vera")
    ProjectMembership.objects.create(project=dataset_a.project, user=viewer, role="viewer")
    client.force_login(viewer)
    assert client.post(search_url(dataset_a.project_id),
                       {"image": factories.upload("o.png", OUTSIDE)}).status_code == 303
    query = QueryImage.objects.get()
    page = client.get(reverse("similarity:image-results", args=[query.pk])).content.decode()
    assert "Add to dataset" not in page
    response = client.post(reverse("similarity:image-add", args=[query.pk]),
                           {"target": str(dataset_a.pk), "image": factories.upload("o.png", OUTSIDE)})
    assert response.status_code == 400
    assert Asset.objects.count() == 9


def test_no_hook_no_button(web, images, dataset_a, settings):
    settings.SIMILARITY = {**settings.SIMILARITY, "ADD_QUERY_IMAGE": None}
    web.post(search_url(dataset_a.project_id), {"image": factories.upload("o.png", OUTSIDE)})
    query = QueryImage.objects.get()
    page = web.get(reverse("similarity:image-results", args=[query.pk])).content.decode()
    assert "Add to dataset" not in page


# --- where the zone appears ------------------------------------------------------------------


def test_datasets_page_and_results_pages_offer_the_zone(web, images, dataset_a, client):
    zone = f'action="{search_url(dataset_a.project_id)}"'
    assert zone in web.get(reverse("datasets:dataset", args=[dataset_a.pk])).content.decode()
    assert zone in web.get(reverse("similarity:results", args=[images[0].pk])).content.decode()
    viewer = factories.user("val")
    ProjectMembership.objects.create(project=dataset_a.project, user=viewer, role="viewer")
    client.force_login(viewer)
    page = client.get(reverse("datasets:dataset", args=[dataset_a.pk])).content.decode()
    assert zone in page and "upload-files" not in page  # viewers search, they don't upload


@pytest.mark.integration
def test_host_site_with_integer_keys():
    from tests.hosts.runner import run_host_suite

    run_host_suite("tests.hosts.int_settings", "query_int.py")


# --- bounded work in the web process ------------------------------------------------------

MEMORY_SCRIPT = """
import io, json, sys
import django
from django.conf import settings
settings.configure(SIMILARITY={}, INSTALLED_APPS=["django.contrib.contenttypes",
                                                  "django.contrib.auth", "similarity"])
django.setup()
from similarity.search.outside import check_image, make_preview
from similarity.vectors.preprocess import model_crop

def hwm():  # this process's peak resident memory, KiB
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1])

data = open(sys.argv[1], "rb").read()
before = hwm()
try:
    checked = check_image(io.BytesIO(data), "big.png")
    model_crop(checked.rgb)
    make_preview(checked.rgb)
    outcome = "searched"
except Exception as exc:
    outcome = str(exc)
print(json.dumps({"outcome": outcome, "growth_mib": (hwm() - before) / 1024}))
"""


def checkerboard_png(side: int) -> bytes:
    yy, xx = np.mgrid[0:side, 0:side]
    board = ((xx // 50 + yy // 50) % 2 * 255).astype(np.uint8)
    out = io.BytesIO()
    Image.fromarray(board).convert("RGB").save(out, "PNG", optimize=True)
    return out.getvalue()


@pytest.mark.parametrize("side, outcome, most_mib", [
    # 300 KB that decode to 265 MB of RGB: refused from the header (677 MiB before)
    (9400, "big.png: the image is 9400x9400 pixels (88 megapixels); images other than JPEG "
           "may have at most 32 megapixels here: downscale it or send a JPEG", 5),
    # 75 MB of RGB, decoded once: no second decode for its size, no full-size preview copy
    # (193 MiB before)
    (5000, "searched", 130),
])
def test_outside_images_are_decoded_in_bounded_memory(tmp_path, side, outcome, most_mib):
    import json
    import subprocess
    import sys

    from tests.conftest import ROOT

    path = tmp_path / "big.png"
    path.write_bytes(checkerboard_png(side))
    result = subprocess.run([sys.executable, "-c", MEMORY_SCRIPT, str(path)], cwd=ROOT,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["outcome"] == outcome
    assert report["growth_mib"] < most_mib, report


def test_a_busy_process_answers_503_with_retry_after(api, web, images, dataset_a, settings):
    settings.SIMILARITY = {**settings.SIMILARITY, "QUERY_IMAGE_CONCURRENCY": 1}
    with outside.decoding_slot("someone else's upload"):
        response = post_image(api, dataset_a.project_id)
        assert response.status_code == 503 and response["Retry-After"] == "5"
        assert response.json()["code"] == "busy"
        assert "busy with other image searches" in response.json()["detail"]
        page = web.post(search_url(dataset_a.project_id),
                        {"image": factories.upload("outside.png", OUTSIDE)},
                        HTTP_ACCEPT="application/json")
        assert page.status_code == 503 and page["Retry-After"] == "5"
    assert QueryImage.objects.count() == 0  # nothing kept of the refused searches
    assert post_image(api, dataset_a.project_id).status_code == 200  # the slot is free again


def test_the_page_search_is_throttled_with_the_apis_rate(api, web, images, dataset_a):
    from django.core.cache import cache
    from rest_framework.throttling import SimpleRateThrottle

    cache.clear()
    original = SimpleRateThrottle.THROTTLE_RATES
    SimpleRateThrottle.THROTTLE_RATES = {"similarity_search": "2/min"}
    try:
        def page():
            return web.post(search_url(dataset_a.project_id),
                            {"image": factories.upload("outside.png", OUTSIDE)},
                            HTTP_ACCEPT="application/json")

        assert page().status_code == 201
        assert post_image(api, dataset_a.project_id).status_code == 200  # one history
        refused = page()
        assert refused.status_code == 429 and int(refused["Retry-After"]) >= 1
        assert refused.json()["code"] == "throttled"
        assert post_image(api, dataset_a.project_id).status_code == 429
    finally:
        SimpleRateThrottle.THROTTLE_RATES = original
        cache.clear()
