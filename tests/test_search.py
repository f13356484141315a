"""Similarity search: exact counts with the HNSW index in use, NumPy ground truth,
project isolation, query first, messages, API and admin."""

from __future__ import annotations

import numpy as np
import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from datasets.models import Asset, Dataset, Project
from similarity import tasks
from similarity.models import Embedding, Notification, ProjectReadiness
from similarity.search import SearchError, find_similar
from similarity.testing import clustered_unit_vectors, load_embeddings
from similarity.vectors import hnsw
from similarity.vectors.model_keys import current_model_key
from tests import factories

DIMS = 384


def make_assets(dataset: Dataset, count: int) -> list[int]:
    rows = Asset.objects.bulk_create(
        [Asset(dataset=dataset, file=f"synthetic/{i}.png", original_filename=f"s{i}.png",
               kind="image", content_type="image/png") for i in range(count)],
        batch_size=5000,
    )
    return [row.pk for row in rows]


class Scope:
    def __init__(self, project: Project, ids: list[int], vectors: np.ndarray):
        self.project, self.ids, self.vectors = project, np.array(ids), vectors
        # What the database holds: halfvec-rounded vectors.
        self.stored = vectors.astype(np.float16).astype(np.float64)

    def brute_force(self, query_index: int, order: str, k: int = 100):
        """The expected ranking: every other image of the scope (the query is the reference,
        never a result)."""
        q = self.stored[query_index]
        distance = 1 - (self.stored @ q) / (np.linalg.norm(self.stored, axis=1) * np.linalg.norm(q))
        ranking = np.argsort(distance, kind="stable")
        if order == "least":
            ranking = ranking[::-1]
        ranking = ranking[ranking != query_index]
        return self.ids[ranking[:k]], distance[ranking[:k]]


def create_scope(name: str, count: int, seed: int, key: str) -> Scope:
    project = Project.objects.create(name=name)
    dataset = Dataset.objects.create(project=project, name="d")
    ids = make_assets(dataset, count)
    vectors = clustered_unit_vectors(count, DIMS, clusters=max(5, count // 100), seed=seed)
    load_embeddings(ids, [project.pk] * count, vectors, key)
    return Scope(project, ids, vectors)


@pytest.fixture(scope="module")
def big_table(django_db_setup, django_db_blocker):
    """A 500-image project and a 5,000-image one, in a table of 50,000 other images."""
    with django_db_blocker.unblock():
        key = current_model_key()
        small = create_scope("small", 500, seed=1, key=key)
        big = create_scope("big", 5000, seed=2, key=key)
        others = [create_scope(f"other {i}", 10_000, seed=10 + i, key=key) for i in range(5)]
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE similarity_embedding")
        yield {"small": small, "big": big, "others": others, "key": key}
        for scope in [small, big, *others]:
            hnsw.drop_other_indexes(scope.project.pk)
        Embedding.objects.all().delete()
        ProjectReadiness.objects.all().delete()
        Notification.objects.all().delete()
        Project.objects.all().delete()


def asset(scope: Scope, index: int) -> Asset:
    return Asset.objects.get(pk=scope.ids[index])


def plan_of(result_queries) -> str:
    sql = next(q["sql"] for q in result_queries if "<=>" in q["sql"])
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT set_config('hnsw.ef_search', '400', true)")
        cursor.execute("EXPLAIN " + sql)
        return "\n".join(row[0] for row in cursor.fetchall())


def assert_same_ranking(result, expected_ids, expected_distances):
    got_ids = [m.asset.pk for m in result.matches]
    got = np.array([m.distance for m in result.matches])
    assert len(got_ids) == len(expected_ids)
    assert np.allclose(got, expected_distances, atol=2e-4)
    # Identical order, except that rows whose distances tie within rounding may swap.
    for position, (a, b) in enumerate(zip(got_ids, expected_ids, strict=True)):
        if a != b:
            assert abs(got[position] - expected_distances[position]) < 2e-4


def recall(result, expected_ids) -> float:
    return len({m.asset.pk for m in result.matches} & set(expected_ids.tolist())) / len(expected_ids)


@pytest.mark.django_db
@pytest.mark.parametrize("order", ["most", "least"])
def test_small_project_exact_scan_matches_brute_force(big_table, order):
    scope = big_table["small"]
    for query_index in (0, 123, 499):
        result = find_similar(asset(scope, query_index), order=order, limit=100)
        assert result.exact and result.scope_size == 499
        assert len(result.matches) == 100
        ids, distances = scope.brute_force(query_index, order)
        assert_same_ranking(result, ids, distances)
        for match in result.matches:
            assert match.similarity == pytest.approx(1 - match.distance)
        assert scope.ids[query_index] not in {m.asset.pk for m in result.matches}


@pytest.mark.django_db
def test_big_project_in_big_table_uses_its_index_and_returns_exactly_100(big_table, settings):
    settings.SIMILARITY = {**settings.SIMILARITY, "EXACT_SEARCH_MAX_ROWS": 1000}
    scope = big_table["big"]
    assert hnsw.ensure_project_index(scope.project.pk, big_table["key"])
    recalls = []
    for query_index in (0, 1000, 2500, 4999):
        with CaptureQueriesContext(connection) as queries:
            result = find_similar(asset(scope, query_index), order="most", limit=100)
        assert not result.exact, "the HNSW index should have answered"
        assert "similarity_hnsw_p" in plan_of(queries.captured_queries)
        assert len(result.matches) == 100
        assert scope.ids[query_index] not in {m.asset.pk for m in result.matches}
        assert {m.asset.dataset.project_id for m in result.matches} == {scope.project.pk}
        ids, _ = scope.brute_force(query_index, "most")
        recalls.append(recall(result, ids))
    assert min(recalls) >= 0.95, recalls

    # Least similar is an exact scan of the same project, identical to brute force.
    result = find_similar(asset(scope, 7), order="least", limit=100)
    assert result.exact and len(result.matches) == 100
    assert_same_ranking(result, *scope.brute_force(7, "least"))


@pytest.mark.django_db
def test_an_index_scan_that_misses_the_query_image_is_answered_exactly(
    big_table, settings, monkeypatch
):
    """On tightly clustered data a 1M-row HNSW graph returned another cluster's rows
    (recall 0) for some queries. A one-image query is itself in the index at distance 0:
    a scan that does not find it went astray, so the exact path answers."""
    settings.SIMILARITY = {**settings.SIMILARITY, "EXACT_SEARCH_MAX_ROWS": 1000}
    scope = big_table["big"]
    assert hnsw.ensure_project_index(scope.project.pk, big_table["key"])
    real_scan = hnsw.scan
    query = asset(scope, 321)

    def astray(queryset, vector, limit):  # a full answer, far from the query
        return real_scan(queryset, -vector, limit)

    monkeypatch.setattr(hnsw, "scan", astray)
    result = find_similar(query, order="most", limit=100)
    assert result.exact and len(result.matches) == 100
    assert_same_ranking(result, *scope.brute_force(321, "most"))

    monkeypatch.setattr(hnsw, "scan", real_scan)  # a healthy scan is still used
    assert not find_similar(query, order="most", limit=100).exact


@pytest.mark.django_db
def test_small_project_with_a_forced_index_still_returns_every_row(big_table, settings):
    settings.SIMILARITY = {**settings.SIMILARITY, "EXACT_SEARCH_MAX_ROWS": 100}
    scope = big_table["small"]
    hnsw.ensure_project_index(scope.project.pk, big_table["key"], force=True)
    try:
        result = find_similar(asset(scope, 42), limit=100)
        assert not result.exact and len(result.matches) == 100
        assert recall(result, scope.brute_force(42, "most")[0]) >= 0.95
    finally:
        hnsw.drop_other_indexes(scope.project.pk)


@pytest.mark.django_db
def test_table_wide_filter_never_leaks_other_projects(big_table):
    # Copy the query's vector into another project: closer than anything, still invisible.
    scope, other = big_table["small"], big_table["others"][0]
    query_vector = scope.vectors[5]
    row = Embedding.objects.get(asset_id=other.ids[0])
    row.vector = query_vector.astype(np.float16)
    row.save(update_fields=["vector"])
    result = find_similar(asset(scope, 5), limit=100)
    assert other.ids[0] not in {m.asset.pk for m in result.matches}
    assert {m.asset.dataset.project_id for m in result.matches} == {scope.project.pk}


# --- behaviour on real uploads -----------------------------------------------------------


@pytest.fixture
def embedded(dataset_a, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        made = [factories.asset(dataset_a, f"img{i}.png", factories.pattern_image(i % 3, seed=i))
                for i in range(7)]
    tasks.embed_project(dataset_a.project_id)
    return made


@pytest.mark.django_db
def test_returns_min_of_limit_and_scope(embedded):
    # The query is the reference, never a result: both orders rank the 6 others.
    most = find_similar(embedded[0])
    assert len(most.matches) == 6 and most.scope_size == 6
    assert len(find_similar(embedded[0], limit=3).matches) == 3
    least = find_similar(embedded[0], order="least")
    assert len(least.matches) == 6 and embedded[0] not in [m.asset for m in least.matches]
    assert [m.asset for m in least.matches] == [m.asset for m in most.matches][::-1]


@pytest.mark.django_db
def test_exact_duplicates_rank_first_and_the_query_never(dataset_a, django_capture_on_commit_callbacks):
    data = factories.pattern_image(0, seed=1)
    with django_capture_on_commit_callbacks(execute=True):
        copies = [factories.asset(dataset_a, f"dup{i}.png", data) for i in range(4)]
        other = factories.asset(dataset_a, "other.png", factories.pattern_image(1, seed=2))
    tasks.embed_project(dataset_a.project_id)
    for query in copies:
        result = find_similar(query)
        assert [m.asset for m in result.matches[:3]] == [c for c in copies if c != query]
        assert all(m.similarity == pytest.approx(1.0, abs=1e-3) for m in result.matches[:3])
        assert result.matches[3].asset == other and query not in [m.asset for m in result.matches]


@pytest.mark.django_db
def test_narrowed_to_a_dataset(embedded, dataset_a, project_a, django_capture_on_commit_callbacks):
    second = factories.dataset(project_a, "second")
    with django_capture_on_commit_callbacks(execute=True):
        extra = factories.asset(second, "x.png", factories.pattern_image(0, seed=99))
    tasks.embed_project(project_a.pk)
    whole = find_similar(embedded[0])
    narrowed = find_similar(embedded[0], within=Asset.objects.filter(dataset=dataset_a))
    assert extra in [m.asset for m in whole.matches]
    assert extra not in [m.asset for m in narrowed.matches] and len(narrowed.matches) == 6
    assert narrowed.scope_size == 6 and whole.scope_size == 7


@pytest.mark.django_db
def test_errors_say_exactly_what_is_wrong(embedded, dataset_a):
    video = factories.asset(dataset_a, "clip.mp4", factories.MP4_HEAD)
    with pytest.raises(SearchError, match="only supported for images"):
        find_similar(video)
    fresh = factories.asset(dataset_a, "fresh.png")
    tasks.schedule_embedding([fresh])
    with pytest.raises(SearchError, match="not been embedded yet"):
        find_similar(fresh)
    Embedding.objects.filter(asset=fresh).update(status="failed", error="the file is broken")
    with pytest.raises(SearchError, match=r"could not be embedded.*the file is broken"):
        find_similar(fresh)
    for order, limit in (("sideways", 10), ("most", 0), ("most", 101), ("most", "ten")):
        with pytest.raises(SearchError):
            find_similar(embedded[0], order=order, limit=limit)


@pytest.mark.django_db
def test_api_similar(api, embedded, dataset_a):
    response = api.get(f"/api/assets/{embedded[0].pk}/similar/?order=most&limit=5")
    assert response.status_code == 200
    body = response.json()
    assert body["order"] == "most" and body["ready"] is True and body["exact"] is True
    assert body["query"]["id"] == embedded[0].pk
    assert len(body["results"]) == 5
    assert embedded[0].pk not in [r["asset"]["id"] for r in body["results"]]
    assert body["scope_size"] == 6
    sims = [r["similarity"] for r in body["results"]]
    assert sims == sorted(sims, reverse=True)
    assert all(r["distance"] == pytest.approx(1 - r["similarity"]) for r in body["results"])
    least = api.get(f"/api/assets/{embedded[0].pk}/similar/?order=least").json()
    assert [r["similarity"] for r in least["results"]] == sorted(
        r["similarity"] for r in least["results"])


@pytest.mark.django_db
def test_api_similar_errors(api, embedded, dataset_a):
    url = f"/api/assets/{embedded[0].pk}/similar/"
    assert "order must be" in api.get(url + "?order=up").json()["detail"]
    assert "limit must be" in api.get(url + "?limit=1000").json()["detail"]
    video = factories.asset(dataset_a, "clip.webm", factories.WEBM_HEAD)
    body = api.get(f"/api/assets/{video.pk}/similar/").json()
    assert body["code"] == "not_an_image"
    fresh = factories.asset(dataset_a, "fresh.png")
    response = api.get(f"/api/assets/{fresh.pk}/similar/")
    assert response.status_code == 400 and response.json()["code"] == "not_embedded"
    assert api.get("/api/assets/999999/similar/").status_code == 404


@pytest.mark.django_db
def test_results_page(web, embedded):
    url = reverse("similarity:results", args=[embedded[0].pk])
    html = web.get(url).content.decode()
    assert html.index(f'data-asset-id="{embedded[0].pk}"') < html.index("data-similarity")
    assert html.count("data-similarity=") == 6  # the query tile is shown once, first
    assert 'aria-current="page" data-order="most"' in html
    least = web.get(url + "?order=least").content.decode()
    assert 'aria-current="page" data-order="least"' in least and "Least similar to" in least


@pytest.mark.django_db
def test_results_page_messages(web, embedded, dataset_a, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        fresh = factories.asset(dataset_a, "fresh.png")
    html = web.get(reverse("similarity:results", args=[fresh.pk])).content.decode()
    assert "not been embedded yet" in html
    assert "still being computed (7/8)" in html
    html = web.get(reverse("similarity:results", args=[embedded[1].pk])).content.decode()
    assert "still being computed" in html and html.count("data-similarity=") == 6
    video = factories.asset(dataset_a, "clip.mp4", factories.MP4_HEAD)
    grid = web.get(reverse("datasets:dataset", args=[dataset_a.pk])).content.decode()
    assert "Similarity search is currently only supported for images" in grid
    assert reverse("similarity:results", args=[video.pk]) not in grid


@pytest.mark.django_db
def test_search_from_filename_and_metadata_query(web, dataset_a, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        for i in range(4):
            factories.asset(dataset_a, f"line{i}.png", factories.pattern_image(i % 2, seed=i),
                            metadata={"line": str(i)})
    tasks.embed_project(dataset_a.project_id)
    page = web.get(reverse("datasets:dataset", args=[dataset_a.pk]), {"meta": "line=2"})
    (found,) = page.context["assets"]
    search_url = reverse("similarity:results", args=[found.pk])
    assert search_url in page.content.decode()
    results = web.get(search_url)
    assert results.context["result"].query == found and len(results.context["result"].matches) == 3


@pytest.mark.django_db
def test_admin_status_column_and_find_similar_action(client, embedded):
    admin = factories.user("root", is_staff=True, is_superuser=True)
    client.force_login(admin)
    changelist = client.get(reverse("admin:datasets_asset_changelist"))
    assert changelist.status_code == 200 and "Embedded" in changelist.content.decode()
    assert "Find similar images" in changelist.content.decode()
    response = client.post(reverse("admin:datasets_asset_changelist"),
                           {"action": "find_similar", "_selected_action": [embedded[0].pk]})
    assert response["Location"] == reverse("similarity:results", args=[embedded[0].pk])
    failed = client.get(reverse("admin:datasets_asset_changelist") + "?embedding=failed")
    assert failed.status_code == 200
    assert client.get(reverse("admin:similarity_projectreadiness_changelist")).status_code == 200
    assert client.get(reverse("admin:similarity_notification_changelist")).status_code == 200
