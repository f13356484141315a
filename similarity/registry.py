"""The host's models, resolved lazily from settings (like Wagtail's ``get_image_model``).

``similarity`` never imports the host's apps: it learns the asset model, its image
field, the project model and the path between them from ``SIMILARITY`` settings.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from typing import Any

from django.apps import apps
from django.core.exceptions import FieldDoesNotExist, ImproperlyConfigured
from django.db import models

from similarity.conf import similarity_settings

#: ``project_id`` stored for assets of a site with no projects (PROJECT_LOOKUP=None).
SITE_SCOPE = 0


def _get_model(setting_name: str) -> type[models.Model]:
    label = getattr(similarity_settings, setting_name)
    try:
        return apps.get_model(label, require_ready=False)
    except ValueError as exc:
        raise ImproperlyConfigured(
            f"SIMILARITY[{setting_name!r}] must be of the form 'app_label.ModelName', "
            f"not {label!r}."
        ) from exc
    except LookupError as exc:
        raise ImproperlyConfigured(
            f"SIMILARITY[{setting_name!r}] refers to model {label!r}, which is not installed."
        ) from exc


@functools.cache
def get_asset_model() -> type[models.Model]:
    """The host's asset (image) model."""
    return _get_model("ASSET_MODEL")


@functools.cache
def get_project_model() -> type[models.Model] | None:
    """The host's project model, or None when the whole site is one scope."""
    if similarity_settings.PROJECT_LOOKUP is None or similarity_settings.PROJECT_MODEL is None:
        return None
    return _get_model("PROJECT_MODEL")


def get_image_field() -> models.FileField:
    model = get_asset_model()
    name = similarity_settings.IMAGE_FIELD
    try:
        field = model._meta.get_field(name)
    except FieldDoesNotExist as exc:
        raise ImproperlyConfigured(
            f"SIMILARITY['IMAGE_FIELD'] is {name!r}, but {model._meta.label} has no such field."
        ) from exc
    if not isinstance(field, models.FileField):
        raise ImproperlyConfigured(
            f"SIMILARITY['IMAGE_FIELD'] {model._meta.label}.{name} must be a FileField or "
            "ImageField."
        )
    return field


def clear_caches() -> None:
    get_asset_model.cache_clear()
    get_project_model.cache_clear()


def asset_queryset() -> models.QuerySet:
    """The host's assets with the relations up to the project joined in one query.

    Walking PROJECT_LOOKUP (``asset.dataset.project_id``) and the host's serializers then
    cost no query per asset.
    """
    queryset = get_asset_model()._default_manager.all()
    lookup = similarity_settings.PROJECT_LOOKUP
    if lookup and "__" in lookup:
        queryset = queryset.select_related(lookup.rsplit("__", 1)[0])
    return queryset


def project_lookup() -> str | None:
    """ORM path from an asset to its project's primary key, or None (one site scope)."""
    lookup = similarity_settings.PROJECT_LOOKUP
    return None if lookup is None else f"{lookup}__pk"


def image_assets() -> models.QuerySet:
    """All of the host's assets that are images (videos never take part)."""
    queryset = get_asset_model()._default_manager.all()
    rule = similarity_settings.IS_IMAGE
    if rule is None:
        return queryset
    if isinstance(rule, dict):
        return queryset.filter(**rule)
    if isinstance(rule, str):
        from django.utils.module_loading import import_string

        rule = import_string(rule)
    return rule(queryset)


def project_assets(project_id: int) -> models.QuerySet:
    """The image assets of one project (or of the whole site)."""
    lookup = project_lookup()
    queryset = image_assets()
    if lookup is None:
        return queryset
    return queryset.filter(**{lookup: project_id})


def is_image(asset: models.Model) -> bool:
    """Whether this asset takes part in similarity search."""
    rule = similarity_settings.IS_IMAGE
    if rule is None:
        return True
    if isinstance(rule, dict) and all("__" not in key for key in rule):
        return all(getattr(asset, key) == value for key, value in rule.items())
    return image_assets().filter(pk=asset.pk).exists()


def project_ids_for(asset_ids: Iterable[Any]) -> dict[Any, int]:
    """Map asset pk -> project id in one query (SITE_SCOPE without projects)."""
    ids = list(asset_ids)
    lookup = project_lookup()
    manager = get_asset_model()._default_manager
    if lookup is None:
        return {pk: SITE_SCOPE for pk in manager.filter(pk__in=ids).values_list("pk", flat=True)}
    return {
        pk: (project if project is not None else SITE_SCOPE)
        for pk, project in manager.filter(pk__in=ids).values_list("pk", lookup)
    }


def project_id_of(asset: models.Model) -> int:
    """The project id of one asset, following PROJECT_LOOKUP through loaded relations."""
    lookup = similarity_settings.PROJECT_LOOKUP
    if lookup is None:
        return SITE_SCOPE
    obj: Any = asset
    parts = lookup.split("__")
    for part in parts[:-1]:
        obj = getattr(obj, part)
        if obj is None:
            return SITE_SCOPE
    last = parts[-1]
    value = getattr(obj, f"{last}_id", None)
    if value is None:
        related = getattr(obj, last, None)
        value = getattr(related, "pk", related)
    return value if value is not None else SITE_SCOPE


def get_project(project_id: int) -> models.Model | None:
    model = get_project_model()
    if model is None or project_id == SITE_SCOPE:
        return None
    return model._default_manager.filter(pk=project_id).first()


def project_label(project_id: int) -> str:
    project = get_project(project_id)
    return str(project) if project is not None else "All images"
