"""Pages of saved searches: save, list, rename, mute, delete, run, and their new matches.

A saved search is its owner's alone: every page looks it up by owner (anyone else gets a
404, ids reveal nothing) and re-checks that the owner may still see its project. Matches
are shown through the access policy at read time: an image the owner can no longer see,
or one deleted or moved out of the project, is left out.
"""

from __future__ import annotations

import uuid
from typing import Any
from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.db.models import Count
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import NoReverseMatch, reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from similarity import registry, watch
from similarity.access import filter_visible, get_access_policy
from similarity.conf import similarity_settings
from similarity.query_models import SavedSearch
from similarity.search import Match
from similarity.shortcuts import check_project
from similarity.views import redirect_back


def _context(**extra: Any) -> dict:
    return {"base_template": similarity_settings.BASE_TEMPLATE, **extra}


def own_search(user: Any, pk: Any) -> SavedSearch:
    """The user's own saved search in a project they may still see; 404 otherwise."""
    try:
        pk = int(pk)
    except (TypeError, ValueError) as exc:
        raise Http404("Not found.") from exc
    search = get_object_or_404(SavedSearch.objects.select_related("query_image"), pk=pk,
                               owner=user)
    check_project(user, search.project_id)
    return search


def visible_matches(user: Any, search: SavedSearch, batch: uuid.UUID | None = None) -> list:
    """The search's matches whose images the user may see now, best first."""
    rows = search.matches.all()
    if search.order == SavedSearch.Order.LEAST:  # an anomaly watch: most unlike first
        rows = rows.order_by("similarity", "id")
    if batch is not None:
        rows = rows.filter(batch=batch)
    rows = list(rows[:1000])
    assets = registry.project_assets(search.project_id)
    policy = get_access_policy()
    if policy.narrows_assets:
        assets = policy.filter_assets(user, assets)
    pk_field = registry.get_asset_model()._meta.pk
    keys = []
    for row in rows:
        try:
            keys.append(pk_field.to_python(row.asset_id))
        except (ValidationError, ValueError, TypeError):
            pass  # a key the host's key type no longer accepts: that image is gone
    found = {str(pk): asset for pk, asset in assets.in_bulk(keys).items()}
    return [
        Match(asset=found[row.asset_id], similarity=row.similarity,
              distance=1.0 - row.similarity)
        for row in rows if row.asset_id in found
    ]


def run_url(search: SavedSearch) -> str:
    """The full results of the search's query: the selection page or the image's page."""
    params: dict[str, str] = {"order": search.order}
    if search.threshold is not None and search.order == SavedSearch.Order.MOST:
        params["min_similarity"] = f"{search.threshold:.2f}"
    if search.positive_ids:
        params = {"ids": ",".join(search.positive_ids), **params}
        if search.negative_ids:
            params["not"] = ",".join(search.negative_ids)
        return f"{reverse('similarity:selection')}?{urlencode(params)}"
    if search.query_image_id:
        try:
            url = reverse("similarity:image-results", args=[search.query_image_id])
        except NoReverseMatch:
            return ""
        return f"{url}?{urlencode(params)}"
    return ""


@login_required
def saved_search_list(request: HttpRequest, project_id: str | None = None) -> HttpResponse:
    """The user's own saved searches, of one project or of every project they may see."""
    searches = filter_visible(SavedSearch.objects.filter(owner=request.user), request.user)
    if project_id is not None:
        check_project(request.user, project_id)
        searches = searches.filter(project_id=str(project_id))
    items, serving = [], {}
    for search in searches.annotate(match_total=Count("matches")).order_by(
            "project_id", "name", "pk"):
        if search.project_id not in serving:  # one readiness read per project
            serving[search.project_id] = watch.serving_key(search.project_id)
        items.append({
            "search": search,
            "threshold": watch.threshold_of(search),
            "match_count": search.match_total,
            "needs_resave": watch.needs_resave(search, serving[search.project_id]),
            "run_url": run_url(search),
        })
    return render(request, "similarity/saved_searches.html", _context(
        items=items, project_id=project_id,
        project=registry.get_project(project_id) if project_id is not None else None,
    ))


@login_required
@require_POST
def saved_search_create(request: HttpRequest) -> HttpResponse:
    """Save the query of a results page (the form of includes/save_search.html)."""
    data = request.POST

    def ids(name: str) -> list[str]:
        return [part.strip() for part in data.get(name, "").split(",") if part.strip()]

    try:
        search = watch.save_search(
            request.user, data.get("project_id", ""), name=data.get("name"),
            positive=ids("positive"), negative=ids("negative"), image=data.get("image") or None,
            order=data.get("order", "most"), threshold=data.get("threshold"),
        )
    except watch.SaveError as exc:
        messages.error(request, str(exc))
        return redirect_back(request)
    messages.success(request, _("Saved “%(name)s”: you will be notified when new images "
                                "match it.") % {"name": search.name})
    return redirect("similarity:saved-searches-project", project_id=search.project_id)


@login_required
@require_POST
def saved_search_rename(request: HttpRequest, pk: int) -> HttpResponse:
    search = own_search(request.user, pk)
    try:
        watch.rename(search, request.POST.get("name"))
    except watch.SaveError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, _("Renamed to “%(name)s”.") % {"name": search.name})
    return redirect_back(request)


@login_required
@require_POST
def saved_search_mute(request: HttpRequest, pk: int) -> HttpResponse:
    search = own_search(request.user, pk)
    search.muted = request.POST.get("muted", "1") in ("1", "true", "on")
    search.save(update_fields=["muted", "updated"])
    messages.success(request, (_("“%(name)s” is muted.") if search.muted
                               else _("“%(name)s” watches new images again."))
                     % {"name": search.name})
    return redirect_back(request)


@login_required
@require_POST
def saved_search_delete(request: HttpRequest, pk: int) -> HttpResponse:
    search = own_search(request.user, pk)
    project_id, name = search.project_id, search.name
    search.delete()
    messages.success(request, _("Deleted “%(name)s”.") % {"name": name})
    return redirect("similarity:saved-searches-project", project_id=project_id)


@login_required
def saved_search_run(request: HttpRequest, pk: int) -> HttpResponse:
    search = own_search(request.user, pk)
    url = run_url(search)
    if not url:
        messages.error(request, _("This search's image is gone; search again and save it."))
        return redirect("similarity:saved-searches-project", project_id=search.project_id)
    return redirect(url)


@login_required
def saved_search_matches(request: HttpRequest, pk: int) -> HttpResponse:
    """All new matches of a search, or one batch's (``?batch=``, the notification's link)."""
    search = own_search(request.user, pk)
    batch = None
    if request.GET.get("batch"):
        try:
            batch = uuid.UUID(request.GET["batch"])
        except ValueError as exc:
            raise Http404("Not found.") from exc
    matches = visible_matches(request.user, search, batch)
    return render(request, "similarity/saved_search_matches.html", _context(
        search=search, matches=matches, batch=batch, project_id=search.project_id,
        project=registry.get_project(search.project_id), run_url=run_url(search),
        threshold=watch.threshold_of(search), needs_resave=watch.needs_resave(search),
    ))



