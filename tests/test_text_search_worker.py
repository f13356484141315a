"""Text search through a real qcluster (issue 22): the worker embeds both models, embeds
the descriptions (QUERY_EMBEDDING "worker": the web process loads no text tower), and a
saved description notifies its owner of new uploads that match it."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from similarity.models import Embedding, Notification, ProjectReadiness, SavedSearch
from similarity.vectors import model_keys, text_model
from tests import factories
from tests.conftest import wait_for

pytestmark = pytest.mark.integration


def upload(client, dataset, start: int, count: int) -> None:
    for i in range(start, start + count):
        response = client.post("/api/assets/", {
            "dataset": dataset.pk,
            "file": factories.upload(f"part{i}.png", factories.pattern_image(i % 3, seed=i))},
            format="multipart")
        assert response.status_code == 201, response.content


def test_a_saved_description_is_notified_of_new_uploads_through_the_real_worker(
        start_worker, siglip_folder, settings, alice, dataset_a):
    settings.SIMILARITY = {**settings.SIMILARITY, "TEXT_MODEL_NAME": str(siglip_folder),
                           "QUERY_EMBEDDING": "worker", "QUERY_TIMEOUT": 60}
    worker = start_worker(SIMILARITY_TEST_TEXT_MODEL=str(siglip_folder))
    api = APIClient()
    api.force_authenticate(alice)
    scope = str(dataset_a.project_id)
    text_key = model_keys.text_model_key()
    upload(api, dataset_a, 0, 4)

    def both_ready():
        return (ProjectReadiness.objects.filter(project_id=scope, state="ready").exists()
                and Embedding.objects.filter(project_id=scope, model_key=text_key,
                                             status="done").count() == 4)

    wait_for(both_ready, timeout=120, message=f"both models to embed ({worker.log_path})")
    readiness = api.get(f"/api/projects/{scope}/similarity/").json()
    assert readiness["text"]["state"] == "ready" and readiness["text"]["embedded"] == 4

    found = api.post(f"/api/projects/{scope}/similar/", {"text": "cracked casing"},
                     format="json")
    assert found.status_code == 200, (found.content, worker.log_path.read_text()[-3000:])
    assert len(found.json()["results"]) == 4
    assert not text_model._loaded  # the worker embedded the description, not this process

    saved = api.post("/api/saved-searches/", {
        "project_id": scope, "name": "cracked casing", "text": "cracked casing",
        "threshold": -1}, format="json")
    assert saved.status_code == 201, saved.content
    assert saved.json()["text"] == "cracked casing"
    assert SavedSearch.objects.get().model_key == text_key

    upload(api, dataset_a, 4, 3)

    def notified():
        return Notification.objects.filter(recipient=alice,
                                           message__contains="match “cracked casing”").first()

    note = wait_for(notified, timeout=120, message=f"the watch notification ({worker.log_path})")
    assert note.message == "3 new images match “cracked casing”"
    assert not text_model._loaded
