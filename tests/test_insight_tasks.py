"""The insight stage in its own budgeted tasks: deduplicated per scope, resumed after a
budget runs out or a worker dies, still exact; readiness JSON shows the stage; the map's
PCA equals NumPy's SVD projection."""

from __future__ import annotations

import numpy as np
import pytest
from django_q.models import OrmQ

from datasets.models import Dataset, Project
from similarity import insight_tasks, tasks
from similarity.embedding import readiness
from similarity.insight import map as project_map
from similarity.insight import neighbours, scheduling, storage
from similarity.insight.reading import readiness_payload
from similarity.models import InsightState, MapBasis, Neighbours, Notification
from similarity.testing import clustered_unit_vectors
from similarity.vectors import exact
from tests.test_insight_engine import DIMS, add_vectors, assert_brute_force, stored_vectors

pytestmark = pytest.mark.django_db


@pytest.fixture
def scope():
    project = Project.objects.create(name="tasks")
    dataset = Dataset.objects.create(project=project, name="d")
    add_vectors(dataset, clustered_unit_vectors(300, DIMS, clusters=10, seed=21))
    return dataset


def queued() -> list[str]:
    return [task.task["args"][0] for task in OrmQ.objects.all()
            if task.task["func"] == insight_tasks.INSIGHT_TASK]


def test_embedding_queues_one_insight_task_per_scope(scope):
    key = str(scope.project_id)
    tasks.embed_project(key)  # nothing pending: the project is ready, insight is queued
    scheduling.queue_after_embedding(key)  # a second batch while the task waits: no second task
    assert queued() == [key]
    assert not Neighbours.objects.exists()  # the embedding task did not analyse
    outcome = insight_tasks.run_insight(key)
    assert not outcome.get("more") and outcome["rows"] == 300
    assert_brute_force(key)
    assert insight_tasks.request_insight(key)  # the task cleared its queued mark


def test_budgeted_steps_resume_and_finish_equal_to_brute_force(scope, monkeypatch):
    monkeypatch.setattr(neighbours, "SYM_BLOCK", 64)
    key = str(scope.project_id)
    steps = insight_tasks.run_until_done(key, budget_seconds=0)  # one block per task
    assert len(steps) >= 5 and all(step.get("more") for step in steps[:-1])
    assert [step["full"] for step in steps[:5]] == [True] * 5
    assert len(queued()) == len(steps) - 1  # each unfinished step queued its continuation
    state = InsightState.objects.get(project_id=key)
    assert state.state == "ready" and state.build_cursor is None and state.analysed == 300
    assert_brute_force(key)
    assert Notification.objects.filter(message__contains="duplicates analysed").count() == 1


def test_a_killed_worker_resumes_from_the_cursor(scope, monkeypatch):
    monkeypatch.setattr(neighbours, "SYM_BLOCK", 64)
    key = str(scope.project_id)
    original = storage.write_lists
    calls = []

    def dies_on_third_block(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise SystemExit("worker killed")
        return original(*args, **kwargs)

    monkeypatch.setattr(storage, "write_lists", dies_on_third_block)
    with pytest.raises(SystemExit):
        insight_tasks.run_insight(key, budget_seconds=1000)
    state = InsightState.objects.get(project_id=key)
    assert state.state == "analysing" and state.analysed == 128 and not state.complete
    monkeypatch.setattr(storage, "write_lists", original)
    written = []
    monkeypatch.setattr(storage, "write_lists",
                        lambda *a, **k: written.append(len(a[2])) or original(*a, **k))
    assert not insight_tasks.run_insight(key, budget_seconds=1000).get("more")
    assert sum(written) == 300 - 128  # only the rows after the cursor
    assert_brute_force(key)


def test_images_arriving_between_steps_of_a_build_are_merged(scope, monkeypatch):
    monkeypatch.setattr(neighbours, "SYM_BLOCK", 64)
    monkeypatch.setattr(exact, "RECENT_MARGIN", 0.0)
    key = str(scope.project_id)
    first = insight_tasks.run_insight(key, budget_seconds=0)
    assert first["more"] and first["full"]
    base = stored_vectors(key)[1][:12]
    near = base + np.random.default_rng(3).normal(0, 0.01, base.shape)
    add_vectors(scope, (near / np.linalg.norm(near, axis=1, keepdims=True)).astype(np.float32),
                start=900)
    readiness.refresh(key, changed=True)
    insight_tasks.run_until_done(key, budget_seconds=0)
    state = InsightState.objects.get(project_id=key)
    assert state.state == "ready" and state.fresh_since is None and state.total == 312
    assert_brute_force(key)


def test_readiness_json_shows_the_insight_stage(scope, monkeypatch):
    monkeypatch.setattr(neighbours, "SYM_BLOCK", 64)
    key = str(scope.project_id)
    ready = readiness.get_readiness(key)
    assert readiness_payload(ready)["insight"]["state"] == "waiting"
    insight_tasks.run_insight(key, budget_seconds=0)
    stage = readiness_payload(readiness.get_readiness(key))["insight"]
    assert stage["state"] == "analysing" and (stage["analysed"], stage["total"]) == (64, 300)
    assert stage["message"] == "Analysing 64 of 300" and not stage["ready"]
    insight_tasks.run_until_done(key, budget_seconds=1000)
    stage = readiness_payload(readiness.get_readiness(key))["insight"]
    assert stage["state"] == "ready" and stage["ready"] and stage["analysed"] == 300


def test_map_is_pca_equal_to_numpy_svd_up_to_sign(scope):
    key = str(scope.project_id)
    insight_tasks.run_until_done(key)
    ids, vectors = stored_vectors(key)
    centred = vectors - vectors.mean(axis=0)
    _u, _s, vt = np.linalg.svd(centred, full_matrices=False)
    expected = centred @ vt[:2].T
    got = dict((row, (x, y)) for row, x, y in Neighbours.objects.filter(project_id=key)
               .values_list("embedding_id", "map_x", "map_y"))
    xy = np.array([got[row] for row in ids.tolist()])
    for axis in range(2):
        sign = np.sign(xy[:, axis] @ expected[:, axis])
        assert np.allclose(xy[:, axis] * sign, expected[:, axis], atol=2e-3)
    basis = MapBasis.objects.get(project_id=key)
    assert basis.fitted_rows == 300 and 0 < basis.explained < 1

    # a few new images are projected with the stored basis (no refit, old points stay)
    add_vectors(scope, clustered_unit_vectors(5, DIMS, clusters=1, seed=30), start=700)
    readiness.refresh(key, changed=True)
    insight_tasks.run_until_done(key)
    assert MapBasis.objects.get(project_id=key).fitted_rows == 300
    after = dict((row, (x, y)) for row, x, y in Neighbours.objects.filter(project_id=key)
                 .values_list("embedding_id", "map_x", "map_y"))
    assert all(after[row] == got[row] for row in ids.tolist())
    ids2, vectors2 = stored_vectors(key)
    new = [i for i, row in enumerate(ids2.tolist()) if row not in got]
    mean, components = project_map._basis_arrays(basis)
    expected_new = project_map.project(vectors2[new].astype(np.float32), mean, components)
    assert np.allclose([after[ids2[i]] for i in new], expected_new, atol=2e-3)

    # a big change refits
    add_vectors(scope, clustered_unit_vectors(80, DIMS, clusters=2, seed=31), start=800)
    readiness.refresh(key, changed=True)
    insight_tasks.run_until_done(key)
    assert MapBasis.objects.get(project_id=key).fitted_rows == 385


def test_map_payload_lists_every_image_with_its_group_and_score(scope):
    key = str(scope.project_id)
    other = Dataset.objects.create(project=scope.project, name="second")
    add_vectors(other, clustered_unit_vectors(20, DIMS, clusters=2, seed=40), start=400)
    readiness.refresh(key, changed=True)
    insight_tasks.run_until_done(key)
    data = project_map.payload(key)
    assert data["count"] == 320 and len(data["x"]) == len(data["y"]) == 320
    assert min(data["x"]) == 0 and max(max(data["x"]), max(data["y"])) == 1
    labels = [group["label"] for group in data["groups"]]
    assert sorted(labels) == ["d", "second"]
    second = labels.index("second")
    from datasets.models import Asset
    in_second = {str(pk) for pk in Asset.objects.filter(dataset=other).values_list("pk", flat=True)}
    assert {pk for pk, g in zip(data["ids"], data["group"], strict=True) if g == second} == in_second
    scores = dict(Neighbours.objects.filter(project_id=key)
                  .values_list("embedding__asset_id", "score"))
    assert all(abs(scores[int(pk)] - s) < 1e-4 for pk, s in zip(data["ids"], data["score"], strict=True))


def test_the_readiness_icon_under_the_upload_area_shows_the_stage(scope, web, alice,
                                                                  monkeypatch):
    from datasets.models import ProjectMembership

    monkeypatch.setattr(neighbours, "SYM_BLOCK", 64)
    key = str(scope.project_id)
    ProjectMembership.objects.create(project=scope.project, user=alice, role="editor")
    insight_tasks.run_insight(key, budget_seconds=0)
    html = web.get(f"/datasets/{scope.pk}/").content.decode()
    start = html.index('data-testid="readiness-insight"')
    part = html[start:html.index("</progress>", start)]
    assert " hidden" not in part.split(">", 1)[0]
    assert "Duplicates and outliers: Analysing 64 of 300" in part
    insight_tasks.run_until_done(key, budget_seconds=1000)
    html = web.get(f"/datasets/{scope.pk}/").content.decode()
    start = html.index('data-testid="readiness-insight"')
    assert " hidden" in html[start:html.index(">", start)]
