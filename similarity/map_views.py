"""The project map page, its data and the thumbnails shown when zoomed in.

The page draws the worker's PCA positions (similarity.map) on a canvas; these views only
read what is stored and always go through ``check_project`` and the access policy.
"""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils.translation import gettext as _

from similarity import insight_queries as queries
from similarity import links
from similarity import map as project_map
from similarity.conf import similarity_settings
from similarity.insight_models import MapBasis
from similarity.shortcuts import check_project

#: Thumbnails the page may ask for at once (only points visible at high zoom are drawn).
MAX_THUMBNAILS = 60


@login_required
def map_page(request: HttpRequest, project_id: str) -> HttpResponse:
    check_project(request.user, project_id)
    status = queries.status(project_id)
    context = {"base_template": similarity_settings.BASE_TEMPLATE, "project_id": project_id,
               "project": queries.registry.get_project(project_id), "status": status}
    if not status["ready"]:
        return render(request, "similarity/insight/not_ready.html",
                      {**context, "title": _("Map")})
    basis = MapBasis.objects.filter(project_id=str(project_id)).first()
    return render(request, "similarity/insight/map.html", {
        **context,
        "data_url": reverse("similarity:insight-map-data", args=[project_id]),
        "thumbs_url": reverse("similarity:insight-map-thumbs", args=[project_id]),
        "selection_url": reverse("similarity:selection"),
        "max_selection": int(similarity_settings.MAX_RESULTS),
        "groups": queries.group_choices(project_id),
        "explained": round(100 * basis.explained) if basis else None,
        "outliers_url": reverse("similarity:insight-outliers", args=[project_id]),
    })


@login_required
def map_data(request: HttpRequest, project_id: str) -> JsonResponse:
    check_project(request.user, project_id)
    try:
        data = project_map.payload(project_id, request.user)
    except queries.InsightNotReady as exc:
        return JsonResponse({"detail": str(exc), "insight": exc.status}, status=409)
    return JsonResponse(data, json_dumps_params={"separators": (",", ":")})


@login_required
def map_thumbnails(request: HttpRequest, project_id: str) -> JsonResponse:
    """Thumbnail URLs and labels of up to MAX_THUMBNAILS visible assets (``?ids=``)."""
    check_project(request.user, project_id)
    wanted = [part.strip() for part in request.GET.get("ids", "").split(",") if part.strip()]
    wanted = wanted[:MAX_THUMBNAILS]
    assets = queries.visible_assets(project_id, request.user)
    found = []
    for asset in assets.filter(pk__in=_keys(assets.model, wanted)):
        found.append({"id": project_map._public(asset.pk), "url": links.thumbnail_url(asset),
                      "label": links.asset_label(asset)})
    return JsonResponse({"thumbnails": found})


def _keys(model, raw: list[str]) -> list:
    """The ids that are valid keys of the asset model (others are ignored, never a 500)."""
    field = model._meta.pk
    keys = []
    for value in raw:
        try:
            keys.append(field.to_python(value))
        except Exception:  # noqa: S112 - a malformed id is simply not found
            continue
    return keys
