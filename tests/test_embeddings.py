"""Embedder, background tasks, readiness and notifications (issue: embeddings)."""

from __future__ import annotations

import io
import os
import signal
import threading
import time

import numpy as np
import pytest
from django.core.management import call_command
from django.db import connection
from django.test import override_settings
from PIL import Image

from similarity import tasks
from similarity.checks import check_q_cluster
from similarity.embedding import readiness
from similarity.models import Embedding, Notification
from similarity.search import find_similar
from similarity.testing import make_dinov2_checkpoint
from similarity.vectors import preprocess as preprocessing
from similarity.vectors.embedder import get_embedder
from similarity.vectors.model_keys import ModelLoadError, current_model_key
from tests import factories
from tests.conftest import wait_for

pytestmark = pytest.mark.django_db


def processor():
    from transformers.models.bit.image_processing_pil_bit import BitImageProcessorPil

    return BitImageProcessorPil(
        do_resize=True, size={"shortest_edge": 256}, resample=Image.Resampling.BICUBIC,
        do_center_crop=True, crop_size={"height": 224, "width": 224}, do_rescale=True,
        rescale_factor=1 / 255, do_normalize=True, image_mean=list(preprocessing.MEAN),
        image_std=list(preprocessing.STD), do_convert_rgb=True,
    )


@pytest.mark.parametrize("size", [(300, 500), (500, 300), (224, 224), (257, 999), (33, 47),
                                  (1000, 750), (3, 2), (16384, 256), (30, 1900)])
def test_preprocessing_equals_the_transformers_processor(size):
    rng = np.random.default_rng(sum(size))
    image = Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8))
    expected = processor()(images=image, return_tensors="np")["pixel_values"][0]
    ours = preprocessing.preprocess(image)
    assert ours.shape == (3, 224, 224) and ours.dtype == np.float32
    assert np.abs(ours - expected).max() < 1e-5


@pytest.mark.parametrize("size", [(8000, 20), (20, 8000), (16384, 64), (64, 16384), (1, 600)])
def test_any_shape_is_preprocessed_like_the_processor_from_the_region_it_shows(size):
    """Beyond 1:64 only the crop's source region is resized: the same image to the model."""
    rng = np.random.default_rng(sum(size))
    yy, xx = np.mgrid[0:size[1], 0:size[0]]
    smooth = np.stack([np.sin(xx / 7.0), np.cos(yy / 5.0), np.sin((xx + yy) / 11.0)], -1)
    noise = rng.integers(-20, 21, (size[1], size[0], 3))
    image = Image.fromarray(np.clip(smooth * 100 + 128 + noise, 0, 255).astype(np.uint8))
    expected = processor()(images=image, return_tensors="np")["pixel_values"][0]
    ours = preprocessing.preprocess(image)
    levels = np.abs(ours - expected) * 0.229 * 255  # in grey levels (about)
    assert ours.shape == (3, 224, 224)
    assert levels.mean() < 1.0 and levels.max() < 40
    vectors = get_embedder().embed(np.stack([ours, expected.astype(np.float32)]))
    assert float(vectors[0] @ vectors[1]) > 0.999


def test_jpeg_draft_decoding_stays_within_tolerance():
    yy, xx = np.mgrid[0:1500, 0:2000]
    pixels = np.stack([np.sin(xx / 90) * 127 + 128, np.cos(yy / 60) * 127 + 128,
                       (xx + yy) / 3500 * 255], axis=-1).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "JPEG", quality=90)
    full = preprocessing.load_and_preprocess(io.BytesIO(buffer.getvalue()), draft=False)
    draft = preprocessing.load_and_preprocess(io.BytesIO(buffer.getvalue()), draft=True)
    difference = np.abs(full - draft)
    # Normalised units: 0.02 is about 1.2/255 of a pixel value on average.
    assert difference.mean() < 0.02 and difference.max() < 0.2
    vectors = get_embedder().embed(np.stack([full, draft]))
    assert float(vectors[0] @ vectors[1]) > 0.999


def test_tiny_model_loads_from_folder_through_from_pretrained(settings):
    embedder = get_embedder()
    assert embedder.dims == 32
    assert embedder.model_key == current_model_key()
    assert embedder.model_key.startswith("similarity-tiny-dinov2@")
    assert get_embedder() is embedder  # once per process
    vectors = embedder.embed(np.zeros((2, 3, 224, 224), dtype=np.float32))
    assert vectors.shape == (2, 32)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


def test_wrong_architecture_is_a_clear_error(settings, tmp_path):
    from transformers import ViTConfig, ViTModel

    ViTModel(ViTConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                       intermediate_size=32)).save_pretrained(tmp_path)
    settings.SIMILARITY = {**settings.SIMILARITY, "MODEL_NAME": str(tmp_path)}
    with pytest.raises(ModelLoadError, match="needs a DINOv2 checkpoint"):
        get_embedder()


def uploaded_project(dataset, count=3, **kwargs):
    return [factories.asset(dataset, f"img{i}.png", factories.pattern_image(i % 3, seed=i),
                            **kwargs) for i in range(count)]


def test_upload_ends_embedded_with_unit_vector(dataset_a, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        asset = factories.asset(dataset_a, "a.png")
    row = asset.similarity_embeddings.get()
    assert row.status == Embedding.Status.PENDING
    assert row.project_id == str(dataset_a.project_id)  # scope ids are text, any key type
    tasks.embed_project(dataset_a.project_id)
    row.refresh_from_db()
    assert row.status == Embedding.Status.DONE and row.dims == 32
    vector = np.asarray(row.vector, dtype=np.float32)
    assert vector.shape == (32,)
    assert abs(np.linalg.norm(vector) - 1.0) < 2e-3  # halfvec storage


def test_an_upload_queues_one_task_per_project(dataset_a, django_capture_on_commit_callbacks):
    from django_q.models import OrmQ

    with django_capture_on_commit_callbacks(execute=True):
        uploaded_project(dataset_a, 3)
    # three uploads, one queued task: the later ones see it waiting
    assert OrmQ.objects.count() == 1


def messages(project_id):
    return list(Notification.objects.filter(project_id=project_id).order_by("id")
                .values_list("message", flat=True))


def test_readiness_goes_computing_to_ready_with_one_notification_each(
        dataset_a, django_capture_on_commit_callbacks):
    project_id = dataset_a.project_id
    with django_capture_on_commit_callbacks(execute=True):
        uploaded_project(dataset_a, 3)
    state = readiness.get_readiness(project_id)
    assert (state.state, state.total, state.pending) == ("computing", 3, 3)
    assert messages(project_id) == ["3 images added · embedding 0 of 3"]
    tasks.embed_project(project_id)
    tasks.embed_project(project_id)  # delivered twice
    readiness.refresh(project_id)
    state = readiness.get_readiness(project_id)
    assert (state.state, state.embedded, state.pending, state.failed) == ("ready", 3, 0, 0)
    # one notification per batch, updated in place
    assert messages(project_id) == ["3 images added · Similarity search is ready"]
    # A new upload flips the project back to computing, then ready again: a new episode.
    with django_capture_on_commit_callbacks(execute=True):
        factories.asset(dataset_a, "late.png")
    assert readiness.get_readiness(project_id).state == "computing"
    tasks.embed_project(project_id)
    assert messages(project_id) == ["3 images added · Similarity search is ready",
                                    "1 image added · Similarity search is ready"]


def test_one_upload_batch_is_one_notification_updated_in_place(
        dataset_a, alice, django_capture_on_commit_callbacks):
    """Issue 24, item 3: 25 uploads, embedding, the insight stage: one notification, which
    says each stage as it comes and is unread again when it has news."""
    from similarity import insight_tasks
    from similarity.embedding import notifications

    project_id = str(dataset_a.project_id)
    with django_capture_on_commit_callbacks(execute=True):
        uploaded_project(dataset_a, 25)
    assert messages(project_id) == ["25 images added · embedding 0 of 25"]
    notifications.mark_read(alice)
    assert notifications.unread_count(alice) == 0
    tasks.embed_project(project_id)
    assert messages(project_id) == ["25 images added · Similarity search is ready"]
    assert notifications.unread_count(alice) == 1  # news: unread again
    insight_tasks.run_until_done(project_id)
    note = Notification.objects.get(project_id=project_id)
    assert note.message == ("25 images added · Similarity search is ready · duplicates "
                            "analysed (25 images)")
    assert note.url == f"/similarity/projects/{project_id}/duplicates/"
    assert note.level == "success" and note.updated > note.created
    insight_tasks.run_until_done(project_id)  # a later pass of the same batch: silent
    assert Notification.objects.filter(project_id=project_id).count() == 1


def test_progress_updates_the_batch_notification_without_reopening_it(
        dataset_a, alice, django_capture_on_commit_callbacks):
    from similarity.embedding import notifications

    project_id = str(dataset_a.project_id)
    with django_capture_on_commit_callbacks(execute=True):
        made = uploaded_project(dataset_a, 4)
    notifications.mark_read(alice)
    Embedding.objects.filter(asset=made[0]).update(status="done", vector=[1.0] * 32, dims=32)
    readiness.refresh(project_id)
    assert messages(project_id) == ["4 images added · embedding 1 of 4"]
    assert notifications.unread_count(alice) == 0  # progress alone is not news


def test_videos_do_not_count(dataset_a, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        factories.asset(dataset_a, "clip.mp4", factories.MP4_HEAD)
        factories.asset(dataset_a, "a.png")
    assert Embedding.objects.count() == 1
    assert readiness.get_readiness(dataset_a.project_id).total == 1


def test_corrupt_image_fails_alone(dataset_a, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        good = uploaded_project(dataset_a, 3)
    broken = good[1]
    with open(broken.file.path, "r+b") as handle:  # damaged on disk after upload
        handle.truncate(len(handle.read()) // 2)
    tasks.embed_project(dataset_a.project_id)
    rows = {row.asset_id: row for row in Embedding.objects.all()}
    assert rows[broken.pk].status == "failed"
    assert "corrupt or truncated" in rows[broken.pk].error
    assert [rows[a.pk].status for a in (good[0], good[2])] == ["done", "done"]
    state = readiness.get_readiness(dataset_a.project_id)
    assert (state.state, state.embedded, state.failed) == ("ready", 2, 1)
    failure = Notification.objects.get(project_id=dataset_a.project_id)  # the batch's one
    assert failure.message == ("3 images added · Similarity search is ready · 1 image could "
                               "not be embedded")
    assert failure.url == f"/similarity/projects/{dataset_a.project_id}/failed/"
    assert failure.level == "warning"


def test_task_twice_and_schedule_twice_leave_one_row(dataset_a):
    asset = factories.asset(dataset_a, "a.png")
    tasks.schedule_embedding([asset.pk])
    tasks.schedule_embedding([asset.pk])
    tasks.embed_project(dataset_a.project_id)
    tasks.embed_project(dataset_a.project_id)
    assert Embedding.objects.filter(asset=asset).count() == 1
    assert Embedding.objects.get(asset=asset).attempts == 1


@pytest.mark.django_db(transaction=True)
def test_two_workers_on_the_same_project_split_the_rows(dataset_a, monkeypatch):
    uploaded_project(dataset_a, 16)
    embedder = get_embedder()  # loaded once, so both workers start together
    original = embedder.embed

    def slow_embed(batch):  # a forward pass long enough for the other worker to claim
        time.sleep(0.15)
        return original(batch)

    monkeypatch.setattr(embedder, "embed", slow_embed)
    start = threading.Barrier(2)
    outcomes, errors = [], []

    def work():
        try:
            start.wait()
            outcomes.append(tasks.embed_project(dataset_a.project_id))
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=work) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    # both did real work, and together exactly the 16 rows, each claimed once
    assert sorted(outcome["embedded"] > 0 for outcome in outcomes) == [True, True], outcomes
    assert sum(outcome["embedded"] for outcome in outcomes) == 16
    rows = list(Embedding.objects.all())
    assert len(rows) == 16
    assert all(row.status == "done" and row.attempts == 1 for row in rows)
    ready = Notification.objects.filter(project_id=dataset_a.project_id,
                                        message__contains="Similarity search is ready")
    assert ready.count() == 1


#: A DINOv2 between the tiny test model and dinov2-small: a batch takes long enough
#: (tens of milliseconds) to kill a worker in the middle of a project, not much longer.
MEDIUM = {"hidden_size": 192, "num_hidden_layers": 6, "num_attention_heads": 3,
          "intermediate_size": 768}


@pytest.fixture(scope="session")
def medium_model(tmp_path_factory):
    return make_dinov2_checkpoint(tmp_path_factory.mktemp("medium") / "dinov2-medium", size=MEDIUM)


@pytest.mark.slow  # fault injection with two real clusters: about 25-35 s on 2 cores
@pytest.mark.integration
def test_killed_worker_loses_nothing(start_worker, dataset_a, settings, medium_model):
    """A real qcluster is SIGKILLed mid-batch; a second one finishes every image once."""
    settings.SIMILARITY = {**settings.SIMILARITY, "MODEL_NAME": str(medium_model)}
    model = {"SIMILARITY_TEST_WORKER_MODEL": str(medium_model)}
    count = 32
    assets = [factories.asset(dataset_a, f"img{i}.jpg",
                              factories.image_bytes("JPEG", (320, 240), seed=i))
              for i in range(count)]
    # the first worker's claims last 2 s, so they run out soon after it is killed
    first = start_worker(**model, SIMILARITY_TEST_CLAIM_SECONDS="2")
    wait_for(lambda: Embedding.objects.filter(status="done").count() >= 4, timeout=120,
             interval=0.02, message="the first worker to be mid-way")
    os.killpg(first.pid, signal.SIGKILL)  # the whole cluster: guard, pusher, workers
    first.wait()
    finished = dict(Embedding.objects.filter(status="done").values_list("pk", "updated"))
    interrupted = set(Embedding.objects.filter(status="pending", claimed_until__isnull=False)
                      .values_list("pk", flat=True))
    assert len(finished) < count, "the worker finished before it could be killed"
    assert interrupted, "the worker died holding claims"

    time.sleep(2.2)  # the dead worker's claims expire
    start_worker(**model)  # claims of 300 s: none runs out while this one works
    assert tasks.sweep()["requeued"] == [str(dataset_a.project_id)]
    wait_for(lambda: not Embedding.objects.filter(status="pending").exists(), timeout=120,
             message="the second worker to finish")

    rows = Embedding.objects.filter(asset__in=assets)
    assert rows.count() == count and set(rows.values_list("status", flat=True)) == {"done"}
    # exactly once: nothing the dead worker wrote was computed again...
    assert dict(rows.filter(pk__in=finished).values_list("pk", "updated")) == finished
    # ...the rows it held were claimed again, once each, all others once
    attempts = dict(rows.values_list("pk", "attempts"))
    assert {pk for pk, n in attempts.items() if n > 1} == interrupted
    assert all(n == 1 for pk, n in attempts.items() if pk not in interrupted)
    state = readiness.refresh(dataset_a.project_id)
    assert (state.state, state.embedded, state.failed) == ("ready", count, 0)
    ready = Notification.objects.filter(project_id=dataset_a.project_id,
                                        message__contains="Similarity search is ready")
    assert ready.count() == 1


def test_sweep_creates_rows_for_assets_that_predate_the_app(dataset_a):
    assets = uploaded_project(dataset_a, 2)
    Embedding.objects.all().delete()  # as if installed after the fact
    assert tasks.sweep()["created"] == 2
    assert Embedding.objects.filter(asset__in=assets, status="pending").count() == 2


def test_model_that_cannot_load_fails_once_with_a_clear_error(
        dataset_a, settings, django_capture_on_commit_callbacks):
    settings.SIMILARITY = {**settings.SIMILARITY, "MODEL_NAME": "/nonexistent/dinov2"}
    with django_capture_on_commit_callbacks(execute=True):
        uploaded_project(dataset_a, 2)
    for _ in range(3):
        outcome = tasks.embed_project(dataset_a.project_id)  # no crash loop, no exception
    assert "Could not load the image model '/nonexistent/dinov2'" in outcome["error"]
    state = readiness.get_readiness(dataset_a.project_id)
    assert state.state == "failed" and "Could not load" in state.error
    assert Embedding.objects.filter(status="pending").count() == 2  # kept for when it's fixed
    errors = Notification.objects.filter(level="error")
    assert errors.count() == 1 and "Could not load" in errors.get().message



def test_a_batch_that_waited_for_the_model_stays_one_notification(
        dataset_a, settings, tmp_path, django_capture_on_commit_callbacks):
    """Uploads, a model folder not there yet (FAILED), then the folder appears: the same
    batch goes on; no second "2 images added" beside the first."""
    from similarity.vectors.embedder import forget_loaded_models

    folder = tmp_path / "arrives-later"
    settings.SIMILARITY = {**settings.SIMILARITY, "MODEL_NAME": str(folder)}
    with django_capture_on_commit_callbacks(execute=True):
        uploaded_project(dataset_a, 2)
    tasks.embed_project(dataset_a.project_id)
    assert readiness.get_readiness(dataset_a.project_id).state == "failed"
    make_dinov2_checkpoint(folder)
    forget_loaded_models()
    tasks.sweep()  # a local folder's key names its files: the sweep makes the new key's rows
    tasks.embed_project(dataset_a.project_id)
    assert readiness.get_readiness(dataset_a.project_id).state == "ready"
    batch = Notification.objects.filter(project_id=dataset_a.project_id, key__startswith="batch:")
    assert list(batch.values_list("message", flat=True)) == [
        "2 images added · Similarity search is ready"]


def test_model_change_keeps_old_vectors_serving_until_new_ones_are_ready(
        dataset_a, settings, tmp_path, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        assets = uploaded_project(dataset_a, 3)
    project_id = dataset_a.project_id
    tasks.embed_project(project_id)
    old_key = current_model_key()
    new_model = make_dinov2_checkpoint(tmp_path / "retrained", seed=1)
    settings.SIMILARITY = {**settings.SIMILARITY, "MODEL_NAME": str(new_model)}
    new_key = current_model_key()
    assert new_key != old_key

    assert tasks.reindex_project(project_id)["created"] == 3  # beside the old rows
    state = readiness.get_readiness(project_id)
    assert (state.state, state.active_model_key) == ("computing", old_key)
    result = find_similar(assets[0])
    assert result.model_key == old_key and len(result.matches) == 2
    # the batch's notification says what happens: a model change, not new uploads
    assert messages(project_id)[-1] == "Re-embedding 3 images with a new model · 0 of 3"

    tasks.embed_project(project_id)
    state = readiness.get_readiness(project_id)
    assert (state.state, state.active_model_key) == ("ready", new_key)
    assert messages(project_id)[-1] == ("3 images re-embedded with the new model · Similarity "
                                        "search is ready")
    assert find_similar(assets[0]).model_key == new_key
    # once the new model serves, the old model's rows are deleted
    assert Embedding.objects.filter(model_key=old_key).count() == 0
    assert Embedding.objects.filter(model_key=new_key, status="done").count() == 3


def test_q_cluster_check_catches_retry_not_above_timeout(settings):
    settings.Q_CLUSTER = {"timeout": 600, "retry": 600, "max_attempts": 3}
    assert [e.id for e in check_q_cluster()] == ["similarity.E005"]
    settings.Q_CLUSTER = {"timeout": 600, "retry": 720}
    assert [e.id for e in check_q_cluster()] == ["similarity.W001"]
    settings.Q_CLUSTER = {"timeout": 600, "retry": 720, "max_attempts": 3}
    assert check_q_cluster() == []


def test_reindex_and_status_commands(dataset_a, capsys):
    uploaded_project(dataset_a, 3)
    Embedding.objects.all().delete()
    call_command("similarity_reindex", "--all", "--sync")
    output = capsys.readouterr().out
    assert "3 new" in output and "Embedded 3, failed 0" in output
    call_command("similarity_status")
    table = capsys.readouterr().out
    assert "ready" in table and "3/3" in table and "exact" in table


def test_notifications_api_and_mark_read(api, dataset_a, alice, bob):
    Notification.objects.create(project_id=dataset_a.project_id, message="hello")
    Notification.objects.create(project_id=dataset_a.project_id + 999, message="not yours")
    Notification.objects.create(project_id=dataset_a.project_id, message="for bob", recipient=bob)
    body = api.get("/api/notifications/").json()
    assert [n["message"] for n in body["results"]] == ["hello"]
    assert body["results"][0]["read"] is False
    pk = body["results"][0]["id"]
    assert api.post(f"/api/notifications/{pk}/read/").status_code == 204
    assert api.get("/api/notifications/?unread=1").json()["results"] == []
    assert api.get("/api/notifications/").json()["results"][0]["read"] is True


def test_readiness_api_and_reindex(api, dataset_a):
    uploaded_project(dataset_a, 2)
    project_id = dataset_a.project_id
    response = api.post(f"/api/projects/{project_id}/similarity/reindex/")
    assert response.status_code == 202
    tasks.embed_project(project_id)
    body = api.get(f"/api/projects/{project_id}/similarity/").json()
    assert body["state"] == "ready" and body["embedded"] == 2 and body["ready"] is True


def test_readiness_icon_renders_states(web, dataset_a, django_capture_on_commit_callbacks):
    from django.urls import reverse

    url = reverse("datasets:dataset", args=[dataset_a.pk])
    with django_capture_on_commit_callbacks(execute=True):
        uploaded_project(dataset_a, 2)
    html = web.get(url).content.decode()
    assert 'data-state="computing"' in html and "Computing embeddings 0/2" in html
    tasks.embed_project(dataset_a.project_id)
    html = web.get(url).content.decode()
    assert 'data-state="ready"' in html and "Similarity search ready" in html
    poll = web.get(reverse("similarity:readiness", args=[dataset_a.project_id])).json()
    assert poll["state"] == "ready" and poll["embedded"] == 2


@override_settings(SIMILARITY={"ASSET_MODEL": "datasets.Nope"})
def test_settings_object_reloads_and_reports_bad_model():
    from similarity.checks import check_host_models

    assert [e.id for e in check_host_models()] == ["similarity.E001"]


def test_mark_read_with_a_bad_id_marks_nothing(web, dataset_a, alice):
    """A non-numeric id once fell through to "mark all"; only an absent id means all."""
    from django.urls import reverse

    from similarity.embedding import notifications

    for n in range(3):
        Notification.objects.create(project_id=dataset_a.project_id, message=f"n{n}")
    url = reverse("similarity:notifications-read")
    for bad in ("abc", "1; DROP", "-1", ""):
        assert web.post(url, {"id": bad}).status_code == 400
        assert notifications.unread_count(alice) == 3
    first = Notification.objects.order_by("pk").first()
    assert web.post(url, {"id": str(first.pk)}).status_code == 302
    assert notifications.unread_count(alice) == 2
    assert web.post(url).status_code == 302  # no id at all: every one
    assert notifications.unread_count(alice) == 0


def test_notifications_api_reads_only_the_page_of_read_marks(api, dataset_a, alice):
    """The read flags come with the page (one query); the ids the user ever read are not
    loaded on each request."""
    from django.test.utils import CaptureQueriesContext

    made = [Notification(project_id=dataset_a.project_id, message=f"n{n}") for n in range(40)]
    Notification.objects.bulk_create(made)
    through = Notification.read_by.through
    through.objects.bulk_create([through(notification_id=n.pk, user_id=alice.pk)
                                 for n in Notification.objects.order_by("pk")[:30]])
    with CaptureQueriesContext(connection) as queries:
        body = api.get("/api/notifications/?limit=5").json()
    assert len(body["results"]) == 5 and body["count"] == 40
    newest_first = Notification.objects.order_by("-created", "-pk")[:5]
    expected = {n.pk: n.pk in {m.pk for m in Notification.objects.order_by("pk")[:30]}
                for n in newest_first}
    assert {item["id"]: item["read"] for item in body["results"]} == expected
    unbounded = [q["sql"] for q in queries.captured_queries
                 if "similarity_notification_read_by" in q["sql"]
                 and "LIMIT" not in q["sql"] and "COUNT(" not in q["sql"]]
    assert unbounded == []


def test_one_answer_to_can_it_be_searched_after_a_model_change(
        dataset_a, settings, tmp_path, web, client, django_capture_on_commit_callbacks):
    """While a new model's rows are pending, or it fails to load, the old model still
    serves: the menus, the readiness JSON, the dataset page and the results page all say
    searchable; /healthz says the new model failed to load (it looked complete)."""
    import shutil

    from django.urls import reverse

    from similarity.embedding.readiness import unavailable_reason

    with django_capture_on_commit_callbacks(execute=True):
        assets = uploaded_project(dataset_a, 3)
    project_id = dataset_a.project_id
    tasks.embed_project(project_id)
    broken = tmp_path / "broken-model"
    shutil.copytree(settings.SIMILARITY["MODEL_NAME"], broken)
    (broken / "model.safetensors").write_bytes(b"not safetensors at all")
    settings.SIMILARITY = {**settings.SIMILARITY, "MODEL_NAME": str(broken)}
    tasks.reindex_project(project_id)
    outcome = tasks.embed_project(project_id)  # the worker cannot load it
    assert "error" in outcome
    state = readiness.get_readiness(project_id)
    assert state.state == "failed" and state.active_model_key  # the old one serves
    assert unavailable_reason(state) == ""
    polled = web.get(reverse("similarity:readiness", args=[project_id])).json()
    assert polled["searchable"] is True and polled["unavailable_reason"] == ""
    page = web.get(reverse("datasets:dataset", args=[dataset_a.pk])).content.decode()
    assert "Unavailable" not in page and 'aria-disabled="true"' not in page
    results = web.get(reverse("similarity:results", args=[assets[0].pk]))
    assert results.status_code == 200 and len(results.context["matches"]) == 2
    health = client.get("/healthz").json()["model"]
    assert health == {"status": "failed"}  # anonymous: no names or paths


def test_a_failed_model_load_is_not_retried_for_a_minute_then_is(settings, tmp_path,
                                                                  monkeypatch):
    """A queue of tasks must not retry a broken model hundreds of times in a row, and a
    fixed model must be picked up without restarting the worker."""
    import shutil

    from similarity.vectors import embedder as embedders

    broken = tmp_path / "model"
    shutil.copytree(settings.SIMILARITY["MODEL_NAME"], broken)
    good = (broken / "model.safetensors").read_bytes()
    (broken / "model.safetensors").write_bytes(b"broken")
    settings.SIMILARITY = {**settings.SIMILARITY, "MODEL_NAME": str(broken)}
    clock = [1000.0]
    monkeypatch.setattr(embedders.time, "monotonic", lambda: clock[0])
    loads = []
    real_load = embedders.Dinov2Embedder.load
    monkeypatch.setattr(embedders.Dinov2Embedder, "load",
                        classmethod(lambda cls, *a, **k: loads.append(1) or real_load(*a, **k)))
    with pytest.raises(ModelLoadError):
        get_embedder()
    clock[0] += 59
    for _ in range(5):
        with pytest.raises(ModelLoadError):  # remembered, not loaded again
            get_embedder()
    assert len(loads) == 1
    clock[0] += 2  # past the minute: tried again (and still broken)
    with pytest.raises(ModelLoadError):
        get_embedder()
    assert len(loads) == 2
    (broken / "model.safetensors").write_bytes(good)  # fixed: the next task loads it
    assert get_embedder().dims == 32
    assert len(loads) == 3
