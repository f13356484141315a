"""Scope ids: the text our tables key everything by, whatever the host's project key is.

``str()`` of the host's project key (4- or 8-byte integers, UUIDs, strings), ``SITE_SCOPE``
for a site without projects, ``NO_PROJECT`` for assets without one. Text never collides
and needs no migration when a host changes its key type.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.core.exceptions import ValidationError
from django.db import models

from similarity.conf import similarity_settings
from similarity.host.models import get_asset_model, get_project_model, image_assets, project_lookup

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


def public_project_key(project_id: str) -> Any:
    """The host's own key for a scope id (42 stays an integer), or the scope id itself."""
    try:
        key = parse_project_pk(project_id)
    except Exception:  # a misconfigured host: the system checks say why
        key = None
    if isinstance(key, int | str):
        return key
    return project_id


def public_asset_key(pk: Any) -> Any:
    """An asset key as JSON carries it: integers stay integers, anything else is text."""
    return pk if isinstance(pk, int) else str(pk)
