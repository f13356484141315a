"""The settings a Wagtail site gets without writing them (the host's SIMILARITY wins).

``similarity.conf`` layers this ``DEFAULTS`` dict over its own when this app is
installed. It is read while models are still loading (our embedding table's foreign key
points at the image model), so it reads Django settings only and imports no models.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings

#: Wagtail's own fallback when a site has no custom image model.
WAGTAIL_DEFAULT_IMAGE_MODEL = "wagtailimages.Image"

DEFAULTS: dict[str, Any] = {
    # The site's image model, custom ones included (what get_image_model_string() answers).
    "ASSET_MODEL": getattr(settings, "WAGTAILIMAGES_IMAGE_MODEL", None)
    or WAGTAIL_DEFAULT_IMAGE_MODEL,
    "IMAGE_FIELD": "file",
    # The whole library is one scope; collections are a permission and UI filter, so an
    # image moved to another collection keeps its vector and shows up at once.
    "PROJECT_LOOKUP": None,
    "PROJECT_MODEL": None,
    "IS_IMAGE": None,
    "ACCESS_POLICY": "similarity.contrib.wagtail.access.WagtailImageAccess",
    "ASSET_URL": "similarity.contrib.wagtail.links.edit_url",
    "THUMBNAIL_URL": "similarity.contrib.wagtail.links.thumbnail_url",
    "ASSET_LABEL": "similarity.contrib.wagtail.links.label",
    # Pages of similarity.urls (if the site mounts them) render inside Wagtail's admin.
    "BASE_TEMPLATE": "similarity_wagtail/core_base.html",
}
