"""Operational endpoints."""

from __future__ import annotations

import os
from pathlib import Path

from django.db import connection
from django.http import HttpRequest, JsonResponse

from similarity.conf import similarity_settings


def model_status() -> dict:
    """Can the worker find the configured model? Checked without loading it.

    A local folder must hold config.json and model.safetensors; a hub id needs the hub
    or, offline (HF_HUB_OFFLINE=1), a copy in the local Hugging Face cache. A load the
    worker already tried and failed is reported through readiness errors.
    """
    name = str(similarity_settings.MODEL_NAME)
    source = similarity_settings.MODEL_NAME_SOURCE
    path = Path(name).expanduser()
    looks_like_path = path.is_absolute() or name.startswith((".", "~")) or name.count("/") > 1
    if path.is_dir():
        missing = [f for f in ("config.json", "model.safetensors") if not (path / f).is_file()]
        if missing:
            return {"status": "missing", "name": name,
                    "error": f"{name} has no {' or '.join(missing)}: "
                             f"set {source} to a DINOv2 checkpoint folder."}
        return {"status": "ok", "name": name, "where": "local folder"}
    if looks_like_path:
        return {"status": "missing", "name": name,
                "error": f"No folder {name}: set {source} to a DINOv2 checkpoint folder or a hub id."}
    if os.environ.get("HF_HUB_OFFLINE", "") not in ("", "0"):
        try:
            from huggingface_hub import try_to_load_from_cache

            cached = try_to_load_from_cache(name, "config.json", revision=similarity_settings.model_revision)
        except Exception:
            cached = None
        if not isinstance(cached, str):
            return {"status": "missing", "name": name,
                    "error": f"HF_HUB_OFFLINE is set and {name} is not in the local cache: "
                             f"set {source} to a local checkpoint folder."}
        return {"status": "ok", "name": name, "where": "hub cache"}
    return {"status": "ok", "name": name, "where": "hub (downloaded by the worker on first use)"}


def healthz(request: HttpRequest) -> JsonResponse:
    """Database reachable, worker clusters alive (django-q2 stats in the shared cache),
    and the configured image model findable.

    Public on purpose, for load balancers and ``serve``'s own check; it reveals only
    whether things are up, never any data (staff also see which model and why).
    """
    database = "ok"
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except Exception:
        database = "down"
    clusters = []
    try:
        from django_q.status import Stat

        clusters = [{"status": stat.status, "workers": len(stat.workers)} for stat in Stat.get_all()]
    except Exception:
        clusters = []
    model = model_status()
    # A cluster still "Starting" (or "Stopping") cannot take work yet.
    running = any(c["status"] in ("Idle", "Working") for c in clusters)
    ok = database == "ok" and running and model["status"] == "ok"
    if not getattr(request.user, "is_staff", False):
        model = {"status": model["status"]}  # names and paths are for staff only
    return JsonResponse(
        {"database": database, "clusters": clusters, "model": model, "ok": ok},
        status=200 if ok else 503,
    )
