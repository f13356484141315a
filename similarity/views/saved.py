"""Pages of saved searches: save, list, rename, mute, delete, run, and their new matches.

A saved search is its owner's alone: every page looks it up by owner (anyone else gets a
404, ids reveal nothing) and re-checks that the owner may still see its project. Matches
are shown through the access policy at read time: an image the owner can no longer see,
or one deleted or moved out of the project, is left out.
"""

from __future__ import annotations

import uuid

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db.models import Count
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from similarity import watch
from similarity.host.access import filter_visible
from similarity.host.links import saved_search_run_url, saved_searches_url
from similarity.host.lookups import check_project
from similarity.http import ids_in_query
from similarity.models import SavedSearch
from similarity.search import serving_key
from similarity.views.base import not_found_as_404, redirect_back, scope_context


@login_required
@not_found_as_404
def saved_search_list(request: HttpRequest, project_id: str | None = None) -> HttpResponse:
    """The user's own saved searches, of one project or of every project they may see."""
    searches = filter_visible(SavedSearch.objects.filter(owner=request.user), request.user)
    if project_id is not None:
        check_project(request.user, project_id)
        searches = searches.filter(project_id=str(project_id))
    items, serving = [], {}
    searches = searches.select_related("query_image").defer(
        "query_image__preview", "query_image__vector")  # its name and region, not its bytes
    for search in searches.annotate(match_total=Count("matches")).order_by(
            "project_id", "name", "pk"):
        if search.project_id not in serving:  # one readiness read per project
            serving[search.project_id] = serving_key(search.project_id)
        items.append({
            "search": search,
            "threshold": watch.threshold_of(search),
            "match_count": search.match_total,
            "needs_resave": watch.needs_resave(search, serving[search.project_id]),
            "run_url": saved_search_run_url(search),
        })
    return render(request, "similarity/saved_searches.html", scope_context(
        project_id, items=items))


@login_required
@require_POST
@not_found_as_404
def saved_search_create(request: HttpRequest) -> HttpResponse:
    """Save the query of a results page (the form of includes/save_search.html)."""
    data = request.POST

    try:
        search = watch.save_search(
            request.user, data.get("project_id", ""), name=data.get("name"),
            positive=ids_in_query(data, "positive_id", "positive"),
            negative=ids_in_query(data, "negative_id", "negative"),
            image=data.get("image") or None, text=data.get("text") or None,
            order=data.get("order", "most"), threshold=data.get("threshold"),
        )
    except watch.SaveError as exc:
        messages.error(request, str(exc))
        return redirect_back(request)
    messages.success(request, _("Saved “%(name)s”: you will be notified when new images "
                                "match it.") % {"name": search.name})
    return redirect(saved_searches_url(search.project_id))


@login_required
@require_POST
@not_found_as_404
def saved_search_rename(request: HttpRequest, pk: int) -> HttpResponse:
    search = watch.own_search(request.user, pk)
    try:
        watch.rename(search, request.POST.get("name"))
    except watch.SaveError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, _("Renamed to “%(name)s”.") % {"name": search.name})
    return redirect_back(request)


@login_required
@require_POST
@not_found_as_404
def saved_search_mute(request: HttpRequest, pk: int) -> HttpResponse:
    search = watch.own_search(request.user, pk)
    search.muted = request.POST.get("muted", "1") in ("1", "true", "on")
    search.save(update_fields=["muted", "updated"])
    messages.success(request, (_("“%(name)s” is muted.") if search.muted
                               else _("“%(name)s” watches new images again."))
                     % {"name": search.name})
    return redirect_back(request)


@login_required
@require_POST
@not_found_as_404
def saved_search_delete(request: HttpRequest, pk: int) -> HttpResponse:
    search = watch.own_search(request.user, pk)
    project_id, name = search.project_id, search.name
    search.delete()
    messages.success(request, _("Deleted “%(name)s”.") % {"name": name})
    return redirect(saved_searches_url(project_id))


@login_required
@not_found_as_404
def saved_search_run(request: HttpRequest, pk: int) -> HttpResponse:
    search = watch.own_search(request.user, pk)
    url = saved_search_run_url(search)
    if not url:
        messages.error(request, _("This search's image is gone; search again and save it."))
        return redirect(saved_searches_url(search.project_id))
    return redirect(url)


@login_required
@not_found_as_404
def saved_search_matches(request: HttpRequest, pk: int) -> HttpResponse:
    """All new matches of a search, or one batch's (``?batch=``, the notification's link)."""
    search = watch.own_search(request.user, pk)
    batch = None
    if request.GET.get("batch"):
        try:
            batch = uuid.UUID(request.GET["batch"])
        except ValueError as exc:
            raise Http404("Not found.") from exc
    matches = watch.visible_matches(request.user, search, batch)
    return render(request, "similarity/saved_search_matches.html", scope_context(
        search.project_id, search=search, matches=matches, batch=batch,
        run_url=saved_search_run_url(search), threshold=watch.threshold_of(search),
        needs_resave=watch.needs_resave(search),
    ))
