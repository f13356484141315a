"""The embedding task: claim pending rows in batches, decode ahead, embed, write.

Flow: an asset is saved -> a pending embedding row is written in the same transaction
(``similarity.embedding.scheduling``) -> after commit, one ``embed_project`` task is
queued per project unless one is already waiting -> the task claims pending rows in
batches (``FOR UPDATE SKIP LOCKED`` with an expiring claim), decodes the next batch in a
thread while the model runs on the current one, and writes each vector only if the row is
still pending. Two workers on the same project split the rows; a task delivered twice
finds nothing left to do; a worker killed mid-batch leaves claims that expire, and the
periodic sweep queues the project again. After each written batch and when the project is
ready it announces so (``similarity.embedding.signals``); what follows is the listeners'.

Poison images: every claim counts an attempt. Rows claimed for the first time go first, in
batches; a row whose earlier claim expired unfinished (its worker died) is claimed alone,
so an image that crashes the decoder can only take itself down; a row claimed
``MAX_ATTEMPTS`` times without finishing is marked failed with the reason.

A text model (``TEXT_MODEL_NAME``) has rows of its own key beside DINOv2's. A batch of
image-model rows claims the text-model rows of the same assets with the same claim, so
each image is decoded once and fed to both models, each with its own preprocessing; the
text model's rows left over (the setting was just turned on, or that model failed to load
for a while) are embedded after the image model's, alone. A text model that cannot load
never holds image search back: its error is recorded apart (``text_error``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import numpy as np
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from similarity.conf import similarity_settings
from similarity.embedding import readiness
from similarity.embedding.scheduling import request_embedding
from similarity.embedding.signals import batch_embedded, project_ready
from similarity.host.files import image_file
from similarity.host.models import get_asset_model
from similarity.models import Embedding, ProjectReadiness
from similarity.vectors import hnsw
from similarity.vectors.embedder import get_embedder
from similarity.vectors.images import ImageDecodeError, load_rgb
from similarity.vectors.math import halfvec
from similarity.vectors.model_keys import (
    ModelLoadError,
    current_model_key,
    current_model_keys,
    text_model_key,
)
from similarity.vectors.preprocess import DRAFT_SIZE, preprocess
from similarity.vectors.text_model import SiglipImageTower, get_image_tower

logger = logging.getLogger(__name__)

# A task stops taking new batches after this long and queues a follow-up, so it always
# finishes well inside Q_CLUSTER["timeout"].
TASK_BUDGET_SECONDS = 240
#: Deletes count our own rows by this label (a cascade to other tables never inflates it).
EMBEDDING_LABEL = Embedding._meta.label
#: A row claimed this many times without finishing (each time its worker stopped) is
#: marked failed instead of being claimed again: it probably crashes the decoder.
MAX_ATTEMPTS = 3
#: Rows of a previous model are deleted in chunks of this many, once the new one serves.
PURGE_CHUNK = 2000



@dataclass
class Batch:
    rows: list[tuple[int, Any]]  # (embedding id, asset id)
    #: The claim's expiry, written on every row claimed: a row is only written while it
    #: still carries it (a replaced file resets the claim; so does another worker's claim)
    claim: datetime | None = None
    pixels: dict[int, np.ndarray] = field(default_factory=dict)
    errors: dict[int, str] = field(default_factory=dict)
    suspect: bool = False  # one row whose earlier claim ran out: it may crash the worker
    stored: list[int] = field(default_factory=list)  # rows whose vector was written
    #: The text model's rows of the same assets, claimed with the same claim and fed from
    #: the same decode (None: no text model, or its rows are embedded apart).
    companion: Batch | None = None


@dataclass(frozen=True)
class Feed:
    """How one model's input is made from a decoded RGB image."""

    prepare: Callable[[Any], np.ndarray]
    #: Smallest size a JPEG may be draft-decoded to for it (every feed of a decode gets
    #: at least its own).
    draft: tuple[int, int]


DINOV2_FEED = Feed(preprocess, DRAFT_SIZE)


def text_feed(tower: SiglipImageTower) -> Feed:
    size = (tower.prepare.width, tower.prepare.height)
    return Feed(tower.prepare, size)


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
    project_id: str, key: str, size: int, *, suspects: bool = True,
    companion_key: str | None = None,
) -> tuple[list[tuple[int, Any]], bool, datetime]:
    """Claim up to ``size`` fresh rows, or else (if ``suspects``) one suspect alone.

    A suspect is a row claimed before whose claim ran out unfinished: if it is what
    killed its worker, claiming it alone means it takes down nothing but itself. Returns
    the (row id, asset id) pairs, whether they are a suspect, and the claim written.
    """
    now = timezone.now()
    claim = now + timedelta(seconds=similarity_settings.CLAIM_SECONDS)
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
                claimed_until=claim, attempts=F("attempts") + 1,
            )
    return ids, suspect, claim


def _claim_companions(
    project_id: str, key: str, rows: list[tuple[int, Any]], claim: datetime
) -> list[tuple[int, Any]]:
    """Claim the pending ``key`` rows of the same assets as ``rows``, with their claim:
    what lets one decode feed both models. Rows another worker holds are left to it."""
    if not rows:
        return []
    now = timezone.now()
    with transaction.atomic():
        found = list(
            Embedding.objects.select_for_update(skip_locked=True).filter(
                project_id=project_id, model_key=key, status=Embedding.Status.PENDING,
                asset_id__in=[asset_id for _, asset_id in rows], attempts__lt=MAX_ATTEMPTS,
            ).exclude(claimed_until__gt=now).values_list("pk", "asset_id")
        )
        if found:
            Embedding.objects.filter(pk__in=[pk for pk, _ in found]).update(
                claimed_until=claim, attempts=F("attempts") + 1,
            )
    return found


def _load_files(rows: list[tuple[int, Any]]) -> tuple[dict[int, Any], dict[int, str]]:
    """Fetch the rows' assets (in the task's thread: it owns the DB connection)."""
    assets = get_asset_model()._default_manager.in_bulk([asset_id for _, asset_id in rows])
    files, errors = {}, {}
    for row_id, asset_id in rows:
        asset = assets.get(asset_id)
        if asset is None:
            errors[row_id] = "the asset was deleted"
        else:
            files[row_id] = image_file(asset)
    return files, errors


def _decode_batch(
    rows: list[tuple[int, Any]], files: dict[int, Any], errors: dict, suspect: bool = False,
    claim: datetime | None = None, *, feed: Feed = DINOV2_FEED,
    companion: tuple[list[tuple[int, Any]], Feed] | None = None,
) -> Batch:
    """Decode each file once and prepare it for every model of the batch (in the decode
    thread: no database access here); a file that fails fails the rows of both models."""
    batch = Batch(rows=rows, claim=claim, errors=dict(errors), suspect=suspect)
    feeds = [feed]
    partner: dict[Any, int] = {}
    if companion is not None:
        companion_rows, companion_feed = companion
        batch.companion = Batch(rows=companion_rows, claim=claim)
        partner = {asset_id: row_id for row_id, asset_id in companion_rows}
        feeds.append(companion_feed)
    asset_of = dict(rows)
    draft = (max(f.draft[0] for f in feeds), max(f.draft[1] for f in feeds))
    for row_id, file in files.items():
        twin = partner.get(asset_of.get(row_id))
        try:
            with file.open("rb") as handle:
                rgb = load_rgb(handle, draft=draft,
                               max_aspect_ratio=similarity_settings.MAX_ASPECT_RATIO)
            batch.pixels[row_id] = feed.prepare(rgb)
            if twin is not None:
                batch.companion.pixels[twin] = feeds[1].prepare(rgb)
            continue
        except ImageDecodeError as exc:
            reason = str(exc)
        except (FileNotFoundError, ValueError):
            # never the exception's text: it carries the server's storage path
            logger.warning("Image file %s of row %s is missing", file.name, row_id)
            reason = "the image file is missing from storage"
        except Exception as exc:  # a bad file must fail alone, never the batch
            logger.exception("Unexpected error decoding %s", file.name)
            reason = f"could not read the image ({type(exc).__name__})"
        batch.errors[row_id] = reason
        batch.pixels.pop(row_id, None)
        if twin is not None:
            batch.companion.errors[twin] = reason
            batch.companion.pixels.pop(twin, None)
    if batch.companion is not None:
        for row_id, asset_id in rows:  # the asset is gone: so is its text-model row's
            twin = partner.get(asset_id)
            if row_id in batch.errors and twin is not None and twin not in batch.companion.errors:
                batch.companion.errors[twin] = batch.errors[row_id]
    return batch


def _write(batch: Batch, vectors: dict[int, np.ndarray], dims: int) -> int:
    """Store vectors and failures of rows still pending under this batch's claim; returns
    how many rows changed.

    A row whose file was replaced while its batch was in flight is pending again with
    its claim cleared: writing the old file's vector would mark it done, and nothing would
    ever notice (its source already names the new file). It is left for the next batch.
    """
    now = timezone.now()
    mine = Embedding.objects.filter(status=Embedding.Status.PENDING)
    if batch.claim is not None:
        mine = mine.filter(claimed_until=batch.claim)
    written = 0
    with transaction.atomic():
        for row_id, vector in vectors.items():
            if not np.all(np.isfinite(vector)):
                batch.errors[row_id] = "the model produced non-finite values for this image"
                continue
            stored = mine.filter(pk=row_id).update(
                status=Embedding.Status.DONE,
                vector=halfvec(vector),
                dims=dims,
                error="",
                claimed_until=None,
                updated=now,
            )
            if stored:
                batch.stored.append(row_id)
            written += stored
        for row_id, reason in batch.errors.items():
            written += mine.filter(pk=row_id).update(
                status=Embedding.Status.FAILED, error=reason[:2000], claimed_until=None, updated=now
            )
    return written


def _batches(
    project_id: str, key: str, size: int, deadline: float, *, feed: Feed = DINOV2_FEED,
    companion: tuple[str, Feed] | None = None,
) -> Iterator[Batch]:
    """Claim and decode batches, one ahead of the consumer, until none are left.

    Fresh rows are decoded one batch ahead while the model runs; a suspect is never in
    flight beside another batch (its crash would take that batch down with it): it is
    claimed only once the previous batch is written, and nothing is prefetched meanwhile.
    """
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="decode") as pool:

        def submit(*, suspects: bool, first: bool = False) -> Future[Batch] | None:
            if not first and time.monotonic() >= deadline:
                return None  # the budget is spent: a follow-up task goes on
            rows, suspect, claim = _claim_batch(project_id, key, size, suspects=suspects)
            if not rows:
                return None
            partner = None
            if companion is not None:
                partner = (_claim_companions(project_id, companion[0], rows, claim), companion[1])
            return pool.submit(_decode_batch, rows, *_load_files(rows), suspect, claim,
                               feed=feed, companion=partner)

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
    """Embed the project's pending rows for the current models (the django-q2 task).

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
    tower, text_key = _text_tower(project_id)

    started = time.monotonic()
    done = failed = text_done = 0
    size = max(1, embedder.batch_size)  # GPU_BATCH_SIZE on CUDA
    deadline = started + budget_seconds if budget_seconds is not None else float("inf")
    # Writes bump the readiness version every process's search cache is keyed by: a task
    # that changes nothing must not refresh, or idle polling reloads every cache.
    changed = give_up_on_crashers(project_id, key)
    failed += changed
    text_changed = give_up_on_crashers(project_id, text_key) if tower else 0
    companion = (text_key, text_feed(tower)) if tower else None
    for batch in _batches(project_id, key, size, deadline, companion=companion):
        written = _embed_and_write(batch, embedder)
        done += len(batch.stored)
        failed += len(batch.errors)
        new_rows = list(batch.stored)
        if batch.companion is not None and tower is not None:
            text_changed += _embed_and_write(batch.companion, tower)
            text_done += len(batch.companion.stored)
            new_rows += batch.companion.stored  # new uploads, for saved descriptions too
        if written:
            changed += written
            readiness.refresh(project_id, error="")
            if new_rows:
                _announce(batch_embedded, project_id=project_id, row_ids=new_rows)
        if progress is not None:
            progress(len(batch.rows))
    if tower is not None and time.monotonic() < deadline:
        # the text model's rows no image-model batch took along (the setting was just
        # turned on): alone, after every image-model row, so image search never waits
        for batch in _batches(project_id, text_key, max(1, tower.batch_size), deadline,
                              feed=text_feed(tower)):
            text_changed += _embed_and_write(batch, tower)
            text_done += len(batch.stored)
            readiness.refresh(project_id, changed=True)  # text progress, caches' version
    state = readiness.get_readiness(project_id)
    if changed or text_changed or state.error or state.model_key != key:
        state = readiness.refresh(project_id, error="", changed=bool(text_changed))
    if state.state == ProjectReadiness.State.READY:
        if changed or state.indexed_model_key != key:
            indexed = hnsw.ensure_project_index(project_id, key)
            if indexed or not hnsw.needs_index(project_id, key):
                purge_other_models(project_id, key)
        _announce(project_ready, project_id=project_id)
    if tower is not None and text_changed and hnsw.needs_index(project_id, text_key):
        # the text model's rows get their own index, beside DINOv2's (text search of a
        # large project then answers through it, like most-similar image search)
        hnsw.ensure_project_index(project_id, text_key)
    if claimable(project_id, key) or (tower is not None and claimable(project_id, text_key)):
        # The budget ran out with rows left. Rows claimed by another worker (alive, or dead
        # with a claim still running) are no reason to come back: the claimant finishes
        # them, or the sweep re-queues them once the claim expires.
        request_embedding(project_id)
    elapsed = time.monotonic() - started
    logger.info(
        "Project %s: embedded %d, failed %d in %.1f s (%s)%s", project_id, done, failed,
        elapsed, key, f"; text model: {text_done} ({text_key})" if tower else "",
    )
    outcome = {"project": project_id, "embedded": done, "failed": failed, "seconds": elapsed}
    if tower is not None:
        outcome["text_embedded"] = text_done
    return outcome


def _text_tower(project_id: str) -> tuple[SiglipImageTower | None, str | None]:
    """The text model's image tower, if one is configured and loads; its load error is
    recorded apart (``text_error``) and only text search waits for it."""
    text_key = text_model_key()
    if text_key is None:
        return None, None
    try:
        tower = get_image_tower()
    except ModelLoadError as exc:
        readiness.record_text_error(project_id, str(exc))
        return None, text_key
    readiness.record_text_error(project_id, "")
    return tower, text_key


def _embed_and_write(batch: Batch, model: Any) -> int:
    """Run one model on a decoded batch and write what came out; rows changed."""
    vectors: dict[int, np.ndarray] = {}
    if batch.pixels:
        row_ids = list(batch.pixels)
        output = model.embed(np.stack([batch.pixels[row_id] for row_id in row_ids]))
        vectors = dict(zip(row_ids, output, strict=True))
    return _write(batch, vectors, model.dims)


def _announce(signal: Any, **kwargs: Any) -> None:
    """Tell the listeners; a listener's failure is logged and the work goes on."""
    for receiver, outcome in signal.send_robust(Embedding, **kwargs):
        if isinstance(outcome, Exception):
            logger.error("%s failed after embedding scope %s", getattr(receiver, "__qualname__",
                         receiver), kwargs.get("project_id"), exc_info=outcome)


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
    """Delete the project's rows of other models, in chunks (short transactions); the
    text model's rows, if one is configured, are kept.

    Call it once the project is ready on ``key`` and, if it needs one, its index for
    ``key`` exists: until then the old vectors (and their index) are what search serves.
    """
    keep = {key, *current_model_keys()}
    deleted = 0
    while True:
        ids = list(
            Embedding.objects.filter(project_id=project_id)
            .exclude(model_key__in=keep)
            .values_list("pk", flat=True)[:chunk]
        )
        if not ids:
            break
        deleted += Embedding.objects.filter(pk__in=ids).delete()[1].get(EMBEDDING_LABEL, 0)
    if deleted:
        logger.info("Deleted %d vectors of previous models in project %s", deleted, project_id)
    return deleted


