"""In-app notifications per project, deduplicated by key in the database."""

from __future__ import annotations

import hashlib
import logging
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Exists, OuterRef, Q, QuerySet

from similarity.host.access import filter_visible, get_access_policy
from similarity.host.lookups import sees_whole_scope
from similarity.models import Notification

logger = logging.getLogger(__name__)


def digest(text: str) -> str:
    """A short stable digest, for parts of notification keys of unbounded length."""
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def scope_tag(project_id: str) -> str:
    """The scope id in a notification key (long string keys are digested to fit)."""
    return project_id if len(project_id) <= 64 else digest(project_id)


def notify(
    project_id: str,
    message: str,
    *,
    level: str = Notification.Level.INFO,
    url: str = "",
    key: str | None = None,
    recipient: Any = None,
) -> Notification | None:
    """Create a notification; with ``key``, at most one ever exists for that key."""
    try:
        with transaction.atomic():
            notification = Notification.objects.create(
                project_id=project_id,
                message=message,
                level=level,
                url=url,
                key=key,
                recipient=recipient,
            )
    except IntegrityError:
        return None  # this exact notification was already sent
    logger.info("Notification for project %s: %s", project_id, message)
    return notification


def visible_notifications(user: Any) -> QuerySet[Notification]:
    """Notifications of the user's projects addressed to everyone or to the user.

    Those addressed to everyone speak of the whole scope ("Computing embeddings for 7
    images"): under a policy that narrows assets they reach only users who may see every
    image of it, never an editor of one collection about uploads to another.
    """
    queryset = filter_visible(Notification.objects.all(), user)
    if not getattr(user, "is_authenticated", False):
        return queryset
    queryset = queryset.filter(Q(recipient__isnull=True) | Q(recipient_id=user.pk))
    if get_access_policy().narrows_assets:
        scopes = queryset.filter(recipient__isnull=True).order_by().values_list(
            "project_id", flat=True).distinct()  # no ordering: one row per scope
        partial = [scope for scope in scopes if not sees_whole_scope(user, scope)]
        if partial:
            queryset = queryset.exclude(recipient__isnull=True, project_id__in=partial)
    return queryset


def with_read_flag(queryset: QuerySet[Notification], user: Any) -> QuerySet[Notification]:
    """Annotate ``is_read`` for this user: one EXISTS per row of the page being read."""
    through = Notification.read_by.through
    return queryset.annotate(is_read=Exists(
        through.objects.filter(notification_id=OuterRef("pk"), user_id=getattr(user, "pk", None))))


def unread(user: Any) -> QuerySet[Notification]:
    return visible_notifications(user).exclude(read_by=user)


def unread_count(user: Any) -> int:
    if not getattr(user, "is_authenticated", False):
        return 0
    return unread(user).count()


def mark_read(user: Any, ids: list[int] | None = None) -> int:
    """Mark the given (or all) visible notifications read for this user."""
    queryset = unread(user)
    if ids is not None:
        queryset = queryset.filter(pk__in=ids)
    notifications = list(queryset.only("pk"))
    through = Notification.read_by.through
    through.objects.bulk_create(
        [through(notification_id=n.pk, user_id=user.pk) for n in notifications],
        ignore_conflicts=True,
    )
    return len(notifications)
