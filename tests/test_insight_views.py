"""Duplicates and Most unusual: planted copies found, planted outliers first, 409 while not
ready, and every page and API answer isolated to the user's projects."""

from __future__ import annotations

import io
import re

import numpy as np
import pytest
from django.test import Client
from django.urls import reverse
from PIL import Image

from datasets.integration import MembershipAccess
from datasets.models import Asset
from similarity import insight_tasks, tasks
from similarity.insight import stage
from similarity.models import DuplicateMark, Embedding, InsightState
from tests import factories
from tests.test_insight_engine import add_vectors

pytestmark = pytest.mark.django_db

#: Planted copies score >= 0.9995 with the tiny random test model, these 8 distinct
#: scenes at most 0.981 (measured; see the README's insight section).
THRESHOLD = 0.995


def scene(seed: int, size: int = 160) -> Image.Image:
    """A photo-sized picture of crossed waves (distinct per seed)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size].astype(float)
    angle, freq = rng.random() * np.pi, 0.05 + 0.4 * rng.random()
    wave = np.sin((xx * np.cos(angle) + yy * np.sin(angle)) * freq + rng.random() * 6)
    other = np.sin((xx * np.sin(angle) - yy * np.cos(angle)) * freq * rng.random() * 2)
    img = np.stack([wave, other, wave * other], -1) * rng.random(3) + rng.random(3)
    img += rng.normal(0, 0.05, img.shape)
    img = (img - img.min()) / (img.max() - img.min())
    return Image.fromarray((img * 255).astype(np.uint8))


def encode(image: Image.Image, fmt: str = "PNG", **options) -> bytes:
    out = io.BytesIO()
    image.save(out, fmt, **options)
    return out.getvalue()


@pytest.fixture
def planted(dataset_a, django_capture_on_commit_callbacks):
    """8 distinct scenes plus re-encoded, resized, cropped and byte-identical copies."""
    scenes = [scene(seed) for seed in range(8)]
    with django_capture_on_commit_callbacks(execute=True):
        originals = [factories.asset(dataset_a, f"scene{i}.png", encode(im))
                     for i, im in enumerate(scenes)]
        copies = {
            "jpeg1": factories.asset(dataset_a, "scene1.jpg", encode(scenes[1], "JPEG", quality=70)),
            "small2": factories.asset(dataset_a, "scene2-small.png",
                                      encode(scenes[2].resize((120, 120)))),
            "crop3": factories.asset(dataset_a, "scene3-crop.png",
                                     encode(scenes[3].crop((6, 6, 154, 154)))),
            "same4": factories.asset(dataset_a, "scene4-copy.png", encode(scenes[4])),
            "jpeg5": factories.asset(dataset_a, "scene5.jpg", encode(scenes[5], "JPEG", quality=80)),
            "small5": factories.asset(dataset_a, "scene5-small.png",
                                      encode(scenes[5].resize((100, 100)))),
        }
    tasks.embed_project(str(dataset_a.project_id))  # queues the insight stage's own task
    insight_tasks.run_until_done(str(dataset_a.project_id))  # what the worker runs next
    return originals, copies


def group_ids(groups: list[dict]) -> list[tuple[bool, set]]:
    return [(g["identical"], {item["asset"]["id"] for item in g["assets"]}) for g in groups]


def test_planted_near_duplicates_are_grouped_identical_files_first(api, planted, project_a):
    originals, copies = planted
    state = InsightState.objects.get(project_id=str(project_a.pk))
    assert state.state == "ready" and state.total == 14
    response = api.get(f"/api/projects/{project_a.pk}/duplicates/", {"threshold": THRESHOLD})
    assert response.status_code == 200, response.content
    assert group_ids(response.data["results"]) == [
        (True, {originals[4].pk, copies["same4"].pk}),
        (False, {originals[5].pk, copies["jpeg5"].pk, copies["small5"].pk}),
        (False, {originals[1].pk, copies["jpeg1"].pk}),
        (False, {originals[2].pk, copies["small2"].pk}),
        (False, {originals[3].pk, copies["crop3"].pk}),
    ]
    group = response.data["results"][1]
    first = group["assets"][0]
    assert first["similarity"] == 1.0 and first["asset"]["id"] == originals[5].pk  # most pixels
    assert first["width"] == 160 and first["file_size"] > 0
    assert all(THRESHOLD <= item["similarity"] < 1.0 for item in group["assets"][1:])
    assert response.data["count"] == 5 and response.data["threshold"] == THRESHOLD
    paged = api.get(f"/api/projects/{project_a.pk}/duplicates/",
                    {"threshold": THRESHOLD, "limit": 2, "offset": 2})
    assert group_ids(paged.data["results"]) == group_ids(response.data["results"])[2:4]
    # a lower threshold merges more; a bad one is refused
    looser = api.get(f"/api/projects/{project_a.pk}/duplicates/", {"threshold": 0.5})
    assert looser.data["count"] <= 5
    assert sum(len(g["assets"]) for g in looser.data["results"]) >= 11
    assert api.get(f"/api/projects/{project_a.pk}/duplicates/",
                   {"threshold": "2"}).status_code == 400


def test_duplicates_page_keep_this_one_and_hide(web, planted, project_a):
    originals, copies = planted
    url = reverse("similarity:insight-duplicates", args=[project_a.pk])
    page = web.get(url, {"threshold": THRESHOLD})
    assert page.status_code == 200
    html = page.content.decode()
    assert html.count('data-testid="dup-group"') == 5 and "Identical files" in html
    assert "160\u00d7160" in html and "Keep this one" in html
    rows = dict(Embedding.objects.values_list("asset_id", "pk"))
    group = [originals[1].pk, copies["jpeg1"].pk]
    response = web.post(reverse("similarity:insight-keep", args=[project_a.pk]), {
        "rows": ",".join(str(rows[pk]) for pk in group), "keep": rows[copies["jpeg1"].pk],
        "threshold": THRESHOLD})
    assert response.status_code == 302
    assert DuplicateMark.objects.get(pk=rows[originals[1].pk]).mark == "delete"
    assert DuplicateMark.objects.get(pk=rows[copies["jpeg1"].pk]).mark == "keep"
    after = web.get(url, {"threshold": THRESHOLD}).content.decode()
    assert after.count('data-testid="dup-group"') == 4  # the reviewed group is hidden
    assert "1 image marked for deletion" in after
    assert web.get(url, {"threshold": THRESHOLD, "reviewed": "1"}).content.decode().count(
        'data-testid="dup-group"') == 5
    # hide: every image kept
    pair = [rows[originals[2].pk], rows[copies["small2"].pk]]
    web.post(reverse("similarity:insight-keep", args=[project_a.pk]),
             {"rows": ",".join(map(str, pair))})
    assert set(DuplicateMark.objects.filter(pk__in=pair).values_list("mark", flat=True)) == {"keep"}


def test_marked_images_are_listed_selected_and_deleted_in_one_action(web, planted, project_a,
                                                                     alice, bob):
    """Issue 24, item 5: "Keep this one" leaves something to act on."""
    originals, copies = planted
    rows = dict(Embedding.objects.values_list("asset_id", "pk"))
    keep = reverse("similarity:insight-keep", args=[project_a.pk])
    group = [originals[5].pk, copies["jpeg5"].pk, copies["small5"].pk]
    web.post(keep, {"rows": ",".join(str(rows[pk]) for pk in group), "keep": rows[originals[5].pk],
                    "threshold": THRESHOLD})
    page = web.get(reverse("similarity:insight-duplicates", args=[project_a.pk]),
                   {"threshold": THRESHOLD}).content.decode()
    marked_url = reverse("similarity:insight-duplicates-marked", args=[project_a.pk])
    assert f'href="{marked_url}" data-testid="marked-link">2 images marked for deletion' in page
    marked = web.get(marked_url).content.decode()
    ids = [int(i) for i in re.findall(r'<li class="tile" data-asset-id="(\d+)"', marked)]
    assert ids == sorted([copies["jpeg5"].pk, copies["small5"].pk])
    assert marked.count("data-select-box hidden checked") == 2  # both already selected
    assert "2 images were marked for deletion" in marked and "Delete" in marked
    # the toolbar's delete (confirmed, as the page's dialog does) removes exactly them
    response = web.post(reverse("similarity:action", args=[project_a.pk, "delete"]),
                        {"ids": [str(i) for i in ids], "confirm": "1", "next": marked_url})
    assert response.status_code in (302, 303), response.content[:300]
    assert not Asset.objects.filter(pk__in=ids).exists()
    assert Asset.objects.filter(pk=originals[5].pk).exists()
    assert "Nothing is marked for deletion." in web.get(marked_url).content.decode()
    # outsiders: 404
    outsider = Client()
    outsider.force_login(bob)
    assert outsider.get(marked_url).status_code == 404


def test_marked_images_can_be_kept_after_all(web, planted, project_a, alice):
    originals, copies = planted
    rows = dict(Embedding.objects.values_list("asset_id", "pk"))
    web.post(reverse("similarity:insight-keep", args=[project_a.pk]), {
        "rows": f"{rows[originals[1].pk]},{rows[copies['jpeg1'].pk]}",
        "keep": rows[originals[1].pk]})
    response = web.post(reverse("similarity:insight-unmark", args=[project_a.pk]),
                        {"id": [copies["jpeg1"].pk]})
    assert response.status_code == 302
    assert not DuplicateMark.objects.filter(pk=rows[copies["jpeg1"].pk]).exists()
    assert "Nothing is marked for deletion." in web.get(
        reverse("similarity:insight-duplicates-marked", args=[project_a.pk])).content.decode()


def test_planted_outliers_rank_first(api, web, project_a, dataset_a):
    rng = np.random.default_rng(4)
    centre = rng.standard_normal(32)
    usual = centre + rng.normal(0, 0.3, (60, 32))
    odd = rng.standard_normal((3, 32)) * 3
    vectors = np.vstack([usual, odd]).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    ids = add_vectors(dataset_a, vectors)
    second = factories.dataset(project_a, "second")
    add_vectors(second, (usual[:5] / np.linalg.norm(usual[:5], axis=1, keepdims=True))
                .astype(np.float32), start=500)
    stage.analyse_project(str(project_a.pk), hash_files=False)
    response = api.get(f"/api/projects/{project_a.pk}/outliers/", {"limit": 10})
    assert response.status_code == 200
    ranked = [item["asset"]["id"] for item in response.data["results"]]
    assert set(ranked[:3]) == set(ids[-3:])
    scores = [item["score"] for item in response.data["results"]]
    assert scores == sorted(scores, reverse=True) and response.data["count"] == 68
    only = api.get(f"/api/projects/{project_a.pk}/outliers/", {"group": second.pk})
    assert only.data["count"] == 5
    assert {item["asset"]["id"] for item in only.data["results"]} == set(
        Asset.objects.filter(dataset=second).values_list("pk", flat=True))
    page = web.get(reverse("similarity:insight-outliers", args=[project_a.pk]))
    html = page.content.decode()
    assert page.status_code == 200 and html.index(f'data-asset-id="{ranked[0]}"') < html.index(
        f'data-asset-id="{ranked[5]}"')
    assert "second" in html  # the dataset filter


def test_409_with_progress_while_not_analysed(api, web, project_a, dataset_a):
    add_vectors(dataset_a, np.eye(4, 16, dtype=np.float32))
    for name in ("duplicates", "outliers"):
        response = api.get(f"/api/projects/{project_a.pk}/{name}/")
        assert response.status_code == 409
        assert response.data["insight"]["ready"] is False
    InsightState.objects.create(project_id=str(project_a.pk), state="analysing", total=10_000,
                                analysed=4_000)
    response = api.get(f"/api/projects/{project_a.pk}/duplicates/")
    assert response.status_code == 409
    assert response.data["insight"]["message"] == "Analysing 4,000 of 10,000"
    page = web.get(reverse("similarity:insight-duplicates", args=[project_a.pk]))
    assert page.status_code == 200 and "Analysing 4,000 of 10,000" in page.content.decode()
    status = web.get(reverse("similarity:insight-status", args=[project_a.pk])).json()
    assert status["percent"] == 40


def test_every_page_and_answer_is_isolated(api, web, bob, project_a, project_b, dataset_a,
                                           dataset_b):
    add_vectors(dataset_a, np.eye(6, 16, dtype=np.float32))
    add_vectors(dataset_b, np.eye(6, 16, dtype=np.float32), start=100)
    for project in (project_a, project_b):
        stage.analyse_project(str(project.pk), hash_files=False)
    theirs = str(project_b.pk)
    for name in ("duplicates", "outliers", "insight"):
        assert api.get(f"/api/projects/{theirs}/{name}/").status_code == 404
        assert api.get(f"/api/projects/999999/{name}/").status_code == 404
        assert api.get(f"/api/projects/{project_a.pk}/{name}/").status_code == 200
    for name in ("insight-duplicates", "insight-outliers", "insight-status"):
        assert web.get(reverse(f"similarity:{name}", args=[theirs])).status_code == 404
        assert web.get(reverse(f"similarity:{name}", args=["nope"])).status_code == 404
    rows = list(Embedding.objects.filter(project_id=theirs).values_list("pk", flat=True)[:2])
    keep_url = reverse("similarity:insight-keep", args=[theirs])
    assert web.post(keep_url, {"rows": ",".join(map(str, rows))}).status_code == 404
    # their rows through our project's URL: not found either
    ours = reverse("similarity:insight-keep", args=[project_a.pk])
    assert web.post(ours, {"rows": ",".join(map(str, rows))}).status_code == 404
    assert not DuplicateMark.objects.exists()
    # only our project's assets appear in our answers
    ranked = api.get(f"/api/projects/{project_a.pk}/outliers/").data["results"]
    assert {item["asset"]["id"] for item in ranked} == set(
        Asset.objects.filter(dataset=dataset_a).values_list("pk", flat=True))
    anonymous = Client().get(reverse("similarity:insight-outliers", args=[project_a.pk]))
    assert anonymous.status_code == 302


class HidesSomeAssets(MembershipAccess):
    narrows_assets = True

    def filter_assets(self, user, queryset):
        return queryset.exclude(original_filename__startswith="hidden")


def test_a_narrowing_policy_hides_assets_from_groups_and_ranking(api, settings, project_a,
                                                                 dataset_a):
    vectors = np.repeat(np.eye(3, 16, dtype=np.float32), 2, axis=0)  # three exact pairs
    ids = add_vectors(dataset_a, vectors)
    Asset.objects.filter(pk=ids[0]).update(original_filename="hidden.png")
    stage.analyse_project(str(project_a.pk), hash_files=False)
    settings.SIMILARITY = {**settings.SIMILARITY,
                           "ACCESS_POLICY": "tests.test_insight_views.HidesSomeAssets"}
    groups = api.get(f"/api/projects/{project_a.pk}/duplicates/").data
    assert groups["count"] == 2  # the pair with a hidden member is no group for this user
    assert ids[0] not in {i["asset"]["id"] for g in groups["results"] for i in g["assets"]}
    ranked = api.get(f"/api/projects/{project_a.pk}/outliers/").data
    assert ranked["count"] == 5 and ids[0] not in {i["asset"]["id"] for i in ranked["results"]}


def test_project_page_links_to_duplicates_and_outliers(web, project_a):
    html = web.get(reverse("datasets:project", args=[project_a.pk])).content.decode()
    assert reverse("similarity:insight-duplicates", args=[project_a.pk]) in html
    assert reverse("similarity:insight-outliers", args=[project_a.pk]) in html


def chain(dims: int = 16) -> np.ndarray:
    """A, B, C with A·B = B·C = 0.97 but A·C = cos(2θ) ≈ 0.88, then two unrelated images."""
    theta = np.arccos(0.97)
    vectors = np.zeros((5, dims), dtype=np.float32)
    for i in range(3):
        vectors[i, 0], vectors[i, 1] = np.cos(i * theta), np.sin(i * theta)
    vectors[3, 5] = vectors[4, 9] = 1.0
    return vectors


def test_near_duplicate_groups_do_not_chain(api, project_a, dataset_a):
    ids = add_vectors(dataset_a, chain())
    stage.analyse_project(str(project_a.pk), hash_files=False)
    groups = api.get(f"/api/projects/{project_a.pk}/duplicates/", {"threshold": 0.95}).data
    assert groups["count"] == 1
    members = [item["asset"]["id"] for item in groups["results"][0]["assets"]]
    assert not {ids[0], ids[2]} <= set(members)  # 0.88 apart: never one group
    assert all(item["similarity"] >= 0.95 for item in groups["results"][0]["assets"])
    # each member is there for its similarity to the reference (the first), as shown
    scores = [item["similarity"] for item in groups["results"][0]["assets"]]
    assert scores == [1.0, pytest.approx(0.97, abs=2e-3)]


def test_duplicate_groups_are_not_linked_through_an_image_the_user_cannot_see(
        api, settings, project_a, dataset_a):
    # the hidden image is 0.97 to both others; they are only 0.88 to each other
    vectors = chain()[[1, 0, 2, 3, 4]]
    ids = add_vectors(dataset_a, vectors)
    Asset.objects.filter(pk=ids[0]).update(original_filename="hidden.png")
    stage.analyse_project(str(project_a.pk), hash_files=False)
    assert api.get(f"/api/projects/{project_a.pk}/duplicates/",
                   {"threshold": 0.95}).data["count"] == 1  # everyone sees hidden + one
    settings.SIMILARITY = {**settings.SIMILARITY,
                           "ACCESS_POLICY": "tests.test_insight_views.HidesSomeAssets"}
    groups = api.get(f"/api/projects/{project_a.pk}/duplicates/", {"threshold": 0.95}).data
    assert groups["count"] == 0, groups["results"]


def test_a_threshold_slider_reads_the_neighbour_lists_once(api, project_a, dataset_a):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from similarity.insight import reading

    add_vectors(dataset_a, chain())
    stage.analyse_project(str(project_a.pk), hash_files=False)
    reading.duplicate_groups(str(project_a.pk), 0.9)
    for threshold in (0.500001, 0.500002, 0.6, 0.75, 0.96, 0.99):
        with CaptureQueriesContext(connection) as seen:
            reading.duplicate_groups(str(project_a.pk), threshold)
        assert not [q for q in seen.captured_queries if "neighbour_ids" in q["sql"]], threshold
        assert len(seen.captured_queries) <= 2  # the stage's state, the visible rows
    answer = api.get(f"/api/projects/{project_a.pk}/duplicates/", {"threshold": "0.5000001"})
    assert answer.data["threshold"] == 0.5  # the effective threshold, in steps of 0.001
