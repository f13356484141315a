"""Issue 16: poison images, the requeue loop, index lifecycle, cache, permissions, deletes.

Each test here failed on the code before the fix it covers (see the report of issue 16).
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import textwrap
import threading
import time
from datetime import timedelta

import numpy as np
import pytest
from django.contrib.auth.models import Permission
from django.db import connection
from django.test import override_settings
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from django_q.models import OrmQ
from PIL import Image

from datasets.models import Asset, Dataset, Project
from similarity import tasks
from similarity.conf import similarity_settings
from similarity.embedding import readiness, worker
from similarity.models import Embedding, ProjectReadiness
from similarity.search import SearchError, find_similar, validate
from similarity.testing import clustered_unit_vectors, load_embeddings, make_dinov2_checkpoint
from similarity.vectors import exact, hnsw
from similarity.vectors.images import ImageDecodeError
from similarity.vectors.model_keys import current_model_key
from similarity.vectors.preprocess import load_and_preprocess
from tests import factories
from tests.conftest import ROOT, wait_for

pytestmark = pytest.mark.django_db


def png(width: int, height: int) -> bytes:
    out = io.BytesIO()
    Image.new("L", (width, height), 128).save(out, "PNG", optimize=True)
    return out.getvalue()


def upload_images(dataset, count: int) -> list[Asset]:
    return [factories.asset(dataset, f"img{i}.png", factories.pattern_image(i % 3, seed=i))
            for i in range(count)]


# --- poison images: aspect ratio -----------------------------------------------------------

NEEDLE_SCRIPT = textwrap.dedent("""
    import io, json, resource, sys
    limit = int(sys.argv[2]) * 2**20
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))  # a runaway fails fast, not swaps
    from django.conf import settings
    settings.configure(SIMILARITY={})
    from similarity.vectors.preprocess import load_and_preprocess
    def hwm():  # this process's own peak RSS in KiB (ru_maxrss survives exec from a big parent)
        for line in open("/proc/self/status"):
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    data = open(sys.argv[1], "rb").read()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    try:
        load_and_preprocess(io.BytesIO(data))
        outcome = "decoded"
    except Exception as exc:
        outcome = f"{type(exc).__name__}: {exc}"
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"outcome": outcome, "rss_before_kib": before, "rss_after_kib": after,
                      "peak_rss_kib": hwm()}))
""")


@pytest.mark.parametrize("size", [(1, 100_000), (100_000, 1), (1, 8000), (8000, 20),
                                  (20, 8000), (16384, 64)])
def test_images_of_any_shape_are_embedded_in_bounded_memory(tmp_path, size):
    """A 471-byte 1x100000 PNG once asked for 18 GiB (1x8000: 1.5 GiB and 7.5 s); a cap on
    the aspect ratio then refused real images (banners, line-scan strips). Now only the
    region the model sees is resized."""
    rng = np.random.default_rng(sum(size))
    data = encode_png(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)) \
        if size[0] * size[1] <= 2_000_000 else png(*size)
    path = tmp_path / "long.png"
    path.write_bytes(data)
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-c", NEEDLE_SCRIPT, str(path), "1024"], capture_output=True, text=True,
        cwd=ROOT, timeout=120,
    )
    elapsed = time.monotonic() - started
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["outcome"] == "decoded", report
    # decoding and preprocessing add under 100 MiB to the interpreter and its imports
    assert report["rss_after_kib"] - report["rss_before_kib"] < 100 * 1024, report
    assert elapsed < 60


def encode_png(pixels: np.ndarray) -> bytes:
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, "PNG")
    return out.getvalue()


def test_aspect_ratio_cap_is_off_by_default_and_a_host_may_set_one(settings):
    panorama = png(2000, 200)  # 1:10, a real panorama
    assert load_and_preprocess(io.BytesIO(panorama)).shape == (3, 224, 224)
    assert load_and_preprocess(io.BytesIO(png(16384, 64))).shape == (3, 224, 224)
    settings.SIMILARITY = {**settings.SIMILARITY, "MAX_ASPECT_RATIO": 5}
    with pytest.raises(ImageDecodeError, match="an aspect ratio of 1:10; images more elongated "
                                               "than 1:5 are refused"):
        load_and_preprocess(io.BytesIO(panorama))


def test_banner_and_line_scan_uploads_are_accepted_and_embedded(web, dataset_a,
                                                                django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = web.post(
            reverse("datasets:dataset-upload", args=[dataset_a.pk]),
            {"files": [factories.upload("banner.png", png(8000, 20)),
                       factories.upload("strip.png", png(16384, 64)),
                       factories.upload("needle.png", png(1, 100_000))]},
            HTTP_ACCEPT="application/json",
        )
    results = {item["file"]: item for item in response.json()["results"]}
    assert all(item["ok"] for item in results.values()), results
    outcome = tasks.embed_project(dataset_a.project_id)
    assert (outcome["embedded"], outcome["failed"]) == (3, 0)
    assert set(Embedding.objects.values_list("status", flat=True)) == {"done"}


# --- poison images: attempts, isolation, claim order ------------------------------------


def expire_claims() -> None:
    """What a dead worker leaves: claims that ran out with the rows still pending."""
    Embedding.objects.filter(status="pending", claimed_until__isnull=False).update(
        claimed_until=timezone.now() - timedelta(seconds=1)
    )


def test_after_a_worker_died_suspects_are_claimed_alone_and_fresh_rows_first(dataset_a):
    upload_images(dataset_a, 6)
    scope, key = str(dataset_a.project_id), current_model_key()
    ids = sorted(Embedding.objects.values_list("pk", flat=True))
    died_with = [pk for pk, _ in worker._claim(scope, key, 4)]
    assert died_with == ids[:4]
    expire_claims()
    # fresh rows first, never mixed with a row that may have killed the last worker
    assert [pk for pk, _ in worker._claim(scope, key, 4)] == ids[4:]
    # then each suspect alone, one per batch
    assert [pk for pk, _ in worker._claim(scope, key, 4)] == ids[:1]
    assert [pk for pk, _ in worker._claim(scope, key, 4)] == ids[1:2]


def test_a_row_that_keeps_stopping_its_worker_fails_with_a_reason(dataset_a):
    assets = upload_images(dataset_a, 5)
    scope, key = str(dataset_a.project_id), current_model_key()
    poison = Embedding.objects.get(asset=assets[0])
    deaths = 0
    while claimed := [pk for pk, _ in worker._claim(scope, key, 4)]:
        if poison.pk in claimed:  # decoding it kills the worker, batch and all
            deaths += 1
            assert deaths <= worker.MAX_ATTEMPTS, "the poison keeps being claimed"
            expire_claims()
        else:  # a batch without it is written
            Embedding.objects.filter(pk__in=claimed).update(status="done", claimed_until=None)
    # the three images that shared its first batch were redone alone, each once more
    assert deaths == worker.MAX_ATTEMPTS
    assert sorted(Embedding.objects.exclude(pk=poison.pk).values_list("attempts", flat=True)) == [
        1, 2, 2, 2]
    tasks.embed_project(scope)
    poison.refresh_from_db()
    assert poison.status == "failed" and poison.attempts == worker.MAX_ATTEMPTS
    assert poison.error == ("the worker stopped 3 times while embedding this image; "
                            "it may crash the decoder")
    state = readiness.get_readiness(scope)
    assert (state.state, state.embedded, state.failed) == ("ready", 4, 1)  # not "computing"


def test_retry_gives_a_failed_crasher_fresh_attempts(dataset_a):
    upload_images(dataset_a, 1)
    Embedding.objects.update(status="failed", attempts=worker.MAX_ATTEMPTS, error="x")
    assert tasks.retry_failed(dataset_a.project_id) == 1
    tasks.embed_project(dataset_a.project_id)
    assert Embedding.objects.get().status == "done"


SITECUSTOMIZE = textwrap.dedent("""
    # Loaded by every Python process of the test's worker: decoding an image of exactly
    # 37x23 pixels kills the process, as a crashing native decoder would.
    import os
    import signal

    from PIL import ImageFile

    _load = ImageFile.ImageFile.load


    def load(self):
        if self.size == (37, 23):
            os.kill(os.getpid(), signal.SIGKILL)
        return _load(self)


    ImageFile.ImageFile.load = load
""")


@pytest.mark.slow  # fault injection: three worker deaths and restarts, about 30 s
@pytest.mark.integration
def test_an_image_that_kills_the_worker_fails_alone(start_worker, dataset_a, tmp_path):
    """A real qcluster whose decoder dies on one image: the image fails with the reason,
    the other images of its batch are embedded, the project ends ready."""
    hook = tmp_path / "crash-hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(SITECUSTOMIZE)
    assets = upload_images(dataset_a, 8)
    poison = factories.asset(dataset_a, "poison.png", factories.image_bytes(size=(37, 23)))
    assert Embedding.objects.filter(asset=poison, status="pending").exists()
    start_worker(PYTHONPATH=str(hook), SIMILARITY_TEST_CLAIM_SECONDS="1")

    def settled() -> bool:
        tasks.sweep()  # what the schedule runs: re-queues the project once claims expire
        return not Embedding.objects.filter(status="pending").exists()

    wait_for(settled, timeout=150, interval=1, message="the poison image to be given up")
    row = Embedding.objects.get(asset=poison)
    assert row.status == "failed" and "the worker stopped 3 times" in row.error
    assert set(Embedding.objects.filter(asset__in=assets).values_list("status", flat=True)) == {
        "done"}
    state = readiness.refresh(dataset_a.project_id)
    assert (state.state, state.embedded, state.failed) == ("ready", 8, 1)


# --- the requeue loop --------------------------------------------------------------------


def test_rows_claimed_elsewhere_cause_no_requeue_and_no_cache_bump(
        dataset_a, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        upload_images(dataset_a, 4)
    scope, key = str(dataset_a.project_id), current_model_key()
    assert len(worker._claim(scope, key, 10)) == 4  # another (live, or dead) worker holds all
    queued = OrmQ.objects.count()
    version = readiness.get_readiness(scope).updated
    for _ in range(3):  # the task arrives again and again (sweep, duplicates)
        outcome = tasks.embed_project(scope)
        assert (outcome["embedded"], outcome["failed"]) == (0, 0)
    assert OrmQ.objects.count() == queued  # nothing re-queued itself
    assert readiness.get_readiness(scope).updated == version  # caches keep their vectors


def test_a_task_out_of_budget_still_hands_over(dataset_a):
    upload_images(dataset_a, 9)
    queued = OrmQ.objects.count()
    ProjectReadiness.objects.update(queued_at=None)
    outcome = tasks.embed_project(dataset_a.project_id, budget_seconds=0)  # one batch only
    assert outcome["embedded"] == similarity_settings.BATCH_SIZE
    assert OrmQ.objects.count() == queued + 1  # the rest goes to a follow-up task


# --- index lifecycle -----------------------------------------------------------------------


def synthetic_scope(count: int, *, seed: int = 0, dims: int = 32) -> tuple[Project, list[int]]:
    """A project whose ``count`` assets have finished vectors for the current model."""
    project = Project.objects.create(name=f"synthetic {seed}")
    dataset = Dataset.objects.create(project=project, name="d")
    rows = Asset.objects.bulk_create([
        Asset(dataset=dataset, file=f"synthetic/{seed}-{i}.png", original_filename=f"{i}.png",
              kind="image", content_type="image/png") for i in range(count)])
    ids = [row.pk for row in rows]
    vectors = clustered_unit_vectors(count, dims, clusters=3, seed=seed)
    load_embeddings(ids, [project.pk] * count, vectors, current_model_key())
    return project, ids


def indexes_of(project_id) -> dict[str, bool]:
    prefix = hnsw._index_prefix(str(project_id))
    return {index.name: index.valid for index in hnsw.project_indexes()
            if index.name.startswith(prefix)}


@pytest.fixture
def small_exact_limit(settings, db):
    """Projects above 10 rows get an index; CREATE INDEX may run in the test transaction."""
    settings.SIMILARITY = {**settings.SIMILARITY, "EXACT_SEARCH_MAX_ROWS": 10}
    with connection.cursor() as cursor:
        # foreign keys checked at once, so no trigger event is pending when indexes are built
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")


def test_index_is_dropped_when_the_project_shrinks(small_exact_limit):
    project, ids = synthetic_scope(15)
    key = current_model_key()
    assert hnsw.ensure_project_index(project.pk, key)
    name = hnsw.index_name(str(project.pk), key)
    assert indexes_of(project.pk) == {name: True}
    Asset.objects.filter(pk__in=ids[:6]).delete()  # 9 left: exact search serves it now
    outcome = tasks.sweep()
    assert outcome["dropped_indexes"] == [name]
    assert indexes_of(project.pk) == {}
    assert readiness.get_readiness(str(project.pk)).indexed_model_key == ""


def test_indexes_of_emptied_or_deleted_projects_are_dropped(small_exact_limit):
    emptied, emptied_ids = synthetic_scope(12, seed=1)
    deleted, _ = synthetic_scope(12, seed=2)
    kept, _ = synthetic_scope(12, seed=3)
    key = current_model_key()
    for project in (emptied, deleted, kept):
        assert hnsw.ensure_project_index(project.pk, key)
    Asset.objects.filter(pk__in=emptied_ids).delete()
    deleted_pk = deleted.pk
    deleted.delete()
    assert sorted(tasks.sweep()["dropped_indexes"]) == sorted(
        hnsw.index_name(str(pk), key) for pk in (emptied.pk, deleted_pk))
    assert indexes_of(emptied.pk) == {} and indexes_of(deleted_pk) == {}
    assert indexes_of(kept.pk) == {hnsw.index_name(str(kept.pk), key): True}


def test_an_invalid_index_is_rebuilt_not_taken_as_existing(small_exact_limit):
    project, _ = synthetic_scope(15)
    key = current_model_key()
    name = hnsw.index_name(str(project.pk), key)
    assert hnsw.ensure_project_index(project.pk, key)
    with connection.cursor() as cursor:  # what a killed CREATE INDEX CONCURRENTLY leaves
        cursor.execute("UPDATE pg_index SET indisvalid = false WHERE indexrelid = %s::regclass",
                       [name])
    assert hnsw.index_state(name) is False
    assert not hnsw.index_exists(name)
    assert hnsw.ensure_project_index(project.pk, key)
    assert hnsw.index_state(name) is True


def test_model_change_keeps_the_old_index_until_the_new_one_exists(
        small_exact_limit, dataset_a, settings, tmp_path):
    assets = upload_images(dataset_a, 14)
    scope = str(dataset_a.project_id)
    tasks.embed_project(scope)
    old_key = current_model_key()
    old_index = hnsw.index_name(scope, old_key)
    assert indexes_of(scope) == {old_index: True}

    new_model = make_dinov2_checkpoint(tmp_path / "retrained", seed=1)
    settings.SIMILARITY = {**settings.SIMILARITY, "MODEL_NAME": str(new_model)}
    new_key = current_model_key()
    tasks.reindex_project(scope)
    tasks.embed_project(scope, budget_seconds=0)  # part of the way: one batch
    tasks.sweep()  # the sweep runs meanwhile
    state = readiness.get_readiness(scope)
    assert state.state == "computing" and state.indexed_model_key == old_key
    assert indexes_of(scope) == {old_index: True}  # still serving the old model
    assert Embedding.objects.filter(model_key=old_key, status="done").count() == 14
    result = find_similar(assets[0], limit=5)
    assert result.model_key == old_key and not result.exact  # through the old index

    tasks.embed_project(scope)
    new_index = hnsw.index_name(scope, new_key)
    assert indexes_of(scope) == {new_index: True}
    assert readiness.get_readiness(scope).indexed_model_key == new_key
    assert not Embedding.objects.filter(model_key=old_key).exists()  # old rows deleted
    assert Embedding.objects.filter(model_key=new_key, status="done").count() == 14


def test_the_sweep_finishes_an_interrupted_purge_of_old_rows(dataset_a, settings, tmp_path):
    upload_images(dataset_a, 3)
    scope = str(dataset_a.project_id)
    tasks.embed_project(scope)
    old_key = current_model_key()
    settings.SIMILARITY = {**settings.SIMILARITY,
                           "MODEL_NAME": str(make_dinov2_checkpoint(tmp_path / "m2", seed=2))}
    tasks.reindex_project(scope)
    stale = list(Embedding.objects.filter(model_key=old_key).values_list("pk", flat=True))
    tasks.embed_project(scope)
    assert not Embedding.objects.filter(model_key=old_key).exists()
    # a worker that died between "ready" and the purge: the sweep deletes them
    Embedding.objects.filter(model_key=current_model_key()).update(model_key=old_key)
    Embedding.objects.bulk_create([Embedding(asset_id=a, model_key=current_model_key(),
                                             project_id=scope, status="done", dims=32)
                                   for a in Embedding.objects.values_list("asset_id", flat=True)])
    readiness.refresh(scope)
    assert tasks.sweep()["purged"] == len(stale)


# --- the vector cache: one load however many ask ---------------------------------------------


def test_concurrent_first_searches_load_a_project_once(monkeypatch):
    exact.clear()
    loads = []

    def slow_load(project_id, model_key, dims, version, layout="float32"):
        loads.append(version)
        time.sleep(0.2)  # a COPY of a big project
        return exact.Matrix(ids=np.arange(4, dtype=np.int64),
                            vectors=np.eye(4, dims, dtype=np.float32), version=version)

    monkeypatch.setattr(exact, "_load", slow_load)
    start = threading.Barrier(8)
    matrices = []

    def search(version):
        start.wait()
        matrices.append(exact.get_matrix("p1", "k", 8, version))

    for version in ("v1", "v2"):  # a first load, then a load after a write
        start.reset()
        threads = [threading.Thread(target=search, args=(version,)) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert loads == ["v1", "v2"]
    assert len({id(m) for m in matrices[:8]}) == 1 and len({id(m) for m in matrices[8:]}) == 1
    exact.clear()


# --- permissions and user-visible texts ------------------------------------------------------


def test_view_only_staff_cannot_compute_embeddings_in_the_admin(client, dataset_a):
    asset = upload_images(dataset_a, 1)[0]
    tasks.embed_project(dataset_a.project_id)
    viewer = factories.user("viewer", is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_asset"))
    client.force_login(viewer)
    url = reverse("admin:datasets_asset_changelist")
    page = client.get(url)
    assert page.status_code == 200
    actions = [name for name, _ in page.context["action_form"].fields["action"].choices]
    assert "find_similar" in actions and "compute_embeddings" not in actions
    queued = OrmQ.objects.count()
    client.post(url, {"action": "compute_embeddings", "_selected_action": [asset.pk]})
    row = Embedding.objects.get(asset=asset)
    assert (row.status, row.attempts) == ("done", 1)  # not reset, not re-queued
    assert OrmQ.objects.count() == queued


@pytest.mark.parametrize("target", ["/\\evil.com", "//evil.com", "/\\/evil.com",
                                    "https://evil.com/", " //evil.com", "/\t/evil.com"])
def test_delete_never_redirects_off_site(web, dataset_a, target):
    asset = factories.asset(dataset_a, "a.png")
    response = web.post(reverse("datasets:asset-delete", args=[asset.pk]), {"next": target})
    assert response.status_code == 302
    assert response["Location"] == reverse("datasets:dataset", args=[dataset_a.pk])


def test_delete_keeps_a_local_next(web, dataset_a):
    asset = factories.asset(dataset_a, "a.png")
    back = reverse("datasets:dataset", args=[dataset_a.pk]) + "?q=a"
    response = web.post(reverse("datasets:asset-delete", args=[asset.pk]), {"next": back})
    assert response["Location"] == back


def test_failure_reasons_carry_no_server_paths(dataset_a, settings):
    assets = upload_images(dataset_a, 2)
    os.remove(assets[0].file.path)
    tasks.embed_project(dataset_a.project_id)
    row = Embedding.objects.get(asset=assets[0])
    assert row.status == "failed"
    assert row.error == "the image file is missing from storage"
    assert str(settings.MEDIA_ROOT) not in row.error and "/" not in row.error


# --- deletes ---------------------------------------------------------------------------------


def test_deleted_asset_files_leave_storage_after_commit(
        web, dataset_a, django_capture_on_commit_callbacks):
    asset = factories.asset(dataset_a, "a.png")
    paths = [asset.file.path, asset.thumbnail.path]
    assert all(os.path.exists(path) for path in paths)
    with django_capture_on_commit_callbacks(execute=True):
        web.post(reverse("datasets:asset-delete", args=[asset.pk]))
    assert not any(os.path.exists(path) for path in paths)


def test_a_rolled_back_delete_keeps_the_files(dataset_a, django_capture_on_commit_callbacks):
    from django.db import transaction

    asset = factories.asset(dataset_a, "a.png")
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        with pytest.raises(RuntimeError), transaction.atomic():
            Asset.objects.get(pk=asset.pk).delete()
            raise RuntimeError("rolled back")
    assert callbacks == [] and os.path.exists(asset.file.path)


def test_deleting_a_dataset_costs_the_same_queries_at_any_size(
        web, project_a, django_capture_on_commit_callbacks):
    def delete(count: int) -> tuple[int, list[str]]:
        dataset = factories.dataset(project_a)
        assets = upload_images(dataset, count)
        tasks.embed_project(project_a.pk)
        files = [path for a in assets for path in (a.file.path, a.thumbnail.path)]
        with CaptureQueriesContext(connection) as queries, \
                django_capture_on_commit_callbacks(execute=True):
            response = web.post(reverse("datasets:dataset-delete", args=[dataset.pk]))
        assert response.status_code == 302
        assert not Dataset.objects.filter(pk=dataset.pk).exists()
        assert not Asset.objects.filter(dataset_id=dataset.pk).exists()
        assert not any(os.path.exists(path) for path in files)  # files gone after commit
        return len(queries), files

    small, _ = delete(2)
    large, _ = delete(12)
    assert large == small, "per-asset work in the request"
    assert not Embedding.objects.exists()
    state = readiness.get_readiness(str(project_a.pk))
    assert (state.state, state.total) == ("empty", 0)


def test_api_dataset_delete_takes_the_same_path(api, dataset_a):
    assets = upload_images(dataset_a, 3)
    response = api.delete(f"/api/datasets/{dataset_a.pk}/")
    assert response.status_code == 204
    assert not Asset.objects.filter(pk__in=[a.pk for a in assets]).exists()
    assert not Embedding.objects.exists()


# --- settings ----------------------------------------------------------------------------------


def test_max_results_setting_bounds_validation_and_reloads():
    assert validate("most", 100) == ("most", 100)
    with override_settings(SIMILARITY={**similarity_settings.user_settings, "MAX_RESULTS": 5}):
        assert validate("most", 5) == ("most", 5)
        with pytest.raises(SearchError, match="from 1 to 5"):
            validate("most", 6)
    # the override is gone: the default bound is back
    assert validate("most", 100) == ("most", 100)
    with pytest.raises(SearchError, match="from 1 to 100"):
        validate("most", 101)


def test_hnsw_build_memory_fits_the_graph_and_is_capped(settings):
    """A build gets maintenance_work_mem for its whole graph (PostgreSQL's 64 MB default
    made a million-row build fall back to on-disk inserts), small projects little, and
    never more than HNSW_BUILD_MEMORY_MB."""
    from similarity.vectors.hnsw import build_memory_mb

    small, large = build_memory_mb(25_000, 384, 16), build_memory_mb(1_000_000, 384, 16)
    assert 64 < small < 200
    assert large == 2048  # the default cap; the estimate is about 2.1 GB
    settings.SIMILARITY = {**settings.SIMILARITY, "HNSW_BUILD_MEMORY_MB": 512}
    assert build_memory_mb(1_000_000, 384, 16) == 512
    assert build_memory_mb(100, 384, 16) == 64


def test_deleting_a_dataset_whose_images_are_tagged(web, api, project_a):
    """The raw delete of a dataset's assets once skipped the cascade to the tag table: the
    deferred foreign-key check failed at commit (500) and nothing was deleted."""
    from datasets.models import Tag

    with connection.cursor() as cursor:  # check the constraints now, as a commit would
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
    for door in ("page", "api"):
        dataset = factories.dataset(project_a)
        assets = upload_images(dataset, 3)
        tag = Tag.objects.create(project=project_a, name=f"checked-{door}")
        tag.assets.add(*assets[:2])
        if door == "page":
            response = web.post(reverse("datasets:dataset-delete", args=[dataset.pk]))
            assert response.status_code == 302
        else:
            assert api.delete(f"/api/datasets/{dataset.pk}/").status_code == 204
        assert not Asset.objects.filter(dataset_id=dataset.pk).exists()
        assert tag.assets.count() == 0 and Tag.objects.filter(pk=tag.pk).exists()


def test_file_names_longer_than_the_source_column_are_not_re_embedded(dataset_a):
    """A stored name over 500 characters was cut to 500 on our row and compared with the
    whole name by the sweep: every sweep set the image back to pending. Two long names
    that differ only at their end (where storages add their suffix) must still differ."""
    from similarity.embedding import drift

    with connection.cursor() as cursor:  # a host whose file column is wider than ours
        cursor.execute(f"ALTER TABLE {Asset._meta.db_table} ALTER COLUMN file TYPE varchar(1000)")
    (asset,) = upload_images(dataset_a, 1)
    long_name = "deep/" * 150 + "shot.png"  # 758 characters
    Asset.objects.filter(pk=asset.pk).update(file=long_name)
    tasks.embed_project(dataset_a.project_id)  # nothing to embed yet: the row is done
    drift.repair_drift()  # the new (long) name is followed once
    row = Embedding.objects.get(asset=asset)
    row.status, row.vector = Embedding.Status.DONE, [0.1] * 8
    row.save()
    for _ in range(2):
        assert drift.repair_drift()["refiled"] == 0
        assert Embedding.objects.get(asset=asset).status == Embedding.Status.DONE
    Asset.objects.filter(pk=asset.pk).update(file=long_name[:-4] + "_x7Kq.png")
    assert drift.repair_drift()["refiled"] == 1
    assert Embedding.objects.get(asset=asset).status == Embedding.Status.PENDING
    # the signal handlers record names in Python, the sweep in SQL: the same text
    from django.db.models import Value

    from similarity.host.files import source_of, source_of_sql
    for name in (long_name, "short.png", "é" * 600, ""):
        in_sql = Asset.objects.annotate(s=source_of_sql(Value(name))).values_list("s", flat=True)[0]
        assert in_sql == source_of(name) and len(in_sql) <= 500
