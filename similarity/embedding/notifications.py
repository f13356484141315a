"""In-app notifications per project, deduplicated by key in the database.

A batch of uploads has one notification, updated in place as it goes ("25 images added ·
embedding 12 of 25" → "25 images added · Similarity search is ready · duplicates
analysed"): ``update`` rewrites it, ``extend`` adds a stage's part, and either may make it
unread again when it says something new. Saved-search matches and failures stay their own.
"""

from __future__ import annotations

import hashlib
import logging
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.utils import timezone

from similarity.host.access import filter_visible, get_access_policy
from similarity.host.lookups import sees_whole_scope
from similarity.models import Notification

logger = logging.getLogger(__name__)

#: Items of the notifications dropdown (the template's and the poll's alike).
MENU_ITEMS = 5


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


def update(key: str, message: str, *, level: str | None = None, url: str | None = None,
           reopen: bool = False) -> bool:
    """Rewrite the notification with this key (False when there is none); its ``updated``
    moves, so the dropdown lists it by its last change. ``reopen``: it says something new,
    so it is unread again for everyone (progress alone keeps it read)."""
    changes: dict[str, Any] = {"message": message, "updated": timezone.now()}
    if level is not None:
        changes["level"] = level
    if url is not None:
        changes["url"] = url
    rows = Notification.objects.filter(key=key)
    if not rows.update(**changes):
        return False
    if reopen:  # news (progress alone is not): logged like a new one
        logger.info("Notification %s: %s", key, message)
        Notification.read_by.through.objects.filter(notification__key=key).delete()
    return True


def extend(key: str, part: str, *, url: str | None = None, level: str | None = None) -> bool:
    """Add `` · part`` to the notification with this key, once, unread again (False when
    there is none). ``url`` only fills an empty link: an earlier part's link (the failed
    images) matters more."""
    with transaction.atomic():
        row = Notification.objects.select_for_update().filter(key=key).first()
        if row is None:
            return False
        if part in row.message:
            return True
        link = row.url or (url or "")
        update(key, f"{row.message} · {part}", level=level, url=link, reopen=True)
    return True


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
