"""Project membership: the one place that decides what a user may see and change.

Every page, API view and admin queryset goes through these functions, so a rule changes
in one place. Objects of projects the user is not a member of are answered with 404, not
403, so ids of other projects reveal nothing.
"""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from django.http import Http404

from datasets.models import Asset, Dataset, Project, ProjectMembership

EDIT_ROLES = (ProjectMembership.Role.EDITOR, ProjectMembership.Role.ADMIN)


def _active(user: Any) -> bool:
    return bool(getattr(user, "is_authenticated", False) and user.is_active)


def visible_projects(user: Any) -> QuerySet[Project]:
    if not _active(user):
        return Project.objects.none()
    return Project.objects.filter(memberships__user=user).distinct()


def editable_projects(user: Any) -> QuerySet[Project]:
    if not _active(user):
        return Project.objects.none()
    return Project.objects.filter(
        memberships__user=user, memberships__role__in=EDIT_ROLES
    ).distinct()


def visible_datasets(user: Any) -> QuerySet[Dataset]:
    if not _active(user):
        return Dataset.objects.none()
    return Dataset.objects.filter(project__memberships__user=user)


def visible_assets(user: Any) -> QuerySet[Asset]:
    if not _active(user):
        return Asset.objects.none()
    return Asset.objects.filter(dataset__project__memberships__user=user)


def role_in(user: Any, project_id: int) -> str | None:
    if not _active(user):
        return None
    return (
        ProjectMembership.objects.filter(user=user, project_id=project_id)
        .values_list("role", flat=True)
        .first()
    )


def can_edit(user: Any, project_id: int) -> bool:
    return role_in(user, project_id) in EDIT_ROLES


def get_visible_or_404(queryset: QuerySet, **lookup: Any) -> Any:
    obj = queryset.filter(**lookup).first()
    if obj is None:
        raise Http404("Not found.")
    return obj
