"""Admin pages in Wagtail's layout: results for one image, a region of one, or a
selection; "Show match" maps; and the "Similar images" area (readiness, failures, retry,
notifications).

Every image is looked up among those the user may choose or change (404 otherwise, so
ids reveal nothing), and every search is restricted to them: the collection filter only
narrows that further, it never widens it.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_GET, require_POST
from django.views.generic import TemplateView
from wagtail.admin import messages
from wagtail.admin.views.generic import WagtailAdminTemplateMixin
from wagtail.images import get_image_model
from wagtail.models import Collection

from similarity.conf import similarity_settings
from similarity.contrib.wagtail.access import (
    image_permission_policy,
    visible_collections,
    visible_images,
)
from similarity.contrib.wagtail.links import THUMBNAIL_FILTER
from similarity.contrib.wagtail.near import near_duplicates
from similarity.contrib.wagtail.state import image_states
from similarity.embedding import notifications, readiness
from similarity.embedding.scheduling import reindex_project
from similarity.errors import NotFound, SimilarityError
from similarity.host.access import get_access_policy
from similarity.host.scopes import SITE_SCOPE
from similarity.http import (
    match_answer,
    query_preview,
    safe_next,
    search_by_text,
    search_wait,
    see_other,
    wants_json,
)
from similarity.models import Embedding
from similarity.search import SearchError, find_similar, find_similar_to_selection, outside
from similarity.search import text as text_search
from similarity.search.region import parse_region

ORDERS = {"most": gettext_lazy("Most similar"), "least": gettext_lazy("Least similar")}
#: Wagtail's help-block status for each notification level.
LEVEL_STATUS = {"error": "critical", "warning": "warning"}
#: At most this many images make one selection query.
MAX_SELECTION = 100


class CollectionFilterForm(forms.Form):
    collection = forms.ModelChoiceField(
        queryset=Collection.objects.none(),
        required=False,
        label=gettext_lazy("Collection"),
        empty_label=gettext_lazy("All collections you can see"),
    )

    def __init__(self, *args: Any, user: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["collection"]
        field.queryset = visible_collections(user).order_by("path")
        field.label_from_instance = lambda c: c.get_indented_name(indentation_start_depth=1)


def get_visible_image(user: Any, pk: Any) -> Any:
    """The image if this user may choose or change it; 404 otherwise."""
    try:
        image = visible_images(user).filter(pk=pk).first()
    except (ValueError, TypeError):
        image = None
    if image is None:
        raise Http404(_("Image not found."))
    return image


def collection_images(user: Any, collection: Any = None) -> QuerySet:
    """The images ``user`` may see, in ``collection`` and its children when one is given."""
    images = visible_images(user)
    if collection is not None:
        tree = Collection.objects.descendant_of(collection, inclusive=True)
        images = images.filter(collection__in=tree)
    return images


class SearchPageView(WagtailAdminTemplateMixin, TemplateView):
    """Shared by both results pages: order switch, collection filter, one search."""

    template_name = "similarity_wagtail/results.html"
    header_icon = "image"

    def setup(self, request: HttpRequest, *args: Any, **kwargs: Any) -> None:
        super().setup(request, *args, **kwargs)
        self.order = request.GET.get("order", "most")
        if self.order not in ORDERS:
            self.order = "most"
        self.form = CollectionFilterForm(request.GET or None, user=request.user)
        self.collection = self.form.cleaned_data["collection"] if self.form.is_valid() else None

    def within(self) -> QuerySet:
        return collection_images(self.request.user, self.collection)

    def search(self) -> Any:
        raise NotImplementedError

    def save_spec(self) -> dict[str, str] | None:
        """What "Save this search" sends for this page's query (None: nothing to save)."""
        return None

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        result, error = None, ""
        try:
            result = self.search()
        except SearchError as exc:
            error = str(exc)
        context.update(
            form=self.form,
            order=self.order,
            orders=ORDERS,
            collection=self.collection,
            result=result,
            error=error,
            rows=_rows(result.matches if result else []),
            base_query=self.base_query(),
            readiness=readiness.readiness_for(SITE_SCOPE, self.request.user),
            # Wagtail's bulk-action footer lists the actions registered for this model
            model_opts=get_image_model()._meta,
            can_search_image=True,  # whoever sees results may search with an outside image
            save_spec=self.save_spec(),
            **text_box(),
        )
        return context

    def base_query(self) -> str:
        """The query string without ``order``, so the switch keeps the other filters."""
        query = self.request.GET.copy()
        query.pop("order", None)
        return query.urlencode()

    def get_page_title(self) -> str:
        return str(ORDERS[self.order])


class ResultsView(SearchPageView):
    """The images most (or least) like one image."""

    def get(self, request: HttpRequest, image_id: str) -> HttpResponse:
        self.image = get_visible_image(request.user, image_id)
        return super().get(request)

    def search(self) -> Any:
        return find_similar(
            self.image, order=self.order, limit=similarity_settings.MAX_RESULTS,
            within=self.within(), user=self.request.user,
        )

    def get_page_subtitle(self) -> str:
        return self.image.title

    def save_spec(self) -> dict[str, str]:
        return {"positive": str(self.image.pk), "name": self.image.title}

    def get_header_title(self) -> str:
        return _("%(order)s to “%(title)s”") % {"order": self.get_page_title(),
                                               "title": self.image.title}

    def get_breadcrumbs_items(self) -> list[dict[str, str]]:
        return [
            *self.breadcrumbs_items,
            {"url": reverse("wagtailimages:index"), "label": _("Images")},
            {"url": reverse("wagtailimages:edit", args=[self.image.pk]),
             "label": self.image.title},
            {"url": "", "label": self.get_header_title()},
        ]

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        return super().get_context_data(query_images=[self.image], match_for=self.image,
                                        **kwargs)


class RegionResultsView(SearchPageView):
    """The images most (or least) like a region of one image (a query image of the user's,
    made by ``region_search``)."""

    def get(self, request: HttpRequest, query_id: str) -> HttpResponse:
        try:
            self.query = outside.get_query_for(request.user, query_id)
        except NotFound as exc:
            raise Http404(_("This search has expired; draw the region again.")) from exc
        self.image = None
        if self.query.source_asset_id:
            try:
                self.image = get_visible_image(request.user, self.query.source_asset_id)
            except Http404:
                self.image = None  # gone, or moved out of reach: the results still stand
        return super().get(request)

    def search(self) -> Any:
        return outside.search(self.query, order=self.order,
                              limit=similarity_settings.MAX_RESULTS, within=self.within(),
                              user=self.request.user)

    def get_page_subtitle(self) -> str:
        return self.query.name

    def get_header_title(self) -> str:
        return _("%(order)s to a region of “%(title)s”") % {"order": self.get_page_title(),
                                                          "title": self.query.name}

    def save_spec(self) -> dict[str, str]:
        return {"image": str(self.query.pk), "name": _("Region of %(name)s") % {
            "name": self.query.name}}

    def get_breadcrumbs_items(self) -> list[dict[str, str]]:
        items = [*self.breadcrumbs_items,
                 {"url": reverse("wagtailimages:index"), "label": _("Images")}]
        if self.image is not None:
            items.append({"url": reverse("wagtailimages:edit", args=[self.image.pk]),
                          "label": self.image.title})
        return [*items, {"url": "", "label": self.get_header_title()}]

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        x, y, width, height = (100 * float(v) for v in self.query.region or (0, 0, 1, 1))
        return super().get_context_data(
            query_images=[self.image] if self.image is not None else [], region_query=self.query,
            match_for=self.query, region_box=f"left:{x:.2f}%;top:{y:.2f}%;width:{width:.2f}%;"
                                             f"height:{height:.2f}%", **kwargs)


@require_POST
def region_search(request: HttpRequest, image_id: str) -> HttpResponse:
    """Search with a region (``region``: "x,y,w,h" in fractions) of an image the user may
    see; a script (``Accept: application/json``) gets ``{"id", "url"}`` or ``{"error",
    "code"}``, a form a 303 to the results."""
    image = get_visible_image(request.user, image_id)
    order = request.POST.get("order", "most")
    order = order if order in ORDERS else "most"
    wait = search_wait(request)
    try:
        if wait is not None:
            raise SearchError(_("Too many searches at once: try again in %d s.") % wait)
        query = outside.create_region_query(request.user, image,
                                            parse_region(request.POST.get("region", "")))
    except SimilarityError as exc:
        if wants_json(request):
            return JsonResponse({"error": str(exc), "code": exc.code},
                                status=429 if wait is not None else exc.http_status)
        messages.error(request, str(exc))
        return redirect("similarity_wagtail:results", image.pk)
    url = reverse("similarity_wagtail:region-results", args=[query.pk]) + f"?order={order}"
    if wants_json(request):
        return JsonResponse({"id": str(query.pk), "url": url, "name": query.name}, status=201)
    return see_other(url)


class OutsideResultsView(SearchPageView):
    """The images most (or least) like an image from outside the library (dropped, pasted
    or picked from disk): the user's own query image, kept as a preview and a vector."""

    def get(self, request: HttpRequest, query_id: str) -> HttpResponse:
        try:
            self.query = outside.get_query_for(request.user, query_id)
        except NotFound as exc:
            raise Http404(_("This search has expired; search with the image again.")) from exc
        return super().get(request)

    def search(self) -> Any:
        return outside.search(self.query, order=self.order,
                              limit=similarity_settings.MAX_RESULTS, within=self.within(),
                              user=self.request.user)

    def get_page_subtitle(self) -> str:
        return self.query.name

    def save_spec(self) -> dict[str, str]:
        return {"image": str(self.query.pk), "name": self.query.name}

    def get_header_title(self) -> str:
        return _("%(order)s to “%(title)s”") % {"order": self.get_page_title(),
                                               "title": self.query.name}

    def get_breadcrumbs_items(self) -> list[dict[str, str]]:
        return [*self.breadcrumbs_items,
                {"url": reverse("similarity_wagtail:index"), "label": _("Similar images")},
                {"url": "", "label": self.get_header_title()}]

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        return super().get_context_data(
            query_images=[], outside_query=self.query,
            outside_preview=reverse("similarity_wagtail:image-preview", args=[self.query.pk]),
            **kwargs)


@require_POST
def image_search(request: HttpRequest) -> HttpResponse:
    """Search the library with an uploaded ``image``: checked like an upload (a refused
    file is named with the reason), nothing kept but a preview and its vector; a script
    (``Accept: application/json``) gets ``{"id", "url"}`` or ``{"error", "code"}``."""
    back = safe_next(request, reverse("similarity_wagtail:index"), referer=False)
    order = request.POST.get("order", "most")
    order = order if order in ORDERS else "most"
    upload = request.FILES.get("image")
    wait = search_wait(request)
    try:
        if not get_access_policy().can_view(request.user, SITE_SCOPE):
            raise PermissionDenied
        if upload is None:
            raise SearchError(_("Choose, drop or paste an image to search with."))
        if wait is not None:
            raise SearchError(_("Too many searches at once: try again in %d s.") % wait)
        query = outside.create_query(request.user, SITE_SCOPE, upload)
    except SimilarityError as exc:
        if wants_json(request):
            return JsonResponse({"error": str(exc), "code": exc.code},
                                status=429 if wait is not None else exc.http_status)
        messages.error(request, str(exc))
        return redirect(back)
    url = reverse("similarity_wagtail:image-results", args=[query.pk]) + f"?order={order}"
    if wants_json(request):
        return JsonResponse({"id": str(query.pk), "url": url, "name": query.name}, status=201)
    return see_other(url)


@require_GET
def image_preview(request: HttpRequest, query_id: str) -> HttpResponse:
    """The 256 px JPEG preview of the user's own outside image (404 for anyone else)."""
    try:
        query = outside.get_query_for(request.user, query_id)
    except NotFound as exc:
        raise Http404(_("Image not found.")) from exc
    return query_preview(query)


def _match(request: HttpRequest, result_id: str, **query: Any) -> HttpResponse:
    try:
        return match_answer(request, result_id, **query)
    except NotFound as exc:
        raise Http404(_("Image not found.")) from exc


@require_GET
def image_match(request: HttpRequest, image_id: str, result_id: str) -> HttpResponse:
    """Where a result matches an image (or ``?region=`` of it): JSON, or ``?format=png``."""
    return _match(request, result_id, query_asset=image_id)


@require_GET
def region_match(request: HttpRequest, query_id: str, result_id: str) -> HttpResponse:
    """Where a result matches a region search of the user's."""
    return _match(request, result_id, query_image=query_id)


class SelectionResultsView(SearchPageView):
    """The images most (or least) like the mean of several selected images."""

    def get(self, request: HttpRequest) -> HttpResponse:
        self.images = self._images(request, "ids", required=True)
        # "Not like these": counter-examples the ranking is pushed away from
        self.negatives = self._images(request, "not", required=False)
        return super().get(request)

    @staticmethod
    def _images(request: HttpRequest, param: str, *, required: bool) -> list[Any]:
        """The images a comma-separated parameter names, in its order; 404 when one is not
        visible to the user (as if none existed), or when a required one is empty."""
        parts = request.GET.get(param, "").split(",")
        if param == "ids":  # the map's selection link repeats ?id= instead
            parts += request.GET.getlist("id")
        raw = list(dict.fromkeys(part.strip() for part in parts if part.strip()))
        if (required and not raw) or len(raw) > MAX_SELECTION:
            raise Http404(_("Select between 1 and %d images.") % MAX_SELECTION)
        if not raw:
            return []
        try:
            found = {str(image.pk): image
                     for image in visible_images(request.user).filter(pk__in=raw)}
        except (ValueError, TypeError, ValidationError):
            found = {}  # not keys of the image model's type
        if any(pk not in found for pk in raw):
            raise Http404(_("Image not found."))
        return [found[pk] for pk in raw]

    def search(self) -> Any:
        return find_similar_to_selection(
            self.images, negatives=self.negatives, order=self.order,
            limit=similarity_settings.MAX_RESULTS, within=self.within(), user=self.request.user,
        )

    def get_page_subtitle(self) -> str:
        return _("%(count)d selected images") % {"count": len(self.images)}

    def save_spec(self) -> dict[str, str]:
        return {"positive": ",".join(str(image.pk) for image in self.images),
                "negative": ",".join(str(image.pk) for image in self.negatives),
                "name": ", ".join(image.title for image in self.images[:3])[:100]}

    def get_header_title(self) -> str:
        return _("%(order)s to %(count)d selected images") % {
            "order": self.get_page_title(), "count": len(self.images)}

    def get_breadcrumbs_items(self) -> list[dict[str, str]]:
        return [
            *self.breadcrumbs_items,
            {"url": reverse("wagtailimages:index"), "label": _("Images")},
            {"url": "", "label": self.get_header_title()},
        ]

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        return super().get_context_data(query_images=self.images,
                                        negative_images=self.negatives, **kwargs)


def text_box(text: str = "") -> dict[str, Any]:
    """What the "Describe what you are looking for" box needs (shown only when a text
    model is configured)."""
    return {"text_search": text_search.enabled(), "text_query": text,
            "text_max_chars": int(similarity_settings.TEXT_QUERY_MAX_CHARS)}


class TextResultsView(SearchPageView):
    """The images a description fits best (or least), by the text model."""

    def get(self, request: HttpRequest) -> HttpResponse:
        if not text_search.enabled():
            raise Http404(_("Text search is not configured."))
        self.text = request.GET.get("q", "")
        try:
            self.shown = text_search.clean_text(self.text)
        except SearchError:
            self.shown = self.text[:200]
        return super().get(request)

    def search(self) -> Any:
        try:
            return search_by_text(self.request.user, SITE_SCOPE, self.text, order=self.order,
                                  limit=similarity_settings.MAX_RESULTS, within=self.within())
        except NotFound as exc:
            raise Http404(str(exc)) from exc

    def get_header_title(self) -> str:
        if self.order == "least":
            return _("Least like “%(text)s”") % {"text": self.shown}
        return _("Images like “%(text)s”") % {"text": self.shown}

    def get_page_title(self) -> str:
        return self.get_header_title()

    def save_spec(self) -> dict[str, str] | None:
        return {"text": self.shown, "name": self.shown[:100]} if self.shown.strip() else None

    def get_breadcrumbs_items(self) -> list[dict[str, str]]:
        return [
            *self.breadcrumbs_items,
            {"url": reverse("similarity_wagtail:index"), "label": _("Similar images")},
            {"url": "", "label": self.get_header_title()},
        ]

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        context.update(text_box(self.shown), text_results=True)
        if context["result"] is not None:
            context["readiness"] = context["result"].readiness  # the text model's progress
        return context


def _rows(matches: list[Any]) -> list[dict[str, Any]]:
    """Results with their images re-read with the thumbnail renditions prefetched (two
    queries for 100 results instead of one per image)."""
    pks = [match.asset.pk for match in matches]
    images = (
        get_image_model()._default_manager.filter(pk__in=pks)
        .select_related("collection")
        .prefetch_renditions(THUMBNAIL_FILTER)
        .in_bulk()
    )
    return [
        {"image": images[match.asset.pk], "similarity": match.similarity, "rank": rank}
        for rank, match in enumerate(matches, start=1)
        if match.asset.pk in images
    ]


#: A saved search's notification key: "similarity-watch:<search pk>:<batch>".
WATCH_KEY = "similarity-watch:"


def notification_link(item: Any) -> str:
    """Where a notification leads inside the admin: a saved search's matches page here
    (its stored URL is the reusable app's page, which a Wagtail site may not mount)."""
    key = item.key or ""
    if key.startswith(WATCH_KEY):
        pk = key[len(WATCH_KEY):].split(":", 1)[0]
        if pk.isdigit():
            return reverse("similarity_wagtail:saved-matches", args=[int(pk)])
    return item.url or ""


class AreaView(WagtailAdminTemplateMixin, TemplateView):
    """The "Similar images" area: readiness, failures with reasons, retry, notifications."""

    template_name = "similarity_wagtail/index.html"
    header_icon = "image"
    page_title = gettext_lazy("Similar images")

    def get(self, request: HttpRequest) -> HttpResponse:
        if not get_access_policy().can_view(request.user, SITE_SCOPE):
            raise PermissionDenied
        return super().get(request)

    def get_breadcrumbs_items(self) -> list[dict[str, str]]:
        return [*self.breadcrumbs_items, {"url": "", "label": self.get_page_title()}]

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        user = self.request.user
        state = readiness.readiness_for(SITE_SCOPE, user)
        failed = (
            Embedding.objects.filter(
                project_id=SITE_SCOPE, model_key=state.model_key,
                status=Embedding.Status.FAILED,
                asset_id__in=visible_images(user).values("pk"),
            )
            .order_by("-updated")
            .values_list("asset_id", "error")[:200]
        )
        failed = list(failed)
        images = get_image_model()._default_manager.in_bulk([pk for pk, _ in failed])
        items = list(notifications.visible_notifications(user)[:20])
        unread = set(notifications.unread(user).filter(
            pk__in=[n.pk for n in items]).values_list("pk", flat=True))
        context.update(
            readiness=state,
            failed=[(images[pk], error) for pk, error in failed if pk in images],
            can_retry=get_access_policy().can_edit(user, SITE_SCOPE),
            # Wagtail's image listing opens to these permissions only ("choose" is not one)
            can_browse=image_permission_policy().user_has_any_permission(
                user, ["add", "change", "delete"]),
            notifications=[
                (item, item.pk in unread, LEVEL_STATUS.get(item.level, "info"),
                 notification_link(item)) for item in items
            ],
            has_unread=bool(unread),
            can_search_image=True,  # dispatch let only those who may view the library in
            **text_box(),
        )
        return context


@require_POST
def retry(request: HttpRequest) -> HttpResponse:
    """Re-embed failed and missing images (admins: whoever may re-index the library)."""
    if not get_access_policy().can_edit(request.user, SITE_SCOPE):
        raise PermissionDenied
    outcome = reindex_project(SITE_SCOPE)
    messages.success(
        request,
        _("Retrying: %(retried)d failed and %(created)d missing images queued.") % outcome,
    )
    return redirect("similarity_wagtail:index")


@require_GET
def near(request: HttpRequest, image_id: str) -> JsonResponse:
    """The near-duplicate warning of one upload, for the multiple uploader to poll: its
    ``state`` ("pending" until analysed, "failed", or "done") and, once done, the warning's
    HTML (empty when it looks like no image the editor may see)."""
    image = get_visible_image(request.user, image_id)
    state = image_states([image.pk])[image.pk]
    if not state.searchable:
        return JsonResponse({"state": "failed" if state.failed else "pending",
                             "reason": state.reason})
    found = near_duplicates(image, request.user)
    html = render_to_string("similarity_wagtail/near_duplicates.html",
                            {"near": found, "near_id": image.pk}, request=request)
    return JsonResponse({"state": "done", "count": len(found), "html": html.strip()})


@require_POST
def mark_read(request: HttpRequest) -> HttpResponse:
    notifications.mark_read(request.user)
    return redirect("similarity_wagtail:index")
