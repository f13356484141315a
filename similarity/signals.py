"""Signal handlers connected to the host's asset model in ``AppConfig.ready``.

New image assets get their pending row in the same transaction and their work queued
after commit. Fixture loads (``raw``) are skipped. Deletions recount readiness.
"""

from __future__ import annotations

import logging
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.db import transaction
from django.db.models.signals import post_delete, post_migrate, pre_delete

from similarity import readiness, registry
from similarity.models import Embedding

logger = logging.getLogger(__name__)


def on_asset_saved(sender: Any, instance: Any, created: bool, raw: bool = False, **kwargs: Any):
    if raw or not created:
        return
    if not registry.is_image(instance):
        return
    from similarity.tasks import schedule_embedding

    schedule_embedding([instance])


def on_asset_deleting(sender: Any, instance: Any, **kwargs: Any) -> None:
    # Remember the projects now: the embedding rows are gone after the cascade.
    instance._similarity_projects = set(
        Embedding.objects.filter(asset_id=instance.pk).values_list("project_id", flat=True)
    )


def on_asset_deleted(sender: Any, instance: Any, **kwargs: Any) -> None:
    projects = getattr(instance, "_similarity_projects", set())
    if projects:
        transaction.on_commit(lambda: [readiness.refresh(pid) for pid in projects])


def on_post_migrate(sender: Any, **kwargs: Any) -> None:
    if getattr(sender, "name", None) != "similarity":
        return
    try:
        from similarity.tasks import ensure_sweep_schedule

        ensure_sweep_schedule()
    except Exception:  # django_q not migrated yet on this database: the next migrate does it
        logger.warning("Could not create the similarity sweep schedule yet", exc_info=True)


def connect_asset_signals() -> None:
    from django.db.models.signals import post_save

    post_migrate.connect(on_post_migrate, dispatch_uid="similarity_post_migrate")
    try:
        model = registry.get_asset_model()
    except ImproperlyConfigured:
        return  # the system check similarity.E001 reports it
    post_save.connect(on_asset_saved, sender=model, dispatch_uid="similarity_asset_saved")
    pre_delete.connect(on_asset_deleting, sender=model, dispatch_uid="similarity_asset_deleting")
    post_delete.connect(on_asset_deleted, sender=model, dispatch_uid="similarity_asset_deleted")
