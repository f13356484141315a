"""Pending rows and the tasks that embed them: what uploads, re-indexing, the sweep and a
model change all use to ask for embedding work.

An asset never exists without its pending row: ``schedule_embedding`` writes rows in the
host's transaction and queues one ``embed_project`` task per project after commit, unless
one is already waiting (``ProjectReadiness.queued_at``), so a thousand uploads become a
handful of batched tasks.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import timedelta
from typing import Any

from django.db import transaction
from django.db.models import Exists, OuterRef, QuerySet
from django.utils import timezone

from similarity.conf import similarity_settings
from similarity.embedding import readiness
from similarity.host import scopes
from similarity.host.files import file_name, file_names
from similarity.host.models import image_assets, project_lookup
from similarity.host.scopes import SITE_SCOPE, project_assets, scope_key
from similarity.models import Embedding, ProjectReadiness
from similarity.models.embeddings import SCOPE_MAX_LENGTH
from similarity.vectors.model_keys import current_model_key, current_model_keys, text_model_key

logger = logging.getLogger(__name__)

EMBED_TASK = "similarity.tasks.embed_project"



def schedule_embedding(assets: Iterable[Any], *, model_key: str | None = None) -> int:
    """Write pending rows for these image assets now; queue the work after commit.

    Call it inside the transaction that creates the assets: the rows commit (or roll
    back) with them, so an asset never exists without its pending row. One row per
    current model (the image model's, and the text model's when one is configured),
    unless ``model_key`` names one.
    """
    keys = (model_key,) if model_key else current_model_keys()
    assets = list(assets)
    if not assets:
        return 0
    ids = [getattr(asset, "pk", asset) for asset in assets]
    if all(hasattr(asset, "pk") for asset in assets):
        # the saved instances (the upload's post_save) usually have the relations loaded
        project_of = {asset.pk: scopes.project_id_of(asset) for asset in assets}
        source_of = {asset.pk: file_name(asset) for asset in assets}
    else:
        project_of = scopes.project_ids_for(ids)
        source_of = file_names(ids)
    rows = [
        Embedding(asset_id=pk, model_key=key, project_id=project_of[pk], source=source_of.get(pk, ""))
        for key in keys
        for pk in ids
        if pk in project_of
    ]
    Embedding.objects.bulk_create(rows, ignore_conflicts=True)
    projects = sorted({row.project_id for row in rows})
    transaction.on_commit(lambda: _after_commit(projects))
    return len(rows)


def forget_assets(asset_ids: Any) -> set[str]:
    """Delete our rows for assets a host deletes in bulk, without per-asset signals.

    ``asset_ids``: a values("pk") queryset or a list of keys. One DELETE; the scopes
    touched are recounted after commit (their indexes, if they shrank, go in the sweep).
    Call it in the host's transaction, before deleting the assets themselves.
    """
    rows = Embedding.objects.filter(asset_id__in=asset_ids)
    scopes = set(rows.values_list("project_id", flat=True).distinct())
    rows.delete()

    def recount() -> None:
        for scope in sorted(scopes):
            readiness.refresh(scope)

    if scopes:
        transaction.on_commit(recount)
    return scopes


def _after_commit(project_ids: list[str]) -> None:
    # Runs after the host's commit, inside its save() call stack: never raise into it.
    for project_id in project_ids:
        try:
            readiness.refresh(project_id)
            request_embedding(project_id)
        except Exception:
            logger.exception(
                "Could not queue embedding for scope %s; the sweep will within %s minutes",
                project_id, similarity_settings.SWEEP_MINUTES,
            )


def request_embedding(project_id: str, *, force: bool = False) -> bool:
    """Queue one ``embed_project`` task unless one is already waiting for the project."""
    project_id = str(project_id)
    now = timezone.now()
    readiness.get_readiness(project_id)
    stale = now - timedelta(seconds=similarity_settings.PENDING_TIMEOUT)
    queryset = ProjectReadiness.objects.filter(project_id=project_id)
    if not force:
        queryset = queryset.filter(queued_at__isnull=True) | queryset.filter(queued_at__lt=stale)
    if not queryset.update(queued_at=now):
        return False  # a task is already queued and will see these rows
    from django_q.tasks import async_task

    options: dict[str, Any] = {"task_name": f"embed project {project_id}"}
    if similarity_settings.QUEUE_CLUSTER:
        options["cluster"] = similarity_settings.QUEUE_CLUSTER
    try:
        async_task(EMBED_TASK, project_id, q_options=options)
    except Exception:
        # Nothing was queued: a mark left behind would stall the scope for PENDING_TIMEOUT
        ProjectReadiness.objects.filter(project_id=project_id, queued_at=now).update(
            queued_at=None)
        raise
    logger.info("Queued embedding for project %s", project_id)
    return True



def missing_assets(project_id: str | None, key: str) -> QuerySet:
    """Image assets with no row for this model (new installs, model changes)."""
    queryset = (
        image_assets() if project_id is None else project_assets(project_id)
    )
    has_row = Embedding.objects.filter(asset_id=OuterRef("pk"), model_key=key)
    return queryset.filter(~Exists(has_row))


def create_missing_rows(project_id: str | None = None, *, chunk: int = 2000) -> int:
    """Write pending rows for every image asset lacking one for a current model (the
    text model's too: turning it on embeds the existing library this way)."""
    project_id = None if project_id is None else str(project_id)
    return sum(_create_missing_rows(project_id, key, chunk) for key in current_model_keys())


def _create_missing_rows(project_id: str | None, key: str, chunk: int) -> int:
    created = 0
    unusable: set[Any] = set()  # keys too long to store: warned about, left out
    while True:
        ids = list(missing_assets(project_id, key).exclude(pk__in=unusable)
                   .values_list("pk", flat=True)[:chunk])
        if not ids:
            return created
        project_of = scopes.project_ids_for(ids)  # an asset deleted meanwhile is absent
        too_long = {pk for pk, scope in project_of.items() if len(scope) > SCOPE_MAX_LENGTH}
        if too_long:
            logger.warning(
                "%d images are in projects whose key is longer than %d characters and "
                "cannot be indexed (assets %s)", len(too_long), SCOPE_MAX_LENGTH,
                sorted(too_long, key=str)[:10])
        unusable |= set(ids) - set(project_of) | too_long
        source_of = file_names(ids)
        made = Embedding.objects.bulk_create(
            [Embedding(asset_id=pk, model_key=key, project_id=project_of[pk],
                       source=source_of.get(pk, "")) for pk in ids
             if pk in project_of and pk not in too_long],
            ignore_conflicts=True,
        )
        created += len(made)


def retry_failed(project_id: str) -> int:
    """Put the project's failed rows for the current models back to pending."""
    project_id = str(project_id)
    return Embedding.objects.filter(
        project_id=project_id, model_key__in=current_model_keys(),
        status=Embedding.Status.FAILED,
    ).update(status=Embedding.Status.PENDING, error="", claimed_until=None, attempts=0)


def reindex_project(project_id: str, *, retry: bool = True) -> dict[str, int]:
    """Embed what is missing or was made by another model, and retry failures."""
    project_id = str(project_id)
    created = create_missing_rows(project_id)
    retried = retry_failed(project_id) if retry else 0
    readiness.refresh(project_id, error="")
    queued = request_embedding(project_id, force=True)
    return {"created": created, "retried": retried, "queued": int(queued)}


def project_ids_with_assets() -> list[str]:
    lookup = project_lookup()
    if lookup is None:
        return [SITE_SCOPE]
    return sorted({scope_key(pid) for pid in image_assets().values_list(lookup, flat=True).distinct()})


def follow_model_change() -> list[str]:
    """Start re-embedding at once for scopes whose rows are of another model.

    Runs when a worker process starts (django-q2's ``post_spawn``): an operator who fixes
    a wrong model path or switches models restarts the worker, and the projects turn
    "computing" right away instead of staying red until the next sweep.
    """
    key = current_model_key()
    scopes = list(
        ProjectReadiness.objects.exclude(model_key=key)
        .exclude(state=ProjectReadiness.State.EMPTY)
        .values_list("project_id", flat=True)
    )
    text_key = text_model_key()
    if text_key is not None:  # the text model was just turned on (or changed)
        scopes += [
            scope for scope in ProjectReadiness.objects.exclude(
                state=ProjectReadiness.State.EMPTY).exclude(project_id__in=scopes)
            .values_list("project_id", flat=True)
            if missing_assets(scope, text_key).exists()
        ]
    for scope in scopes:
        reindex_project(scope, retry=False)
    if scopes:
        logger.info("Model is now %s: re-embedding %d scopes", key, len(scopes))
    return scopes
