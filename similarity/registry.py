"""The host's models, resolved lazily from settings (like Wagtail's ``get_image_model``).

``similarity`` never imports the host's apps: it learns the asset model, its image
field, the project model and the path between them from ``SIMILARITY`` settings.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from typing import Any

from django.apps import apps
from django.core.exceptions import FieldDoesNotExist, ImproperlyConfigured, ValidationError
from django.db import models

from similarity.conf import similarity_settings

#: The scope id of a site with no projects (PROJECT_LOOKUP=None). No project key can
#: collide with it: such a site has no project model.
SITE_SCOPE = "site"
#: The scope of assets whose project is empty on a site with projects. Empty text, so no
#: real key (a project may well be called "site") can collide with it; no URL reaches it.
NO_PROJECT = ""


def scope_key(project_pk: Any) -> str:
    """Our text scope id for a host project key of any type (int, UUID, str)."""
    if similarity_settings.PROJECT_LOOKUP is None:
        return SITE_SCOPE
    return NO_PROJECT if project_pk is None or project_pk == "" else str(project_pk)


def _get_model(setting_name: str, label: Any) -> type[models.Model]:
    if not label:
        raise ImproperlyConfigured(f"SIMILARITY[{setting_name!r}] is not set.")
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
    return _get_model("ASSET_MODEL", similarity_settings.ASSET_MODEL)


def follow_lookup(model: type[models.Model], lookup: str) -> type[models.Model] | None:
    """The model at the end of an ORM path of relations, or None if it is not one."""
    for part in lookup.split("__"):
        try:
            field = model._meta.get_field(part)
        except FieldDoesNotExist:
            return None
        if not field.is_relation or field.related_model is None:
            return None
        model = field.related_model
    return model


@functools.cache
def get_project_model() -> type[models.Model] | None:
    """The host's project model (PROJECT_MODEL, else where PROJECT_LOOKUP leads), or None
    when the whole site is one scope."""
    lookup = similarity_settings.PROJECT_LOOKUP
    if lookup is None:
        return None
    if similarity_settings.PROJECT_MODEL:
        return _get_model("PROJECT_MODEL", similarity_settings.PROJECT_MODEL)
    target = follow_lookup(get_asset_model(), lookup)
    if target is None:
        raise ImproperlyConfigured(
            f"SIMILARITY['PROJECT_LOOKUP'] {lookup!r} is not a path of relations from "
            f"{get_asset_model()._meta.label}."
        )
    return target


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


def image_rule_filter(queryset: models.QuerySet) -> models.QuerySet:
    """Apply IS_IMAGE to a queryset of host assets (videos never take part)."""
    rule = similarity_settings.IS_IMAGE
    if rule is None:
        return queryset
    if isinstance(rule, dict):
        return queryset.filter(**rule)
    if isinstance(rule, str):
        from django.utils.module_loading import import_string

        rule = import_string(rule)
    return rule(queryset)


def image_assets() -> models.QuerySet:
    """All of the host's assets that are images (relations up to the project joined)."""
    return image_rule_filter(asset_queryset())


def project_assets(project_id: str) -> models.QuerySet:
    """The image assets of one scope (a project, or the whole site)."""
    lookup = project_lookup()
    queryset = image_assets()
    if lookup is None:
        return queryset
    if project_id == NO_PROJECT:
        return queryset.filter(**{f"{lookup}__isnull": True})
    try:
        return queryset.filter(**{lookup: project_id})
    except (ValueError, TypeError, ValidationError):
        return queryset.none()  # not a key of the project model's type


def is_image(asset: models.Model) -> bool:
    """Whether this asset takes part in similarity search."""
    rule = similarity_settings.IS_IMAGE
    if rule is None:
        return True
    if isinstance(rule, dict) and all("__" not in key for key in rule):
        return all(getattr(asset, key) == value for key, value in rule.items())
    return image_assets().filter(pk=asset.pk).exists()


def project_ids_for(asset_ids: Iterable[Any]) -> dict[Any, str]:
    """Map asset pk -> scope id in one query."""
    ids = list(asset_ids)
    lookup = project_lookup()
    manager = get_asset_model()._default_manager
    if lookup is None:
        return {pk: SITE_SCOPE for pk in manager.filter(pk__in=ids).values_list("pk", flat=True)}
    return {
        pk: scope_key(project)
        for pk, project in manager.filter(pk__in=ids).values_list("pk", lookup)
    }


def project_id_of(asset: models.Model) -> str:
    """The scope id of one asset, following PROJECT_LOOKUP through loaded relations."""
    lookup = similarity_settings.PROJECT_LOOKUP
    if lookup is None:
        return SITE_SCOPE
    obj: Any = asset
    parts = lookup.split("__")
    for part in parts[:-1]:
        obj = getattr(obj, part)
        if obj is None:
            return NO_PROJECT
    last = parts[-1]
    field = obj._meta.get_field(last)
    value = getattr(obj, field.attname, None)
    target = getattr(field, "target_field", None)
    if value is not None and target is not None and not target.primary_key:
        value = getattr(getattr(obj, last), "pk", None)  # a foreign key to a non-pk field
    return scope_key(value)


def parse_project_pk(project_id: str) -> Any:
    """The host project key for a scope id (None for the site scope or a malformed id)."""
    model = get_project_model()
    if model is None or project_id == NO_PROJECT:
        return None
    try:
        return model._meta.pk.to_python(project_id)
    except (ValidationError, ValueError, TypeError):
        return None


def get_project(project_id: str) -> models.Model | None:
    model = get_project_model()
    pk = parse_project_pk(project_id)
    if model is None or pk is None:
        return None
    return model._default_manager.filter(pk=pk).first()


def project_label(project_id: str) -> str:
    project = get_project(project_id)
    return str(project) if project is not None else "All images"
