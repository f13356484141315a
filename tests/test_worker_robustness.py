"""The worker against races and poison: a file replaced while its batch is in flight, two
insight passes at once, a scope whose analysis keeps failing, a broker that refuses a task,
host rows that change or cannot be stored between two queries."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from django.db import connection, connections

from datasets.models import Asset
from similarity import tasks
from similarity.embedding import readiness, scheduling
from similarity.embedding import worker as embedding_worker
from similarity.host import scopes
from similarity.insight import scheduling as insight_scheduling
from similarity.insight import stage
from similarity.locks import advisory_lock
from similarity.models import Embedding, InsightState, ProjectReadiness
from similarity.vectors.embedder import get_embedder
from similarity.vectors.preprocess import load_and_preprocess as decode
from tests import factories
from tests.test_insight_engine import add_vectors
from tests.test_insight_views import encode, scene

pytestmark = pytest.mark.django_db


def unit(vector) -> np.ndarray:
    vector = np.asarray(vector, dtype=np.float64)
    return vector / np.linalg.norm(vector)


def test_a_file_replaced_while_its_batch_is_in_flight_gets_the_new_files_vector(
        dataset_a, django_capture_on_commit_callbacks, monkeypatch):
    old, new = encode(scene(1)), encode(scene(6))
    with django_capture_on_commit_callbacks(execute=True):
        asset = factories.asset(dataset_a, "shot.png", old)
    real_write = embedding_worker._write
    replaced = []

    def write_after_a_replacement(batch, vectors, dims):
        if not replaced:  # the user uploads a new file while the model ran on the old one
            fresh = Asset.objects.get(pk=asset.pk)
            fresh.file.save("shot-v2.png", factories.upload("shot-v2.png", new))
            replaced.append(fresh.file.name)
        return real_write(batch, vectors, dims)

    monkeypatch.setattr(embedding_worker, "_write", write_after_a_replacement)
    tasks.embed_project(str(dataset_a.project_id))
    assert replaced
    row = Embedding.objects.get(asset_id=asset.pk)
    assert row.status == "done" and row.source == replaced[0]
    embedder = get_embedder()
    expected_new = unit(embedder.embed(decode(factories.upload("n", new))[None])[0])
    expected_old = unit(embedder.embed(decode(factories.upload("o", old))[None])[0])
    stored = unit(np.asarray(row.vector, dtype=np.float64))
    assert stored @ expected_new > 0.9995
    assert stored @ expected_old < stored @ expected_new - 1e-3  # not the old file's vector


def test_a_second_insight_pass_on_the_same_scope_waits_for_the_first(dataset_a):
    add_vectors(dataset_a, np.eye(6, 16, dtype=np.float32))
    scope = str(dataset_a.project_id)
    held, release, done = threading.Event(), threading.Event(), threading.Event()

    def other_worker():  # its own connection, as another worker process would have
        try:
            with advisory_lock(stage.LOCK_NAMESPACE, scope) as taken:
                assert taken
                held.set()
                release.wait(10)
        finally:
            connections["default"].close()
            done.set()

    thread = threading.Thread(target=other_worker)
    thread.start()
    try:
        assert held.wait(10)
        outcome = stage.analyse_project(scope, hash_files=False)
        assert outcome == {"project": scope, "skipped": "another pass is running"}
        assert not InsightState.objects.filter(project_id=scope, complete=True).exists()
    finally:
        release.set()
        thread.join(10)
    assert done.is_set()
    assert stage.analyse_project(scope, hash_files=False)["rows"] == 6  # free again


def test_an_analysis_that_keeps_failing_is_given_up_until_the_images_change(
        dataset_a, monkeypatch):
    add_vectors(dataset_a, np.eye(6, 16, dtype=np.float32))
    scope = str(dataset_a.project_id)
    readiness.refresh(scope, changed=True)
    queued = []
    monkeypatch.setattr(insight_scheduling, "request_insight",
                        lambda project_id, **kw: queued.append(project_id) or True)

    def out_of_memory(*args, **kwargs):
        raise MemoryError("Unable to allocate 1.5 GiB")

    monkeypatch.setattr(insight_scheduling, "analyse_project", out_of_memory)
    for attempt in (1, 2, 3):  # INSIGHT_MAX_ATTEMPTS
        with pytest.raises(MemoryError):
            insight_scheduling.run_insight(scope)
        assert insight_scheduling.sweep() == ([scope] if attempt < 3 else [])
    state = InsightState.objects.get(project_id=scope)
    assert state.attempts == 3 and "1.5 GiB" in state.error
    assert insight_scheduling.run_insight(scope)["skipped"] == "gave up"
    queued.clear()
    assert insight_scheduling.sweep() == [] and queued == []  # not re-queued for ever
    from similarity.insight import reading
    assert "Analysis failed: Unable to allocate 1.5 GiB" in reading.status(scope)["message"]
    # the images change: the scope is tried again, and a success clears the count
    add_vectors(dataset_a, np.eye(2, 16, k=8, dtype=np.float32), start=100)
    readiness.refresh(scope, changed=True)
    assert insight_scheduling.sweep() == [scope]
    monkeypatch.setattr(insight_scheduling, "analyse_project", stage.analyse_project)
    assert insight_scheduling.run_insight(scope)["rows"] == 8
    state.refresh_from_db()
    assert state.attempts == 0 and state.error == ""


def test_an_analysis_larger_than_the_memory_budget_is_refused_not_attempted(
        dataset_a, settings):
    add_vectors(dataset_a, np.eye(6, 16, dtype=np.float32))
    scope = str(dataset_a.project_id)
    readiness.refresh(scope, changed=True)
    settings.SIMILARITY = {**settings.SIMILARITY, "EXACT_CACHE_MB": 0.000001}
    outcome = insight_scheduling.run_insight(scope)
    assert outcome["skipped"] == "too large" and "EXACT_CACHE_MB" in outcome["error"]
    state = InsightState.objects.get(project_id=scope)
    assert state.attempts == 0 and "EXACT_CACHE_MB" in state.error  # no crash counted
    # raising the setting alone (the images unchanged) lets the next pass run
    settings.SIMILARITY = {**settings.SIMILARITY, "EXACT_CACHE_MB": 512}
    assert insight_scheduling.run_insight(scope)["rows"] == 6


@pytest.mark.parametrize("request_work, state_model", [
    (insight_scheduling.request_insight, InsightState),
    (scheduling.request_embedding, ProjectReadiness),
])
def test_a_broker_that_refuses_the_task_leaves_no_waiting_mark(dataset_a, monkeypatch,
                                                               request_work, state_model):
    import django_q.tasks

    scope = str(dataset_a.project_id)

    def broker_down(*args, **kwargs):
        raise ConnectionError("broker unreachable")

    monkeypatch.setattr(django_q.tasks, "async_task", broker_down)
    with pytest.raises(ConnectionError):
        request_work(scope)
    assert state_model.objects.get(project_id=scope).queued_at is None
    monkeypatch.setattr(django_q.tasks, "async_task", lambda *a, **k: "task-id")
    assert request_work(scope) is True  # queued at once, not after PENDING_TIMEOUT


def test_missing_rows_skip_assets_deleted_meanwhile_and_keys_too_long_to_store(
        dataset_a, monkeypatch, caplog):
    assets = Asset.objects.bulk_create([
        Asset(dataset=dataset_a, file=f"synthetic/{i}.png", original_filename=f"{i}.png",
              kind="image", content_type="image/png") for i in range(4)])
    real = scopes.project_ids_for
    gone, far = assets[0].pk, assets[1].pk

    def between_two_queries(ids):
        mapping = real(ids)
        mapping.pop(gone, None)  # deleted after the first query
        if far in mapping:
            mapping[far] = "k" * 300  # a host key longer than any scope column
        return mapping

    monkeypatch.setattr(scopes, "project_ids_for", between_two_queries)
    assert scheduling.create_missing_rows() == 2
    assert set(Embedding.objects.values_list("asset_id", flat=True)) == {
        assets[2].pk, assets[3].pk}
    assert "longer than 255 characters" in caplog.text
    connection.close()  # nothing half-done is left on this connection
