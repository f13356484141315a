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
from django.utils.translation import ngettext
from django.views.decorators.http import require_GET, require_POST

from similarity.errors import NotFound
from similarity.host.groups import group_label
from similarity.host.links import asset_label, asset_url, image_preview_url, image_results_url
from similarity.host.lookups import check_project, get_asset_for, get_assets_for
from similarity.http import query_preview, search_wait, see_other, wants_json
from similarity.search.outside import (
    QueryImageError,
    add_hook,
    clean_name,
    create_query,
    create_region_query,
    get_query_for,
    search,
)
from similarity.search.region import RegionError, parse_region
from similarity.views.base import not_found_as_404, scope_context, shown_readiness
from similarity.views.results import query_spec, search_page


def _refused(request: HttpRequest, project_id: str, message: str, code: str,
             status: int, headers: dict[str, str] | None = None) -> HttpResponse:
    if wants_json(request):
        response = JsonResponse({"error": message, "code": code}, status=status)
    else:
        response = render(request, "similarity/image_results.html", scope_context(
            project_id, query=None, error=message, order="most", result=None, matches=[],
            query_spec={"positive": [], "negative": [], "image": None},
        ), status=status)
    for name, value in (headers or {}).items():
        response[name] = value
    return response


@login_required
@require_POST
@not_found_as_404
def image_search(request: HttpRequest, project_id: str) -> HttpResponse:
    """Search a project with the uploaded ``image`` (or only its ``region``, "x,y,w,h" in
    fractions), or with a region of one of its images (``asset`` and ``region``); nothing
    of the file is stored but a 256 px preview and its vector."""
    check_project(request.user, project_id)
    order = request.POST.get("order", "most")
    order = order if order in ("most", "least") else "most"
    upload = request.FILES.get("image")
    raw_region, asset_id = request.POST.get("region", ""), request.POST.get("asset", "")
    if upload is None and not (asset_id and raw_region):
        return _refused(request, project_id, "Choose, drop or paste an image to search with.",
                        "no_image", 400)
    wait = search_wait(request)
    if wait is not None:
        return _refused(request, project_id, ngettext(
            "Too many searches at once: try again in %(n)d second.",
            "Too many searches at once: try again in %(n)d seconds.", wait) % {"n": wait},
            "throttled", 429, {"Retry-After": str(wait)})
    try:
        region = parse_region(raw_region) if raw_region else None
        if upload is None:  # a region of one of the project's own images
            asset = get_assets_for(request.user, project_id, [asset_id])[0]
            query = create_region_query(request.user, asset, region)
        else:
            query = create_query(request.user, project_id, upload, region=region)
    except (QueryImageError, RegionError) as exc:
        return _refused(request, project_id, str(exc), exc.code, exc.http_status,
                        exc.headers())
    # "Add it to" starts at the dataset the search came from (its page names it)
    url = image_results_url(query.pk, order, target=request.POST.get("target", "")[:255])
    if wants_json(request):
        return JsonResponse({"id": str(query.pk), "url": url, "name": query.name}, status=201)
    return see_other(url)


@login_required
@require_GET
@not_found_as_404
def image_results(request: HttpRequest, query_id: str) -> HttpResponse:
    """Results of an outside image (owner only), Most or Least similar, up to 100."""
    query = get_query_for(request.user, query_id)
    found = search_page(request, lambda order, limit: search(
        query, order=order, limit=limit, user=request.user))
    status = found.pop("status")
    state = shown_readiness(request, query.project_id, found["result"])
    hook = add_hook()
    # a region of the project's own image is already in it: nothing to add
    targets = hook.targets(request.user, query.project_id) if hook and not query.source_asset_id \
        else []
    return render(request, "similarity/image_results.html", scope_context(
        query.project_id, query=query, preview_url=image_preview_url(query.pk), readiness=state,
        query_spec=query_spec([], image=query), add_targets=targets,
        add_default=request.GET.get("target", ""), came_from=_came_from(query, request),
        region_of=_region_of(request, query), region_box=_box_style(query), match_for=query, **found,
    ), status=status)


def _came_from(query: Any, request: HttpRequest) -> dict[str, str] | None:
    """The group (dataset) the search started in, for the breadcrumb; only one of the
    query's own scope, so a made-up ``?target=`` names nothing."""
    key = request.GET.get("target", "")
    label = group_label(query.project_id, key) if key else None
    return {"key": key, "label": label} if label else None


def _region_of(request: HttpRequest, query: Any) -> Any:
    """The image a region was drawn on, if it is still there for this user."""
    if not query.source_asset_id:
        return None
    try:
        return get_asset_for(request.user, query.source_asset_id)
    except NotFound:
        return None


def _box_style(query: Any) -> str:
    """The region's box over the query tile's picture (the whole image, letterboxed in a
    square), in CSS percentages of the square."""
    if not query.region:
        return ""
    x, y, width, height = (float(value) for value in query.region)
    ratio = (query.height or 1) / (query.width or 1)  # height over width
    shown_w, shown_h = (1.0, ratio) if ratio <= 1 else (1 / ratio, 1.0)
    left, top = (1 - shown_w) / 2 + x * shown_w, (1 - shown_h) / 2 + y * shown_h
    return (f"left:{100 * left:.2f}%;top:{100 * top:.2f}%;width:{100 * width * shown_w:.2f}%;"
            f"height:{100 * height * shown_h:.2f}%")


@login_required
@require_GET
@not_found_as_404
def image_preview(request: HttpRequest, query_id: str) -> HttpResponse:
    """The 256 px JPEG preview of the user's own query image."""
    return query_preview(get_query_for(request.user, query_id))


@login_required
@require_POST
@not_found_as_404
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
    url = asset_url(asset)
    if wants_json(request):
        return JsonResponse({"id": str(asset.pk), "url": url, "label": asset_label(asset)},
                            status=201)
    return see_other(url)
