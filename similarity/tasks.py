"""Background embedding work (django-q2), idempotent and safe to run twice.

Flow: an asset is saved -> a pending embedding row is written in the same transaction
-> after commit, one ``embed_project`` task is queued per project unless one is already
waiting -> the task claims pending rows in batches (``FOR UPDATE SKIP LOCKED`` with an
expiring claim), decodes the next batch in a thread while the model runs on the current
one, and writes each vector only if the row is still pending. Two workers on the same
project split the rows; a task delivered twice finds nothing left to do; a worker killed
mid-batch leaves claims that expire, and the periodic ``sweep`` queues the project again.

Poison images: every claim counts an attempt. Rows claimed for the first time go first, in
batches; a row whose earlier claim expired unfinished (its worker died) is claimed alone,
so an image that crashes the decoder can only take itself down; a row claimed
``MAX_ATTEMPTS`` times without finishing is marked failed with the reason.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import numpy as np
from django.db import transaction
from django.db.models import CharField, Exists, F, OuterRef, Subquery, Value
from django.db.models.functions import Cast, Coalesce
from django.utils import timezone
from pgvector import HalfVector

from similarity import indexing, insight, readiness, registry, watch
from similarity.conf import similarity_settings
from similarity.embedders import ModelLoadError, current_model_key, get_embedder
from similarity.embedders import load_and_preprocess as decode
from similarity.images import ImageDecodeError
from similarity.models import Embedding, ProjectReadiness
from similarity.signals import file_name

logger = logging.getLogger(__name__)

# A task stops taking new batches after this long and queues a follow-up, so it always
# finishes well inside Q_CLUSTER["timeout"].
TASK_BUDGET_SECONDS = 240
EMBED_TASK = "similarity.tasks.embed_project"
#: Deletes count our own rows by this label (a cascade to other tables never inflates it).
EMBEDDING_LABEL = Embedding._meta.label
#: A row claimed this many times without finishing (each time its worker stopped) is
#: marked failed instead of being claimed again: it probably crashes the decoder.
MAX_ATTEMPTS = 3
#: Rows of a previous model are deleted in chunks of this many, once the new one serves.
PURGE_CHUNK = 2000


# --- scheduling ---------------------------------------------------------------------


def schedule_embedding(assets: Iterable[Any], *, model_key: str | None = None) -> int:
    """Write pending rows for these image assets now; queue the work after commit.

    Call it inside the transaction that creates the assets: the rows commit (or roll
    back) with them, so an asset never exists without its pending row.
    """
    key = model_key or current_model_key()
    assets = list(assets)
    if not assets:
        return 0
    ids = [getattr(asset, "pk", asset) for asset in assets]
    if all(hasattr(asset, "pk") for asset in assets):
        # the saved instances (the upload's post_save) usually have the relations loaded
        project_of = {asset.pk: registry.project_id_of(asset) for asset in assets}
        source_of = {asset.pk: file_name(asset) for asset in assets}
    else:
        project_of = registry.project_ids_for(ids)
        source_of = file_names(ids)
    rows = [
        Embedding(asset_id=pk, model_key=key, project_id=project_of[pk], source=source_of.get(pk, ""))
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


def file_names(asset_ids: Iterable[Any]) -> dict[Any, str]:
    field = similarity_settings.IMAGE_FIELD
    manager = registry.get_asset_model()._default_manager
    return {pk: (name or "")[:500] for pk, name in manager.filter(pk__in=list(asset_ids))
            .values_list("pk", field)}


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
    async_task(EMBED_TASK, project_id, q_options=options)
    logger.info("Queued embedding for project %s", project_id)
    return True


# --- the task -------------------------------------------------------------------------


@dataclass
class Batch:
    rows: list[tuple[int, Any]]  # (embedding id, asset id)
    pixels: dict[int, np.ndarray] = field(default_factory=dict)
    errors: dict[int, str] = field(default_factory=dict)
    suspect: bool = False  # one row whose earlier claim ran out: it may crash the worker


def give_up_on_crashers(project_id: str, key: str) -> int:
    """Fail the unclaimed rows already claimed MAX_ATTEMPTS times: each time the worker
    stopped (killed, out of memory, a native crash) before writing them."""
    now = timezone.now()
    return (
        Embedding.objects.filter(
            project_id=project_id, model_key=key, status=Embedding.Status.PENDING,
            attempts__gte=MAX_ATTEMPTS,
        )
        .exclude(claimed_until__gt=now)
        .update(
            status=Embedding.Status.FAILED,
            error=(
                f"the worker stopped {MAX_ATTEMPTS} times while embedding this image; "
                "it may crash the decoder"
            ),
            claimed_until=None,
            updated=now,
        )
    )


def _claim(project_id: str, key: str, size: int) -> list[tuple[int, Any]]:
    """Claim the next batch: fresh rows first (by key), then suspects one at a time."""
    return _claim_batch(project_id, key, size)[0]


def _claim_batch(
    project_id: str, key: str, size: int, *, suspects: bool = True
) -> tuple[list[tuple[int, Any]], bool]:
    """Claim up to ``size`` fresh rows, or else (if ``suspects``) one suspect alone.

    A suspect is a row claimed before whose claim ran out unfinished: if it is what
    killed its worker, claiming it alone means it takes down nothing but itself. Returns
    the (row id, asset id) pairs and whether they are a suspect.
    """
    now = timezone.now()
    with transaction.atomic():
        rows = Embedding.objects.select_for_update(skip_locked=True).filter(
            project_id=project_id, model_key=key, status=Embedding.Status.PENDING,
            attempts__lt=MAX_ATTEMPTS if suspects else 1,
        )
        candidates = list(
            rows.exclude(claimed_until__gt=now)
            .order_by("attempts", "pk")
            .values_list("pk", "asset_id", "attempts")[:size]
        )
        suspect = bool(candidates) and candidates[0][2] > 0
        if suspect:
            candidates = candidates[:1]  # only suspects are left: one per batch
        ids = [(pk, asset_id) for pk, asset_id, attempts in candidates
               if attempts == 0 or suspect]
        if ids:
            Embedding.objects.filter(pk__in=[pk for pk, _ in ids]).update(
                claimed_until=now + timedelta(seconds=similarity_settings.CLAIM_SECONDS),
                attempts=F("attempts") + 1,
            )
    return ids, suspect


def _load_files(rows: list[tuple[int, Any]]) -> tuple[dict[int, Any], dict[int, str]]:
    """Fetch the rows' assets (in the task's thread: it owns the DB connection)."""
    image_field = similarity_settings.IMAGE_FIELD
    manager = registry.get_asset_model()._default_manager
    assets = manager.in_bulk([asset_id for _, asset_id in rows])
    files, errors = {}, {}
    for row_id, asset_id in rows:
        asset = assets.get(asset_id)
        if asset is None:
            errors[row_id] = "the asset was deleted"
        else:
            files[row_id] = getattr(asset, image_field)
    return files, errors


def _decode_batch(
    rows: list[tuple[int, Any]], files: dict[int, Any], errors: dict, suspect: bool = False
) -> Batch:
    """Open and preprocess each file (in the decode thread: no database access here)."""
    batch = Batch(rows=rows, errors=dict(errors), suspect=suspect)
    for row_id, file in files.items():
        try:
            with file.open("rb") as handle:
                batch.pixels[row_id] = decode(handle)
        except ImageDecodeError as exc:
            batch.errors[row_id] = str(exc)
        except (FileNotFoundError, ValueError):
            # never the exception's text: it carries the server's storage path
            logger.warning("Image file %s of row %s is missing", file.name, row_id)
            batch.errors[row_id] = "the image file is missing from storage"
        except Exception as exc:  # a bad file must fail alone, never the batch
            logger.exception("Unexpected error decoding %s", file.name)
            batch.errors[row_id] = f"could not read the image ({type(exc).__name__})"
    return batch


def _write(batch: Batch, vectors: dict[int, np.ndarray], dims: int) -> int:
    """Store vectors and failures of rows still pending; returns how many rows changed."""
    now = timezone.now()
    pending = Embedding.Status.PENDING
    written = 0
    with transaction.atomic():
        for row_id, vector in vectors.items():
            if not np.all(np.isfinite(vector)):
                batch.errors[row_id] = "the model produced non-finite values for this image"
                continue
            written += Embedding.objects.filter(pk=row_id, status=pending).update(
                status=Embedding.Status.DONE,
                vector=HalfVector(vector.astype(np.float16)),
                dims=dims,
                error="",
                claimed_until=None,
                updated=now,
            )
        for row_id, reason in batch.errors.items():
            written += Embedding.objects.filter(pk=row_id, status=pending).update(
                status=Embedding.Status.FAILED, error=reason[:2000], claimed_until=None, updated=now
            )
    return written


def _batches(project_id: str, key: str, size: int, deadline: float) -> Iterator[Batch]:
    """Claim and decode batches, one ahead of the consumer, until none are left.

    Fresh rows are decoded one batch ahead while the model runs; a suspect is never in
    flight beside another batch (its crash would take that batch down with it): it is
    claimed only once the previous batch is written, and nothing is prefetched meanwhile.
    """
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="decode") as pool:

        def submit(*, suspects: bool, first: bool = False) -> Future[Batch] | None:
            if not first and time.monotonic() >= deadline:
                return None  # the budget is spent: a follow-up task goes on
            rows, suspect = _claim_batch(project_id, key, size, suspects=suspects)
            if not rows:
                return None
            return pool.submit(_decode_batch, rows, *_load_files(rows), suspect)

        upcoming = submit(suspects=True, first=True)
        while upcoming is not None:
            batch = upcoming.result()
            upcoming = None if batch.suspect else submit(suspects=False)
            yield batch  # the caller embeds and writes it before we go on
            if upcoming is None:
                upcoming = submit(suspects=True)


def embed_project(
    project_id: str,
    *,
    budget_seconds: float | None = TASK_BUDGET_SECONDS,
    progress: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """Embed the project's pending rows for the current model (the django-q2 task).

    ``budget_seconds`` bounds a queued task (it hands the rest to a follow-up task);
    commands running in the foreground pass None and a ``progress`` callback.
    """
    project_id = str(project_id)
    ProjectReadiness.objects.filter(project_id=project_id).update(queued_at=None)
    key = current_model_key()
    try:
        embedder = get_embedder()
    except ModelLoadError as exc:
        # Rows stay pending: once the model is fixed, the sweep finishes them.
        readiness.refresh(project_id, error=str(exc))
        return {"project": project_id, "error": str(exc)}
    if embedder.model_key != key:
        raise RuntimeError(f"Loaded model {embedder.model_key} but settings name {key}")

    started = time.monotonic()
    done = failed = 0
    size = max(1, embedder.batch_size)  # GPU_BATCH_SIZE on CUDA
    deadline = started + budget_seconds if budget_seconds is not None else float("inf")
    # Writes bump the readiness version every process's search cache is keyed by: a task
    # that changes nothing must not refresh, or idle polling reloads every cache.
    changed = give_up_on_crashers(project_id, key)
    failed += changed
    for batch in _batches(project_id, key, size, deadline):
        vectors: dict[int, np.ndarray] = {}
        if batch.pixels:
            row_ids = list(batch.pixels)
            output = embedder.embed(np.stack([batch.pixels[row_id] for row_id in row_ids]))
            vectors = dict(zip(row_ids, output, strict=True))
        written = _write(batch, vectors, embedder.dims)
        done += len(vectors) - len(set(vectors) & set(batch.errors))
        failed += len(batch.errors)
        if written:
            changed += written
            readiness.refresh(project_id, error="")
            # saved searches that watch this project: this batch only, never raises
            watch.check_new(project_id, [row for row in vectors if row not in batch.errors])
        if progress is not None:
            progress(len(batch.rows))
    state = readiness.get_readiness(project_id)
    if changed or state.error or state.model_key != key:
        state = readiness.refresh(project_id, error="")
    if state.state == ProjectReadiness.State.READY:
        if changed or state.indexed_model_key != key:
            indexed = indexing.ensure_project_index(project_id, key)
            if indexed or not indexing.needs_index(project_id, key):
                purge_other_models(project_id, key)
        insight.after_embedding(project_id)  # queues the insight stage's own task
    elif claimable(project_id, key):
        # The budget ran out with rows left. Rows claimed by another worker (alive, or dead
        # with a claim still running) are no reason to come back: the claimant finishes
        # them, or the sweep re-queues them once the claim expires.
        request_embedding(project_id)
    elapsed = time.monotonic() - started
    logger.info(
        "Project %s: embedded %d, failed %d in %.1f s (%s)", project_id, done, failed, elapsed, key
    )
    return {"project": project_id, "embedded": done, "failed": failed, "seconds": elapsed}


def claimable(project_id: str, key: str) -> bool:
    """Whether pending rows are free to claim now (no live claim on them)."""
    return (
        Embedding.objects.filter(
            project_id=project_id, model_key=key, status=Embedding.Status.PENDING
        )
        .exclude(claimed_until__gt=timezone.now())
        .exists()
    )


def purge_other_models(project_id: str, key: str, *, chunk: int = PURGE_CHUNK) -> int:
    """Delete the project's rows of other models, in chunks (short transactions).

    Call it once the project is ready on ``key`` and, if it needs one, its index for
    ``key`` exists: until then the old vectors (and their index) are what search serves.
    """
    deleted = 0
    while True:
        ids = list(
            Embedding.objects.filter(project_id=project_id)
            .exclude(model_key=key)
            .values_list("pk", flat=True)[:chunk]
        )
        if not ids:
            break
        deleted += Embedding.objects.filter(pk__in=ids).delete()[1].get(EMBEDDING_LABEL, 0)
    if deleted:
        logger.info("Deleted %d vectors of previous models in project %s", deleted, project_id)
    return deleted


# --- re-indexing and the sweep ----------------------------------------------------------


def missing_assets(project_id: str | None, key: str):
    """Image assets with no row for this model (new installs, model changes)."""
    queryset = (
        registry.image_assets() if project_id is None else registry.project_assets(project_id)
    )
    has_row = Embedding.objects.filter(asset_id=OuterRef("pk"), model_key=key)
    return queryset.filter(~Exists(has_row))


def create_missing_rows(project_id: str | None = None, *, chunk: int = 2000) -> int:
    """Write pending rows for every image asset lacking one for the current model."""
    project_id = None if project_id is None else str(project_id)
    key = current_model_key()
    created = 0
    while True:
        ids = list(missing_assets(project_id, key).values_list("pk", flat=True)[:chunk])
        if not ids:
            return created
        project_of = registry.project_ids_for(ids)
        source_of = file_names(ids)
        Embedding.objects.bulk_create(
            [Embedding(asset_id=pk, model_key=key, project_id=project_of[pk],
                       source=source_of.get(pk, "")) for pk in ids],
            ignore_conflicts=True,
        )
        created += len(ids)


def retry_failed(project_id: str) -> int:
    """Put the project's failed rows for the current model back to pending."""
    project_id = str(project_id)
    return Embedding.objects.filter(
        project_id=project_id, model_key=current_model_key(), status=Embedding.Status.FAILED
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
    lookup = registry.project_lookup()
    if lookup is None:
        return [registry.SITE_SCOPE]
    return sorted(
        {
            registry.scope_key(pid)
            for pid in registry.image_assets().values_list(lookup, flat=True).distinct()
        }
    )


def _live(column: str) -> Subquery:
    """The asset's current value at an ORM path, as text, for comparing with our rows."""
    assets = registry.get_asset_model()._default_manager.filter(pk=OuterRef("asset_id"))
    return Subquery(assets.values(value=Cast(column, CharField()))[:1])


def repair_drift() -> dict[str, int]:
    """Follow host changes that fired no signal (``update()``, raw SQL, other services).

    Compares our rows with the host's table in SQL: rows of assets that are no longer
    images are deleted, rows whose asset moved to another project move with it, and rows
    whose asset has another file are re-embedded. Returns the counts and refreshes the
    scopes touched.
    """
    touched: set[str] = set()
    key = current_model_key()
    not_images = Embedding.objects.exclude(asset_id__in=registry.image_assets().values("pk"))
    touched |= set(not_images.values_list("project_id", flat=True).distinct())
    removed = not_images.delete()[1].get(EMBEDDING_LABEL, 0) if touched else 0

    moved = 0
    lookup = registry.project_lookup()
    live_scope = (
        Value(registry.SITE_SCOPE)
        if lookup is None
        else Coalesce(_live(lookup), Value(registry.NO_PROJECT))
    )
    drifted = Embedding.objects.annotate(live=live_scope).exclude(project_id=F("live"))
    for pk, old, new in drifted.values_list("pk", "project_id", "live")[:10_000]:
        moved += Embedding.objects.filter(pk=pk).update(project_id=new, updated=timezone.now())
        touched |= {old, new}

    field = similarity_settings.IMAGE_FIELD
    stale = (
        Embedding.objects.exclude(source="")
        .annotate(live=Coalesce(_live(field), Value("")))
        .exclude(source=F("live"))
    )
    refiled = 0
    for pk, scope, model_key, name in stale.values_list(
        "pk", "project_id", "model_key", "live"
    )[:10_000]:
        if model_key != key:
            Embedding.objects.filter(pk=pk).delete()
        else:
            Embedding.objects.filter(pk=pk).update(
                status=Embedding.Status.PENDING, vector=None, dims=None, error="", attempts=0,
                claimed_until=None, source=name[:500], updated=timezone.now(),
            )
        refiled += 1
        touched.add(scope)
    # rows written before file names were recorded: take the current name as theirs
    Embedding.objects.filter(source="").update(source=Coalesce(_live(field), Value("")))
    for scope in touched:
        readiness.refresh(scope, changed=True)
    if removed or moved or refiled:
        logger.info(
            "Sweep followed host changes: %d rows of non-images removed, %d moved, %d new "
            "files re-embedded", removed, moved, refiled,
        )
    return {"removed": removed, "moved": moved, "refiled": refiled}


def sweep() -> dict[str, Any]:
    """Periodic repair: follow unsignalled host changes, create missing rows, re-queue
    abandoned work."""
    drift = repair_drift()
    created = create_missing_rows()
    now = timezone.now()
    key = current_model_key()
    stuck = (
        Embedding.objects.filter(model_key=key, status=Embedding.Status.PENDING)
        .exclude(claimed_until__gt=now)
        .values_list("project_id", flat=True)
        .distinct()
    )
    requeued = [pid for pid in stuck if request_embedding(pid)]
    for project_id in requeued:
        readiness.refresh(project_id)
    purged = purge_replaced_models(key)
    dropped = indexing.prune_indexes()
    insight.sweep()  # lists made stale by deletes and moves, which queue no embedding
    from similarity.query_images import purge_expired  # imports search: not at load time

    queries = purge_expired()  # outside images older than QUERY_IMAGE_HOURS, unsaved
    forgotten = watch.forget_deleted_projects()  # saved searches of deleted projects
    if created:
        logger.info("Sweep created %d missing embedding rows", created)
    if requeued:
        logger.info("Sweep re-queued projects %s", requeued)
    return {"created": created, "requeued": requeued, "purged": purged,
            "dropped_indexes": dropped, "query_images": queries,
            "forgotten_searches": forgotten, **drift}


def embed_query_image(query_id: str, crop: bytes) -> bool:
    """Task: embed an outside image a web process is waiting for (QUERY_EMBEDDING
    "worker"), with this worker's loaded model. See similarity.query_images."""
    from similarity.query_images import embed_queued

    return embed_queued(query_id, crop)


def purge_replaced_models(key: str) -> int:
    """Old models' rows of projects now served by ``key`` (a purge that was interrupted,
    or a project that became ready on a worker that died before purging)."""
    purged = 0
    scopes = (
        Embedding.objects.exclude(model_key=key).values_list("project_id", flat=True).distinct()
    )
    for project_id in list(scopes):
        state = readiness.get_readiness(project_id)
        served = state.state == ProjectReadiness.State.READY and state.active_model_key == key
        if served and (state.indexed_model_key == key
                       or not indexing.needs_index(project_id, key)):
            purged += purge_other_models(project_id, key)
    return purged


def ensure_sweep_schedule() -> None:
    """Create (or update) the django-q2 schedule that runs the sweep."""
    from django_q.models import Schedule

    Schedule.objects.update_or_create(
        name="similarity sweep",
        defaults={
            "func": "similarity.tasks.sweep",
            "schedule_type": Schedule.MINUTES,
            "minutes": similarity_settings.SWEEP_MINUTES,
            "repeats": -1,
        },
    )


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
    for scope in scopes:
        reindex_project(scope, retry=False)
    if scopes:
        logger.info("Model is now %s: re-embedding %d scopes", key, len(scopes))
    return scopes
