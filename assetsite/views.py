"""Operational endpoints."""

from django.db import connection
from django.http import HttpRequest, JsonResponse


def healthz(request: HttpRequest) -> JsonResponse:
    """Database reachable and worker clusters alive (django-q2 stats in the shared cache).

    Public on purpose, for load balancers and ``serve``'s own check; it reveals only
    whether things are up, never any data.
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
    ok = database == "ok" and any(c["status"] != "Stopped" for c in clusters)
    return JsonResponse(
        {"database": database, "clusters": clusters, "ok": ok}, status=200 if ok else 503
    )
