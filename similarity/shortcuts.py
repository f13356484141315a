"""Access-checked lookups shared by pages, API and admin views."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.http import Http404

from similarity import registry
from similarity.access import get_access_policy


def get_asset_for(user: Any, pk: Any) -> Any:
    """The host asset if the user may see it; 404 otherwise (ids reveal nothing).

    Keys of any type arrive as text from URLs; one that is not a valid key of the asset
    model (``"abc"`` for an integer key) is simply not found.
    """
    policy = get_access_policy()
    queryset = registry.asset_queryset()
    if policy.narrows_assets:
        queryset = policy.filter_assets(user, queryset)
    try:
        pk = registry.get_asset_model()._meta.pk.to_python(pk)
        asset = queryset.filter(pk=pk).first()
    except (ValueError, TypeError, ValidationError):
        asset = None
    if asset is None or not policy.can_view(user, registry.project_id_of(asset)):
        raise Http404("Not found.")
    return asset


def get_assets_for(user: Any, project_id: str, ids: list[Any]) -> list[Any]:
    """Several assets of one project, in the order given, in one query; 404 if any is
    unknown, hidden by the policy's per-asset filter, or of another project. The caller
    has checked the project itself (``check_project``)."""
    model = registry.get_asset_model()
    keys = []
    for raw in ids:
        try:
            keys.append(model._meta.pk.to_python(raw))
        except (ValueError, TypeError, ValidationError) as exc:
            raise Http404("Not found.") from exc
    policy = get_access_policy()
    queryset = registry.asset_queryset()
    if policy.narrows_assets:
        queryset = policy.filter_assets(user, queryset)
    found = queryset.in_bulk(keys)
    assets = []
    for key in keys:
        asset = found.get(key)
        if asset is None or registry.project_id_of(asset) != str(project_id):
            raise Http404("Not found.")
        assets.append(asset)
    return assets


def check_project(user: Any, project_id: str) -> None:
    """404 unless the user may see the project (and it exists, when there are projects)."""
    project_id = str(project_id)
    if registry.get_project_model() is None:
        if project_id != registry.SITE_SCOPE:
            raise Http404("Not found.")
    elif registry.get_project(project_id) is None:  # "site" may be a real project's key
        raise Http404("Not found.")
    if not get_access_policy().can_view(user, project_id):
        raise Http404("Not found.")


def can_edit(user: Any, project_id: str) -> bool:
    return get_access_policy().can_edit(user, project_id)
