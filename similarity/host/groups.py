"""A scope's groups: the relation between an asset and its project (a dataset, a
collection), which insight pages filter by and curation compares ("train" against "test")."""

from __future__ import annotations

from django.db.models import QuerySet

from similarity.host.models import follow_lookup, get_asset_model, group_lookup
from similarity.host.scopes import project_assets


def group_choices(project_id: str) -> list[tuple[str, str]]:
    """(key, label) of the scope's groups (datasets) that hold images, for the filters."""
    lookup = group_lookup()
    if lookup is None:
        return []
    model = follow_lookup(get_asset_model(), lookup)
    if model is None:
        return []
    keys = project_assets(project_id).values(f"{lookup}__pk")
    return [(str(obj.pk), str(obj)) for obj in model._default_manager.filter(pk__in=keys)]


def group_label(project_id: str, group: str) -> str | None:
    """The group's label, or None when it is not a group of this scope."""
    return dict(group_choices(project_id)).get(str(group))


def within_group(project_id: str, group: str | None) -> QuerySet | None:
    """The scope's images in ``group`` (None: no group asked for). A key that is not one
    of the scope's groups narrows to nothing, never to another project's dataset."""
    lookup = group_lookup()
    if not group or lookup is None:
        return None
    if str(group) not in {key for key, _label in group_choices(project_id)}:
        return project_assets(project_id).none()
    return project_assets(project_id).filter(**{f"{lookup}__pk": group})


def in_groups(assets: QuerySet, groups: list[str]) -> QuerySet:
    """``assets`` (a queryset of the host's assets) narrowed to ``groups``, as one more
    condition on the same query: a nested ``pk IN (subquery)`` made PostgreSQL misjudge
    100,000 rows as 588 and spend 1.2 s in nested loops."""
    lookup = group_lookup()
    if not groups or lookup is None:
        return assets.none()
    return assets.filter(**{f"{lookup}__pk__in": list(groups)})
