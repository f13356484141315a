"""Access-checked lookups of the host's assets and projects, shared by every door.

Each raises ``similarity.errors.NotFound`` for anything the user may not see (unknown,
hidden by the policy, of another project, or not even a key of the right type): the
same answer for all of them, so ids reveal nothing. The doors turn it into a 404.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.db.models import QuerySet

from similarity.errors import NotFound
from similarity.host.access import get_access_policy
from similarity.host.models import asset_pk, asset_queryset, get_project_model
from similarity.host.scopes import SITE_SCOPE, get_project, project_assets, project_id_of


def _visible_queryset(user: Any) -> QuerySet:
    policy = get_access_policy()
    queryset = asset_queryset()
    return policy.filter_assets(user, queryset) if policy.narrows_assets else queryset


def get_asset_for(user: Any, pk: Any) -> Any:
    """The host asset if the user may see it; NotFound otherwise.

    Keys of any type arrive as text from URLs; one that is not a valid key of the asset
    model (``"abc"`` for an integer key) is simply not found.
    """
    try:
        asset = _visible_queryset(user).filter(pk=asset_pk(pk)).first()
    except (ValueError, TypeError, ValidationError):
        asset = None
    if asset is None or not get_access_policy().can_view(user, project_id_of(asset)):
        raise NotFound()
    return asset


def get_assets_for(user: Any, project_id: str, ids: list[Any]) -> list[Any]:
    """Several assets of one project, in the order given, in one query; NotFound if any
    is unknown, hidden by the policy's per-asset filter, or of another project. The caller
    has checked the project itself (``check_project``)."""
    assets = _in_bulk(user, ids)
    if any(project_id_of(asset) != str(project_id) for asset in assets):
        raise NotFound()
    return assets


def get_visible_assets(user: Any, ids: list[Any]) -> list[Any]:
    """Several assets of any projects the user may see, in the order given, in one query
    (and one policy check per project); NotFound if any is unknown or hidden."""
    assets = _in_bulk(user, ids)
    policy = get_access_policy()
    allowed: dict[str, bool] = {}
    for asset in assets:
        scope = project_id_of(asset)
        if scope not in allowed:
            allowed[scope] = policy.can_view(user, scope)
        if not allowed[scope]:
            raise NotFound()
    return assets


def _in_bulk(user: Any, ids: list[Any]) -> list[Any]:
    keys = []
    for raw in ids:
        try:
            keys.append(asset_pk(raw))
        except (ValueError, TypeError, ValidationError) as exc:
            raise NotFound() from exc
    found = _visible_queryset(user).in_bulk(keys)
    missing = [key for key in keys if key not in found]
    if missing:
        raise NotFound()
    return [found[key] for key in keys]


def check_project(user: Any, project_id: str) -> None:
    """NotFound unless the user may see the project (and it exists, when there are
    projects)."""
    project_id = str(project_id)
    if get_project_model() is None:
        if project_id != SITE_SCOPE:
            raise NotFound()
    elif get_project(project_id) is None:  # "site" may be a real project's key
        raise NotFound()
    if not get_access_policy().can_view(user, project_id):
        raise NotFound()


def can_edit(user: Any, project_id: str) -> bool:
    return get_access_policy().can_edit(user, project_id)


def visible_assets(project_id: str, user: Any = None, within: QuerySet | None = None) -> QuerySet:
    """The scope's image assets this user may see (the host's own table, live).

    ``within`` narrows to a queryset of host assets (a dataset, a collection); without a
    ``user`` the policy's per-asset filter does not apply (the worker's own reads).
    """
    queryset = project_assets(project_id)
    if within is not None:
        queryset = queryset.filter(pk__in=within.values("pk"))
    policy = get_access_policy()
    if user is not None and policy.narrows_assets:
        queryset = policy.filter_assets(user, queryset)
    return queryset


def sees_whole_scope(user: Any, project_id: str) -> bool:
    """Whether the user may see every image of the scope, so the scope's own counts and
    notifications ("Computing embeddings for 7 images") are theirs to read.

    Only a policy that narrows assets can say no; it may answer cheaply, else the visible
    images are counted against all of them (once per user object, i.e. per request).
    """
    policy = get_access_policy()
    if not policy.narrows_assets:
        return True
    project_id = str(project_id)
    answers = getattr(user, "__dict__", {}).setdefault("_similarity_whole_scope", {})
    if project_id not in answers:
        answer = policy.sees_whole_scope(user, project_id)
        if answer is None:
            everything = project_assets(project_id)
            answer = (policy.filter_assets(user, everything).count()
                      == everything.count())
        answers[project_id] = bool(answer)
    return answers[project_id]
