"""The host's image files as our rows record them (``Embedding.source``).

A different file name on an asset means a new file, so its vector is stale: the signal
handlers and the sweep both compare names, and must cut them the same way.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import Any

from django.db.models import Case, CharField, Expression, Func, Value, When
from django.db.models.fields.files import FieldFile
from django.db.models.functions import Coalesce, Concat, Left, Length
from django.db.models.lookups import LessThanOrEqual

from similarity.conf import similarity_settings
from similarity.host.models import get_asset_model

#: The length of ``Embedding.source``.
SOURCE_MAX_LENGTH = 500
#: A longer name is kept as its first characters, "#", and the SHA-256 of the whole name:
#: exact for any name, and two names that differ only at their end (where storages add
#: their random suffix) still differ. The SQL twin is ``source_of_sql``.
_HEAD = SOURCE_MAX_LENGTH - 65


class _Sha256Hex(Func):
    """PostgreSQL's built-in sha256() as hex (Django's SHA256 needs the pgcrypto extension)."""

    template = "encode(sha256(convert_to(%(expressions)s, 'UTF8')), 'hex')"
    output_field = CharField()


def source_of(name: str | None) -> str:
    """The name as ``Embedding.source`` records it (itself, up to 500 characters)."""
    name = name or ""
    if len(name) <= SOURCE_MAX_LENGTH:
        return name
    return name[:_HEAD] + "#" + hashlib.sha256(name.encode()).hexdigest()


def source_of_sql(name: Expression) -> Expression:
    """``source_of`` in SQL, so the sweep compares whole names without reading them."""
    text = Coalesce(name, Value(""), output_field=CharField())
    return Case(
        When(condition=LessThanOrEqual(Length(text), SOURCE_MAX_LENGTH), then=text),
        default=Concat(Left(text, _HEAD), Value("#"), _Sha256Hex(text), output_field=CharField()),
        output_field=CharField(),
    )


def image_file(asset: Any) -> FieldFile | None:
    """The asset's image file (IMAGE_FIELD), or None when it has none."""
    return getattr(asset, similarity_settings.IMAGE_FIELD, None)


def file_name(asset: Any) -> str:
    """The stored name of the asset's file, as ``Embedding.source`` keeps it."""
    return source_of(getattr(image_file(asset), "name", None))


def file_names(asset_ids: Iterable[Any]) -> dict[Any, str]:
    """``file_name`` of several assets by key, in one query."""
    field = similarity_settings.IMAGE_FIELD
    manager = get_asset_model()._default_manager
    return {pk: source_of(name)
            for pk, name in manager.filter(pk__in=list(asset_ids)).values_list("pk", field)}
