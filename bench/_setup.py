"""Shared start-up for bench scripts: a dedicated database on the embedded PostgreSQL."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def django_for_bench(database: str, **env: str) -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "assetsite.settings")
    os.environ["ASSETSITE_DB_NAME"] = database
    os.environ.setdefault("ASSETSITE_MEDIA_ROOT", tempfile.mkdtemp(prefix=f"{database}-media-"))
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.update(env)
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0, interactive=False)
    import logging

    logging.disable(logging.INFO)  # the figures, not the worker's chatter


def start_worker(database: str, model_dir: Path, name: str, **env: str) -> subprocess.Popen:
    """A real ``manage.py qcluster`` on the bench's database and model (stop it with
    ``assetsite.processes.stop_process``); its log is ``<tmp>/bench-<name>-qcluster.log``."""
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "assetsite.settings",
           "ASSETSITE_DB_NAME": database, "SIMILARITY_MODEL": str(model_dir),
           "HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1", **env}
    log = open(Path(tempfile.gettempdir()) / f"bench-{name}-qcluster.log", "w")
    return subprocess.Popen([sys.executable, str(ROOT / "manage.py"), "qcluster"], env=env,
                            cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)


def bench_project(name: str, username: str, rows: int) -> tuple:
    """A fresh project (an earlier run's of that name deleted) with an editor and one
    dataset of ``rows`` synthetic assets, embedded with clustered random vectors of the
    current model: (user, project, dataset)."""
    import numpy as np
    from django.contrib.auth import get_user_model

    from datasets.models import Dataset, Project, ProjectMembership
    from similarity.embedding import readiness
    from similarity.testing import clustered_unit_vectors, load_embeddings
    from similarity.vectors import model_keys

    Project.objects.filter(name__startswith=name).delete()
    user = get_user_model().objects.get_or_create(username=username)[0]
    project = Project.objects.create(name=f"{name} ({rows} rows)")
    ProjectMembership.objects.create(project=project, user=user, role="editor")
    dataset = Dataset.objects.create(project=project, name="d")
    ids = np.array(insert_assets(dataset.pk, rows))
    load_embeddings(ids, np.full(len(ids), project.pk),
                    clustered_unit_vectors(len(ids), 384, seed=1), model_keys.current_model_key())
    readiness.refresh(str(project.pk))
    return user, project, dataset


def insert_assets(dataset_id: int, count: int) -> list[int]:
    """``count`` synthetic image rows in one statement (files are never read by these
    benches); names like ``cam_7_shot_1234.jpg`` and camera/weather metadata."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO datasets_asset (dataset_id, file, original_filename, kind, content_type, "
            "size_bytes, metadata, thumbnail, created) SELECT %s, 'bench/' || g || '.jpg', "
            "'cam_' || (g %% 50) || '_shot_' || g || '.jpg', 'image', 'image/jpeg', 0, "
            "jsonb_build_object('camera', CASE WHEN g %% 3 = 0 THEN 'front' ELSE 'side' END, "
            "'weather', CASE WHEN g %% 7 = 0 THEN 'rain' ELSE 'sun' END), '', now() "
            "FROM generate_series(1, %s) g RETURNING id",
            [dataset_id, count],
        )
        return sorted(row[0] for row in cursor.fetchall())


def machine() -> str:
    import platform

    import torch

    cpu = platform.processor() or platform.machine()
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{os.cpu_count()} cores ({cpu}), torch {torch.__version__}, {torch.get_num_threads()} threads"
