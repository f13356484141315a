"""Access-checked lookups shared by pages, API and admin views."""

from __future__ import annotations

from typing import Any

from django.http import Http404

from similarity import registry
from similarity.access import get_access_policy


def get_asset_for(user: Any, pk: Any) -> Any:
    """The host asset if the user may see its project; 404 otherwise (ids reveal nothing)."""
    try:
        asset = registry.asset_queryset().filter(pk=pk).first()
    except (ValueError, TypeError):
        asset = None
    if asset is None or not get_access_policy().can_view(user, registry.project_id_of(asset)):
        raise Http404("Not found.")
    return asset


def check_project(user: Any, project_id: int) -> None:
    """404 unless the user may see the project (and it exists, when there are projects)."""
    if registry.get_project_model() is not None and project_id != registry.SITE_SCOPE:
        if registry.get_project(project_id) is None:
            raise Http404("Not found.")
    elif project_id != registry.SITE_SCOPE:
        raise Http404("Not found.")
    if not get_access_policy().can_view(user, project_id):
        raise Http404("Not found.")


def can_edit(user: Any, project_id: int) -> bool:
    return get_access_policy().can_edit(user, project_id)
