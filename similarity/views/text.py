"""The results page of a description: the project's images ranked against the text."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.translation import ngettext

from similarity.embedding.readiness import get_readiness, text_readiness
from similarity.host.groups import group_label
from similarity.host.lookups import check_project
from similarity.http import search_by_text, search_wait
from similarity.search.text import clean_text
from similarity.views.base import not_found_as_404, scope_context
from similarity.views.results import search_page


@login_required
@not_found_as_404
def text_results(request: HttpRequest, project_id: str) -> HttpResponse:
    """GET ``?q=cracked casing&order=most``: a search is safe to repeat, so the page can
    be bookmarked, reloaded and switched between orders."""
    check_project(request.user, project_id)
    text = request.GET.get("q", "")
    wait = search_wait(request)
    if wait is not None:
        found = {"order": request.GET.get("order", "most"), "result": None, "matches": [],
                 "status": 429, "threshold": None, "error": ngettext(
                     "Too many searches at once: try again in %(n)d second.",
                     "Too many searches at once: try again in %(n)d seconds.", wait)
                 % {"n": wait}}
    else:
        found = search_page(request, lambda order, limit: search_by_text(
            request.user, project_id, text, order=order, limit=limit))
    status = found.pop("status")
    if found["error"] and status == 200:
        status = 400  # a refused description (empty, too long, no text model)
    try:
        shown = clean_text(text)
    except ValueError:
        shown = text[:200]
    result = found["result"]
    state = result.readiness if result is not None else text_readiness(
        get_readiness(project_id), request.user)
    key = request.GET.get("target", "")
    label = group_label(project_id, key) if key else None  # a made-up key names nothing
    response = render(request, "similarity/text_results.html", scope_context(
        project_id, text=shown, readiness=state, query_spec={"text": shown},
        came_from={"key": key, "label": label} if label else None, **found,
    ), status=status)
    if status == 429:
        response["Retry-After"] = str(wait)
    return response
