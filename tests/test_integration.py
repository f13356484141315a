"""Real processes: the django-q2 worker cluster and the ``serve`` command."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid

import psutil
import psycopg
import pytest
from rest_framework.test import APIClient

from similarity.models import Embedding, Notification, ProjectReadiness
from tests import factories
from tests.conftest import ROOT, stop_process, wait_for

pytestmark = pytest.mark.integration


def test_real_qcluster_embeds_an_upload_end_to_end(worker, alice, dataset_a):
    client = APIClient()
    client.force_authenticate(alice)
    for i in range(3):
        response = client.post(
            "/api/assets/",
            {"dataset": dataset_a.pk,
             "file": factories.upload(f"shot{i}.jpg", factories.image_bytes("JPEG", seed=i))},
            format="multipart",
        )
        assert response.status_code == 201
    project_id = dataset_a.project_id

    def ready():
        state = ProjectReadiness.objects.get(project_id=project_id)
        return state.state == "ready" and state

    state = wait_for(ready, timeout=120, message="the worker to embed the uploads")
    assert (state.embedded, state.pending, state.failed) == (3, 0, 0)
    assert Embedding.objects.filter(status="done", dims=32).count() == 3
    assert Notification.objects.filter(project_id=project_id,
                                       message__contains="Similarity search is ready").count() == 1
    body = client.get(f"/api/assets/{response.json()['id']}/similar/").json()
    assert len(body["results"]) == 2  # the other two: the query is the reference, not a result
    # django-q logs "Processed" after it saved the task's result, a moment after our writes
    wait_for(lambda: "Processed 'similarity.tasks.embed_project'" in worker.log_path.read_text(),
             timeout=30, message="the cluster to log the finished task")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def get_json(url: str):
    try:
        with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 (loopback)
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")
    except OSError:
        return None, None


def test_serve_starts_web_and_worker_on_the_embedded_database(tmp_path, settings):
    port = free_port()
    database = f"serve_test_{uuid.uuid4().hex[:8]}"
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "assetsite.settings",
        "ASSETSITE_DB_NAME": database,
        "ASSETSITE_MEDIA_ROOT": str(tmp_path / "media"),
        "SIMILARITY_MODEL": settings.SIMILARITY["MODEL_NAME"],
        "PYTHONUNBUFFERED": "1",
    }
    env.pop("DATABASE_URL", None)
    log_path = tmp_path / "serve.log"
    with open(log_path, "w+") as log:
        process = subprocess.Popen(
            [sys.executable, str(ROOT / "manage.py"), "serve", "--port", str(port)],
            env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        try:
            def healthy():
                status, body = get_json(f"http://127.0.0.1:{port}/healthz")
                return body if status == 200 else None

            health = wait_for(healthy, timeout=120, message="web and worker to report in")
            assert health["database"] == "ok"
            assert health["clusters"] and health["clusters"][0]["workers"] == 1
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/accounts/login/") as response:
                assert response.status == 200 and b"Log in" in response.read()
            output = log_path.read_text()
            assert "embedded PostgreSQL" in output
            assert re.search(r"Demo login: username 'demo', password '\S+'", output)
            wait_for(lambda: "Similarity search is ready" in log_path.read_text(), timeout=120,
                     message="the demo images to be embedded")
            cluster = [p for p in psutil.Process(process.pid).children()
                       if "qcluster" in " ".join(p.cmdline())]
            assert len(cluster) == 1
            # Stopped twice in a row, as an impatient Ctrl-C Ctrl-C does: the second
            # signal must not abort stopping the worker and leave it orphaned.
            process.send_signal(signal.SIGTERM)
            time.sleep(0.3)
            process.send_signal(signal.SIGINT)
        finally:
            code = stop_process(process)
        assert code == 0, log_path.read_text()[-3000:]
        assert "Stopping the worker cluster" in log_path.read_text()
        assert not cluster[0].is_running() or cluster[0].status() == psutil.STATUS_ZOMBIE
    db = settings.DATABASES["default"]
    with psycopg.connect(host=db["HOST"], port=db["PORT"], user="postgres", dbname="postgres",
                         autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')


def test_one_upload_batch_of_25_through_the_real_worker_is_one_notification(worker, alice,
                                                                            dataset_a, client):
    """Issue 24: 25 files in one upload, embedded and analysed by a real qcluster, end as
    exactly one notification, updated in place through every stage."""
    from django.urls import reverse

    client.force_login(alice)
    files = [factories.upload(f"batch{i}.png", factories.pattern_image(i % 3, seed=i),
                              "image/png") for i in range(25)]
    response = client.post(reverse("datasets:dataset-upload", args=[dataset_a.pk]),
                           {"files": files}, HTTP_ACCEPT="application/json")
    assert response.status_code in (200, 201), response.content[:500]
    project_id = str(dataset_a.project_id)

    def analysed():
        notes = list(Notification.objects.filter(project_id=project_id))
        done = [n for n in notes if "duplicates analysed" in n.message]
        return done and notes

    notes = wait_for(analysed, timeout=180, message="the batch to be embedded and analysed")
    assert len(notes) == 1, [n.message for n in notes]
    assert notes[0].message == ("25 images added · Similarity search is ready · duplicates "
                                "analysed (25 images)")
    state = ProjectReadiness.objects.get(project_id=project_id)
    assert (state.state, state.embedded) == ("ready", 25)
