"""Signal handlers connected to the host's asset model in ``AppConfig.ready``.

They follow every change a host makes through the ORM, at once:

- a new image asset gets its pending row in the same transaction, work queued on commit;
- an asset moved to another project (album, collection, dataset) has its rows moved to
  the new scope: the vector is still right for the file, so nothing is re-embedded, and
  both scopes' readiness (and so every process's search cache) follows on commit;
- a new file (a new file assigned, or another file name) puts the rows back to pending
  with the vector cleared, so the old picture's vector is never served for the new one;
- an asset that stops being an image (IS_IMAGE) loses its rows; a deleted one too.

A handler of ours must never break the host's save or delete: our writes run in a
savepoint, any error is logged with the asset's key and swallowed, and the periodic
sweep (``similarity.embedding.sweep``) repairs what was missed, as it does for changes that
fire no signal at all (``queryset.update()``, raw SQL, another service).
Fixture loads (``raw``) are skipped.
"""

from __future__ import annotations

import logging
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.core.files.storage import default_storage
from django.db import transaction
from django.db.models.signals import post_delete, post_migrate, post_save, pre_delete, pre_save
from django.utils import timezone

from similarity.conf import similarity_settings
from similarity.embedding import readiness
from similarity.embedding.scheduling import (
    follow_model_change,
    request_embedding,
    schedule_embedding,
)
from similarity.embedding.sweep import ensure_sweep_schedule
from similarity.host import scopes
from similarity.host.files import file_name, image_file
from similarity.host.models import get_asset_model, is_image
from similarity.models import Embedding
from similarity.vectors.model_keys import current_model_keys
from similarity.vectors.thumbnails import thumbnail_name

logger = logging.getLogger(__name__)


def _guarded(action: str, instance: Any, func: Any) -> None:
    """Run our part of a host's save/delete; log and swallow any failure."""
    try:
        with transaction.atomic():  # a savepoint: our error never aborts the host's transaction
            func()
    except Exception:
        logger.exception(
            "similarity could not follow the %s of %s %r; the sweep will repair it within "
            "%s minutes",
            action, type(instance).__name__, getattr(instance, "pk", None),
            similarity_settings.SWEEP_MINUTES,
        )


def on_asset_saving(sender: Any, instance: Any, raw: bool = False, **kwargs: Any) -> None:
    """Note a newly assigned file before the field's own pre_save commits it to storage."""
    if raw or instance._state.adding:
        return
    try:
        field = image_file(instance)
        instance._similarity_new_file = bool(field) and not getattr(field, "_committed", True)
    except Exception:
        logger.exception("similarity could not inspect the file of %r", instance.pk)


def on_asset_saved(sender: Any, instance: Any, created: bool, raw: bool = False, **kwargs: Any):
    if raw:
        return
    _guarded("save", instance, lambda: follow_asset(instance, created=created))


def follow_asset(instance: Any, *, created: bool = False) -> None:
    """Bring our rows for one asset in line with the asset as it is now."""
    new_file = getattr(instance, "_similarity_new_file", False)
    instance._similarity_new_file = False
    rows = [] if created else list(Embedding.objects.filter(asset_id=instance.pk))
    if not is_image(instance):
        if rows:
            Embedding.objects.filter(asset_id=instance.pk).delete()
            _refresh_on_commit({row.project_id for row in rows})
        return
    if not rows:
        schedule_embedding([instance])
        return
    scope, name = scopes.project_id_of(instance), file_name(instance)
    old_scopes = {row.project_id for row in rows}
    changed_file = new_file or any(row.source and row.source != name for row in rows)
    if changed_file:
        # Only the current models' rows are kept (and redone); other models' vectors
        # describe the old file and are dropped rather than served.
        keys = current_model_keys()
        Embedding.objects.filter(asset_id=instance.pk).exclude(model_key__in=keys).delete()
        updated = Embedding.objects.filter(asset_id=instance.pk, model_key__in=keys).update(
            status=Embedding.Status.PENDING, vector=None, dims=None, error="", attempts=0,
            claimed_until=None, source=name, project_id=scope, updated=timezone.now(),
        )
        if updated < len(keys):  # a model's row is missing: written (the others kept)
            schedule_embedding([instance])
        logger.info("Asset %r has a new file: re-embedding it", instance.pk)
        _refresh_on_commit(old_scopes | {scope}, queue={scope})
    elif old_scopes != {scope}:
        Embedding.objects.filter(asset_id=instance.pk).update(
            project_id=scope, updated=timezone.now()  # caches follow rows by `updated`
        )
        logger.info("Asset %r moved from %s to %s", instance.pk, sorted(old_scopes), scope)
        _refresh_on_commit(old_scopes | {scope})
    elif any(not row.source for row in rows):
        Embedding.objects.filter(asset_id=instance.pk, source="").update(source=name)


def _refresh_on_commit(scopes: set[str], *, queue: set[str] = frozenset()) -> None:
    def run() -> None:
        for scope in sorted(scopes):
            try:
                readiness.refresh(scope, changed=True)
                if scope in queue:
                    request_embedding(scope)
            except Exception:
                logger.exception("similarity could not refresh scope %s", scope)

    transaction.on_commit(run)


def on_asset_deleting(sender: Any, instance: Any, **kwargs: Any) -> None:
    def remember() -> None:
        # Remember the scopes now: the embedding rows are gone after the cascade.
        instance._similarity_projects = set(
            Embedding.objects.filter(asset_id=instance.pk).values_list("project_id", flat=True)
        )

    _guarded("delete", instance, remember)


def on_asset_deleted(sender: Any, instance: Any, **kwargs: Any) -> None:
    projects = getattr(instance, "_similarity_projects", set())
    if projects:
        _refresh_on_commit(set(projects))
    _guarded("delete", instance, lambda: _remove_thumbnail_on_commit(instance))


def _remove_thumbnail_on_commit(instance: Any) -> None:
    """Our cached thumbnail goes with the asset (after commit: a rollback keeps it)."""
    name = thumbnail_name(instance)

    def remove() -> None:
        try:
            default_storage.delete(name)
        except OSError:
            logger.warning("Could not remove the thumbnail %s", name, exc_info=True)

    transaction.on_commit(remove)


def on_post_migrate(sender: Any, **kwargs: Any) -> None:
    if getattr(sender, "name", None) != "similarity":
        return
    try:
        ensure_sweep_schedule()
    except Exception:  # django_q not migrated yet on this database: the next migrate does it
        logger.warning("Could not create the similarity sweep schedule yet", exc_info=True)


def on_worker_start(sender: Any = None, **kwargs: Any) -> None:
    """A worker process started: follow a model change now, not at the next sweep."""
    try:
        follow_model_change()
    except Exception:
        logger.exception("similarity could not check for a model change at worker start")


def connect_asset_signals() -> None:
    post_migrate.connect(on_post_migrate, dispatch_uid="similarity_post_migrate")
    try:
        model = get_asset_model()
    except ImproperlyConfigured:
        return  # the system check similarity.E001 reports it
    pre_save.connect(on_asset_saving, sender=model, dispatch_uid="similarity_asset_saving")
    post_save.connect(on_asset_saved, sender=model, dispatch_uid="similarity_asset_saved")
    pre_delete.connect(on_asset_deleting, sender=model, dispatch_uid="similarity_asset_deleting")
    post_delete.connect(on_asset_deleted, sender=model, dispatch_uid="similarity_asset_deleted")
