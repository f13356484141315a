"""Who sees which images: exactly what Wagtail's image permission policy says.

An editor sees an image in similarity results when Wagtail would let them choose it (in
a chooser) or change it (collection permissions on the image's collection or an
ancestor; "add" lets owners change their own uploads; superusers see everything). The
whole library is one scope, so narrowing happens per image (``narrows_assets``): searches
rank only these images and still return exactly ``min(limit, visible)`` rows.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from django.db.models import QuerySet

from similarity.host.access import AccessPolicy

#: Wagtail actions that make an image visible to a user in our pages and API.
VISIBLE_ACTIONS = ("choose", "change")


def image_permission_policy() -> Any:
    """The image model's permission policy as registered by Wagtail (custom models too)."""
    from wagtail.images import get_image_model
    from wagtail.permissions import policy_registry

    return policy_registry.get_by_type(get_image_model())


def _active(user: Any) -> bool:
    return bool(getattr(user, "is_authenticated", False) and user.is_active)


def visible_images(user: Any, queryset: QuerySet | None = None) -> QuerySet:
    """The images (of ``queryset``, default all) this user may choose or change."""
    from wagtail.images import get_image_model

    if queryset is None:
        queryset = get_image_model()._default_manager.all()
    if not _active(user):
        return queryset.none()
    if user.is_superuser:
        return queryset
    allowed = image_permission_policy().instances_user_has_any_permission_for(
        user, list(VISIBLE_ACTIONS)
    )
    return queryset.filter(pk__in=allowed.values("pk"))


def visible_collections(user: Any) -> QuerySet:
    """Collections holding images the user may see (choose, change, or add own ones)."""
    return image_permission_policy().collections_user_has_any_permission_for(
        user, list(VISIBLE_ACTIONS)
    )


class WagtailImageAccess(AccessPolicy):
    """Wagtail's image permissions, applied to the one library-wide scope."""

    narrows_assets = True

    def visible_project_ids(self, user: Any) -> Collection[Any] | None:
        # The scope is visible to anyone who may see at least one image, in principle;
        # which images they see is filter_assets' job.
        if _active(user) and image_permission_policy().user_has_any_permission(
            user, [*VISIBLE_ACTIONS, "add"]
        ):
            return None
        return ()

    def filter_assets(self, user: Any, queryset: QuerySet) -> QuerySet:
        return visible_images(user, queryset)

    def sees_whole_scope(self, user: Any, project_id: Any) -> bool | None:
        if _active(user) and user.is_superuser:
            return True
        return None  # counted: permissions on the root collection are rare enough
