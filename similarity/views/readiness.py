"""A scope's readiness: the icon's JSON, the images that failed, and re-indexing."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from similarity.embedding import readiness
from similarity.embedding.scheduling import reindex_project
from similarity.host.lookups import can_edit, check_project, visible_assets
from similarity.insight.reading import readiness_payload
from similarity.models import Embedding
from similarity.views.base import not_found_as_404, redirect_back, scope_context


@login_required
@not_found_as_404
def readiness_json(request: HttpRequest, project_id: str) -> JsonResponse:
    check_project(request.user, project_id)
    state = readiness.readiness_for(project_id, request.user)
    return JsonResponse(readiness_payload(state, request.user))


@login_required
@not_found_as_404
def failed_assets(request: HttpRequest, project_id: str) -> HttpResponse:
    check_project(request.user, project_id)
    state = readiness.readiness_for(project_id, request.user)
    rows = (
        Embedding.objects.filter(
            project_id=project_id, model_key=state.model_key, status=Embedding.Status.FAILED,
            asset_id__in=visible_assets(project_id, request.user).values("pk"),
        )
        .select_related("asset")
        .order_by("-updated")[:500]
    )
    return render(request, "similarity/failed.html", scope_context(
        project_id, rows=rows, readiness=state, can_edit=can_edit(request.user, project_id),
    ))


@login_required
@require_POST
@not_found_as_404
def reindex(request: HttpRequest, project_id: str) -> HttpResponse:
    check_project(request.user, project_id)
    if not can_edit(request.user, project_id):
        raise PermissionDenied(_("Only the project's editors can re-index it."))
    outcome = reindex_project(project_id)
    messages.success(
        request,
        _("Re-indexing started: %(created)d new and %(retried)d failed images queued.") % outcome,
    )
    return redirect_back(request)
