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


def failed_assets_url(project_id: int) -> str:
    return _reverse("similarity:failed", project_id)


def results_url(asset_id: Any, order: str = "most") -> str:
    url = _reverse("similarity:results", asset_id)
    return f"{url}?order={order}" if url and order != "most" else url


def asset_url(asset: Any) -> str:
    if similarity_settings.ASSET_URL is not None:
        return similarity_settings.ASSET_URL(asset)
    getter = getattr(asset, "get_absolute_url", None)
    return getter() if getter else ""


def thumbnail_url(asset: Any) -> str:
    if similarity_settings.THUMBNAIL_URL is not None:
        return similarity_settings.THUMBNAIL_URL(asset)
    field = getattr(asset, similarity_settings.IMAGE_FIELD)
    try:
        return field.url if field else ""
    except ValueError:
        return ""


def asset_label(asset: Any) -> str:
    if similarity_settings.ASSET_LABEL is not None:
        return similarity_settings.ASSET_LABEL(asset)
    return str(asset)
