"""Where does a result match its query? Computed on demand, kept per pair, side and model.

``prepare`` checks what the user asked for (both images visible, one project, the
project's serving model loaded) and names the map; ``compute`` answers it from the kept
maps or computes it, where outside-image queries are embedded (``QUERY_EMBEDDING``):

- ``"worker"`` (default): the web process writes a pending ``MatchMap`` row, queues a
  django-q task on the query cluster, and polls the row for up to ``QUERY_TIMEOUT``; the
  worker reads both files with its loaded model. Web processes never load the model.
- ``"web"``: the web process computes it itself, within one of its decoding slots.

A map on the **result** scores the query's vector (its stored one; for a region, the
region's) against each patch of the result, seen whole. A map on the **query** does the
reverse: the result's vector against each patch of the query image (for an outside
image, its kept 256 px preview: the original was never stored). One forward of the model
per map, at the precision of the stored vectors.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
from django.core.exceptions import ValidationError

from similarity.conf import similarity_settings
from similarity.errors import NotFound, SimilarityError
from similarity.host.files import file_name, image_file
from similarity.host.links import asset_label
from similarity.host.lookups import get_asset_for
from similarity.host.models import asset_pk, asset_queryset, is_image
from similarity.host.scopes import project_id_of
from similarity.match.grid import Peak, describe, peak
from similarity.match.grid import score as score_grid
from similarity.match.picture import render_png
from similarity.models import Embedding, MatchMap, QueryImage
from similarity.search.outside import (
    MODES,
    POLL_INTERVAL,
    QueryImageError,
    decode,
    decoding_slot,
    get_query_for,
    queue_query_task,
)
from similarity.search.query import serving_key
from similarity.search.region import Region, check_size, header_size
from similarity.search.region import crop as region_crop
from similarity.search.results import NotAnImage, SearchError
from similarity.vectors.embedder import Dinov2Embedder, get_embedder
from similarity.vectors.images import load_rgb
from similarity.vectors.math import unit
from similarity.vectors.model_keys import ModelLoadError, current_model_key
from similarity.vectors.preprocess import full_view, preprocess

logger = logging.getLogger(__name__)

COMPUTE_TASK = "similarity.tasks.compute_match"
SIDES = ("result", "query")
#: A worker's error that means "not now" (503), not "not this" (400).
_UNAVAILABLE = "unavailable: "


class MatchError(SimilarityError):
    """A match map that cannot be made for these images; says why."""

    code = "bad_match"


class MatchUnavailable(MatchError):
    """The images are fine but the map cannot be computed now (model, worker)."""

    code = "unavailable"
    http_status = 503


@dataclass(frozen=True)
class MatchRequest:
    """What one map is of, checked for the user who asked (``prepare``)."""

    project_id: str
    model_key: str
    query_kind: str
    query_id: str
    query_label: str
    result_id: str
    result_label: str
    region: Region | None
    side: str
    key: str


@dataclass
class MatchAnswer:
    request: MatchRequest
    grid: np.ndarray
    width: int
    height: int

    @property
    def peak(self) -> Peak:
        return peak(self.grid)

    @property
    def description(self) -> str:
        return describe(self.grid)

    def as_dict(self) -> dict[str, Any]:
        """The map as every door answers it (values rounded to 4 decimals, rows top
        first, columns left first; ``peak.x``/``peak.y`` in fractions of the image)."""
        request, top = self.request, self.peak
        return {
            "query": {"kind": request.query_kind, "id": request.query_id,
                      "label": request.query_label,
                      "region": request.region.as_list() if request.region else None},
            "result": {"id": request.result_id, "label": request.result_label},
            "side": request.side,
            "model": request.model_key,
            "image": {"width": self.width, "height": self.height},
            "grid": {"rows": int(self.grid.shape[0]), "columns": int(self.grid.shape[1])},
            "values": np.round(self.grid, 4).tolist(),
            "min": round(float(self.grid.min()), 4),
            "max": round(float(self.grid.max()), 4),
            "peak": {"row": top.row, "column": top.column, "x": round(top.x, 4),
                     "y": round(top.y, 4), "similarity": round(top.value, 4)},
            "description": self.description,
        }

    def png(self) -> bytes:
        """The overlay PNG (``match.picture``), the image's own proportions."""
        return render_png(self.grid, self.width, self.height)


def _key(*parts: Any) -> str:
    return hashlib.sha256(json.dumps(parts, default=str).encode()).hexdigest()


def prepare(user: Any, result_id: Any, *, query_asset: Any = None, query_image: Any = None,
            region: Region | None = None, side: str = "result") -> MatchRequest:
    """Check and name a map of ``result_id`` against an asset (optionally a region of it)
    or against one of the user's query images (its own region, if it has one).

    NotFound when either image is not the user's to see; MatchError (400) for images of
    two projects, a bad side or a region of a query image; RegionError for a region too
    small; MatchUnavailable (503) while the project changes models.
    """
    if side not in SIDES:
        raise MatchError(f"side must be one of {', '.join(SIDES)}, not “{str(side)[:20]}”.")
    if query_image is not None:
        image = get_query_for(user, query_image)
        if region is not None:
            raise MatchError("A query image is searched with as it was sent (with its own "
                             "region, if it has one); a region cannot be added here.")
        project_id, kind, query_id = str(image.project_id), MatchMap.QueryKind.IMAGE, str(image.pk)
        label, query_source = image.name, image.source_asset_id
        if side == "query" and image.source_asset_id and _exists(image.source_asset_id):
            get_asset_for(user, image.source_asset_id)  # its pixels: only if still visible
        region = Region(*image.region) if image.region else None
        if image.model_key != serving_key(project_id):
            raise SearchError(f"“{image.name}” was embedded with {image.model_key}, but this "
                              "project is now searched with another model; search again.")
    elif query_asset is not None:
        asset = get_asset_for(user, query_asset)
        if not is_image(asset):
            raise NotAnImage("Similarity search is currently only supported for images.")
        project_id, kind, query_id = project_id_of(asset), MatchMap.QueryKind.ASSET, str(asset.pk)
        label, query_source = asset_label(asset), file_name(asset)
        if region is not None:
            _check_region_fits(asset, region, label)
    else:
        raise MatchError("Name the query: an image of the project, or a query image.")
    result = get_asset_for(user, result_id)
    if project_id_of(result) != project_id:
        raise MatchError("The two images are not in the same project, so they were never "
                         "compared.")
    if not is_image(result):
        raise NotAnImage("Similarity search is currently only supported for images.")
    model_key = serving_key(project_id)
    if current_model_key() != model_key:
        raise MatchUnavailable(f"This project is being re-embedded with another model (it is "
                               f"searched with {model_key} until that finishes); a match map "
                               "would compare across models. Try again when it is ready.")
    return MatchRequest(
        project_id=project_id, model_key=model_key, query_kind=str(kind), query_id=query_id,
        query_label=label, result_id=str(result.pk), result_label=asset_label(result),
        region=region, side=side,
        key=_key(model_key, str(kind), query_id, query_source, str(result.pk), file_name(result),
                 region.as_list() if region else None, side),
    )


def _check_region_fits(asset: Any, region: Region, label: str) -> None:
    """A region too small for the asset's original is refused now, not by the worker."""
    file = image_file(asset)
    if not file:
        raise MatchError(f"{label}: the image has no file.")
    try:
        with file.open("rb") as handle:
            header = header_size(handle)
    except (OSError, ValueError):
        header = None
    if header is not None:
        (width, height), rotated = header
        check_size(region, *((height, width) if rotated else (width, height)), label)


# --- answering ------------------------------------------------------------------------


def compute(request: MatchRequest) -> MatchAnswer:
    """The map of a prepared request: kept, computed here, or computed by the worker."""
    kept = MatchMap.objects.filter(key=request.key, rows__isnull=False).first()
    if kept is not None:
        return _answer(request, kept)
    mode = similarity_settings.QUERY_EMBEDDING
    if mode not in MODES:
        raise MatchUnavailable(f"SIMILARITY['QUERY_EMBEDDING'] must be one of "
                               f"{', '.join(MODES)}, not {mode!r}")
    if mode == "web":
        with decoding_slot(request.result_label):  # busy: QueryBusy, a 503 with Retry-After
            grid, width, height = _compute_here(request)
        row = _store(request, grid, width, height)
        return _answer(request, row)
    return _compute_in_worker(request)


def _fields(request: MatchRequest) -> dict[str, Any]:
    return {"project_id": request.project_id, "model_key": request.model_key,
            "query_kind": request.query_kind, "query_id": request.query_id,
            "result_id": request.result_id, "side": request.side,
            "region": request.region.as_list() if request.region else None}


def _store(request: MatchRequest, grid: np.ndarray, width: int, height: int) -> MatchMap:
    values = {"rows": grid.shape[0], "columns": grid.shape[1], "width": width, "height": height,
              "values": grid.astype(np.float16).tobytes(), "error": ""}
    row, _created = MatchMap.objects.update_or_create(
        key=request.key, defaults=values, create_defaults=_fields(request) | values)
    return row


def _answer(request: MatchRequest, row: MatchMap) -> MatchAnswer:
    grid = np.frombuffer(bytes(row.values), dtype=np.float16).astype(np.float32)
    return MatchAnswer(request=request, grid=grid.reshape(row.rows, row.columns),
                       width=int(row.width or row.columns), height=int(row.height or row.rows))


def _compute_in_worker(request: MatchRequest) -> MatchAnswer:
    row, created = MatchMap.objects.get_or_create(key=request.key, defaults=_fields(request))
    if created:
        try:
            queue_query_task(COMPUTE_TASK, row.pk, name=f"match map {row.pk}")
        except Exception as exc:  # the broker is down: nothing half-written stays
            row.delete()
            logger.exception("Could not queue the match map %s", row.pk)
            raise MatchUnavailable(f"the background worker's queue is unavailable "
                                   f"({type(exc).__name__}); try again shortly") from exc
    timeout = float(similarity_settings.QUERY_TIMEOUT)
    deadline = time.monotonic() + timeout
    rows = MatchMap.objects.filter(pk=row.pk)
    while True:
        found = rows.first()
        if found is None:
            break
        if found.error:
            rows.delete()
            if found.error.startswith(_UNAVAILABLE):
                raise MatchUnavailable(found.error[len(_UNAVAILABLE):])
            raise MatchError(found.error)
        if found.rows is not None:
            return _answer(request, found)
        if time.monotonic() >= deadline:
            break
        time.sleep(POLL_INTERVAL)
    rows.delete()
    raise MatchUnavailable(f"the background worker did not answer within {timeout:g} s; "
                           "is qcluster running?")


def compute_queued(map_id: int) -> bool:
    """The worker's half: compute a pending map and write it (or why not). False when the
    row is gone (the web process gave up waiting) or already done."""
    row = MatchMap.objects.filter(pk=map_id, rows__isnull=True, error="").first()
    if row is None:
        return False
    request = MatchRequest(
        project_id=row.project_id, model_key=row.model_key, query_kind=row.query_kind,
        query_id=row.query_id, query_label=row.query_id, result_id=row.result_id,
        result_label=row.result_id, region=Region(*row.region) if row.region else None,
        side=row.side, key=row.key)
    update: dict[str, Any]
    try:
        grid, width, height = _compute_here(request)
        update = {"rows": grid.shape[0], "columns": grid.shape[1], "width": width,
                  "height": height, "values": grid.astype(np.float16).tobytes()}
    except MatchUnavailable as exc:
        update = {"error": _UNAVAILABLE + str(exc)}
    except (MatchError, NotFound, QueryImageError, SearchError) as exc:
        update = {"error": str(exc) or "one of the images is gone"}
    return bool(MatchMap.objects.filter(pk=map_id, rows__isnull=True).update(**update))


# --- the maths on real pixels ---------------------------------------------------------


def _compute_here(request: MatchRequest) -> tuple[np.ndarray, int, int]:
    """(grid, width, height) with this process's model."""
    try:
        embedder = get_embedder()
    except ModelLoadError as exc:
        raise MatchUnavailable(f"the image model could not be loaded: {exc}") from exc
    if embedder.model_key != request.model_key:
        raise MatchUnavailable(f"this process runs {embedder.model_key}, but the project is "
                               f"searched with {request.model_key}")
    if request.side == "result":
        vector = _query_vector(embedder, request)
        rgb, width, height = _asset_picture(request.result_id)
    else:
        vector = _asset_vector(embedder, request.result_id, request.model_key)
        rgb, width, height = _query_picture(request)
    patch = int(getattr(embedder.model.config, "patch_size", 14))
    tokens = embedder.patch_tokens(full_view(rgb, patch))
    return score_grid(vector, tokens), width, height


def _exists(asset_id: str) -> bool:
    try:
        return asset_queryset().filter(pk=asset_pk(asset_id)).exists()
    except (ValueError, TypeError, ValidationError):
        return False


def _asset(asset_id: str) -> Any:
    asset = asset_queryset().filter(pk=asset_pk(asset_id)).first()
    if asset is None:
        raise NotFound("The image is gone.")
    return asset


def _open_asset(asset: Any) -> Any:
    file = image_file(asset)
    if not file:
        raise MatchError(f"{asset_label(asset)}: the image has no file.")
    try:
        return file.open("rb")
    except (OSError, ValueError) as exc:
        raise MatchError(f"{asset_label(asset)}: the image file cannot be read "
                         f"({type(exc).__name__}).") from exc


def _asset_picture(asset_id: str, region: Region | None = None) -> tuple[Any, int, int]:
    """The asset's decoded picture (or region of it) and its original size."""
    asset = _asset(asset_id)
    with _open_asset(asset) as handle:
        checked = decode(handle, asset_label(asset), region=region)
    rgb = region_crop(checked.rgb, region) if region is not None else checked.rgb
    return rgb, checked.width, checked.height


def _query_picture(request: MatchRequest) -> tuple[Any, int, int]:
    if request.query_kind == MatchMap.QueryKind.ASSET:
        return _asset_picture(request.query_id)
    image = QueryImage.objects.filter(pk=request.query_id).first()
    if image is None:
        raise NotFound("The query image has expired; search with it again.")
    if image.source_asset_id:
        try:
            return _asset_picture(image.source_asset_id)
        except NotFound:
            pass  # the asset went since: its preview still shows what was searched
    import io

    rgb = load_rgb(io.BytesIO(bytes(image.preview)))
    return rgb, int(image.width or rgb.width), int(image.height or rgb.height)


def _asset_vector(embedder: Dinov2Embedder, asset_id: str, model_key: str) -> np.ndarray:
    """The vector the search ranked the asset with; a forward if it has none yet."""
    stored = Embedding.objects.filter(asset_id=asset_pk(asset_id), model_key=model_key,
                                      status=Embedding.Status.DONE).values_list("vector", flat=True)
    vector = next(iter(stored), None)
    if vector is not None:
        return unit(vector)
    rgb, _width, _height = _asset_picture(asset_id)
    return embedder.embed(preprocess(rgb)[None])[0]


def _query_vector(embedder: Dinov2Embedder, request: MatchRequest) -> np.ndarray:
    if request.query_kind == MatchMap.QueryKind.IMAGE:
        vector = QueryImage.objects.filter(pk=request.query_id).values_list("vector", flat=True)
        found = next(iter(vector), None)
        if found is None:
            raise NotFound("The query image has expired; search with it again.")
        return unit(found)
    if request.region is None:
        return _asset_vector(embedder, request.query_id, request.model_key)
    rgb, _width, _height = _asset_picture(request.query_id, request.region)
    return embedder.embed(preprocess(rgb)[None])[0]
