"""The host's models, resolved lazily from settings (like Wagtail's ``get_image_model``).

``similarity`` never imports the host's apps: it learns the asset model, its image
field, the project model and the path between them from ``SIMILARITY`` settings, and this
package is the only reader of those settings. Scope ids (a project's key as text) are
``similarity.host.scopes``'s business.
"""

from __future__ import annotations

import functools
from typing import Any

from django.apps import apps
from django.core.exceptions import FieldDoesNotExist, ImproperlyConfigured, ValidationError
from django.core.signals import setting_changed
from django.db import models
from django.utils.module_loading import import_string

from similarity.conf import similarity_settings


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


def _on_setting_changed(*, setting: str, **kwargs: Any) -> None:
    if setting in ("SIMILARITY", "INSTALLED_APPS"):
        clear_caches()


setting_changed.connect(_on_setting_changed, dispatch_uid="similarity_host_models")


def asset_pk(raw: Any) -> Any:
    """A key of the asset model from text (URLs and our text columns carry keys as text);
    ValidationError, ValueError or TypeError when it is not one."""
    return get_asset_model()._meta.pk.to_python(raw)


def asset_pks(raw: Any) -> list[Any]:
    """The valid asset keys among ``raw``, in order (malformed ones are simply absent)."""
    keys = []
    for value in raw:
        try:
            keys.append(asset_pk(value))
        except (ValidationError, ValueError, TypeError):
            continue
    return keys


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


def group_lookup() -> str | None:
    """The relation between an asset and its project (``dataset`` for
    ``dataset__project``): what a scope's images can be grouped and filtered by."""
    lookup = similarity_settings.PROJECT_LOOKUP
    if not lookup or "__" not in lookup:
        return None
    return lookup.rsplit("__", 1)[0]


def image_rule_filter(queryset: models.QuerySet) -> models.QuerySet:
    """Apply IS_IMAGE to a queryset of host assets (videos never take part)."""
    rule = similarity_settings.IS_IMAGE
    if rule is None:
        return queryset
    if isinstance(rule, dict):
        return queryset.filter(**rule)
    if isinstance(rule, str):
        rule = import_string(rule)
    return rule(queryset)


def image_assets() -> models.QuerySet:
    """All of the host's assets that are images (relations up to the project joined)."""
    return image_rule_filter(asset_queryset())


def is_image(asset: models.Model) -> bool:
    """Whether this asset takes part in similarity search."""
    rule = similarity_settings.IS_IMAGE
    if rule is None:
        return True
    if isinstance(rule, dict) and all("__" not in key for key in rule):
        return all(getattr(asset, key) == value for key, value in rule.items())
    return image_assets().filter(pk=asset.pk).exists()
