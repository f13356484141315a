"""POST /api/projects/{id}/similar/: several examples and counter-examples, one answer
shape with GET /api/assets/{id}/similar/, and min_similarity on both."""

from __future__ import annotations

import numpy as np
import pytest

from similarity import tasks
from similarity.models import Embedding
from tests import factories

pytestmark = pytest.mark.django_db


@pytest.fixture
def images(dataset_a, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        made = [factories.asset(dataset_a, f"img{i}.png", factories.pattern_image(i % 3, seed=i))
                for i in range(9)]
    tasks.embed_project(dataset_a.project_id)
    return made


def stored_unit(asset) -> np.ndarray:
    stored = Embedding.objects.get(asset=asset).vector
    vector = np.asarray(getattr(stored, "to_list", lambda: stored)(), dtype=np.float64)
    return vector / np.linalg.norm(vector)


def expected_ranking(images, positives, negatives=()) -> list[int]:
    query = np.mean([stored_unit(a) for a in positives], axis=0)
    if negatives:
        query = query - 0.5 * np.mean([stored_unit(a) for a in negatives], axis=0)
    query /= np.linalg.norm(query)
    used = {a.pk for a in (*positives, *negatives)}
    scored = [(-float(stored_unit(a) @ query), a.pk) for a in images if a.pk not in used]
    return [pk for _, pk in sorted(scored)]


def url(project_id) -> str:
    return f"/api/projects/{project_id}/similar/"


def test_one_example_answers_like_the_asset_endpoint(api, images, dataset_a):
    by_asset = api.get(f"/api/assets/{images[0].pk}/similar/?limit=5").json()
    by_project = api.post(url(dataset_a.project_id), {"positive": [images[0].pk], "limit": 5},
                          format="json").json()
    assert [r["asset"]["id"] for r in by_project["results"]] == [
        r["asset"]["id"] for r in by_asset["results"]]
    assert set(by_project) == set(by_asset)  # the same response shape
    assert by_project["query"]["id"] == images[0].pk


def test_examples_and_counter_examples_rank_like_numpy(api, images, dataset_a):
    positives, negatives = images[:2], images[2:3]
    body = api.post(url(dataset_a.project_id), {
        "positive": [a.pk for a in positives], "negative": [a.pk for a in negatives],
    }, format="json").json()
    got = [r["asset"]["id"] for r in body["results"]]
    assert len(got) == 6 and body["scope_size"] == 6
    want = expected_ranking(images, positives, negatives)
    sims = [r["similarity"] for r in body["results"]]
    assert sims == sorted(sims, reverse=True)
    # identical order except where half-precision ties may swap neighbours
    for position, (a, b) in enumerate(zip(got, want, strict=True)):
        if a != b:
            assert abs(sims[position] - sims[got.index(b)]) < 1e-3
    assert [q["id"] for q in body["queries"]] == [a.pk for a in positives]
    assert [n["id"] for n in body["negatives"]] == [a.pk for a in negatives]


def test_multipart_lists_work_too(api, images, dataset_a):
    body = api.post(url(dataset_a.project_id),
                    {"positive": [images[0].pk, images[3].pk], "order": "least"},
                    format="multipart").json()
    sims = [r["similarity"] for r in body["results"]]
    assert len(sims) == 7 and sims == sorted(sims)


def test_min_similarity_trims_both_endpoints(api, images, dataset_a):
    full = api.get(f"/api/assets/{images[0].pk}/similar/").json()["results"]
    cut = sorted(r["similarity"] for r in full)[len(full) // 2]
    trimmed = api.get(f"/api/assets/{images[0].pk}/similar/?min_similarity={cut}").json()
    assert trimmed["results"] == [r for r in full if r["similarity"] >= cut]
    assert 0 < len(trimmed["results"]) < len(full)
    posted = api.post(url(dataset_a.project_id), {"positive": [images[0].pk],
                                                  "min_similarity": cut}, format="json").json()
    assert [r["asset"]["id"] for r in posted["results"]] == [
        r["asset"]["id"] for r in trimmed["results"]]
    for bad in ("2", "nan", "high"):
        response = api.get(f"/api/assets/{images[0].pk}/similar/?min_similarity={bad}")
        assert response.status_code == 400 and "min_similarity" in response.json()["detail"]


def test_outsiders_and_other_projects_get_404(api, images, dataset_a, bob, dataset_b):
    from rest_framework.test import APIClient

    other = factories.asset(dataset_b, "theirs.png")
    outsider = APIClient()
    outsider.force_authenticate(bob)
    # an asset of another project (even one the caller could see) is a 404, not a hint
    assert api.post(url(dataset_a.project_id), {"positive": [other.pk]},
                    format="json").status_code == 404
    assert outsider.post(url(dataset_a.project_id), {"positive": [images[0].pk]},
                         format="json").status_code == 404
    assert api.post(url(999_999), {"positive": [images[0].pk]}, format="json").status_code == 404
    assert api.post(url(dataset_a.project_id), {"positive": ["not-a-key"]},
                    format="json").status_code == 404


def test_bad_requests_say_why(api, images, dataset_a):
    empty = api.post(url(dataset_a.project_id), {"positive": []}, format="json")
    assert empty.status_code == 400 and "positive" in empty.json()
    same = api.post(url(dataset_a.project_id), {"positive": [images[0].pk],
                                                "negative": [images[0].pk]}, format="json")
    assert same.status_code == 400 and "both an example and a counter" in same.json()["detail"]
    upload = api.post(url(dataset_a.project_id), {"image": factories.upload(
        "q.png", b"not an image")}, format="multipart")  # images: tests/test_query_image.py
    assert upload.status_code == 400 and upload.json()["code"] == "bad_image"
    assert upload.json()["detail"].startswith("q.png: the file is not an image")
