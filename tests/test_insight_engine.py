"""Neighbour graph: equal to brute force, and still equal after adds, moves, re-embeds and
deletes, which are handled incrementally (no full recompute)."""

from __future__ import annotations

import numpy as np
import pytest
from django.utils import timezone
from pgvector import HalfVector

from datasets.models import Asset, Dataset, Project
from similarity.embedding import drift, readiness
from similarity.insight import neighbours, scheduling, stage
from similarity.models import Embedding, InsightState, Neighbours, Notification
from similarity.testing import clustered_unit_vectors, load_embeddings
from similarity.vectors.model_keys import current_model_key

pytestmark = pytest.mark.django_db

DIMS = 48


def make_assets(dataset: Dataset, count: int, start: int = 0) -> list[int]:
    rows = Asset.objects.bulk_create(
        [Asset(dataset=dataset, file=f"synthetic/{start + i}.png", original_filename=f"s{i}.png",
               kind="image", content_type="image/png") for i in range(count)]
    )
    return [row.pk for row in rows]


def add_vectors(dataset: Dataset, vectors: np.ndarray, start: int = 0) -> list[int]:
    ids = make_assets(dataset, len(vectors), start)
    load_embeddings(ids, [dataset.project_id] * len(ids), vectors, current_model_key())
    return ids


def stored_vectors(scope: str) -> tuple[np.ndarray, np.ndarray]:
    """Row ids and unit vectors as the database holds them (halfvec)."""
    rows = list(Embedding.objects.filter(project_id=scope, status="done")
                .order_by("pk").values_list("pk", "vector"))
    ids = np.array([pk for pk, _v in rows], dtype=np.int64)
    vectors = np.array([np.asarray(v, dtype=np.float64) for _pk, v in rows])
    return ids, vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def assert_brute_force(scope: str, k: int = neighbours.K) -> None:
    ids, vectors = stored_vectors(scope)
    sims = vectors @ vectors.T
    np.fill_diagonal(sims, -np.inf)
    lists = {row: (nb, s) for row, nb, s in Neighbours.objects.filter(project_id=scope)
             .values_list("embedding_id", "neighbour_ids", "similarities")}
    assert set(lists) == set(ids.tolist())
    take = min(k, len(ids) - 1)
    for i, row in enumerate(ids.tolist()):
        order = np.argsort(-sims[i], kind="stable")[:take]
        got_ids, got_sims = lists[row]
        assert got_ids == ids[order].tolist(), f"row {row}"
        assert np.allclose(got_sims, sims[i, order], atol=1e-5)
        score = Neighbours.objects.get(pk=row).score
        assert score == pytest.approx(1 - sims[i, order].mean(), abs=1e-5)


@pytest.fixture
def scope():
    project = Project.objects.create(name="graph")
    dataset = Dataset.objects.create(project=project, name="d")
    add_vectors(dataset, clustered_unit_vectors(240, DIMS, clusters=12, seed=1))
    return dataset


def test_lists_equal_brute_force_after_adds_moves_reembeds_and_deletes(scope, monkeypatch):
    monkeypatch.setattr(neighbours, "BLOCK", 64)  # several blocks and column tiles
    monkeypatch.setattr(neighbours, "COLUMNS", 100)
    monkeypatch.setattr(neighbours, "SYM_BLOCK", 64)  # several symmetric tiles
    key = str(scope.project_id)
    first = stage.analyse_project(key)
    assert first["full"] and first["rows"] == 240
    assert_brute_force(key)

    # adds: 15 new images, some of them nearly copies of existing ones (they enter lists)
    base = clustered_unit_vectors(240, DIMS, clusters=12, seed=1)[:15]
    noisy = base + np.random.default_rng(2).normal(0, 0.01, base.shape).astype(np.float32)
    add_vectors(scope, noisy / np.linalg.norm(noisy, axis=1, keepdims=True), start=1000)
    added = stage.analyse_project(key)
    assert not added["full"]
    assert added["recomputed"] == 15  # only the new images get a full list
    assert_brute_force(key)

    # deletes: lists naming a deleted image are recomputed, and only those
    victims = list(Asset.objects.filter(dataset=scope).order_by("pk").values_list("pk", flat=True)[:6])
    victim_rows = set(Embedding.objects.filter(asset_id__in=victims).values_list("pk", flat=True))
    naming = sum(1 for nb in Neighbours.objects.filter(project_id=key)
                 .exclude(pk__in=victim_rows).values_list("neighbour_ids", flat=True)
                 if victim_rows & set(nb))
    Asset.objects.filter(pk__in=victims).delete()
    readiness.refresh(key, changed=True)
    deleted = stage.analyse_project(key)
    assert not deleted["full"] and deleted["recomputed"] == naming
    assert_brute_force(key)

    # moves (a bulk update the sweep follows): both scopes stay exact
    other_project = Project.objects.create(name="other")
    other = Dataset.objects.create(project=other_project, name="o")
    add_vectors(other, clustered_unit_vectors(30, DIMS, clusters=3, seed=5), start=2000)
    stage.analyse_project(str(other_project.pk))
    moving = list(Asset.objects.filter(dataset=scope).order_by("-pk").values_list("pk", flat=True)[:8])
    Asset.objects.filter(pk__in=moving).update(dataset=other)
    assert drift.repair_drift()["moved"] == 8
    # the new scope first: the moved rows' lists are rewritten there, so the old scope's
    # pass must learn of the move from the rows themselves
    stage.analyse_project(str(other_project.pk))
    assert stage.analyse_project(key)["full"] is False
    assert_brute_force(key)
    assert_brute_force(str(other_project.pk))

    # re-embedded (a new file): the fingerprint changes, the image and its referrers follow
    row = Embedding.objects.filter(project_id=key).order_by("pk").first()
    fresh = np.random.default_rng(9).standard_normal(DIMS).astype(np.float32)
    Embedding.objects.filter(pk=row.pk).update(  # as the worker writes it: updated moves
        vector=HalfVector((fresh / np.linalg.norm(fresh)).astype(np.float16)),
        updated=timezone.now())
    readiness.refresh(key, changed=True)
    assert stage.analyse_project(key)["full"] is False
    assert_brute_force(key)
    assert Neighbours.objects.filter(project_id=key).count() == 240 + 15 - 6 - 8


def test_a_small_project_has_short_lists_and_a_single_image_no_score():
    project = Project.objects.create(name="tiny")
    dataset = Dataset.objects.create(project=project, name="d")
    add_vectors(dataset, clustered_unit_vectors(1, DIMS, clusters=1, seed=3))
    stage.analyse_project(str(project.pk))
    only = Neighbours.objects.get(project_id=str(project.pk))
    assert only.neighbour_ids == [] and only.score is None
    add_vectors(dataset, clustered_unit_vectors(4, DIMS, clusters=2, seed=4), start=10)
    stage.analyse_project(str(project.pk))
    assert_brute_force(str(project.pk))
    assert {len(n) for n in Neighbours.objects.values_list("neighbour_ids", flat=True)} == {4}


def test_stage_progress_version_and_one_notification(scope, monkeypatch):
    key = str(scope.project_id)
    seen = []
    original = stage._set

    def spy(record, **fields):
        original(record, **fields)
        if "analysed" in fields and record.state == InsightState.State.ANALYSING:
            seen.append((record.analysed, record.total))

    monkeypatch.setattr(stage, "_set", spy)
    monkeypatch.setattr(neighbours, "SYM_BLOCK", 100)
    stage.analyse_project(key)
    assert (100, 240) in seen and (200, 240) in seen  # "analysing 200 of 240"
    state = InsightState.objects.get(project_id=key)
    assert state.state == "ready" and state.complete and state.analysed == 240
    assert state.version == readiness.get_readiness(key).updated
    assert stage.analyse_project(key) == {"project": key, "skipped": "up to date"}
    # the episode's own notification says it (one per batch, issue 24)
    notes = Notification.objects.filter(project_id=key, message__contains="duplicates analysed")
    assert notes.count() == 1 and "240 images" in notes.get().message


def test_one_notification_per_embedding_episode_for_every_project(scope):
    key = str(scope.project_id)
    notes = Notification.objects.filter(project_id=key, message__contains="duplicates analysed")
    stage.analyse_project(key)
    assert notes.count() == 1  # 240 images: small projects are told too
    assert Notification.objects.filter(project_id=key).count() == 1  # in the batch's own
    # deletes and moves start no embedding episode: the refresh stays silent
    Asset.objects.filter(pk__in=Asset.objects.filter(dataset=scope).values("pk")[:2]).delete()
    readiness.refresh(key, changed=True)
    assert not stage.analyse_project(key).get("skipped")
    assert notes.count() == 1
    # a new upload (a new embedding episode) is announced once, however often it runs
    ids = make_assets(scope, 3, start=500)
    Embedding.objects.bulk_create([Embedding(asset_id=pk, model_key=current_model_key(),
                                             project_id=key) for pk in ids])
    readiness.refresh(key)
    assert readiness.get_readiness(key).state == "computing"
    vectors = clustered_unit_vectors(3, DIMS, clusters=1, seed=11)
    for pk, vector in zip(ids, vectors, strict=True):
        Embedding.objects.filter(asset_id=pk).update(
            status="done", vector=HalfVector(vector.astype(np.float16)), dims=DIMS,
            updated=timezone.now())
    readiness.refresh(key)
    stage.analyse_project(key)
    readiness.refresh(key, changed=True)  # a second pass in the same episode
    stage.analyse_project(key)
    assert notes.count() == 2
    assert Notification.objects.filter(project_id=key).count() == 2  # one per batch
    assert notes.order_by("-id").first().message == (
        "3 images added · Similarity search is ready · duplicates analysed (241 images)")
    assert_brute_force(key)


def test_waits_while_embeddings_are_computing(scope):
    key = str(scope.project_id)
    Embedding.objects.filter(pk=Embedding.objects.filter(project_id=key).first().pk).update(
        status="pending", vector=None, dims=None)
    readiness.refresh(key)
    assert stage.analyse_project(key)["skipped"] == "embeddings not ready"
    assert InsightState.objects.get(project_id=key).state == "waiting"
    assert not Neighbours.objects.filter(project_id=key).exists()


def test_the_sweep_catches_up_after_deletes(scope):
    key = str(scope.project_id)
    stage.analyse_project(key)
    Asset.objects.filter(pk__in=Asset.objects.filter(dataset=scope).values("pk")[:3]).delete()
    readiness.refresh(key, changed=True)
    assert key in scheduling.sweep()  # queued: the stage's own task brings it up to date
    from similarity import insight_tasks

    insight_tasks.run_until_done(key)
    assert_brute_force(key)
    assert key not in scheduling.sweep()  # nothing left to do


def test_vector_fingerprints_ignore_row_position():
    vectors = clustered_unit_vectors(50, DIMS, clusters=5, seed=8)
    shuffled = vectors[::-1].copy()
    assert np.allclose(neighbours.fingerprints(vectors)[::-1], neighbours.fingerprints(shuffled),
                       atol=neighbours.FINGERPRINT_TOLERANCE, rtol=0)


def test_command_analyses_and_summarises(scope, capsys):
    from django.core.management import CommandError, call_command

    call_command("similarity_insight", "--project", str(scope.project_id), "--top", "2")
    out = capsys.readouterr().out
    assert "240 images analysed" in out and "near-duplicate groups at 0.95" in out
    assert len([line for line in out.splitlines() if line.startswith("  ")]) == 2
    assert InsightState.objects.get(project_id=str(scope.project_id)).complete
    with pytest.raises(CommandError):
        call_command("similarity_insight", "--project", "999999")
