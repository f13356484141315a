"""Every link the app makes: to its own pages and to the host's assets and files.

The only place in ``similarity`` that reverses URL names. A host may mount
``similarity.urls`` under any prefix, or not at all (an API-only site, Wagtail's admin):
a page that is not mounted has no link, ``None``, which the API answers as ``null`` and
templates leave out; nothing ever fails because a namespace is missing.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from django.urls import NoReverseMatch, reverse

from similarity.conf import similarity_settings
from similarity.host.files import image_file
from similarity.models import QueryImage


def page_url(name: str, *args: Any, query: dict[str, Any] | None = None) -> str | None:
    """The URL of one of our pages (``similarity:<name>``), or None when not mounted."""
    return url_or_none(f"similarity:{name}", *args, query=query)


def url_or_none(name: str, *args: Any, query: dict[str, Any] | None = None) -> str | None:
    """``reverse()`` that answers None instead of raising when the name is not routed."""
    try:
        url = reverse(name, args=[str(arg) for arg in args])
    except NoReverseMatch:
        return None
    params = {key: value for key, value in (query or {}).items()
              if value not in (None, "", [], ())}
    return f"{url}?{urlencode(params, doseq=True)}" if params else url


# --- the host's assets ------------------------------------------------------------------


def asset_url(asset: Any) -> str:
    """Where a result links: ASSET_URL, else the host's ``get_absolute_url``, else the
    admin change page (if the model is in the admin), else the file itself."""
    if similarity_settings.ASSET_URL is not None:
        return similarity_settings.ASSET_URL(asset)
    getter = getattr(asset, "get_absolute_url", None)
    if getter is not None:
        return getter()
    opts = asset._meta
    return url_or_none(f"admin:{opts.app_label}_{opts.model_name}_change", asset.pk) or file_url(asset)


def file_url(asset: Any) -> str:
    field = image_file(asset)
    try:
        return field.url if field else ""
    except ValueError:
        return ""


def thumbnail_url(asset: Any) -> str:
    """A small image for result tiles: THUMBNAIL_URL, else our generated thumbnail (the
    original file only when ``similarity.urls`` is not mounted at all)."""
    if similarity_settings.THUMBNAIL_URL is not None:
        return similarity_settings.THUMBNAIL_URL(asset)
    return page_url("thumbnail", asset.pk) or file_url(asset)


def picture_url(asset: Any) -> str:
    """The whole picture, proportions kept, for drawing a region on: our thumbnail (a
    host's THUMBNAIL_URL may crop it to a square), else the file itself."""
    return page_url("thumbnail", asset.pk) or file_url(asset)


def match_url(query: Any, result: Any) -> str | None:
    """The page's "Show match" data of ``result`` against an asset or a query image."""
    if isinstance(query, QueryImage):
        return page_url("query-match", query.pk, result.pk)
    return page_url("match", query.pk, result.pk)


def asset_label(asset: Any) -> str:
    if similarity_settings.ASSET_LABEL is not None:
        return similarity_settings.ASSET_LABEL(asset)
    return str(asset)


# --- our pages ------------------------------------------------------------------------------


def _order(order: str) -> str | None:
    return None if order == "most" else order


def results_url(asset_id: Any, order: str = "most") -> str | None:
    return page_url("results", asset_id, query={"order": _order(order)})


def selection_url(asset_ids: Any = (), order: str = "most", negative_ids: Any = (),
                  min_similarity: float | None = None,
                  max_similarity: float | None = None) -> str | None:
    """Results for several examples (and counter-examples); the bare page without ids."""
    # one ``id`` per asset, each whole: a host key may hold a comma (``ids=1,2`` is read too)
    query = {"id": [str(pk) for pk in asset_ids], "order": _order(order),
             "not_id": [str(pk) for pk in negative_ids], **_bounds(min_similarity, max_similarity)}
    return page_url("selection", query=query)


def _bounds(min_similarity: float | None, max_similarity: float | None) -> dict[str, str | None]:
    return {"min_similarity": None if min_similarity is None else f"{min_similarity:.2f}",
            "max_similarity": None if max_similarity is None else f"{max_similarity:.2f}"}


def failed_assets_url(project_id: str) -> str | None:
    return page_url("failed", project_id)


def readiness_url(project_id: str) -> str | None:
    return page_url("readiness", project_id)


def image_results_url(query_id: Any, order: str = "most", **query: Any) -> str | None:
    """The results page of an outside image (its owner's)."""
    return page_url("image-results", query_id, query={"order": order, **query})


def text_search_url(project_id: Any, text: str | None = None, order: str = "most",
                    **query: Any) -> str | None:
    """The results page of a description in a project (the bare form's action without
    ``text``)."""
    if text is None:
        return page_url("text-search", project_id)
    return page_url("text-search", project_id, query={"q": text, "order": _order(order), **query})


def image_preview_url(query_id: Any) -> str | None:
    return page_url("image-preview", query_id)


def saved_searches_url(project_id: str | None = None) -> str | None:
    if project_id is None:
        return page_url("saved-searches")
    return page_url("saved-searches-project", project_id)


def saved_search_matches_url(search_id: Any, batch: Any = None) -> str | None:
    return page_url("saved-search-matches", search_id, query={"batch": batch})


def saved_search_run_url(search: Any) -> str | None:
    """The full results of a saved search's query: the selection page or the image's, at
    its threshold (a minimum for most similar, a maximum for least similar)."""
    most = search.order == "most"
    bounds = _bounds(search.threshold if most else None, None if most else search.threshold)
    if search.positive_ids:
        return page_url("selection", query={
            "id": [str(pk) for pk in search.positive_ids], "order": _order(search.order),
            "not_id": [str(pk) for pk in search.negative_ids], **bounds})
    if search.query_image_id:
        return image_results_url(search.query_image_id, search.order, **bounds)
    if getattr(search, "text", ""):
        return text_search_url(search.project_id, search.text, search.order, **bounds)
    return None


def insight_url(page: str, project_id: str) -> str | None:
    """``duplicates``, ``outliers``, ``map`` (and their data) of a scope."""
    return page_url(f"insight-{page}", project_id)


def curate_url(page: str, project_id: str, **query: Any) -> str | None:
    """``diverse`` or ``coverage`` of a scope (None when the app's pages are not mounted)."""
    return page_url(f"curate-{page}", project_id, query=query or None)


def action_url(project_id: str, name: str) -> str | None:
    return page_url("action", project_id, name)
