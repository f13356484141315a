"""The exact-search cache follows appends, moves, re-embeds and deletes incrementally, and
always answers what a full reload would."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pytest
from django.utils import timezone
from pgvector import HalfVector

from datasets.models import Asset
from similarity.models import Embedding
from similarity.testing import clustered_unit_vectors, load_embeddings
from similarity.vectors import exact
from similarity.vectors.model_keys import current_model_key
from tests import factories

DIMS = 16
pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _empty_cache():
    exact.clear()
    yield
    exact.clear()


class Scope:
    """A project whose embedding rows we change the way the worker and signals do."""

    def __init__(self) -> None:
        self.project = factories.project("exact")
        self.other = factories.project("elsewhere")
        self.dataset = factories.dataset(self.project)
        self.scope = str(self.project.pk)
        self.key = current_model_key()
        self.versions = iter(range(1, 10_000))
        self.seed = 0

    def add(self, count: int, project=None) -> list[int]:
        project = project or self.project
        dataset = self.dataset if project == self.project else factories.dataset(project)
        assets = Asset.objects.bulk_create(
            Asset(dataset=dataset, file=f"x/{i}.png", original_filename=f"{i}.png",
                  kind="image", content_type="image/png") for i in range(count))
        self.seed += 1
        vectors = clustered_unit_vectors(count, DIMS, clusters=5, seed=self.seed)
        load_embeddings([a.pk for a in assets], [project.pk] * count, vectors, self.key)
        return list(Embedding.objects.filter(asset__in=assets).values_list("pk", flat=True))

    def rows(self) -> list[int]:
        return sorted(Embedding.objects.filter(project_id=self.scope, status="done")
                      .values_list("pk", flat=True))

    def matrix(self) -> exact.Matrix:
        return exact.get_matrix(self.scope, self.key, DIMS, next(self.versions))

    def reload(self) -> exact.Matrix:
        return exact._load(self.scope, self.key, DIMS, "reference")


def assert_same_answers(matrix: exact.Matrix, reference: exact.Matrix) -> None:
    np.testing.assert_array_equal(matrix.ids, reference.ids)
    np.testing.assert_array_equal(matrix.vectors, reference.vectors)
    rng = np.random.default_rng(1)
    some = reference.ids[:: max(1, len(reference.ids) // 5)]
    for query in rng.standard_normal((6, DIMS)).astype(np.float32):
        for least in (False, True):
            for allowed, excluded in ((None, None), (some, None), (None, some[:2])):
                got = exact.top_k(matrix, query, 10, least=least, allowed=allowed,
                                  excluded=excluded)
                want = exact.top_k(reference, query, 10, least=least, allowed=allowed,
                                   excluded=excluded)
                assert [r for r, _ in got] == [r for r, _ in want]
                np.testing.assert_allclose([d for _, d in got], [d for _, d in want], atol=1e-6)


@pytest.mark.parametrize("old_library", [False, True])
def test_adds_moves_reembeds_and_deletes_are_followed_without_reloading(old_library):
    s = Scope()
    base = s.add(300)
    if old_library:  # embedded long ago: only the recent window is read on a refresh
        Embedding.objects.filter(pk__in=base).update(updated=timezone.now() - timedelta(hours=1))
    first = s.matrix()
    assert exact.last_path.value == "loaded"
    before = exact.top_k(first, np.ones(DIMS, np.float32), 20, least=False)

    # append (an upload embedded by the worker)
    s.add(5)
    added = s.matrix()
    assert exact.last_path.value == "refreshed"
    assert len(added.ids) == 305
    assert_same_answers(added, s.reload())
    # readers of the previous matrix are not disturbed by the append
    assert exact.top_k(first, np.ones(DIMS, np.float32), 20, least=False) == before

    # moved out (signals/sweep set `updated` too), moved in from another project
    out = s.rows()[:7]
    Embedding.objects.filter(pk__in=out).update(project_id=str(s.other.pk),
                                                updated=timezone.now())
    incoming = s.add(4, project=s.other)
    Embedding.objects.filter(pk__in=incoming).update(project_id=s.scope, updated=timezone.now())
    moved = s.matrix()
    assert exact.last_path.value == "refreshed"
    assert not set(out) & set(moved.ids.tolist()) and set(incoming) <= set(moved.ids.tolist())
    assert_same_answers(moved, s.reload())

    # re-embedded in place (new file: pending, then a new vector), failed, deleted
    redo, fail, gone = s.rows()[10:13], s.rows()[20:22], s.rows()[30:35]
    Embedding.objects.filter(pk__in=redo).update(status="pending", vector=None)
    for pk in redo:
        Embedding.objects.filter(pk=pk).update(
            status="done", vector=HalfVector(np.eye(DIMS, dtype=np.float16)[pk % DIMS]),
            updated=timezone.now())
    Embedding.objects.filter(pk__in=fail).update(status="failed", vector=None)
    Embedding.objects.filter(pk__in=gone).delete()
    changed = s.matrix()
    assert exact.last_path.value == "refreshed"
    assert changed.dead > 0  # tombstones, not a copy of the whole matrix
    assert_same_answers(changed, s.reload())
    for pk in redo:
        row = int(np.searchsorted(changed.ids, pk))
        assert np.argmax(changed.vectors[row]) == pk % DIMS

    # nothing changed but the version: the same storage answers
    again = s.matrix()
    assert exact.last_path.value == "refreshed" and again.buffer is changed.buffer


def test_many_deletes_compact_and_large_changes_reload():
    s = Scope()
    s.add(400)
    s.matrix()
    Embedding.objects.filter(pk__in=s.rows()[:120]).delete()  # 30%: past COMPACT_SHARE
    compacted = s.matrix()
    assert exact.last_path.value == "refreshed" and compacted.dead == 0
    assert_same_answers(compacted, s.reload())

    s.add(2000)  # more than RELOAD_SHARE of the cached rows: one COPY is cheaper
    reloaded = s.matrix()
    assert exact.last_path.value == "loaded"
    assert_same_answers(reloaded, s.reload())


def test_a_scope_emptied_and_refilled():
    s = Scope()
    rows = s.add(50)
    s.matrix()
    Embedding.objects.filter(pk__in=rows).delete()
    empty = s.matrix()
    assert len(empty.ids) == 0
    assert exact.top_k(empty, np.ones(DIMS, np.float32), 5, least=True) == []
    s.add(3)
    assert_same_answers(s.matrix(), s.reload())


def test_a_host_move_through_the_signal_handlers_is_followed(django_capture_on_commit_callbacks):
    s = Scope()
    s.add(20)
    s.matrix()
    asset = Asset.objects.filter(dataset=s.dataset).first()
    elsewhere = factories.dataset(s.other)
    with django_capture_on_commit_callbacks(execute=True):
        asset.dataset = elsewhere
        asset.save()
    row = Embedding.objects.get(asset=asset)
    assert row.project_id == str(s.other.pk)
    moved = s.matrix()
    assert row.pk not in moved.ids.tolist() and len(moved.ids) == 19
    assert_same_answers(moved, s.reload())


def test_a_row_that_came_in_without_a_new_updated_is_still_found():
    s = Scope()
    s.add(30)
    old = timezone.now() - timedelta(hours=1)
    Embedding.objects.filter(project_id=s.scope).update(updated=old)
    s.matrix()
    stray = s.add(2, project=s.other)
    # raw SQL by another service: moved in, `updated` left old
    Embedding.objects.filter(pk__in=stray).update(project_id=s.scope, updated=old)
    found = s.matrix()
    assert set(stray) <= set(found.ids.tolist())
    assert_same_answers(found, s.reload())
