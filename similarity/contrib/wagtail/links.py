"""Links and thumbnails for images in results: Wagtail's edit page and renditions.

Thumbnails are always renditions (resized copies Wagtail caches), never the original
file, which may be tens of megabytes.
"""

from __future__ import annotations

from typing import Any

from django.urls import NoReverseMatch, reverse

#: Rendition used for result thumbnails in our pages and the API.
THUMBNAIL_FILTER = "max-320x320"


def edit_url(image: Any) -> str:
    try:
        return reverse("wagtailimages:edit", args=[image.pk])
    except NoReverseMatch:  # the admin is not mounted (e.g. an API-only process)
        return ""


def thumbnail_url(image: Any) -> str:
    from wagtail.images.models import SourceImageIOError

    try:
        return image.get_rendition(THUMBNAIL_FILTER).url
    except (SourceImageIOError, OSError, ValueError):
        return ""  # a missing or broken file: no thumbnail, the result still shows


def label(image: Any) -> str:
    return getattr(image, "title", "") or str(image)


def results_url(image_pk: Any, order: str = "most", collection: Any = None) -> str:
    """Our admin results page for one image."""
    url = reverse("similarity_wagtail:results", args=[image_pk])
    query = []
    if order != "most":
        query.append(f"order={order}")
    if collection:
        query.append(f"collection={collection}")
    return f"{url}?{'&'.join(query)}" if query else url
