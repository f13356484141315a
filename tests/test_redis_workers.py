"""Two worker "machines" on django-q2's Redis broker and one PostgreSQL (issue 15).

Debian's ``redis-server`` runs on a free loopback port (no persistence, its own folder);
two separate ``qcluster`` processes use it (``ASSETSITE_REDIS_URL``) with the test
database. 2,000 generated images in 8 projects are uploaded, both clusters work, and one
cluster's whole process group is SIGKILLed mid-batch. Then: every image embedded (none
lost), each vector computed once except the few rows the dead cluster held (counted
through a test-only audit of every forward pass's rows, per cluster), nothing it had
written recomputed or rewritten, and each project ready with exactly one notification.

What the kill costs with Redis: the broker has no acknowledgement, so the task the dead
cluster was running and the tasks its pusher had prefetched are gone; the rows it held
come back when their claims expire, and the sweep queues their projects again (after
``PENDING_TIMEOUT`` for a prefetched task that never started; shortened here).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path

import pytest
from django.db import transaction
from django.test import override_settings
from django.utils import timezone

from similarity import tasks
from similarity.embedding import readiness
from similarity.models import Embedding, Notification
from tests import factories
from tests.conftest import ROOT, process_env, stop_process, wait_for

pytestmark = pytest.mark.integration

PROJECTS = 8
PER_PROJECT = 250
IMAGES = PROJECTS * PER_PROJECT
BATCH_SIZE = 32

#: A qcluster whose embedding writes are audited: each batch's row ids are appended to
#: a log (one line per forward pass, prefixed with the cluster's name) before the write.
#: The patch is made before django-q2 forks, so every worker process inherits it.
AUDITED_QCLUSTER = r"""
import os
import django
from django.conf import settings

# Bigger batches than the other tests' 4: 2,000 images in fewer round trips.
settings.SIMILARITY["BATCH_SIZE"] = int(os.environ["AUDIT_BATCH_SIZE"])
django.setup()
from similarity import tasks
from similarity.embedding import worker

name, log = os.environ["AUDIT_NAME"], open(os.environ["AUDIT_LOG"], "a", buffering=1)
original = worker._write

def audited_write(batch, vectors, dims):
    log.write(name + " " + " ".join(str(row_id) for row_id in vectors) + "\n")
    return original(batch, vectors, dims)

worker._write = audited_write
from django.core.management import call_command

call_command("qcluster")
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def redis_url():
    """A throw-away redis-server: loopback only, no RDB or AOF, killed at the end."""
    server = shutil.which("redis-server")
    if server is None:
        pytest.fail("redis-server is missing: bin/setup test installs Debian's redis-server")
    folder = Path(tempfile.mkdtemp(prefix="assetsite-redis-"))
    port = free_port()
    process = subprocess.Popen(
        [server, "--bind", "127.0.0.1", "--port", str(port), "--save", "", "--appendonly", "no",
         "--dir", str(folder), "--logfile", str(folder / "redis.log")],
        start_new_session=True,
    )
    url = f"redis://127.0.0.1:{port}/0"
    import redis

    client = redis.Redis.from_url(url)

    def up() -> bool:
        assert process.poll() is None, (folder / "redis.log").read_text()
        try:
            return client.ping()
        except redis.ConnectionError:
            return False

    try:
        wait_for(up, timeout=20, interval=0.05, message="redis-server to answer")
        yield url
    finally:
        client.close()
        process.kill()
        process.wait()
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def redis_broker(redis_url, monkeypatch):
    """This process queues through the same Redis as the clusters (django-q2 reads its
    Conf at import, so the test process's broker is switched here)."""
    from django_q.conf import Conf

    monkeypatch.setattr(Conf, "ORM", None)
    monkeypatch.setattr(Conf, "REDIS", redis_url)
    return redis_url


@pytest.fixture
def clusters(transactional_db, settings, tmp_path, redis_broker):
    """Start audited qclusters ("machines") on the Redis broker; always stopped."""
    started: list[subprocess.Popen] = []
    audit = tmp_path / "audit.log"

    def start(name: str, **env: str) -> subprocess.Popen:
        log = open(tmp_path / f"qcluster-{name}.log", "w")
        process = subprocess.Popen(
            [sys.executable, "-c", AUDITED_QCLUSTER],
            env=process_env(settings, ASSETSITE_REDIS_URL=redis_broker, AUDIT_NAME=name,
                            AUDIT_LOG=str(audit), AUDIT_BATCH_SIZE=str(BATCH_SIZE), **env),
            cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        log.close()
        process.log_path = tmp_path / f"qcluster-{name}.log"
        started.append(process)
        return process

    start.audit = audit
    yield start
    for process in started:
        if process.poll() is None:
            stop_process(process)


def computed(audit: Path) -> dict[str, Counter]:
    """Forward passes per row id, per cluster, from the audit log."""
    counts: dict[str, Counter] = {"A": Counter(), "B": Counter()}
    if audit.exists():
        for line in audit.read_text().splitlines():
            name, *rows = line.split()
            counts[name].update(int(row) for row in rows)
    return counts


def upload_projects() -> list[str]:
    """2,000 small distinct PNGs in storage and their assets, one commit per project with
    ``schedule_embedding`` in it, as a bulk import does (each project is one "computing"
    episode and queues one task). Bulk, so the upload is seconds, not the test's minute."""
    from django.core.files.base import ContentFile
    from django.core.files.storage import default_storage

    from datasets.models import Asset

    scopes = []
    for p in range(PROJECTS):
        dataset = factories.dataset(factories.project(f"machines {p}"))
        assets = []
        for i in range(PER_PROJECT):
            data = factories.image_bytes("PNG", (48, 40), seed=p * PER_PROJECT + i)
            name = default_storage.save(f"machines/{p}/{i}.png", ContentFile(data))
            assets.append(Asset(dataset=dataset, file=name, original_filename=f"{i}.png",
                                kind="image", content_type="image/png", size_bytes=len(data),
                                width=48, height=40))
        with transaction.atomic():
            tasks.schedule_embedding(Asset.objects.bulk_create(assets))
        scopes.append(str(dataset.project_id))
    return scopes


def test_two_clusters_on_redis_survive_a_sigkill(clusters, settings):
    upload_started = time.monotonic()
    scopes = upload_projects()
    upload_seconds = time.monotonic() - upload_started
    assert Embedding.objects.filter(status="pending").count() == IMAGES
    started = time.monotonic()
    # A's claims last 2 s, so the rows it holds are free again soon after it dies.
    first = clusters("A", SIMILARITY_TEST_CLAIM_SECONDS="2")
    second = clusters("B")

    def both_working() -> bool:
        for process in (first, second):
            assert process.poll() is None, process.log_path.read_text()[-3000:]
        counts = computed(clusters.audit)
        return sum(counts["A"].values()) >= 100 and sum(counts["B"].values()) >= 20

    wait_for(both_working, timeout=90, interval=0.02, message="both clusters to be embedding")
    os.killpg(first.pid, signal.SIGKILL)  # the whole machine: cluster, sentinel, workers, pusher
    first.wait()
    killed_at = time.monotonic() - started
    finished = dict(Embedding.objects.filter(status="done").values_list("pk", "updated"))
    # A's claims (2 s) end before B's (300 s): the rows the dead machine held
    soon = timezone.now() + timedelta(seconds=30)
    interrupted = set(Embedding.objects.filter(status="pending", claimed_until__lt=soon)
                      .values_list("pk", flat=True))
    by_a_before_kill = computed(clusters.audit)["A"]
    assert len(finished) < IMAGES * 0.8, "the clusters finished before one could be killed"
    assert interrupted, "the killed cluster held no claims: it was not mid-batch"

    # The dead machine's claims expire; the sweep (B runs it every SWEEP_MINUTES) queues
    # its projects again: at once for the task that was running, after PENDING_TIMEOUT
    # for tasks its pusher had taken off Redis but never started (shortened here).
    time.sleep(2.2)
    with override_settings(SIMILARITY={**settings.SIMILARITY, "PENDING_TIMEOUT": 1}):
        time.sleep(1.1)
        requeued = tasks.sweep()["requeued"]
    assert requeued, "rows were pending after the kill, so the sweep must queue work"

    def all_done() -> bool:
        assert second.poll() is None, second.log_path.read_text()[-3000:]
        return not Embedding.objects.filter(status="pending").exists()

    wait_for(all_done, timeout=120, interval=0.2, message="the surviving cluster to finish")
    total_seconds = time.monotonic() - started

    rows = Embedding.objects.all()
    # none lost: one row per image, every one embedded
    assert rows.count() == IMAGES and rows.values("asset_id").distinct().count() == IMAGES
    assert set(rows.values_list("status", flat=True)) == {"done"}
    counts = computed(clusters.audit)
    both = counts["A"] + counts["B"]
    # the audit saw every vector that was written (so the checks below can fail)
    assert set(both) >= set(rows.values_list("pk", flat=True))
    # once: the survivor computed each row at most once, and only rows nobody had written
    assert max(counts["B"].values()) == 1
    written_by_a = set(finished) & set(by_a_before_kill)
    assert written_by_a, "the killed cluster had written nothing: the kill proves little"
    assert not set(counts["B"]) & written_by_a, "a row the dead cluster had written was recomputed"
    # rows computed twice are only rows the dead cluster held (computed, never written)
    twice = {row for row, n in both.items() if n > 1}
    assert twice <= interrupted and max(both.values()) <= 2
    assert set(by_a_before_kill) == set(counts["A"])  # nothing of A's ran after the kill
    # nothing written before the kill was written again
    assert dict(rows.filter(pk__in=finished).values_list("pk", "updated")) == finished
    attempts = dict(rows.values_list("pk", "attempts"))
    assert {pk for pk, n in attempts.items() if n > 1} <= interrupted
    assert all(n == 1 for pk, n in attempts.items() if pk not in interrupted)
    # readiness and notifications: every project ready once
    for scope in scopes:
        state = readiness.refresh(scope)
        assert (state.state, state.embedded, state.failed) == ("ready", PER_PROJECT, 0)
        ready = Notification.objects.filter(project_id=scope, message__contains="Similarity search is ready")
        assert ready.count() == 1, list(Notification.objects.filter(project_id=scope)
                                        .values_list("message", flat=True))
    print(f"\nuploads {upload_seconds:.1f} s; {IMAGES} images, 2 clusters on Redis: "
          f"A killed at {killed_at:.1f} s holding "
          f"{len(interrupted)} claimed rows ({len(finished)} done then; A computed "
          f"{sum(by_a_before_kill.values())}, B {sum(counts['B'].values())}); "
          f"{len(twice)} rows computed twice; all done after {total_seconds:.1f} s; "
          f"sweep re-queued {len(requeued)} projects")
