"""Look closer (issue 25): search with a region of an image, and where two images match.

Embedding runs in the web process (QUERY_EMBEDDING "web") unless a test says otherwise;
the worker's half of a match map runs here through its task function, and with a real
qcluster in test_query_image_worker.py.
"""

from __future__ import annotations

import io
import re
from datetime import timedelta

import numpy as np
import pytest
from django.urls import reverse
from django.utils import timezone
from PIL import Image

from similarity import tasks
from similarity.embedding import sweep
from similarity.match import picture
from similarity.match.grid import describe, where
from similarity.models import MatchMap, QueryImage, SavedSearch
from similarity.search.region import MIN_SIDE, Region, draft_size, parse_region
from similarity.testing import make_dinov2_checkpoint
from similarity.vectors import embedder
from tests import factories

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def web_mode(settings):
    settings.SIMILARITY = {**settings.SIMILARITY, "QUERY_EMBEDDING": "web"}


def photo(width: int = 320, height: int = 240, seed: int = 0, fmt: str = "PNG", **save) -> bytes:
    """Smooth colours with structure (a photo-like picture, not noise)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width]
    bands = [127 + 120 * np.sin(xx / (9 + 7 * rng.random()) + rng.random() * 6) *
             np.cos(yy / (11 + 5 * rng.random())) for _ in range(3)]
    array = np.clip(np.stack(bands, -1), 0, 255).astype(np.uint8)
    out = io.BytesIO()
    Image.fromarray(array).save(out, fmt, **save)
    return out.getvalue()


def planted(width: int = 640, height: int = 480, box=(400, 96, 128, 128), seed: int = 3) -> bytes:
    """Grey noise with one distinctive patch (a red and blue checkerboard) at ``box``."""
    rng = np.random.default_rng(seed)
    base = np.clip(rng.normal(128, 20, (height, width, 1)).repeat(3, 2), 0, 255).astype(np.uint8)
    left, top, side, _ = box
    cells = (rng.integers(0, 2, (side // 8, side // 8, 1)) * 255).repeat(8, 0).repeat(8, 1)
    patch = cells.repeat(3, 2).astype(np.uint8)
    patch[..., 1] = 0
    base[top:top + side, left:left + side] = patch
    out = io.BytesIO()
    Image.fromarray(base).save(out, "PNG")
    return out.getvalue()


def unit(vector) -> np.ndarray:
    array = np.asarray(getattr(vector, "to_list", lambda: vector)(), dtype=np.float64)
    return array / np.linalg.norm(array)


def api_url(project_id) -> str:
    return f"/api/projects/{project_id}/similar/"


@pytest.fixture
def library(dataset_a, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        made = [factories.asset(dataset_a, f"photo{i}.png", photo(seed=i)) for i in range(6)]
    tasks.embed_project(dataset_a.project_id)
    return made


# --- regions: parsing and checks -----------------------------------------------------------


@pytest.mark.parametrize("raw, words", [
    ([0.1, 0.2, 0.3], "four numbers"),
    ("0.1,0.2,0.3,0.4,0.5", "not 5"),
    (["a", 0.1, 0.2, 0.2], "x must be a number"),
    ([0.1, True, 0.2, 0.2], "y must be a number"),
    ([0.1, 0.1, "nan", 0.2], "finite"),
    ([0.8, 0.1, 0.3, 0.2], "x + width is 1.1"),
    ([0.1, 0.9, 0.3, 0.2], "y + height is 1.1"),
    ([-0.1, 0.1, 0.3, 0.2], "starts outside"),
    ([0.1, 0.1, 0, 0.2], "more than 0"),
    ({"x": 1}, "four numbers"),
])
def test_a_bad_region_is_refused_naming_the_problem(raw, words):
    from similarity.search.region import RegionError

    with pytest.raises(RegionError, match=re.escape(words)):
        parse_region(raw)


def test_regions_parse_from_json_and_form_text_and_map_to_pixels():
    assert parse_region("[0.25, 0.5, 0.5, 0.25]") == parse_region("0.25,0.5,0.5,0.25")
    region = parse_region([0.25, 0.5, 0.5, 0.25])
    assert region.box(400, 200) == (100, 100, 300, 150)
    assert region.pixels(400, 200) == (200, 50)
    # a browser's rounding just past the edge is the edge
    assert parse_region([0.5, 0.5, 0.5000000001, 0.5]).width == 0.5


def test_a_large_jpeg_region_is_decoded_at_the_scale_its_crop_needs():
    # a quarter-width region of a 4000x3000 photo needs 256 px from 1000: DCT scale 1/2
    assert draft_size(Region(0, 0, 0.25, 0.25), (4000, 3000), False) == (1366, 1024)
    # a big region needs much less: the decoder may take 1/8
    assert draft_size(Region(0, 0, 1, 1), (4000, 3000), False) == (342, 256)
    # EXIF rotation swaps the sides the fractions apply to
    assert draft_size(Region(0, 0, 1, 0.5), (3000, 4000), True)[0] <= 3000


def test_api_region_validation_answers_400_naming_the_problem(api, library, dataset_a):
    url = api_url(dataset_a.project_id)
    cases = [
        ({"asset": library[0].pk, "region": [0.1, 0.2, 0.3]}, "four numbers"),
        ({"asset": library[0].pk, "region": ["x", 0.2, 0.3, 0.3]}, "must be a number"),
        ({"asset": library[0].pk, "region": [0.9, 0.2, 0.3, 0.3]}, "outside the image"),
        ({"asset": library[0].pk, "region": [0.1, 0.1, 0.05, 0.5]}, "at least 32 pixels"),
        ({"region": [0.1, 0.1, 0.5, 0.5], "positive": [library[0].pk]}, "needs an `asset`"),
    ]
    for body, words in cases:
        response = api.post(url, body, format="json")
        assert response.status_code == 400, (body, response.content)
        assert response.json()["code"] == "bad_region"
        assert words in str(response.json()), (words, response.json())
    assert not QueryImage.objects.exists()  # nothing kept of a refused region


def test_too_small_names_the_pixels_of_the_original(api, library, dataset_a):
    response = api.post(api_url(dataset_a.project_id),
                        {"asset": library[0].pk, "region": [0.5, 0.5, 0.09, 0.5]}, format="json")
    assert response.status_code == 400
    assert response.json()["detail"] == (
        f"The region of “photo0.png” is 29x120 pixels of the 320x240 image; draw a box at "
        f"least {MIN_SIDE} pixels on each side.")


# --- regions: the search -------------------------------------------------------------------


def test_a_region_query_equals_an_outside_query_of_the_same_crop(api, library, dataset_a):
    region = [0.2, 0.15, 0.55, 0.6]
    body = api.post(api_url(dataset_a.project_id), {"asset": library[1].pk, "region": region},
                    format="json").json()
    assert body["query"]["region"] == region and body["query"]["region_of"] == str(library[1].pk)
    by_region = QueryImage.objects.get(pk=body["query"]["id"])
    assert by_region.source_asset_id == str(library[1].pk)

    crop = Image.open(io.BytesIO(photo(seed=1))).crop(Region(*region).box(320, 240))
    out = io.BytesIO()
    crop.save(out, "PNG")
    outside = api.post(api_url(dataset_a.project_id),
                       {"image": factories.upload("crop.png", out.getvalue())},
                       format="multipart").json()
    by_file = QueryImage.objects.get(pk=outside["query"]["id"])
    assert float(unit(by_region.vector) @ unit(by_file.vector)) >= 0.9999
    # the same region of the same file sent as a multipart upload: the same query again
    upload = api.post(api_url(dataset_a.project_id), {
        "image": factories.upload("photo1.png", photo(seed=1)), "region": "0.2,0.15,0.55,0.6",
    }, format="multipart").json()
    by_upload = QueryImage.objects.get(pk=upload["query"]["id"])
    assert float(unit(by_region.vector) @ unit(by_upload.vector)) >= 0.9999
    assert by_upload.source_asset_id == "" and by_upload.region == region
    # the region's own image is not one of its results; an outside file's region has none
    assert str(library[1].pk) not in {str(r["asset"]["id"]) for r in body["results"]}
    assert len(body["results"]) == 5 and len(upload["results"]) == 6
    # its preview shows the whole image (the box is drawn over it)
    assert Image.open(io.BytesIO(bytes(by_region.preview))).size == (256, 192)


def test_region_results_in_both_orders(api, library, dataset_a):
    for order in ("most", "least"):
        body = api.post(api_url(dataset_a.project_id), {
            "asset": library[0].pk, "region": [0.1, 0.1, 0.5, 0.5], "order": order, "limit": 3,
        }, format="json").json()
        sims = [r["similarity"] for r in body["results"]]
        assert len(sims) == 3
        assert sims == sorted(sims, reverse=order == "most")


def test_a_region_of_a_large_jpeg_matches_its_full_resolution_crop(api, dataset_a,
                                                                    django_capture_on_commit_callbacks):
    data = photo(2400, 1800, seed=7, fmt="JPEG", quality=92)
    with django_capture_on_commit_callbacks(execute=True):
        asset = factories.asset(dataset_a, "big.jpg", data)
    tasks.embed_project(dataset_a.project_id)
    region = Region(0.5, 0.25, 0.3, 0.3)
    body = api.post(api_url(dataset_a.project_id),
                    {"asset": asset.pk, "region": region.as_list()}, format="json").json()
    vector = unit(QueryImage.objects.get(pk=body["query"]["id"]).vector)
    full = Image.open(io.BytesIO(data)).convert("RGB").crop(region.box(2400, 1800))
    from similarity.vectors.preprocess import preprocess

    exact = embedder.get_embedder().embed(preprocess(full)[None])[0]
    # decoded at 1/2 scale (DCT), then resized: the same picture to the model's eye
    assert float(vector @ unit(exact)) > 0.999


def test_a_region_of_an_asset_of_another_project_is_404(api, library, dataset_a, dataset_b,
                                                         django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        theirs = factories.asset(dataset_b, "theirs.png", photo(seed=9))
    response = api.post(api_url(dataset_a.project_id),
                        {"asset": theirs.pk, "region": [0.1, 0.1, 0.5, 0.5]}, format="json")
    assert response.status_code == 404
    response = api.post(api_url(dataset_b.project_id),
                        {"asset": theirs.pk, "region": [0.1, 0.1, 0.5, 0.5]}, format="json")
    assert response.status_code == 404


def test_saved_searches_keep_the_region_and_watch_with_it(api, library, dataset_a, alice,
                                                          django_capture_on_commit_callbacks):
    body = api.post(api_url(dataset_a.project_id),
                    {"asset": library[2].pk, "region": [0.1, 0.1, 0.6, 0.6]}, format="json").json()
    saved = api.post("/api/saved-searches/", {"project_id": dataset_a.project_id, "name": "the part",
                                              "image": body["query"]["id"], "threshold": -1},
                     format="json")
    assert saved.status_code == 201, saved.content
    search = SavedSearch.objects.get(pk=saved.json()["id"])
    assert search.query_image.region == [0.1, 0.1, 0.6, 0.6]
    assert float(unit(search.vector) @ unit(search.query_image.vector)) > 0.999
    # the region's row outlives the purge of unsaved query images
    QueryImage.objects.update(created=timezone.now() - timedelta(days=3))
    sweep.sweep()
    assert QueryImage.objects.filter(pk=body["query"]["id"]).exists()
    with django_capture_on_commit_callbacks(execute=True):
        factories.asset(dataset_a, "new.png", photo(seed=2))
    tasks.embed_project(dataset_a.project_id)
    assert search.matches.count() == 1


def test_the_saved_search_list_says_it_searches_a_region(web, library, dataset_a, alice):
    from similarity import watch
    from similarity.search import outside
    from similarity.search.region import Region

    region = outside.create_region_query(alice, library[2], Region(0.1, 0.1, 0.6, 0.6))
    watch.save_search(alice, dataset_a.project_id, name="the part", image=region.pk)
    page = web.get(reverse("similarity:saved-searches")).content.decode()
    assert "Searches with a region of “photo2.png”." in page


def test_the_page_searches_a_region_and_shows_its_box(web, library, dataset_a):
    response = web.post(reverse("similarity:image-search", args=[dataset_a.project_id]),
                        {"asset": library[0].pk, "region": "0.25,0.25,0.5,0.5", "order": "least"})
    assert response.status_code == 303
    query = QueryImage.objects.get()
    assert response["Location"] == reverse("similarity:image-results", args=[query.pk]) + "?order=least"
    page = web.get(response["Location"]).content.decode()
    assert "Region of photo0.png" in page and 'data-testid="query-region"' in page
    assert "left:25.00%;top:31.25%;width:50.00%;height:37.50%" in page  # letterboxed 4:3
    assert reverse("similarity:query-match", args=[query.pk, library[1].pk]) in page
    # a refused region says why, on the page
    refused = web.post(reverse("similarity:image-search", args=[dataset_a.project_id]),
                       {"asset": library[0].pk, "region": "0.9,0,0.5,0.5"},
                       HTTP_ACCEPT="application/json")
    assert refused.status_code == 400 and refused.json()["code"] == "bad_region"


def test_results_pages_offer_the_region_tool_and_show_match(web, library):
    page = web.get(reverse("similarity:results", args=[library[0].pk])).content.decode()
    assert 'data-testid="region-open"' in page and 'data-region-dialog' in page
    assert reverse("similarity:match", args=[library[0].pk, library[1].pk]) in page
    asset_page = web.get(library[0].get_absolute_url()).content.decode()
    assert 'data-testid="region-open"' in asset_page
    title = asset_page.split("<title>", 1)[1].split("</title>", 1)[0]
    assert "photo0.png" in title and "<" not in title  # the dialog is in the page, not its title
    assert f'data-region-src="/similarity/assets/{library[0].pk}/thumbnail/"' in asset_page


# --- match maps ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def pooling_model(tmp_path_factory):
    return make_dinov2_checkpoint(tmp_path_factory.mktemp("pooling"), pooling=True)


@pytest.fixture
def pooling(settings, pooling_model):
    settings.SIMILARITY = {**settings.SIMILARITY, "MODEL_NAME": str(pooling_model)}
    embedder.forget_loaded_models()
    yield
    embedder.forget_loaded_models()


def test_the_map_of_an_image_against_itself_peaks_in_the_planted_patch(api, pooling, dataset_a,
                                                                       django_capture_on_commit_callbacks):
    boxes = [(400, 96, 128, 128), (64, 300, 128, 128), (256, 176, 128, 128)]
    for number, (left, top, side, _) in enumerate(boxes):
        with django_capture_on_commit_callbacks(execute=True):
            asset = factories.asset(dataset_a, f"planted{number}.png",
                                    planted(box=(left, top, side, side), seed=number))
        tasks.embed_project(dataset_a.project_id)
        region = [left / 640, top / 480, side / 640, side / 480]
        body = api.get(f"/api/assets/{asset.pk}/match/{asset.pk}/",
                       {"region": ",".join(map(str, region))}).json()
        assert body["grid"] == {"rows": 16, "columns": 21}, body["grid"]
        assert body["image"] == {"width": 640, "height": 480}
        values = np.array(body["values"])
        row, column = np.unravel_index(values.argmax(), values.shape)
        assert (row, column) == (body["peak"]["row"], body["peak"]["column"])
        x, y = (column + 0.5) / 21, (row + 0.5) / 16
        assert region[0] <= x <= region[0] + region[2], (number, x, region)
        assert region[1] <= y <= region[1] + region[3], (number, y, region)
        assert body["query"]["region"] == region


def test_a_map_through_the_region_search_uses_the_region_and_both_sides(api, pooling, dataset_a,
                                                                       django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        query = factories.asset(dataset_a, "query.png", planted(box=(400, 96, 128, 128)))
        other = factories.asset(dataset_a, "other.png", planted(box=(64, 300, 128, 128), seed=5))
    tasks.embed_project(dataset_a.project_id)
    body = api.post(api_url(dataset_a.project_id), {
        "asset": query.pk, "region": [400 / 640, 96 / 480, 128 / 640, 128 / 480]}, format="json").json()
    image_id = body["query"]["id"]
    on_result = api.get(f"/api/query-images/{image_id}/match/{other.pk}/").json()
    assert on_result["query"]["kind"] == "image" and on_result["query"]["region"] is not None
    peak = on_result["peak"]
    assert 64 / 640 <= peak["x"] <= 192 / 640 and 300 / 480 <= peak["y"] <= 428 / 480
    assert on_result["description"].startswith("Strongest match in the ")
    assert "left" in on_result["description"]
    on_query = api.get(f"/api/query-images/{image_id}/match/{other.pk}/", {"side": "query"}).json()
    assert on_query["side"] == "query" and on_query["image"] == {"width": 640, "height": 480}
    # kept per pair, side and model: asking again computes nothing
    assert MatchMap.objects.count() == 2
    api.get(f"/api/query-images/{image_id}/match/{other.pk}/")
    assert MatchMap.objects.count() == 2


def test_the_png_overlay_has_the_images_proportions_and_colour(api, library):
    response = api.get(f"/api/assets/{library[0].pk}/match/{library[1].pk}/", {"format": "png"})
    assert response.status_code == 200 and response["Content-Type"] == "image/png"
    overlay = Image.open(io.BytesIO(response.content))
    assert overlay.mode == "RGBA" and overlay.size == (320, 240)
    alpha = np.asarray(overlay)[..., 3]
    assert alpha.min() >= 30 and alpha.max() >= 190  # see-through where weak, strong at the peak


def test_a_json_map_is_numbers_a_grid_and_a_text_alternative(api, library):
    body = api.get(f"/api/assets/{library[0].pk}/match/{library[3].pk}/").json()
    rows, columns = body["grid"]["rows"], body["grid"]["columns"]
    assert (rows, columns) == (16, 21)  # 320x240 seen whole: 224x294 -> 16x21 patches
    values = np.array(body["values"])
    assert values.shape == (rows, columns) and np.all(np.abs(values) <= 1.0001)
    assert body["max"] == pytest.approx(values.max(), abs=1e-3)
    assert body["description"].startswith("Strongest match in the ")
    assert body["model"] and body["side"] == "result" and body["query"]["kind"] == "asset"


def test_outsiders_get_404_on_both_match_endpoints(api, library, bob, dataset_a):
    from rest_framework.test import APIClient

    body = api.post(api_url(dataset_a.project_id),
                    {"asset": library[0].pk, "region": [0.1, 0.1, 0.5, 0.5]}, format="json").json()
    outsider = APIClient()
    outsider.force_authenticate(bob)
    assert outsider.get(f"/api/assets/{library[0].pk}/match/{library[1].pk}/").status_code == 404
    assert outsider.get(f"/api/query-images/{body['query']['id']}/match/{library[1].pk}/").status_code == 404
    assert outsider.get(f"/api/assets/{library[0].pk}/match/{library[1].pk}/",
                        {"format": "png"}).status_code == 404
    assert api.get(f"/api/assets/{library[0].pk}/match/999999/").status_code == 404
    assert not MatchMap.objects.exists()


def test_the_reverse_map_of_a_region_needs_its_image_still_visible(api, library, dataset_a,
                                                                  dataset_b):
    body = api.post(api_url(dataset_a.project_id),
                    {"asset": library[0].pk, "region": [0.1, 0.1, 0.5, 0.5]}, format="json").json()
    url = f"/api/query-images/{body['query']['id']}/match/{library[1].pk}/"
    assert api.get(url, {"side": "query"}).status_code == 200
    MatchMap.objects.all().delete()
    moved = library[0]
    moved.dataset = dataset_b  # into a project alice is not in
    moved.save()
    assert api.get(url, {"side": "query"}).status_code == 404  # not its pixels any more
    assert api.get(url).status_code == 200  # the region's kept vector against a result


def test_a_map_across_two_projects_or_a_bad_side_is_a_400(api, library, alice, dataset_a,
                                                           django_capture_on_commit_callbacks):
    mine = factories.project("Mine too", {alice: "owner"})
    with django_capture_on_commit_callbacks(execute=True):
        elsewhere = factories.asset(factories.dataset(mine), "there.png", photo(seed=4))
    response = api.get(f"/api/assets/{library[0].pk}/match/{elsewhere.pk}/")
    assert response.status_code == 400 and "not in the same project" in response.json()["detail"]
    response = api.get(f"/api/assets/{library[0].pk}/match/{library[1].pk}/", {"side": "left"})
    assert response.status_code == 400 and "side must be" in response.json()["detail"]
    response = api.get(f"/api/assets/{library[0].pk}/match/{library[1].pk}/",
                       {"region": "0.1,0.1", "format": "png"})
    assert response.status_code == 400 and response["Content-Type"] == "application/json"
    assert response.json()["code"] == "bad_region"


def test_in_worker_mode_the_worker_computes_the_map(api, library, settings, monkeypatch):
    settings.SIMILARITY = {**settings.SIMILARITY, "QUERY_EMBEDDING": "worker", "QUERY_TIMEOUT": 5}
    queued = []

    def run_now(name, *args, **kwargs):  # the task as qcluster would run it, right away
        queued.append(name)
        assert tasks.compute_match(*args) is True

    monkeypatch.setattr("django_q.tasks.async_task", run_now)
    body = api.get(f"/api/assets/{library[0].pk}/match/{library[2].pk}/").json()
    assert queued == ["similarity.tasks.compute_match"] and body["grid"]["rows"] == 16
    web = api.get(f"/api/assets/{library[0].pk}/match/{library[2].pk}/").json()
    assert queued == ["similarity.tasks.compute_match"]  # kept: not queued again
    assert web["values"] == body["values"]


def test_a_silent_worker_is_a_503_and_leaves_nothing(api, library, settings, monkeypatch):
    settings.SIMILARITY = {**settings.SIMILARITY, "QUERY_EMBEDDING": "worker",
                           "QUERY_TIMEOUT": 0.2}
    monkeypatch.setattr("django_q.tasks.async_task", lambda *a, **k: None)
    response = api.get(f"/api/assets/{library[0].pk}/match/{library[2].pk}/")
    assert response.status_code == 503 and "did not answer" in response.json()["detail"]
    assert not MatchMap.objects.exists()


def test_a_replaced_file_is_a_new_map_and_old_maps_expire(api, library, settings):
    api.get(f"/api/assets/{library[0].pk}/match/{library[1].pk}/")
    asset = library[1]
    asset.file.save("replaced.png", factories.upload("replaced.png", photo(seed=30)))
    api.get(f"/api/assets/{library[0].pk}/match/{library[1].pk}/")
    assert MatchMap.objects.count() == 2
    MatchMap.objects.update(created=timezone.now() - timedelta(hours=25))
    assert sweep.sweep()["match_maps"] == 2
    assert not MatchMap.objects.exists()


def test_the_pages_match_endpoint_answers_json_with_its_overlay(web, library):
    url = reverse("similarity:match", args=[library[0].pk, library[1].pk])
    body = web.get(url).json()
    assert body["png_url"] == url + "?format=png" and len(body["legend"]) == 5
    assert web.get(body["png_url"])["Content-Type"] == "image/png"
    assert web.get(url, {"side": "nope"}).status_code == 400


def test_words_for_places():
    assert where(0.1, 0.1) == "the upper left quarter"
    assert where(0.9, 0.8) == "the lower right quarter"
    assert where(0.5, 0.55) == "the centre"
    assert where(0.5, 0.1) == "the upper middle"
    grid = np.zeros((4, 4), dtype=np.float32)
    grid[0, 0] = 0.5
    assert describe(grid) == "Strongest match in the upper left quarter (similarity 0.50 there, " \
                             "0.00 at the weakest)."
    assert picture.overlay_size(1000, 10) == (320, 3)
