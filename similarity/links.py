"""URLs of the app's own pages and of host assets, resolved without hard failures.

A host may mount ``similarity.urls`` under any prefix, or not at all (API only); links
then degrade to empty strings instead of breaking the worker or a page.
"""

from __future__ import annotations

from typing import Any

from django.urls import NoReverseMatch, reverse

from similarity.conf import similarity_settings


def _reverse(name: str, *args: Any) -> str:
    try:
        return reverse(name, args=args)
    except NoReverseMatch:
        return ""


def failed_assets_url(project_id: str) -> str:
    return _reverse("similarity:failed", project_id)


def results_url(asset_id: Any, order: str = "most") -> str:
    url = _reverse("similarity:results", asset_id)
    return f"{url}?order={order}" if url and order != "most" else url


def asset_url(asset: Any) -> str:
    """Where a result links: ASSET_URL, else the host's ``get_absolute_url``, else the
    admin change page (if the model is in the admin), else the file itself."""
    if similarity_settings.ASSET_URL is not None:
        return similarity_settings.ASSET_URL(asset)
    getter = getattr(asset, "get_absolute_url", None)
    if getter is not None:
        return getter()
    opts = asset._meta
    url = _reverse(f"admin:{opts.app_label}_{opts.model_name}_change", asset.pk)
    return url or file_url(asset)


def file_url(asset: Any) -> str:
    field = getattr(asset, similarity_settings.IMAGE_FIELD, None)
    try:
        return field.url if field else ""
    except ValueError:
        return ""


def thumbnail_url(asset: Any) -> str:
    """A small image for result tiles: THUMBNAIL_URL, else our generated thumbnail (the
    original file only when ``similarity.urls`` is not mounted at all)."""
    if similarity_settings.THUMBNAIL_URL is not None:
        return similarity_settings.THUMBNAIL_URL(asset)
    return _reverse("similarity:thumbnail", asset.pk) or file_url(asset)


def selection_url(asset_ids: Any, order: str = "most") -> str:
    url = _reverse("similarity:selection")
    if not url:
        return ""
    ids = ",".join(str(pk) for pk in asset_ids)
    return f"{url}?ids={ids}" + (f"&order={order}" if order != "most" else "")


def asset_label(asset: Any) -> str:
    if similarity_settings.ASSET_LABEL is not None:
        return similarity_settings.ASSET_LABEL(asset)
    return str(asset)
