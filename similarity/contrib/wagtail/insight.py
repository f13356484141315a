"""Duplicates and the most unusual images as pages of the admin's "Similar images" area.

They read the insight stage through ``similarity.insight.reading``, the same functions as
the reusable app's pages and the API, with the editor as the user: groups are formed only
among images the editor may see, and the ranking lists only those. Results carry
Wagtail's bulk-action checkboxes, so Wagtail's own Delete (or Add to collection, Tag)
acts on a group's extra copies.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_GET
from django.views.generic import TemplateView
from wagtail.admin.views.generic import WagtailAdminTemplateMixin
from wagtail.images import get_image_model

from similarity.contrib.wagtail.access import visible_images
from similarity.contrib.wagtail.links import label, thumbnail_url
from similarity.contrib.wagtail.views import MAX_SELECTION, CollectionFilterForm, collection_images
from similarity.host.access import get_access_policy
from similarity.host.scopes import SITE_SCOPE
from similarity.insight import map as library_map
from similarity.insight import reading
from similarity.models import MapBasis

GROUPS_PER_PAGE = 20
UNUSUAL_PER_PAGE = 40
#: Thumbnails the map may ask for at once (it draws them only when few points are in view).
MAP_THUMBNAILS = 60


class InsightPageView(WagtailAdminTemplateMixin, TemplateView):
    header_icon = "image"

    def get(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not get_access_policy().can_view(request.user, SITE_SCOPE):
            raise PermissionDenied
        return super().get(request, *args, **kwargs)

    def get_breadcrumbs_items(self) -> list[dict[str, str]]:
        return [*self.breadcrumbs_items,
                {"url": reverse("similarity_wagtail:index"), "label": _("Similar images")},
                {"url": "", "label": self.get_page_title()}]

    def read(self) -> dict[str, Any]:
        raise NotImplementedError

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        try:
            context.update(self.read())
        except reading.InsightNotReady as exc:
            context["not_ready"] = exc.progress.get("message") or _("Not analysed yet.")
        context["model_opts"] = get_image_model()._meta
        return context


class DuplicatesView(InsightPageView):
    """Near-duplicate groups (byte-identical first) at a threshold the editor sets."""

    template_name = "similarity_wagtail/duplicates.html"
    page_title = gettext_lazy("Duplicates")

    def read(self) -> dict[str, Any]:
        error = ""
        try:
            threshold = reading.parse_threshold(self.request.GET.get("threshold"))
        except ValueError as exc:
            error, threshold = str(exc), reading.DEFAULT_THRESHOLD
        groups = reading.duplicate_groups(SITE_SCOPE, threshold, user=self.request.user)
        page = Paginator(groups, GROUPS_PER_PAGE).get_page(self.request.GET.get("p"))
        reading.fill_members(SITE_SCOPE, list(page.object_list))
        return {"page": page, "elided_page_range": page.paginator.get_elided_page_range(page.number),
                "groups": [group for group in page.object_list if group.members],
                "threshold": threshold, "threshold_error": error,
                "min_threshold": reading.MIN_THRESHOLD, "total": len(groups)}


class UnusualView(InsightPageView):
    """The images least like their neighbours, most unusual first (outliers)."""

    template_name = "similarity_wagtail/unusual.html"
    page_title = gettext_lazy("Most unusual")

    def read(self) -> dict[str, Any]:
        form = CollectionFilterForm(self.request.GET or None, user=self.request.user)
        collection = form.cleaned_data["collection"] if form.is_valid() else None
        ranking = reading.outliers(SITE_SCOPE, user=self.request.user,
                                   within=collection_images(self.request.user, collection))
        page = Paginator(ranking, UNUSUAL_PER_PAGE).get_page(self.request.GET.get("p"))
        return {"page": page, "elided_page_range": page.paginator.get_elided_page_range(page.number),
                "ranked": reading.assets_for(list(page.object_list)),
                "offset": page.start_index(), "form": form, "collection": collection}


class MapView(InsightPageView):
    """The library as a map (the insight stage's PCA positions), drawn by the reusable
    app's map.js from the admin's own data and thumbnail URLs; a lasso or box selection
    leads to the admin's selection results."""

    template_name = "similarity_wagtail/map.html"
    page_title = gettext_lazy("Map")

    def read(self) -> dict[str, Any]:
        progress = reading.status(SITE_SCOPE, user=self.request.user)
        if not progress["ready"]:
            raise reading.InsightNotReady(progress)
        basis = MapBasis.objects.filter(project_id=SITE_SCOPE).first()
        return {
            "status": progress, "groups": [],
            "data_url": reverse("similarity_wagtail:map-data"),
            "thumbs_url": reverse("similarity_wagtail:map-thumbs"),
            "selection_url": reverse("similarity_wagtail:selection"),
            "max_selection": MAX_SELECTION,
            "explained": round(100 * basis.explained) if basis else None,
            "outliers_url": reverse("similarity_wagtail:unusual"),
        }


@require_GET
def map_data(request: HttpRequest) -> JsonResponse:
    """The positions of the images this editor may see (409 while not analysed)."""
    if not get_access_policy().can_view(request.user, SITE_SCOPE):
        raise PermissionDenied
    try:
        data = library_map.payload(SITE_SCOPE, request.user)
    except reading.InsightNotReady as exc:
        return JsonResponse({"detail": str(exc), "insight": exc.progress}, status=409)
    return JsonResponse(data, json_dumps_params={"separators": (",", ":")})


@require_GET
def map_thumbnails(request: HttpRequest) -> JsonResponse:
    """Renditions and titles of up to MAP_THUMBNAILS images (``?id=``) the editor may see."""
    wanted = [pk for pk in request.GET.getlist("id") if pk.isdigit()][:MAP_THUMBNAILS]
    images = visible_images(request.user).filter(pk__in=wanted)
    return JsonResponse({"thumbnails": [
        {"id": str(image.pk), "url": thumbnail_url(image), "label": label(image)}
        for image in images]})
