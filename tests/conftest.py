from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from similarity.vectors import embedder
from tests import factories

# The host-site suites run in their own processes with their own settings (test_hosts.py).
collect_ignore = ["hosts"]


@pytest.fixture(autouse=True)
def _media_root(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


@pytest.fixture(autouse=True)
def _fresh_model_cache():
    yield
    embedder.forget_loaded_models()


@pytest.fixture(scope="session")
def siglip_folder(tmp_path_factory):
    """A tiny random-weight SigLIP with a tokenizer built here (text search's model)."""
    from similarity.testing import make_siglip_checkpoint

    return make_siglip_checkpoint(tmp_path_factory.mktemp("tiny-siglip") / "tiny-siglip")


@pytest.fixture
def alice(db):
    return factories.user("alice")


@pytest.fixture
def bob(db):
    return factories.user("bob")


@pytest.fixture
def project_a(alice):
    return factories.project("A", {alice: "editor"})


@pytest.fixture
def project_b(bob):
    return factories.project("B", {bob: "editor"})


@pytest.fixture
def dataset_a(project_a):
    return factories.dataset(project_a, "cams")


@pytest.fixture
def dataset_b(project_b):
    return factories.dataset(project_b, "other")


@pytest.fixture
def api(alice):
    client = APIClient()
    client.force_authenticate(alice)
    return client


@pytest.fixture
def web(client, alice):
    client.force_login(alice)
    return client


# --- real processes ---------------------------------------------------------------------

import os  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

from assetsite.processes import stop_process  # noqa: E402 (tests import it from here)
from tests.chromium import chromium_page  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def process_env(settings, **extra) -> dict:
    """Environment for a child process that shares this test's database and media."""
    env = dict(os.environ)
    env.update(
        DJANGO_SETTINGS_MODULE="tests.settings",
        ASSETSITE_DB_NAME=settings.DATABASES["default"]["NAME"],
        ASSETSITE_MEDIA_ROOT=str(settings.MEDIA_ROOT),
        PYTHONUNBUFFERED="1",
    )
    env.update(extra)
    return env


@pytest.fixture
def worker(transactional_db, settings, tmp_path):
    """A real ``manage.py qcluster`` on the test database (only with transactional tests)."""
    log = open(tmp_path / "qcluster.log", "w+")
    process = subprocess.Popen(
        [sys.executable, str(ROOT / "manage.py"), "qcluster"],
        env=process_env(settings), cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    time.sleep(0.5)
    assert process.poll() is None, (tmp_path / "qcluster.log").read_text()
    process.log_path = tmp_path / "qcluster.log"
    yield process
    stop_process(process)
    log.close()


def wait_for(predicate, timeout: float = 90, interval: float = 0.25, message: str = ""):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {message or predicate}")


@pytest.fixture
def page(live_server):
    """A Playwright page in Debian's Chromium (Playwright's own browsers are never fetched)."""
    with chromium_page(live_server.url) as page:
        yield page


@pytest.fixture
def start_worker(transactional_db, settings, tmp_path):
    """Start (and always stop) real qcluster processes with extra environment."""
    started = []

    def start(**env) -> subprocess.Popen:
        log = open(tmp_path / f"qcluster-{len(started)}.log", "w+")
        process = subprocess.Popen(
            [sys.executable, str(ROOT / "manage.py"), "qcluster"],
            env=process_env(settings, **env), cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        process.log_path = Path(log.name)
        started.append((process, log))
        return process

    yield start
    for process, log in started:
        if process.poll() is None:
            stop_process(process)
        log.close()
