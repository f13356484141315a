"""Search a project with an image from outside it (dropped, pasted, picked or POSTed).

The file goes through the same checks as an upload (size cap, format decided by content,
decompression bombs, needles, vector formats and videos refused with a reason), then only
a small JPEG preview and the vector are kept in a ``QueryImage`` row owned by the user:
the original bytes are never written anywhere. Unsaved rows are purged by the sweep after
``QUERY_IMAGE_HOURS``.

Where the vector is computed is a setting, because loading DINOv2 costs memory and
seconds per process (``QUERY_EMBEDDING``):

- ``"worker"`` (default): the web process decodes and preprocesses the image to the
  model's 224x224 input, queues a django-q task on ``QUERY_CLUSTER`` (default: the
  embedding cluster) that runs it through the worker's already-loaded model, and polls
  the row for the vector for up to ``QUERY_TIMEOUT`` seconds. Web workers never load the
  model; a query waits behind embedding batches already queued on that cluster, which a
  dedicated query cluster (django-q2 ``ALT_CLUSTERS``) avoids.
- ``"web"``: the web process embeds it itself with its process-wide model, loaded on
  first use (one copy per web worker process).

The vector always comes from the project's serving model: while a project is being
re-embedded with another model, an outside image is refused with that reason rather
than compared across models.
"""

from __future__ import annotations

import io
import logging
import os
import re
import threading
import time
import unicodedata
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import IO, Any

import numpy as np
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.utils import timezone
from django.utils.module_loading import import_string
from PIL import Image

from similarity.conf import similarity_settings
from similarity.errors import NotFound, SimilarityError
from similarity.host.files import image_file
from similarity.host.links import asset_label
from similarity.host.lookups import check_project
from similarity.host.models import asset_pk
from similarity.host.scopes import project_id_of
from similarity.models import QueryImage, SavedSearch
from similarity.search.query import selection_vector, serving_key
from similarity.search.ranking import rank
from similarity.search.region import Region, check_size, draft_size, header_size
from similarity.search.region import crop as region_crop
from similarity.search.results import SearchError, SearchResult
from similarity.vectors.embedder import get_embedder
from similarity.vectors.images import ORIGINAL_SIZE, ImageDecodeError, open_image, to_rgb
from similarity.vectors.math import unit
from similarity.vectors.model_keys import ModelLoadError, current_model_key
from similarity.vectors.preprocess import DRAFT_SIZE, model_crop, pixels_from_crop

logger = logging.getLogger(__name__)

EMBED_QUERY_TASK = "similarity.tasks.embed_query_image"
PREVIEW_SIZE = (256, 256)
MODES = ("worker", "web")
#: How often the web process looks for the worker's answer (seconds).
POLL_INTERVAL = 0.03

# ISO-BMFF brands of still images (HEIC, AVIF): an ftyp box, but not a video.
_IMAGE_BRANDS = {b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"mif1", b"msf1",
                 b"avif", b"avis", b"jxl "}


class QueryImageError(SimilarityError, ValueError):
    """An outside image that cannot be searched with; ``str()`` names the file and why."""

    code = "bad_image"

    def __init__(self, filename: str, reason: str) -> None:
        super().__init__(f"{filename}: {reason}")
        self.filename = filename
        self.reason = reason


class QueryUnavailable(QueryImageError):
    """The file is fine but it cannot be embedded now (worker silent, model changing)."""

    code = "unavailable"
    http_status = 503


class QueryBusy(QueryUnavailable):
    """Every decoding slot of this process is taken: come back in ``retry_after`` s."""

    code = "busy"
    retry_after = 5

    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after)}


_slots_lock = threading.Lock()
_slots: dict[int, threading.BoundedSemaphore] = {}


@contextmanager
def decoding_slot(name: str) -> Iterator[None]:
    """One of QUERY_IMAGE_CONCURRENCY slots for decoding and embedding an outside image.

    Each holds up to QUERY_IMAGE_MAX_PIXELS of RGB (~100 MB) and a core; without a bound,
    a burst of uploads holds as many as there are threads. A busy process answers at once
    (503, Retry-After) rather than queueing requests behind each other.
    """
    size = max(1, int(similarity_settings.QUERY_IMAGE_CONCURRENCY))
    with _slots_lock:
        slots = _slots.setdefault(size, threading.BoundedSemaphore(size))
    if not slots.acquire(blocking=False):
        raise QueryBusy(name, "the server is busy with other image searches; try again in a "
                              "few seconds")
    try:
        yield
    finally:
        slots.release()


@dataclass
class Checked:
    """A decoded, checked outside image: what the query row and the model need."""

    name: str
    rgb: Image.Image | None  # dropped once the crop and preview are made
    width: int
    height: int


# --- checks ---------------------------------------------------------------------------


def clean_name(name: str) -> str:
    """A display name: no directories, no control characters, bounded length."""
    name = unicodedata.normalize("NFC", name or "").replace("\\", "/")
    name = re.sub(r"[\x00-\x1f\x7f]", "", os.path.basename(name)).strip()
    return name[:255] or "pasted image"


def max_bytes() -> int:
    return int(float(similarity_settings.QUERY_IMAGE_MAX_MB) * 2**20)


def _video_kind(head: bytes) -> str | None:
    """MP4, MOV and WebM by their container signatures (as the demo's uploads sniff)."""
    if len(head) >= 12 and head[4:8] == b"ftyp":
        if head[8:12] in _IMAGE_BRANDS:
            return None  # left to the image check
        return "QuickTime" if head[8:12] == b"qt  " else "MP4"
    if len(head) >= 8 and head[4:8] in (b"moov", b"mdat", b"wide", b"free"):
        return "QuickTime"
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        return "WebM/Matroska"
    if head.startswith(b"RIFF") and head[8:12] == b"AVI ":
        return "AVI"
    return None


def _upload_size(upload: Any) -> int:
    size = getattr(upload, "size", None)
    if size is None:
        upload.seek(0, os.SEEK_END)
        size = upload.tell()
        upload.seek(0)
    return int(size)


def check_image(upload: IO[bytes] | Any, name: str | None = None, *,
                region: Region | None = None) -> Checked:
    """Decode an outside image with the site's upload checks; QueryImageError says why not.

    Decoding stops at the first frame, JPEGs are DCT-scaled to no less than the model's
    256 px (as the worker does for stored images; for a ``region``, to no less than 256 px
    across the region), and the original size is read from the header with EXIF
    orientation applied. A region with a side under ``region.MIN_SIDE`` pixels is refused.
    """
    name = clean_name(name if name is not None else getattr(upload, "name", ""))
    size = _upload_size(upload)
    if size == 0:
        raise QueryImageError(name, "the file is empty")
    if size > max_bytes():
        raise QueryImageError(
            name, f"the image is larger than {similarity_settings.QUERY_IMAGE_MAX_MB} MB"
        )
    upload.seek(0)
    video = _video_kind(upload.read(64))
    upload.seek(0)
    if video:
        raise QueryImageError(
            name, f"{video} is a video; search with a still image (for example a frame of it)"
        )
    return decode(upload, name, region=region)


def decode(fp: IO[bytes], name: str, *, region: Region | None = None) -> Checked:
    """The decoding half of ``check_image`` (a stored asset's file skips the upload's size
    and video checks, which it passed when it was uploaded)."""
    draft = DRAFT_SIZE
    if region is not None:
        header = header_size(fp)
        if header is not None:
            draft = draft_size(region, *header)
    try:
        image = open_image(fp, draft=draft,
                           max_aspect_ratio=similarity_settings.MAX_ASPECT_RATIO,
                           max_full_pixels=similarity_settings.QUERY_IMAGE_MAX_PIXELS)
        width, height = _original_size(image)
        if region is not None:
            check_size(region, width, height, name)
        rgb = to_rgb(image)
    except ImageDecodeError as exc:
        raise QueryImageError(name, str(exc)) from exc
    finally:
        fp.seek(0)
    return Checked(name=name, rgb=rgb, width=width, height=height)


def _original_size(image: Image.Image) -> tuple[int, int]:
    """Width and height as a person sees them (the header's, EXIF rotation applied),
    read from the decoded image: opening the file again would decode a PNG twice."""
    width, height = image.info.get(ORIGINAL_SIZE, image.size)
    try:
        orientation = image.getexif().get(0x0112, 1)
    except Exception:  # a broken EXIF block is no reason to refuse the pixels
        orientation = 1
    return (height, width) if orientation in (5, 6, 7, 8) else (width, height)


def make_preview(rgb: Image.Image) -> bytes:
    """A JPEG whose longest side is at most 256 px: what the results page shows.

    Resized straight from the decoded image (no full-size copy first)."""
    scale = min(1.0, PREVIEW_SIZE[0] / rgb.width, PREVIEW_SIZE[1] / rgb.height)
    size = (max(1, round(rgb.width * scale)), max(1, round(rgb.height * scale)))
    preview = rgb if size == rgb.size else rgb.resize(size, Image.Resampling.LANCZOS,
                                                       reducing_gap=3.0)
    out = io.BytesIO()
    preview.save(out, "JPEG", quality=85, optimize=True)
    return out.getvalue()


# --- making the query -----------------------------------------------------------------


def _model_changing(name: str, serving: str, current: str) -> QueryUnavailable:
    return QueryUnavailable(
        name,
        f"this project is being re-embedded with another model ({current}; it is searched "
        f"with {serving} until that finishes), so an outside image cannot be compared with "
        "it now; try again when the project is ready",
    )


def create_query(user: Any, project_id: str, upload: Any, *,
                 region: Region | None = None) -> QueryImage:
    """Check, embed and keep (vector + preview only) an outside image for ``user``; with a
    ``region``, only that part of it is embedded (the preview still shows all of it).

    Raises NotFound when the user may not see the project, QueryImageError for a file
    that is refused (400), RegionError for a region too small (400) and QueryUnavailable
    when it cannot be embedded now (503).
    """
    project_id = str(project_id)
    check_project(user, project_id)
    with decoding_slot(clean_name(getattr(upload, "name", ""))):
        checked = check_image(upload, region=region)
        query, crop = _prepare(user, project_id, checked, region=region)
    return _finish(query, crop)


def create_region_query(user: Any, asset: Any, region: Region) -> QueryImage:
    """A query of a region of one of the project's own images (the caller checked that the
    user sees ``asset``). Embedded like an outside image of the crop; nothing of the
    asset is written but the query's preview and vector."""
    project_id = str(project_id_of(asset))
    name = clean_name(asset_label(asset))
    file = image_file(asset)
    if not file:
        raise QueryImageError(name, "the image has no file")
    with decoding_slot(name):
        try:
            handle = file.open("rb")
        except (OSError, ValueError) as exc:
            raise QueryImageError(name, "the image file cannot be read "
                                        f"({type(exc).__name__})") from exc
        try:
            checked = decode(handle, name, region=region)
        finally:
            handle.close()
        query, crop = _prepare(user, project_id, checked, region=region,
                               source_asset_id=str(asset.pk))
    return _finish(query, crop)


def _prepare(user: Any, project_id: str, checked: Checked, *, region: Region | None,
             source_asset_id: str = "") -> tuple[QueryImage, bytes | None]:
    """The query row of a checked image (or its region) for the project's serving model:
    embedded and saved in web mode (within the caller's decoding slot), or unsaved with
    the model's input for the worker (``_finish`` queues it outside the slot)."""
    model_key, current = serving_key(project_id), current_model_key()
    if current != model_key:
        raise _model_changing(checked.name, model_key, current)
    mode = similarity_settings.QUERY_EMBEDDING
    if mode not in MODES:
        raise QueryUnavailable(checked.name, f"SIMILARITY['QUERY_EMBEDDING'] must be one "
                                             f"of {', '.join(MODES)}, not {mode!r}")
    crop = model_crop(region_crop(checked.rgb, region) if region else checked.rgb)
    query = QueryImage(
        project_id=project_id, user=user, name=checked.name, model_key=model_key,
        preview=make_preview(checked.rgb), width=checked.width, height=checked.height,
        region=region.as_list() if region else None, source_asset_id=source_asset_id,
    )
    checked.rgb = None  # the decoded pixels are not needed past this point
    if mode == "web":
        query.vector = _embed_here(checked.name, model_key, crop)
        query.save()
        return query, None
    return query, crop


def _finish(query: QueryImage, crop: bytes | None) -> QueryImage:
    """A web-embedded query as it is; else queue the crop and wait for the worker."""
    if crop is None:
        return query
    query.save()
    try:
        _queue(query, crop)
    except Exception as exc:  # the broker is down: nothing half-written stays
        query.delete()
        logger.exception("Could not queue the query image %s", query.pk)
        raise QueryUnavailable(query.name, f"the background worker's queue is unavailable "
                                             f"({type(exc).__name__}); try again shortly") from exc
    return _wait_for_vector(query)


def _embed_here(name: str, model_key: str, crop: bytes) -> np.ndarray:
    try:
        embedder = get_embedder()
    except ModelLoadError as exc:
        raise QueryUnavailable(name, f"the image model could not be loaded: {exc}") from exc
    if embedder.model_key != model_key:
        raise _model_changing(name, model_key, embedder.model_key)
    return embedder.embed(pixels_from_crop(crop))[0]


def queue_query_task(task: str, *args: Any, name: str) -> None:
    """Queue a task a web process waits for (an outside image's vector, a match map) on
    ``QUERY_CLUSTER``, else the embedding cluster."""
    from django_q.tasks import async_task

    cluster = similarity_settings.QUERY_CLUSTER or similarity_settings.QUEUE_CLUSTER
    options: dict[str, Any] = {"task_name": name}
    if cluster:
        options["cluster"] = cluster
    async_task(task, *args, q_options=options)


def _queue(query: QueryImage, crop: bytes) -> None:
    queue_query_task(EMBED_QUERY_TASK, str(query.pk), crop, name=f"embed query image {query.pk}")


def _wait_for_vector(query: QueryImage) -> QueryImage:
    query.vector = wait_for_answer(QueryImage.objects.filter(pk=query.pk), query.name)
    return query


def wait_for_answer(rows: QuerySet, name: str, *, interval: float = POLL_INTERVAL) -> Any:
    """Poll a queued query's row until the worker wrote its vector (or why not).

    Shared by outside images and descriptions: on an error or after ``QUERY_TIMEOUT`` the
    row is deleted, so a late answer is dropped instead of half-kept.
    """
    timeout = float(similarity_settings.QUERY_TIMEOUT)
    deadline = time.monotonic() + timeout
    while True:
        found = rows.values_list("vector", "error").first()
        if found is None:
            break
        vector, error = found
        if vector is not None:
            return vector
        if error:
            rows.delete()
            raise QueryUnavailable(name, error)
        if time.monotonic() >= deadline:
            break
        time.sleep(interval)
    rows.delete()
    raise QueryUnavailable(
        name,
        f"the background worker did not answer within {timeout:g} s; is qcluster running?",
    )


def embed_queued(query_id: str, crop: bytes) -> bool:
    """The worker's half: embed a queued query with the loaded model and write the vector
    (or the reason it cannot). False when the row is gone (the web gave up waiting)."""
    query = QueryImage.objects.filter(pk=query_id, vector__isnull=True).first()
    if query is None:
        return False
    update: dict[str, Any]
    try:
        embedder = get_embedder()
        if embedder.model_key != query.model_key:
            raise _model_changing(query.name, query.model_key, embedder.model_key)
        vector = embedder.embed(pixels_from_crop(crop))[0]
        update = {"vector": vector.astype(np.float32).tolist()}
    except ModelLoadError as exc:
        update = {"error": f"the worker could not load the image model: {exc}"}
    except QueryUnavailable as exc:
        update = {"error": exc.reason}
    return bool(QueryImage.objects.filter(pk=query_id, vector__isnull=True).update(**update))


# --- using it -------------------------------------------------------------------------


def get_query_for(user: Any, query_id: Any) -> QueryImage:
    """The user's own query image of a project they still see; NotFound otherwise."""
    try:
        query = QueryImage.objects.filter(pk=query_id, user=user, vector__isnull=False).first() \
            if getattr(user, "is_authenticated", False) else None
    except (ValueError, ValidationError):  # not even a UUID
        query = None
    if query is None:
        raise NotFound()
    check_project(user, query.project_id)
    return query


def unit_vector(query: QueryImage) -> np.ndarray:
    return unit(query.vector)


def check_current(query: QueryImage) -> None:
    """Refuse a query embedded by a model the project is no longer searched with."""
    serving = serving_key(query.project_id)
    if query.model_key != serving:
        raise SearchError(
            f"“{query.name}” was embedded with {query.model_key}, but this project is now "
            f"searched with {serving}; search with the image again."
        )


def search(
    query: QueryImage,
    *,
    positives: list[Any] = (),
    negatives: list[Any] = (),
    order: str = "most",
    limit: int = 100,
    user: Any = None,
    within: QuerySet | None = None,
) -> SearchResult:
    """Rank the query's project against the image and, optionally, asset examples.

    Alone, the image's unit vector is the query. With examples it counts as one more
    positive: ``normalise(mean(p + [image]) - NEGATIVE_WEIGHT * mean(n))``, the formula
    of ``find_similar_to_selection`` (``search.query.selection_vector``). The examples are never
    ranked, nor is the image a region was drawn on. All assets must be of the query's
    project (callers check access first).
    """
    check_current(query)  # first: its message says what to do
    positives, negatives = list(positives), list(negatives)
    vector, project_id, state, model_key = selection_vector(
        positives, negatives, image=unit_vector(query), project_id=query.project_id)
    exclude = [a.pk for a in positives + negatives]
    if query.source_asset_id:  # a region's own image is not one of its results
        exclude.append(asset_pk(query.source_asset_id))
    result = rank(project_id, vector, order=order, limit=limit, exclude=exclude, within=within,
                  user=user, state=state, model_key=model_key)
    result.query = query
    result.queries = positives
    result.negatives = negatives
    return result


def add_hook() -> Any:
    """The host's "Add to dataset" hook (``ADD_QUERY_IMAGE``), or None when unset."""
    hook = similarity_settings.ADD_QUERY_IMAGE
    if not hook:
        return None
    return (import_string(hook) if isinstance(hook, str) else hook)()


# --- housekeeping ---------------------------------------------------------------------


def purge_expired(now: Any = None) -> int:
    """Delete query images older than ``QUERY_IMAGE_HOURS`` that no saved search uses."""
    now = now or timezone.now()
    cutoff = now - timedelta(hours=float(similarity_settings.QUERY_IMAGE_HOURS))
    kept = SavedSearch.objects.filter(query_image__isnull=False).values("query_image")
    _total, per_model = QueryImage.objects.filter(created__lt=cutoff).exclude(pk__in=kept).delete()
    return per_model.get(QueryImage._meta.label, 0)
