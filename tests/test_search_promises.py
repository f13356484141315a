"""Promises of the search layer that nothing else exercises: stale rows replaced by more
candidates, an HNSW scan that comes back short or an index left invalid answered exactly,
the exact cache bounded by EXACT_CACHE_MB, ``hnsw.ef_search`` raised for one statement
only, and the sweep's own schedule."""

from __future__ import annotations

import numpy as np
import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from datasets.models import Asset, Dataset, Project
from similarity.conf import similarity_settings
from similarity.embedding import readiness
from similarity.models import Embedding
from similarity.search import find_similar, strategies
from similarity.testing import clustered_unit_vectors, load_embeddings
from similarity.vectors import exact, hnsw
from similarity.vectors.model_keys import current_model_key
from tests.test_robustness import small_exact_limit, synthetic_scope  # noqa: F401 (fixture)

pytestmark = pytest.mark.django_db


def numpy_order(project_pk: int, query_asset: int, exclude=()) -> list[int]:
    rows = list(Embedding.objects.filter(project_id=str(project_pk), status="done")
                .values_list("asset_id", "vector"))
    vectors = {pk: np.asarray(v, dtype=np.float64) for pk, v in rows}
    q = vectors[query_asset] / np.linalg.norm(vectors[query_asset])
    scores = {pk: float(v @ q / np.linalg.norm(v)) for pk, v in vectors.items()
              if pk != query_asset and pk not in exclude}
    return sorted(scores, key=lambda pk: (-scores[pk], pk))


def indexed_scope(count: int, seed: int = 0) -> tuple[Project, list[int], str]:
    """A project above EXACT_SEARCH_MAX_ROWS served through its own HNSW index."""
    project, ids = synthetic_scope(count, seed=seed)
    key = current_model_key()
    assert hnsw.ensure_project_index(project.pk, key)
    state = readiness.refresh(str(project.pk), changed=True)
    state.indexed_model_key = key
    state.save()
    return project, ids, key


def test_rows_moved_away_after_ranking_are_replaced_by_more_candidates(monkeypatch):
    project, ids = synthetic_scope(40)
    elsewhere = Dataset.objects.create(project=Project.objects.create(name="other"), name="o")
    expected = numpy_order(project.pk, ids[0])
    moved = expected[:6]  # the six nearest move away without a signal (a bulk update)
    Asset.objects.filter(pk__in=moved).update(dataset=elsewhere)
    rounds = []
    real_run = strategies.run
    monkeypatch.setattr(strategies, "run", lambda *a: rounds.append(1) or real_run(*a))
    result = find_similar(Asset.objects.get(pk=ids[0]), limit=5)
    got = [m.asset.pk for m in result.matches]
    assert len(got) == 5 and not set(got) & set(moved)
    assert got == [pk for pk in expected if pk not in moved][:5]
    assert len(rounds) >= 2  # the first answer was stale: it asked for more


def test_an_hnsw_scan_that_comes_back_short_is_answered_exactly(small_exact_limit,  # noqa: F811
                                                                monkeypatch):
    project, ids, _key = indexed_scope(30)
    query = Asset.objects.get(pk=ids[0])
    assert find_similar(query, limit=10).exact is False  # the index answers normally
    real_scan = hnsw.scan
    monkeypatch.setattr(hnsw, "scan", lambda *a, **k: real_scan(*a, **k)[:3])
    result = find_similar(query, limit=10)
    assert result.exact is True and len(result.matches) == 10
    assert [m.asset.pk for m in result.matches] == numpy_order(project.pk, ids[0])[:10]


def test_search_while_the_index_is_invalid_scans_exactly(small_exact_limit):  # noqa: F811
    project, ids, key = indexed_scope(30, seed=3)
    name = hnsw.index_name(str(project.pk), key)
    with connection.cursor() as cursor:  # what a killed CREATE INDEX CONCURRENTLY leaves
        cursor.execute("UPDATE pg_index SET indisvalid = false WHERE indexrelid = %s::regclass",
                       [name])
    result = find_similar(Asset.objects.get(pk=ids[0]), limit=10)
    assert result.exact is True
    assert [m.asset.pk for m in result.matches] == numpy_order(project.pk, ids[0])[:10]


def test_hnsw_ef_search_is_raised_for_the_scan_statement_only(small_exact_limit):  # noqa: F811
    _project, ids, _key = indexed_scope(30, seed=4)
    with CaptureQueriesContext(connection) as seen:
        assert find_similar(Asset.objects.get(pk=ids[0]), limit=10).exact is False
    settings_sql = [q["sql"] for q in seen.captured_queries
                    if "set_config('hnsw.ef_search'" in q["sql"]]
    wanted = str(max(int(similarity_settings.HNSW_EF_SEARCH), 10))
    # raised (SET LOCAL) for the scan, then put back (inside this test's transaction,
    # SET LOCAL alone would last to its end)
    assert settings_sql == [f"SELECT set_config('hnsw.ef_search', '{wanted}', true)",
                            "SELECT set_config('hnsw.ef_search', '40', true)"]
    with connection.cursor() as cursor:  # local to its transaction: the session is untouched
        cursor.execute("SHOW hnsw.ef_search")
        assert cursor.fetchone()[0] == "40"  # pgvector's default


def test_the_exact_cache_keeps_to_exact_cache_mb(settings):
    exact.clear()
    key, dims = current_model_key(), 64
    projects = []
    for seed in range(3):
        project = Project.objects.create(name=f"cache {seed}")
        dataset = Dataset.objects.create(project=project, name="d")
        rows = Asset.objects.bulk_create([
            Asset(dataset=dataset, file=f"c/{seed}-{i}.png", original_filename=f"{i}.png",
                  kind="image", content_type="image/png") for i in range(1500)])
        load_embeddings([row.pk for row in rows], [project.pk] * 1500,
                        clustered_unit_vectors(1500, dims, clusters=4, seed=seed), key)
        projects.append(str(project.pk))
    one = exact.get_matrix(projects[0], key, dims, "v0").nbytes
    settings.SIMILARITY = {**settings.SIMILARITY,
                           "EXACT_CACHE_MB": (2 * one + one // 2) / 2**20}
    for index, project_id in enumerate(projects):
        exact.get_matrix(project_id, key, dims, f"v{index}")
    held = list(exact._cache)
    assert held == [(projects[1], key, "float32"), (projects[2], key, "float32")]  # the oldest went first
    assert sum(m.nbytes for m in exact._cache.values()) <= exact.budget_bytes()
    exact.clear()


def test_the_sweep_runs_on_its_own_schedule(settings):
    from django.utils.module_loading import import_string
    from django_q.models import Schedule

    from similarity.embedding.sweep import SCHEDULE_NAME, ensure_sweep_schedule

    schedule = Schedule.objects.get(name=SCHEDULE_NAME)  # made by migrate (post_migrate)
    assert (schedule.func, schedule.schedule_type, schedule.minutes, schedule.repeats) == (
        "similarity.tasks.sweep", Schedule.MINUTES, similarity_settings.SWEEP_MINUTES, -1)
    outcome = import_string(schedule.func)()  # what the cluster calls: the real sweep
    assert outcome["failed"] == [] and "seconds" in outcome
    settings.SIMILARITY = {**settings.SIMILARITY, "SWEEP_MINUTES": 15}
    ensure_sweep_schedule()
    assert Schedule.objects.get(name=SCHEDULE_NAME).minutes == 15
    assert Schedule.objects.filter(name=SCHEDULE_NAME).count() == 1
