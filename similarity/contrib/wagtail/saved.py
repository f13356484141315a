"""Saved searches inside Wagtail's admin: "Save this search" on every results page, the
editor's list of them, and each one's matches, in Wagtail's layout.

Saving, muting and deleting go through ``similarity.watch`` (the same code as the
reusable app's pages and the API), so the worker watches new uploads with these searches
exactly as with any other; only the links here lead to the admin's own results pages.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from django.contrib import messages as django_messages
from django.core.exceptions import PermissionDenied
from django.db.models import Count
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST
from django.views.generic import TemplateView
from wagtail.admin.views.generic import WagtailAdminTemplateMixin

from similarity import watch
from similarity.errors import NotFound
from similarity.host.access import get_access_policy
from similarity.host.scopes import SITE_SCOPE
from similarity.http import safe_next
from similarity.models import SavedSearch


def admin_run_url(search: SavedSearch) -> str | None:
    """The admin's results page of a saved search's query (None when its image is gone)."""
    order = "?order=least" if search.order == SavedSearch.Order.LEAST else ""
    if search.positive_ids:
        if len(search.positive_ids) == 1 and not search.negative_ids:
            return reverse("similarity_wagtail:results", args=[search.positive_ids[0]]) + order
        query = {"ids": ",".join(str(pk) for pk in search.positive_ids)}
        if search.negative_ids:
            query["not"] = ",".join(str(pk) for pk in search.negative_ids)
        if order:
            query["order"] = "least"
        return f"{reverse('similarity_wagtail:selection')}?{urlencode(query)}"
    if search.query_image_id:
        name = ("similarity_wagtail:region-results" if search.query_image.region
                else "similarity_wagtail:image-results")
        return reverse(name, args=[search.query_image_id]) + order
    if search.text:
        query = {"q": search.text, **({"order": "least"} if order else {})}
        return f"{reverse('similarity_wagtail:text')}?{urlencode(query)}"
    return None


def _own(request: HttpRequest, pk: Any) -> SavedSearch:
    try:
        return watch.own_search(request.user, pk)
    except NotFound as exc:
        raise Http404(_("Saved search not found.")) from exc


def _back(request: HttpRequest) -> str:
    return safe_next(request, reverse("similarity_wagtail:saved"), referer=False)


def _searchable(request: HttpRequest) -> None:
    if not get_access_policy().can_view(request.user, SITE_SCOPE):
        raise PermissionDenied


@require_POST
def create(request: HttpRequest) -> HttpResponse:
    """Save the query of a results page (the form of similarity_wagtail/save_search.html)."""
    _searchable(request)
    data = request.POST
    try:
        search = watch.save_search(
            request.user, SITE_SCOPE, name=data.get("name"),
            positive=[pk for pk in data.get("positive", "").split(",") if pk.strip()],
            negative=[pk for pk in data.get("negative", "").split(",") if pk.strip()],
            image=data.get("image") or None, text=data.get("text") or None,
            order=data.get("order", "most"), threshold=data.get("threshold") or None,
        )
    except NotFound as exc:
        raise Http404(_("Image not found.")) from exc
    except watch.SaveError as exc:
        django_messages.error(request, str(exc))
        return redirect(_back(request))
    django_messages.success(request, _("Saved “%(name)s”: you will be notified when new images "
                                       "match it.") % {"name": search.name})
    return redirect("similarity_wagtail:saved")


@require_POST
def mute(request: HttpRequest, pk: int) -> HttpResponse:
    search = _own(request, pk)
    search.muted = request.POST.get("muted", "1") in ("1", "true", "on")
    search.save(update_fields=["muted", "updated"])
    django_messages.success(request, (_("“%(name)s” is muted.") if search.muted
                                      else _("“%(name)s” watches new images again."))
                            % {"name": search.name})
    return redirect(_back(request))


@require_POST
def delete(request: HttpRequest, pk: int) -> HttpResponse:
    search = _own(request, pk)
    name = search.name
    search.delete()
    django_messages.success(request, _("Deleted “%(name)s”.") % {"name": name})
    return redirect("similarity_wagtail:saved")


class SavedListView(WagtailAdminTemplateMixin, TemplateView):
    """The editor's saved searches of the library, with their matches' counts."""

    template_name = "similarity_wagtail/saved_list.html"
    header_icon = "search"
    page_title = gettext_lazy("Saved searches")

    def get(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        _searchable(request)
        return super().get(request, *args, **kwargs)

    def get_breadcrumbs_items(self) -> list[dict[str, str]]:
        return [*self.breadcrumbs_items,
                {"url": reverse("similarity_wagtail:index"), "label": _("Similar images")},
                {"url": "", "label": self.get_page_title()}]

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        searches = (SavedSearch.objects.filter(owner=self.request.user, project_id=SITE_SCOPE)
                    .select_related("query_image").annotate(found=Count("matches"))
                    .order_by("name"))
        context["rows"] = [{"search": search, "run_url": admin_run_url(search),
                            "threshold": watch.threshold_of(search)} for search in searches]
        return context


class MatchesView(WagtailAdminTemplateMixin, TemplateView):
    """One saved search's matches among new uploads, those the editor may still see."""

    template_name = "similarity_wagtail/saved_matches.html"
    header_icon = "search"

    def get(self, request: HttpRequest, pk: int) -> HttpResponse:
        self.search = _own(request, pk)
        return super().get(request)

    def get_page_title(self) -> str:
        return _("Matches of “%(name)s”") % {"name": self.search.name}

    def get_breadcrumbs_items(self) -> list[dict[str, str]]:
        return [*self.breadcrumbs_items,
                {"url": reverse("similarity_wagtail:index"), "label": _("Similar images")},
                {"url": reverse("similarity_wagtail:saved"), "label": _("Saved searches")},
                {"url": "", "label": self.get_page_title()}]

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        context.update(search=self.search, matches=watch.visible_matches(self.request.user,
                                                                         self.search),
                       run_url=admin_run_url(self.search))
        return context
