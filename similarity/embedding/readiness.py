"""Per-project readiness, derived from the embedding rows (never django-q's task table).

``refresh`` recounts a project's rows under a row lock on its readiness record, so
concurrent workers see each state transition exactly once; the transition is what sends
"computing" and "ready" notifications, whose database keys make them exactly-once too.
"""

from __future__ import annotations

import copy
import logging
from typing import Any

from django.db import transaction
from django.db.models import Count, Q, QuerySet
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from similarity.embedding import notifications
from similarity.embedding.notifications import digest, scope_tag
from similarity.host.links import failed_assets_url
from similarity.host.lookups import sees_whole_scope, visible_assets
from similarity.host.scopes import public_project_key
from similarity.models import Embedding, Notification, ProjectReadiness
from similarity.vectors.model_keys import current_model_key, text_model_key

logger = logging.getLogger(__name__)

State = ProjectReadiness.State


def get_readiness(project_id: str) -> ProjectReadiness:
    """The stored readiness record (created on first use), without recounting."""
    return ProjectReadiness.objects.get_or_create(project_id=str(project_id))[0]


def readiness_for(project_id: str, user: Any) -> ProjectReadiness:
    """The scope's readiness as this user may read it: the stored record, or, for a user
    who sees only part of the scope (Wagtail collections), an unsaved copy whose counts
    and state are those of the images they can see ("5 images", not the library's 49)."""
    state = get_readiness(project_id)
    if user is None or sees_whole_scope(user, project_id):
        return state
    mine = copy.copy(state)
    counts = count_rows(state.project_id, state.model_key,
                        assets=visible_assets(state.project_id, user))
    mine.total, mine.embedded = counts["total"], counts["embedded"]
    mine.pending, mine.failed = counts["pending"], counts["failed"]
    mine.state = _derive_state(counts, state.error)
    return mine


def count_rows(project_id: str, model_key: str,
               assets: QuerySet | None = None) -> dict[str, int]:
    rows = Embedding.objects.filter(project_id=project_id, model_key=model_key)
    if assets is not None:
        rows = rows.filter(asset_id__in=assets.values("pk"))
    counts = rows.aggregate(
        embedded=Count("pk", filter=Q(status=Embedding.Status.DONE)),
        pending=Count("pk", filter=Q(status=Embedding.Status.PENDING)),
        failed=Count("pk", filter=Q(status=Embedding.Status.FAILED)),
    )
    counts["total"] = counts["embedded"] + counts["pending"] + counts["failed"]
    return counts


def _derive_state(counts: dict[str, int], error: str) -> str:
    if counts["total"] == 0:
        return State.EMPTY
    if counts["pending"]:
        return State.FAILED if error else State.COMPUTING
    if counts["embedded"] == 0:
        return State.FAILED
    return State.READY


#: What a refresh compares to decide whether anything changed.
_TRACKED = ("state", "total", "embedded", "pending", "failed", "error", "model_key",
            "active_model_key", "episode", "episode_base")


def refresh(
    project_id: str, *, error: str | None = None, changed: bool = False
) -> ProjectReadiness:
    """Recount the project's rows for the current model and apply state transitions.

    ``error`` records (or, with "", clears) a model-level failure such as a model that
    cannot be loaded; it leaves rows pending so they are embedded once it is fixed.
    The record is saved (which moves its ``updated`` version, the key of every process's
    search cache) only when something changed: ``changed=True`` says that rows changed in
    a way the counts may not show (an image moved in while another moved out).
    """
    key = current_model_key()
    project_id = str(project_id)
    with transaction.atomic():
        readiness = ProjectReadiness.objects.select_for_update().get_or_create(
            project_id=project_id
        )[0]
        previous = readiness.state
        before = tuple(getattr(readiness, name) for name in _TRACKED)
        if error is not None:
            readiness.error = error
        counts = count_rows(project_id, key)
        if readiness.model_key != key:
            readiness.model_key = key
            readiness.error = error or ""
        state = _derive_state(counts, readiness.error)
        readiness.total = counts["total"]
        readiness.embedded = counts["embedded"]
        readiness.pending = counts["pending"]
        readiness.failed = counts["failed"]
        readiness.state = state
        # a new batch begins when work arrives at a scope at rest; a scope that failed (a
        # model that did not load) and now computes again goes on with the same batch
        if state == State.COMPUTING and previous not in (State.COMPUTING, State.FAILED):
            readiness.episode += 1
            readiness.episode_base = counts["embedded"] + counts["failed"]
        if state == State.COMPUTING:
            _announce_computing(readiness, counts["total"] - readiness.episode_base)
        if state == State.READY:
            replaced = bool(readiness.active_model_key) and readiness.active_model_key != key
            readiness.active_model_key = key
            if previous != State.READY:
                _announce_ready(readiness, model_change=replaced)
        if state == State.FAILED and previous != State.FAILED:
            _announce_failure(readiness)
        if changed or readiness._state.adding or before != tuple(
            getattr(readiness, name) for name in _TRACKED
        ):
            readiness.save()
    return readiness


def batch_key(project_id: str, episode: int) -> str:
    """The key of the one notification of an upload batch (an embedding episode)."""
    return f"batch:{scope_tag(project_id)}:{episode}"


def _batch_size(readiness: ProjectReadiness) -> int:
    return max(0, readiness.total - readiness.episode_base)


def _announce_computing(readiness: ProjectReadiness, count: int) -> None:
    """The batch's notification, created on its first image and updated as it goes (its
    count grows as uploads keep arriving); read stays read while it only progresses."""
    done = min(count, max(0, readiness.embedded + readiness.failed - readiness.episode_base))
    if readiness.active_model_key and readiness.active_model_key != readiness.model_key:
        # a model change, not uploads: the previous model serves searches meanwhile
        message = ngettext(
            "Re-embedding %(count)d image with a new model · %(done)d of %(count)d",
            "Re-embedding %(count)d images with a new model · %(done)d of %(count)d",
            count,
        ) % {"count": count, "done": done}
    else:
        message = ngettext(
            "%(count)d image added · embedding %(done)d of %(count)d",
            "%(count)d images added · embedding %(done)d of %(count)d",
            count,
        ) % {"count": count, "done": done}
    key = batch_key(readiness.project_id, readiness.episode)
    if not notifications.update(key, message):
        notifications.notify(readiness.project_id, message, key=key)


def _announce_ready(readiness: ProjectReadiness, *, model_change: bool = False) -> None:
    """The batch's notification says search is ready (unread again); failures join it,
    with the link to them. A scope ready without a batch (vectors loaded another way)
    gets its own one notification."""
    project_id, episode = readiness.project_id, readiness.episode
    count = _batch_size(readiness)
    message = _("Similarity search is ready")
    level, url = Notification.Level.SUCCESS, ""
    if readiness.failed:
        message += " · " + ngettext(
            "%(count)d image could not be embedded",
            "%(count)d images could not be embedded",
            readiness.failed,
        ) % {"count": readiness.failed}
        level, url = Notification.Level.WARNING, failed_assets_url(project_id) or ""
    key = batch_key(project_id, episode)
    if model_change:
        done = ngettext("%(count)d image re-embedded with the new model",
                        "%(count)d images re-embedded with the new model", count)
    else:
        done = ngettext("%(count)d image added", "%(count)d images added", count)
    if not notifications.update(key, f"{done % {'count': count}} · {message}", level=level,
                                url=url, reopen=True):
        notifications.notify(project_id, message, level=level, url=url, key=key)


def _announce_failure(readiness: ProjectReadiness) -> None:
    message = readiness.error_summary or ngettext(
        "%(count)d image could not be embedded",
        "%(count)d images could not be embedded",
        readiness.failed,
    ) % {"count": readiness.failed}
    notifications.notify(
        readiness.project_id,
        _("Similarity search is unavailable: %(reason)s") % {"reason": message},
        level=Notification.Level.ERROR,
        url=(failed_assets_url(readiness.project_id) or "") if readiness.failed else "",
        key=f"error:{scope_tag(readiness.project_id)}:{readiness.episode}:{digest(message)}",
    )


def unavailable_reason(readiness: ProjectReadiness) -> str:
    """Why nothing of the scope can be searched now; "" when it can.

    The one answer the menus (server-rendered and polled), the pages, the API and the
    host's health check read: a scope is searchable while any model has vectors serving
    it. After a model change the previous model serves until the new one is ready, so
    rows pending (or failing to load) for the new model are no reason to disable search.
    """
    serving_another = bool(readiness.active_model_key) and \
        readiness.active_model_key != readiness.model_key
    if serving_another or readiness.embedded > 0:
        return ""
    if readiness.state == State.FAILED:
        return readiness.error_summary or _("No image could be embedded.")
    if readiness.state == State.COMPUTING:
        return _("Available once the first images are embedded.")
    return _("Available once images are uploaded and embedded.")


def model_failure() -> str:
    """The current model's load error as the worker recorded it ("" when none did): a model
    folder can look complete and still fail to load, which only loading tells."""
    return (
        ProjectReadiness.objects.filter(model_key=current_model_key())
        .exclude(error="").order_by("-updated").values_list("error", flat=True).first()
        or ""
    )


def record_text_error(project_id: str, error: str) -> None:
    """Record (or, with "", clear) why the text model cannot embed this scope's images.
    Kept apart from ``error``: image search is never held back by the text model."""
    ProjectReadiness.objects.filter(project_id=str(project_id)).exclude(
        text_error=error).update(text_error=error)


def text_readiness(readiness: ProjectReadiness, user: Any = None) -> ProjectReadiness | None:
    """The text model's readiness in the scope (None: no text model is configured): an
    unsaved copy of the record with the text model's key, counts and state, what text
    search ranks with (its cache version moves with the record's) and what the pages
    show ("Text search: computing 40 of 100")."""
    key = text_model_key()
    if key is None:
        return None
    mine = copy.copy(readiness)
    assets = None
    if user is not None and not sees_whole_scope(user, readiness.project_id):
        assets = visible_assets(readiness.project_id, user)
    counts = count_rows(readiness.project_id, key, assets=assets)
    mine.model_key = mine.active_model_key = key
    # the text model's index is found by name (search.strategies), not through this field
    mine.indexed_model_key = ""
    mine.total, mine.embedded = counts["total"], counts["embedded"]
    mine.pending, mine.failed = counts["pending"], counts["failed"]
    mine.error = readiness.text_error
    mine.state = _derive_state(counts, readiness.text_error)
    return mine


def text_unavailable_reason(text: ProjectReadiness | None) -> str:
    """Why nothing of the scope can be searched by text now; "" when it can."""
    if text is None:
        return _("Text search is not configured (SIMILARITY['TEXT_MODEL_NAME']).")
    if text.embedded > 0:
        return ""
    if text.error:
        return _("Text search is unavailable: %(reason)s") % {"reason": text.error_summary}
    if text.state == State.COMPUTING:
        return _("Text search is available once the first images are embedded by the text "
                 "model.")
    return _("Text search is available once images are uploaded and embedded.")


def text_progress(text: ProjectReadiness) -> str:
    """ "Text search: computing 40 of 100" (what the icon and the description box say)."""
    return _("Text search: computing %(done)d of %(total)d") % {
        "done": text.embedded, "total": text.total}


def text_dict(text: ProjectReadiness | None) -> dict | None:
    """The text model's part of the readiness JSON (None when none is configured)."""
    if text is None:
        return None
    return {
        "model": text.model_key,
        "state": text.state,
        "ready": text.state == State.READY,
        "total": text.total,
        "embedded": text.embedded,
        "pending": text.pending,
        "failed": text.failed,
        "percent": text.percent,
        "searchable": not text_unavailable_reason(text),
        "error_summary": text.error_summary,
    }


def as_dict(readiness: ProjectReadiness, user: Any = None) -> dict:
    """The embedding stage's JSON, shared by the readiness endpoint and the icon (which add
    the insight stage's progress: ``similarity.insight.reading.readiness_payload``); the
    text model's part is counted over what ``user`` may see."""
    return {
        "project": public_project_key(readiness.project_id),
        "state": readiness.state,
        "ready": readiness.state == State.READY,
        "total": readiness.total,
        "embedded": readiness.embedded,
        "pending": readiness.pending,
        "failed": readiness.failed,
        "percent": readiness.percent,
        "model": readiness.model_key,
        "serving_model": readiness.active_model_key,
        "searchable": not unavailable_reason(readiness),
        "unavailable_reason": unavailable_reason(readiness),
        "error": readiness.error,
        "error_summary": readiness.error_summary,
        "error_details": readiness.error_details,
        "updated": readiness.updated.isoformat() if readiness.updated else None,
        "text": text_dict(text_readiness(readiness, user)),
    }
