"""Who may see which projects' assets, search them and re-index them.

The host names a policy class in ``SIMILARITY["ACCESS_POLICY"]``. The default admits
staff only: installing the app must never expose a site's images to anyone the site did
not already trust, whatever its DRF defaults say.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from django.db.models import QuerySet

from similarity.conf import similarity_settings


class AccessPolicy:
    """Base policy: override these methods for a host's own rules.

    Scopes are what ``visible_project_ids`` answers for; ``filter_assets`` narrows further,
    per asset, for hosts whose permissions are finer than a project (Wagtail collections).
    Project keys may be of any type: they are compared as text.
    """

    #: True when ``filter_assets`` can hide some assets of a visible scope: searches then
    #: rank only the assets it keeps (still exactly ``min(limit, visible)`` rows).
    narrows_assets: bool = False

    def visible_project_ids(self, user: Any) -> Collection[Any] | None:
        """Project keys the user may see; None means every project."""
        raise NotImplementedError

    def can_view(self, user: Any, project_id: Any) -> bool:
        if not getattr(user, "is_authenticated", False) or not user.is_active:
            return False
        visible = self.visible_project_ids(user)
        return visible is None or str(project_id) in {str(pk) for pk in visible}

    def can_edit(self, user: Any, project_id: Any) -> bool:
        """May start re-indexing for the project."""
        return bool(getattr(user, "is_superuser", False)) and self.can_view(user, project_id)

    def filter_assets(self, user: Any, queryset: QuerySet) -> QuerySet:
        """The assets of ``queryset`` this user may see (all of them by default)."""
        return queryset

    def sees_whole_scope(self, user: Any, project_id: Any) -> bool | None:
        """Whether ``filter_assets`` keeps every asset of the scope for this user, when the
        policy knows cheaply (a superuser, a permission on the root collection); None:
        ``similarity.host.lookups.sees_whole_scope`` counts."""
        return None if self.narrows_assets else True


class StaffOnlyAccess(AccessPolicy):
    """Active staff see everything; superusers may also re-index. Nobody else."""

    def visible_project_ids(self, user: Any) -> Collection[Any] | None:
        if getattr(user, "is_authenticated", False) and user.is_active and user.is_staff:
            return None
        return ()


def get_access_policy() -> AccessPolicy:
    return similarity_settings.ACCESS_POLICY()


def filter_visible(queryset: QuerySet, user: Any, field: str = "project_id") -> QuerySet:
    """Narrow a queryset of our own rows (with a project id column) to the user's projects."""
    if not getattr(user, "is_authenticated", False) or not user.is_active:
        return queryset.none()
    visible = get_access_policy().visible_project_ids(user)
    if visible is None:
        return queryset
    return queryset.filter(**{f"{field}__in": [str(pk) for pk in visible]})
