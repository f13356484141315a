"""The host's image files as our rows record them (``Embedding.source``).

A different file name on an asset means a new file, so its vector is stale: the signal
handlers and the sweep both compare names, and must cut them the same way.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.db.models.fields.files import FieldFile

from similarity.conf import similarity_settings
from similarity.host.models import get_asset_model

#: The length of ``Embedding.source``.
SOURCE_MAX_LENGTH = 500


def image_file(asset: Any) -> FieldFile | None:
    """The asset's image file (IMAGE_FIELD), or None when it has none."""
    return getattr(asset, similarity_settings.IMAGE_FIELD, None)


def file_name(asset: Any) -> str:
    """The stored name of the asset's file, as ``Embedding.source`` keeps it."""
    return (getattr(image_file(asset), "name", None) or "")[:SOURCE_MAX_LENGTH]


def file_names(asset_ids: Iterable[Any]) -> dict[Any, str]:
    """``file_name`` of several assets by key, in one query."""
    field = similarity_settings.IMAGE_FIELD
    manager = get_asset_model()._default_manager
    return {pk: (name or "")[:SOURCE_MAX_LENGTH]
            for pk, name in manager.filter(pk__in=list(asset_ids)).values_list("pk", field)}
