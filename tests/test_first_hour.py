"""Issue 14, the first hour: commands that start nothing they don't need, a database that
is brought up to date before an operator command, stored names that follow the content,
docs that need no internet, /healthz that knows about the model, and pages that say
what state the embeddings are in."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

import pytest
from django.contrib.staticfiles import finders
from django.urls import reverse
from django.utils import timezone
from django_q.models import Schedule, Task

from assetsite import firstrun
from similarity import tasks
from similarity.embedding import readiness
from similarity.models import Embedding, Notification
from tests import factories
from tests.conftest import ROOT, stop_process, wait_for


@pytest.fixture
def var_dir():
    """A var folder outside pytest's tmp root: a concurrent pytest session resets
    /tmp/pytest-of-<user> to 0700, which would lock the embedded server's own user out."""
    path = Path(tempfile.mkdtemp(prefix="assetsite-first-hour-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def manage(var: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    environment = {**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings",
                   "ASSETSITE_VAR": str(var), "ASSETSITE_PGDATA": str(var / "pgdata"),
                   "ASSETSITE_DB_NAME": "first_hour", **env}
    environment.pop("DATABASE_URL", None)
    return subprocess.run([sys.executable, str(ROOT / "manage.py"), *args], cwd=ROOT,
                          env=environment, capture_output=True, text=True, timeout=300)


def test_help_and_check_start_no_database(var_dir):
    for args in (["--help"], ["help", "similarity_status"], ["check"], ["similarity_status", "--help"]):
        result = manage(var_dir, *args)
        assert result.returncode == 0, result.stderr
    assert not (var_dir / "pgdata").exists(), "no embedded PostgreSQL for commands without queries"


def test_an_operator_command_before_the_first_serve_migrates_instead_of_a_traceback(var_dir):
    result = manage(var_dir, "similarity_status")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Traceback" not in result.stderr and "does not exist" not in result.stderr
    assert "First run on this database: applying" in result.stderr
    assert "No image assets yet." in result.stdout
    again = manage(var_dir, "similarity_status")  # up to date now: nothing to apply
    assert again.returncode == 0 and "applying" not in again.stderr


def test_a_database_url_server_behind_on_migrations_is_told_what_to_run(monkeypatch, capsys):
    monkeypatch.setenv("DATABASE_URL", "postgres://ops@db.example/assets")
    monkeypatch.setattr(firstrun, "pending_migrations", lambda: 3)
    with pytest.raises(SystemExit) as exit_info:
        firstrun.prepare_database(sys.stderr)
    assert exit_info.value.code == 1
    assert "lacks 3 migration(s). Run `python manage.py migrate` first" in capsys.readouterr().err


def test_setup_is_idempotent_and_fast_once_done():
    setup = [str(ROOT / "bin" / "setup"), "test"]
    subprocess.run(setup, check=True, capture_output=True, timeout=900)  # installs if needed
    started = time.monotonic()
    subprocess.run(setup, check=True, capture_output=True, timeout=60)
    assert time.monotonic() - started < 3


# --- stored names follow the detected format ---------------------------------------------

POLYGLOT = factories.image_bytes("PNG") + b"<html><script>alert(document.cookie)</script></html>"


@pytest.mark.django_db
def test_a_png_html_polyglot_is_stored_under_png_by_every_path(web, api, dataset_a, alice):
    stored = [factories.asset(dataset_a, "page.html", POLYGLOT)]
    response = web.post(reverse("datasets:dataset-upload", args=[dataset_a.pk]),
                        {"files": [factories.upload("page.html", POLYGLOT, "text/html")]},
                        HTTP_ACCEPT="application/json")
    assert response.status_code == 201, response.content
    stored.append(dataset_a.assets.get(pk=response.json()["results"][0]["id"]))
    response = api.post("/api/assets/", {"dataset": dataset_a.pk,
                                         "file": factories.upload("page.html", POLYGLOT, "text/html")},
                        format="multipart")
    assert response.status_code == 201, response.content
    stored.append(dataset_a.assets.get(pk=response.json()["id"]))
    for asset in stored:
        assert asset.file.name.endswith(".png"), asset.file.name
        assert asset.content_type == "image/png" and asset.original_filename == "page.html"


@pytest.mark.django_db
def test_the_stored_extension_is_the_detected_one_even_when_the_name_lies(dataset_a):
    jpeg_named_png = factories.asset(dataset_a, "photo.png", factories.image_bytes("JPEG"))
    assert jpeg_named_png.file.name.endswith(".jpg")
    # any other code path that saves a file goes through the same upload_to
    asset = dataset_a.assets.get(pk=jpeg_named_png.pk)
    asset.file.save("evil.html", factories.upload("evil.html", b"x"), save=False)
    assert asset.file.name.endswith(".jpg")


# --- API docs without internet --------------------------------------------------------------

@pytest.mark.django_db
def test_api_docs_load_their_ui_from_our_static_files(web):
    html = web.get("/api/docs/").content.decode()
    assert "/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js" in html
    assert "cdn" not in html.lower() and "https://" not in html
    assert finders.find("drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js")


# --- /healthz knows whether the model can be found -----------------------------------------

def _model(settings, name):
    settings.SIMILARITY = {**settings.SIMILARITY, "MODEL_NAME": name}


@pytest.mark.django_db
def test_healthz_reports_a_model_folder_that_does_not_exist(client, settings, tmp_path):
    _model(settings, str(tmp_path / "no-such-model"))
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json()["model"] == {"status": "missing"}  # no paths for anonymous callers
    client.force_login(factories.user("ops", is_staff=True))
    model = client.get("/healthz").json()["model"]
    assert model["status"] == "missing" and "SIMILARITY_MODEL environment variable" in model["error"]


@pytest.mark.django_db
def test_healthz_reports_a_folder_without_weights_and_a_good_folder(client, settings, tmp_path):
    (tmp_path / "config.json").write_text("{}")
    _model(settings, str(tmp_path))
    assert client.get("/healthz").json()["model"]["status"] == "missing"
    _model(settings, os.environ["SIMILARITY_TEST_MODEL"])
    assert client.get("/healthz").json()["model"]["status"] == "ok"


@pytest.mark.django_db
def test_healthz_offline_hub_id_not_in_the_cache_is_missing(client, settings, monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    _model(settings, "facebook/dinov2-small")
    assert client.get("/healthz").json()["model"]["status"] == "missing"


# --- embedding state on the Datasets list and the asset page -------------------------------

def _embed_rows(assets, status):
    Embedding.objects.filter(asset__in=assets).update(status=status, error="bad pixels"
                                                      if status == "failed" else "")


@pytest.mark.django_db
def test_datasets_list_and_asset_page_say_where_embedding_stands(web, dataset_a):
    done, failed, waiting = (factories.asset(dataset_a, f"{n}.png", factories.image_bytes(seed=i))
                             for i, n in enumerate(["done", "failed", "waiting"]))
    _embed_rows([done], "done")
    _embed_rows([failed], "failed")
    readiness.refresh(str(dataset_a.project_id))
    page = web.get(reverse("datasets:project", args=[dataset_a.project_id])).content.decode()
    assert "1/3 embedded" in page and "1 failed" in page
    texts = {a: web.get(reverse("datasets:asset", args=[a.pk])).content.decode()
             for a in (done, failed, waiting)}
    assert "Embedded: ready for similarity search." in texts[done]
    assert "Could not be embedded" in texts[failed] and "bad pixels" in texts[failed]
    assert "Waiting to be embedded" in texts[waiting]
    # the asset page's Similarity Search is disabled, with the reason, until it can run
    assert 'aria-disabled="true" data-action="similarity-search"' in texts[waiting]
    assert "Available once this image is embedded." in texts[waiting]
    assert 'data-action="similarity-least"' in texts[done]


@pytest.mark.django_db
def test_results_link_back_to_the_dataset_and_explain_the_score(web, dataset_a):
    assets = [factories.asset(dataset_a, f"p{i}.png", factories.pattern_image(i % 2, seed=i))
              for i in range(3)]
    tasks.embed_project(str(dataset_a.project_id))
    html = web.get(reverse("similarity:results", args=[assets[0].pk])).content.decode()
    assert f'href="{reverse("datasets:dataset", args=[dataset_a.pk])}"' in html
    assert "Score</strong> = cosine similarity of DINOv2 image features" in html
    assert "The query image (outlined) is the reference, not a result." in html


@pytest.mark.django_db
def test_notifications_say_just_now_not_zero_minutes(web, dataset_a):
    Notification.objects.create(project_id=str(dataset_a.project_id), message="Fresh news")
    html = web.get(reverse("similarity:notifications")).content.decode()
    assert "just now" in html and "0\xa0minutes" not in html and "0 minutes" not in html


@pytest.mark.django_db
def test_the_sidebar_names_notifications_once(web, dataset_a):
    html = web.get(reverse("datasets:dataset", args=[dataset_a.pk])).content.decode()
    sidebar = html.split('<nav class="sidebar"', 1)[1].split("</nav>", 1)[0]
    assert sidebar.count("Notifications") == 1


# --- fixing a wrong model path recovers without waiting for the sweep ----------------------

@pytest.mark.integration
def test_fixing_the_model_path_recovers_without_waiting_for_the_sweep(
        start_worker, settings, dataset_a, web, tmp_path):
    """A wrong SIMILARITY_MODEL: the failure names the variable; once it is fixed and the
    worker restarted, the project is embedded at once (the periodic sweep runs every few
    minutes and is not called here)."""
    wrong = str(tmp_path / "dinov2-smal")
    settings.SIMILARITY = {**settings.SIMILARITY, "MODEL_NAME": wrong}
    broken = start_worker(SIMILARITY_TEST_WORKER_MODEL=wrong)
    for i in range(2):
        factories.asset(dataset_a, f"shot{i}.png", factories.pattern_image(i, seed=i))
    scope = str(dataset_a.project_id)

    def failed():
        state = readiness.get_readiness(scope)
        return state.state == "failed" and state.error and state

    state = wait_for(failed, timeout=60, message="the model failure to be recorded")
    assert "SIMILARITY_MODEL environment variable" in state.error
    stop_process(broken)

    # The periodic sweep would repair it eventually; make sure it does not run here.
    fixed_at = timezone.now()
    Schedule.objects.filter(func="similarity.tasks.sweep").update(next_run=fixed_at + timedelta(hours=1))
    settings.SIMILARITY = {**settings.SIMILARITY, "MODEL_NAME": os.environ["SIMILARITY_TEST_MODEL"]}
    start_worker()
    web.get(reverse("datasets:dataset", args=[dataset_a.pk]))  # a user looks at the project

    def ready():
        state = readiness.get_readiness(scope)
        return state.state == "ready" and state

    state = wait_for(ready, timeout=60, message="the project to recover without the sweep")
    assert (state.embedded, state.failed, state.error) == (2, 0, "")
    assert not Task.objects.filter(func="similarity.tasks.sweep", started__gte=fixed_at).exists()
