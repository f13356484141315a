"""The host's own access rules (the picture family keeps similarity's default: staff)."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet

from similarity.host.access import AccessPolicy
from tests.hosts.archive.models import Board, Workspace


class WorkspaceMemberAccess(AccessPolicy):
    """Members of a workspace see its scans, except restricted ones (superusers only), and
    may re-index it."""

    narrows_assets = True

    def filter_assets(self, user: Any, queryset: QuerySet) -> QuerySet:
        if getattr(user, "is_superuser", False):
            return queryset
        return queryset.filter(restricted=False)

    def visible_project_ids(self, user: Any) -> set:
        if not getattr(user, "is_authenticated", False):
            return set()
        return set(Workspace.objects.filter(members=user).values_list("pk", flat=True))

    def can_edit(self, user: Any, project_id: str) -> bool:
        return self.can_view(user, project_id)


class BoardOwnerAccess(AccessPolicy):
    """A board's owner sees its pins; only superusers re-index (the base rule)."""

    def visible_project_ids(self, user: Any) -> set:
        if not getattr(user, "is_authenticated", False):
            return set()
        return set(Board.objects.filter(owner=user).values_list("pk", flat=True))
