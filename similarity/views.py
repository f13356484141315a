"""Pages: search results, failed assets, notifications; JSON for the readiness icon."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from similarity import notifications, readiness, registry, tasks, thumbnails
from similarity.conf import similarity_settings
from similarity.gaps import parse_min_similarity, trim
from similarity.images import ImageDecodeError
from similarity.models import Embedding
from similarity.search import SearchError, find_similar, find_similar_to_selection, validate
from similarity.shortcuts import can_edit, check_project, get_asset_for


def query_spec(positives: list, negatives: list = (), image: object = None) -> dict:
    """What a results page searched with, for the parts that act on it (save, select)."""
    return {"positive": [str(a.pk) for a in positives], "negative": [str(a.pk) for a in negatives],
            "image": str(image.pk) if image is not None else None}


def _context(**extra):
    return {"base_template": similarity_settings.BASE_TEMPLATE, **extra}


@login_required
def results(request: HttpRequest, asset_id: str) -> HttpResponse:
    asset = get_asset_for(request.user, asset_id)
    order = request.GET.get("order", "most")
    limit = request.GET.get("limit", similarity_settings.MAX_RESULTS)
    project_id = registry.project_id_of(asset)
    result, error = None, None
    try:
        order, limit = validate(order, limit)
        result = find_similar(asset, order=order, limit=limit, user=request.user)
    except SearchError as exc:
        error = str(exc)
        if order not in ("most", "least"):
            order = "most"
    # find_similar read the readiness record already; only a refused search needs it here
    state = result.readiness if result else readiness.get_readiness(project_id)
    min_similarity = parse_min_similarity(request.GET.get("min_similarity"))
    matches = trim(result.matches, min_similarity) if result else []
    return render(
        request,
        "similarity/results.html",
        _context(
            asset=asset,
            project_id=project_id,
            project=registry.get_project(project_id),
            order=order,
            result=result,
            matches=matches,
            error=error,
            readiness=state,
            query_spec=query_spec([asset]),
            min_similarity=min_similarity,
        ),
        status=200,
    )


@login_required
def selection(request: HttpRequest) -> HttpResponse:
    """Results for several examples (``?ids=1,2,3``) and counter-examples (``&not=4,5``)."""
    def assets(param: str) -> list:
        raw = [part for part in request.GET.get(param, "").split(",") if part.strip()]
        if len(raw) > int(similarity_settings.MAX_RESULTS):
            raise Http404("Too many images.")
        return [get_asset_for(request.user, pk.strip()) for pk in raw]

    positives, negatives = assets("ids"), assets("not")
    if not positives:
        raise Http404("No images selected.")
    order = request.GET.get("order", "most")
    result, error = None, None
    try:
        order, limit = validate(order, request.GET.get("limit", similarity_settings.MAX_RESULTS))
        result = find_similar_to_selection(
            positives, negatives=negatives, order=order, limit=limit, user=request.user
        )
    except SearchError as exc:
        error = str(exc)
        order = order if order in ("most", "least") else "most"
    project_id = registry.project_id_of(positives[0])
    state = result.readiness if result else readiness.get_readiness(project_id)
    min_similarity = parse_min_similarity(request.GET.get("min_similarity"))
    return render(
        request,
        "similarity/selection.html",
        _context(
            positives=positives,
            negatives=negatives,
            project_id=project_id,
            project=registry.get_project(project_id),
            order=order,
            result=result,
            matches=trim(result.matches, min_similarity) if result else [],
            min_similarity=min_similarity,
            error=error,
            readiness=state,
            query_spec=query_spec(positives, negatives),
            ids=",".join(str(a.pk) for a in positives),
            not_ids=",".join(str(a.pk) for a in negatives),
        ),
    )


@login_required
def thumbnail(request: HttpRequest, asset_id: str) -> HttpResponse:
    """A small JPEG of an asset the user may see (generated once, then from storage)."""
    asset = get_asset_for(request.user, asset_id)
    try:
        data = thumbnails.get_thumbnail(asset)
    except (ImageDecodeError, OSError, ValueError) as exc:
        return HttpResponse(
            _("No thumbnail: %(reason)s") % {"reason": exc}, status=404, content_type="text/plain"
        )
    response = HttpResponse(data, content_type="image/jpeg")
    response["Cache-Control"] = "private, max-age=86400"
    return response


@login_required
def readiness_json(request: HttpRequest, project_id: str) -> JsonResponse:
    check_project(request.user, project_id)
    return JsonResponse(readiness.as_dict(readiness.get_readiness(project_id)))


@login_required
def failed_assets(request: HttpRequest, project_id: str) -> HttpResponse:
    check_project(request.user, project_id)
    state = readiness.get_readiness(project_id)
    rows = (
        Embedding.objects.filter(
            project_id=project_id, model_key=state.model_key, status=Embedding.Status.FAILED
        )
        .select_related("asset")
        .order_by("-updated")[:500]
    )
    return render(
        request,
        "similarity/failed.html",
        _context(
            rows=rows,
            project_id=project_id,
            project=registry.get_project(project_id),
            readiness=state,
            can_edit=can_edit(request.user, project_id),
        ),
    )


@login_required
@require_POST
def reindex(request: HttpRequest, project_id: str) -> HttpResponse:
    check_project(request.user, project_id)
    if not can_edit(request.user, project_id):
        raise PermissionDenied(_("Only the project's editors can re-index it."))
    outcome = tasks.reindex_project(project_id)
    messages.success(
        request,
        _("Re-indexing started: %(created)d new and %(retried)d failed images queued.") % outcome,
    )
    return redirect_back(request)


@login_required
def notification_list(request: HttpRequest) -> HttpResponse:
    items = list(notifications.visible_notifications(request.user).prefetch_related("read_by")[:200])
    for item in items:
        item.unread = request.user not in item.read_by.all()
    return render(request, "similarity/notifications.html", _context(items=items))


@login_required
@require_POST
def notifications_mark_read(request: HttpRequest) -> HttpResponse:
    raw = request.POST.get("id")
    ids = [int(raw)] if raw and raw.isdigit() else None
    notifications.mark_read(request.user, ids)
    return redirect_back(request)


@login_required
def notifications_json(request: HttpRequest) -> JsonResponse:
    latest = notifications.visible_notifications(request.user)[:5]
    return JsonResponse(
        {
            "unread": notifications.unread_count(request.user),
            "latest": [
                {"id": n.pk, "message": n.message, "level": n.level, "url": n.url,
                 "created": n.created.isoformat()}
                for n in latest
            ],
        }
    )


def redirect_back(request: HttpRequest) -> HttpResponse:
    """To the form's ``next`` or the referring page, if it is on this site; else home."""
    target = request.POST.get("next") or request.headers.get("Referer") or "/"
    if not url_has_allowed_host_and_scheme(target, {request.get_host()}, request.is_secure()):
        target = "/"
    return redirect(target)
