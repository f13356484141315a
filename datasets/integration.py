"""How this site plugs into the reusable ``similarity`` app (named in SIMILARITY settings)."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from django.urls import reverse

from datasets import access
from similarity.host.access import AccessPolicy


class MembershipAccess(AccessPolicy):
    """Project members see a project's assets; editors and admins may re-index it."""

    def visible_project_ids(self, user: Any) -> Collection[int] | None:
        return set(access.visible_projects(user).values_list("pk", flat=True))

    def can_view(self, user: Any, project_id: Any) -> bool:
        # similarity's scope ids are text; only a project's own key can have members
        return str(project_id).isdigit() and access.role_in(user, int(project_id)) is not None

    def can_edit(self, user: Any, project_id: Any) -> bool:
        return str(project_id).isdigit() and access.can_edit(user, int(project_id))


def asset_url(asset: Any) -> str:
    return reverse("datasets:asset", args=[asset.pk])


def thumbnail_url(asset: Any) -> str:
    return reverse("datasets:asset-thumbnail", args=[asset.pk])


def asset_label(asset: Any) -> str:
    return asset.original_filename
