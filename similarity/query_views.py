"""Pages for searching with an outside image: send it, see its results, add it to the host.

``POST projects/<id>/image-search/`` takes a multipart ``image``. A browser form gets a
303 to the results page; a script (``Accept: application/json``) gets ``{"id", "url"}``
or ``{"error", "code"}`` so it can show the reason beside the drop zone. A query image
belongs to the user who sent it: everyone else gets 404 for its pages and its preview.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils.module_loading import import_string
from django.views.decorators.http import require_GET, require_POST

from similarity import links, readiness, registry
from similarity.conf import similarity_settings
from similarity.gaps import parse_min_similarity, trim
from similarity.query_images import (
    QueryImageError,
    clean_name,
    create_query,
    get_query_for,
    search,
)
from similarity.search import SearchError, validate
from similarity.shortcuts import check_project
from similarity.views import query_spec


def _wants_json(request: HttpRequest) -> bool:
    return "application/json" in request.headers.get("Accept", "")


def results_url(query: Any, order: str = "most") -> str:
    return f"{reverse('similarity:image-results', args=[query.pk])}?order={order}"


def preview_url(query: Any) -> str:
    return reverse("similarity:image-preview", args=[query.pk])


def add_hook() -> Any:
    """The host's "Add to dataset" hook (``ADD_QUERY_IMAGE``), or None when unset."""
    hook = similarity_settings.ADD_QUERY_IMAGE
    if not hook:
        return None
    return (import_string(hook) if isinstance(hook, str) else hook)()


def _refused(request: HttpRequest, project_id: str, message: str, code: str,
             status: int) -> HttpResponse:
    if _wants_json(request):
        return JsonResponse({"error": message, "code": code}, status=status)
    return render(request, "similarity/image_results.html", {
        "base_template": similarity_settings.BASE_TEMPLATE, "query": None, "error": message,
        "project_id": project_id, "project": registry.get_project(project_id),
        "order": "most", "result": None, "matches": [],
        "query_spec": {"positive": [], "negative": [], "image": None},
    }, status=status)


@login_required
@require_POST
def image_search(request: HttpRequest, project_id: str) -> HttpResponse:
    """Search a project with the uploaded ``image``; nothing of the file is stored but a
    256 px preview and its vector."""
    check_project(request.user, project_id)
    order = request.POST.get("order", "most")
    order = order if order in ("most", "least") else "most"
    upload = request.FILES.get("image")
    if upload is None:
        return _refused(request, project_id, "Choose, drop or paste an image to search with.",
                        "no_image", 400)
    try:
        query = create_query(request.user, project_id, upload)
    except QueryImageError as exc:
        return _refused(request, project_id, str(exc), exc.code, exc.status)
    url = results_url(query, order)
    if _wants_json(request):
        return JsonResponse({"id": str(query.pk), "url": url, "name": query.name}, status=201)
    return _see_other(url)


def _see_other(url: str) -> HttpResponse:
    response = HttpResponse(status=303)
    response["Location"] = url
    return response


@login_required
@require_GET
def image_results(request: HttpRequest, query_id: str) -> HttpResponse:
    """Results of an outside image (owner only), Most or Least similar, up to 100."""
    query = get_query_for(request.user, query_id)
    order = request.GET.get("order", "most")
    result, error = None, None
    try:
        order, limit = validate(order, request.GET.get("limit", similarity_settings.MAX_RESULTS))
        result = search(query, order=order, limit=limit, user=request.user)
    except SearchError as exc:
        error = str(exc)
        order = order if order in ("most", "least") else "most"
    state = result.readiness if result else readiness.get_readiness(query.project_id)
    hook = add_hook()
    targets = hook.targets(request.user, query.project_id) if hook else []
    spec = query_spec([], image=query)
    min_similarity = parse_min_similarity(request.GET.get("min_similarity"))
    return render(request, "similarity/image_results.html", {
        "base_template": similarity_settings.BASE_TEMPLATE,
        "query": query,
        "preview_url": preview_url(query),
        "project_id": query.project_id,
        "project": registry.get_project(query.project_id),
        "order": order,
        "result": result,
        "matches": trim(result.matches, min_similarity) if result else [],
        "min_similarity": min_similarity,
        "error": error,
        "readiness": state,
        "query_spec": spec,
        "add_targets": targets,
    })


@login_required
@require_GET
def image_preview(request: HttpRequest, query_id: str) -> HttpResponse:
    """The 256 px JPEG preview of the user's own query image."""
    query = get_query_for(request.user, query_id)
    response = HttpResponse(bytes(query.preview), content_type="image/jpeg")
    response["Cache-Control"] = "private, max-age=3600"
    response["X-Content-Type-Options"] = "nosniff"
    return response


@login_required
@require_POST
def image_add(request: HttpRequest, query_id: str) -> HttpResponse:
    """Store the query's file through the host's hook ("Add to dataset").

    The original was never kept, so the browser sends it again (``image``) with the
    chosen ``target``; the host's own upload checks apply.
    """
    query = get_query_for(request.user, query_id)
    hook = add_hook()
    if hook is None:
        return _refused(request, query.project_id, "Adding images is not available here.",
                        "unsupported", 404)
    target = request.POST.get("target", "")
    upload = request.FILES.get("image")
    if upload is None:
        return _refused(request, query.project_id,
                        f"{query.name}: choose the file again to add it.", "no_image", 400)
    if target not in {str(value) for value, _label in hook.targets(request.user, query.project_id)}:
        return _refused(request, query.project_id, "Choose where to add the image.",
                        "bad_target", 400)
    try:
        asset = hook.add(request.user, query.project_id, target, upload)
    except ValueError as exc:  # the host's refusal (PermissionDenied answers 403)
        name = clean_name(getattr(upload, "name", ""))
        text = str(exc)
        return _refused(request, query.project_id,
                        text if text.startswith(name) else f"{name}: {text}", "bad_image", 400)
    url = links.asset_url(asset)
    if _wants_json(request):
        return JsonResponse({"id": str(asset.pk), "url": url, "label": links.asset_label(asset)},
                            status=201)
    return _see_other(url)
