"""The project map page, its data and the thumbnails shown when zoomed in.

The page draws the worker's PCA positions (similarity.insight.map) on a canvas; these views only
read what is stored and always go through ``check_project`` and the access policy.
"""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.utils.translation import gettext as _

from similarity.conf import similarity_settings
from similarity.host.groups import group_choices
from similarity.host.links import asset_label, insight_url, selection_url, thumbnail_url
from similarity.host.lookups import check_project, visible_assets
from similarity.host.models import asset_pks
from similarity.http import ids_in_query
from similarity.insight import map as project_map
from similarity.insight.reading import InsightNotReady, status
from similarity.models import MapBasis
from similarity.views.base import not_found_as_404, scope_context

#: Thumbnails the page may ask for at once (only points visible at high zoom are drawn).
MAX_THUMBNAILS = 60


@login_required
@not_found_as_404
def map_page(request: HttpRequest, project_id: str) -> HttpResponse:
    check_project(request.user, project_id)
    progress = status(project_id)
    context = scope_context(project_id, status=progress)
    if not progress["ready"]:
        return render(request, "similarity/insight/not_ready.html", {**context, "title": _("Map")})
    basis = MapBasis.objects.filter(project_id=str(project_id)).first()
    return render(request, "similarity/insight/map.html", {
        **context,
        "data_url": insight_url("map-data", project_id),
        "thumbs_url": insight_url("map-thumbs", project_id),
        "selection_url": selection_url(),
        "max_selection": int(similarity_settings.MAX_RESULTS),
        "groups": group_choices(project_id),
        "explained": round(100 * basis.explained) if basis else None,
        "outliers_url": insight_url("outliers", project_id),
    })


@login_required
@not_found_as_404
def map_data(request: HttpRequest, project_id: str) -> JsonResponse:
    check_project(request.user, project_id)
    try:
        data = project_map.payload(project_id, request.user)
    except InsightNotReady as exc:
        return JsonResponse({"detail": str(exc), "insight": exc.progress}, status=409)
    return JsonResponse(data, json_dumps_params={"separators": (",", ":")})


@login_required
@not_found_as_404
def map_thumbnails(request: HttpRequest, project_id: str) -> JsonResponse:
    """Thumbnail URLs and labels of up to MAX_THUMBNAILS visible assets (``?ids=``)."""
    check_project(request.user, project_id)
    wanted = ids_in_query(request.GET, "id", "ids")
    assets = visible_assets(project_id, request.user)
    found = [{"id": str(asset.pk), "url": thumbnail_url(asset),
              "label": asset_label(asset)}
             for asset in assets.filter(pk__in=asset_pks(wanted[:MAX_THUMBNAILS]))]
    return JsonResponse({"thumbnails": found})
