"""Operational endpoints."""

from __future__ import annotations

from django.db import connection
from django.http import HttpRequest, JsonResponse

from similarity.conf import similarity_settings


def model_status() -> dict:
    """Can the worker find and load the configured model? Asked of similarity without
    loading it (a folder with config.json and weights, or a hub id reachable or cached),
    then what the worker recorded when it tried (a complete-looking folder may not load)."""
    from similarity.embedding.readiness import model_failure
    from similarity.vectors.model_keys import model_problem

    name = str(similarity_settings.MODEL_NAME)
    problem = model_problem()
    if problem:
        return {"status": "missing", "name": name, "error": problem}
    failure = model_failure()  # found, but the worker could not load it
    if failure:
        return {"status": "failed", "name": name, "error": failure}
    return {"status": "ok", "name": name}


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
