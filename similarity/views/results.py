"""Results pages: the images most or least like one image, or like a selection."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.http import urlencode

from similarity.conf import similarity_settings
from similarity.host.lookups import get_asset_for, get_visible_assets
from similarity.host.scopes import project_id_of
from similarity.http import ids_in_query
from similarity.search import SearchError, find_similar, find_similar_to_selection, validate
from similarity.search.gaps import parse_max_similarity, parse_min_similarity, trim
from similarity.views.base import not_found_as_404, scope_context, shown_readiness


def query_spec(positives: list, negatives: list = (), image: Any = None) -> dict:
    """What a results page searched with, for the parts that act on it (save, select)."""
    return {"positive": [str(a.pk) for a in positives], "negative": [str(a.pk) for a in negatives],
            "image": str(image.pk) if image is not None else None}


def search_page(request: HttpRequest, run: Any) -> dict[str, Any]:
    """Validate the page's order, limit and threshold, run the search; the context parts
    every results page shows (a refusal is the page's ``error``, with status 400 for a
    malformed parameter). The threshold is ``min_similarity`` in most-similar order and
    ``max_similarity`` in least-similar order: each keeps the top of its own ranking."""
    order = request.GET.get("order", "most")
    result, error, status = None, None, 200
    min_similarity = max_similarity = None
    try:
        min_similarity = parse_min_similarity(request.GET.get("min_similarity"))
        max_similarity = parse_max_similarity(request.GET.get("max_similarity"))
    except SearchError as exc:
        error, status = str(exc), 400
    if error is None:
        try:
            order, limit = validate(order, request.GET.get("limit", similarity_settings.MAX_RESULTS))
            result = run(order, limit)
        except SearchError as exc:
            error = str(exc)
    if order not in ("most", "least"):
        order = "most"
    return {"order": order, "result": result, "error": error, "status": status,
            "matches": trim(result.matches, min_similarity, max_similarity) if result else [],
            "min_similarity": min_similarity, "max_similarity": max_similarity,
            "threshold": max_similarity if order == "least" else min_similarity}


@login_required
@not_found_as_404
def results(request: HttpRequest, asset_id: str) -> HttpResponse:
    asset = get_asset_for(request.user, asset_id)
    project_id = project_id_of(asset)
    found = search_page(request, lambda order, limit: find_similar(
        asset, order=order, limit=limit, user=request.user))
    status = found.pop("status")
    # find_similar read the readiness record already; only a refused search needs it here
    state = shown_readiness(request, project_id, found["result"])
    return render(request, "similarity/results.html", scope_context(
        project_id, asset=asset, readiness=state, query_spec=query_spec([asset]), match_for=asset,
        **found,
    ), status=status)


@login_required
@not_found_as_404
def selection(request: HttpRequest) -> HttpResponse:
    """Results for several examples (``?id=1&id=2``, or ``?ids=1,2``) and counter-examples
    (``&not_id=4``, or ``&not=4,5``)."""
    def assets(param: str, legacy: str) -> list:
        raw = ids_in_query(request.GET, param, legacy)
        if len(raw) > int(similarity_settings.MAX_RESULTS):
            raise Http404("Too many images.")
        return get_visible_assets(request.user, raw)  # one query for all of them

    positives, negatives = assets("id", "ids"), assets("not_id", "not")
    if not positives:
        raise Http404("No images selected.")
    project_id = project_id_of(positives[0])
    found = search_page(request, lambda order, limit: find_similar_to_selection(
        positives, negatives=negatives, order=order, limit=limit, user=request.user))
    status = found.pop("status")
    state = shown_readiness(request, project_id, found["result"])
    return render(request, "similarity/selection.html", scope_context(
        project_id, positives=positives, negatives=negatives, readiness=state,
        query_spec=query_spec(positives, negatives),
        selection_query=urlencode({"id": [str(a.pk) for a in positives],
                                   "not_id": [str(a.pk) for a in negatives]}, doseq=True),
        **found,
    ), status=status)
