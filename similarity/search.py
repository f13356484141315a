"""The one similarity search that pages, the API, the admin and commands all call.

Most similar: cosine distance ascending within the query asset's project. Three paths:

- exact, in NumPy over the project's cached vectors (``similarity.exact``): small
  scopes, and every least-similar search;
- the project's own HNSW index (``similarity.indexing``), with ``hnsw.ef_search`` raised
  for the request: most-similar in projects above ``EXACT_SEARCH_MAX_ROWS``;
- exact, in SQL: a scope narrowed with ``within``, or one too big for the cache.

Every search returns exactly ``min(limit, embedded images in scope)`` rows: if an index
scan comes back short, the exact path answers instead. Least similar is always exact:
index scans only run ascending, and "nearest to -q" through HNSW measured recall
0.12-0.47.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from django.db import connection, transaction
from django.db.models import QuerySet
from django.db.models.functions import Cast
from django.utils.translation import gettext as _
from pgvector.django import CosineDistance, HalfVectorField

from similarity import exact as exact_engine
from similarity import registry
from similarity.conf import similarity_settings
from similarity.embedders import current_model_key
from similarity.models import Embedding, ProjectReadiness

ORDERS = ("most", "least")


class SearchError(ValueError):
    """A search that cannot be answered; ``str()`` is the message for the user."""

    code = "invalid"


class NotAnImage(SearchError):
    code = "not_an_image"


class NotEmbedded(SearchError):
    code = "not_embedded"


@dataclass
class Match:
    asset: Any
    similarity: float
    distance: float


@dataclass
class SearchResult:
    query: Any
    order: str
    limit: int
    matches: list[Match]
    exact: bool
    model_key: str
    project_id: int
    scope_size: int
    readiness: ProjectReadiness | None = None

    @property
    def ready(self) -> bool:
        return self.readiness is not None and self.readiness.state == ProjectReadiness.State.READY


def validate(order: str, limit: Any) -> tuple[str, int]:
    """Check ``order`` and ``limit`` as a user sent them; raise SearchError with why."""
    if order not in ORDERS:
        raise SearchError(_("order must be 'most' or 'least'."))
    maximum = int(similarity_settings.MAX_RESULTS)
    try:
        limit = int(limit)
    except (TypeError, ValueError) as exc:
        raise SearchError(_("limit must be a whole number from 1 to %d.") % maximum) from exc
    if not 1 <= limit <= maximum:
        raise SearchError(_("limit must be a whole number from 1 to %d.") % maximum)
    return order, limit


def query_embedding(row: Embedding | None) -> Embedding:
    """The query asset's row for the serving model, or NotEmbedded saying why not."""
    if row is not None and row.status == Embedding.Status.DONE and row.vector is not None:
        return row
    if row is not None and row.status == Embedding.Status.FAILED:
        raise NotEmbedded(
            _("This image could not be embedded, so it cannot be searched: %(reason)s")
            % {"reason": row.error or _("unknown error")}
        )
    raise NotEmbedded(
        _("This image has not been embedded yet. It will be searchable in a moment.")
    )


def find_similar(
    asset: Any,
    *,
    order: str = "most",
    limit: int = 100,
    within: QuerySet | None = None,
) -> SearchResult:
    """Up to ``limit`` image assets of the asset's project ordered by cosine similarity.

    ``within`` narrows the scope to a queryset of host assets (e.g. one dataset).
    """
    order, limit = validate(order, limit)
    if not registry.is_image(asset):
        raise NotAnImage(_("Similarity search is currently only supported for images."))
    own_rows = {row.model_key: row for row in Embedding.objects.filter(asset_id=asset.pk)}
    project_id = (
        next(iter(own_rows.values())).project_id if own_rows else registry.project_id_of(asset)
    )
    state = ProjectReadiness.objects.filter(project_id=project_id).first()
    model_key = (state.active_model_key if state else "") or current_model_key()
    query = query_embedding(own_rows.get(model_key))
    scope = Embedding.objects.filter(
        project_id=project_id, model_key=model_key, status=Embedding.Status.DONE
    )
    known_size = state.embedded if state and state.model_key == model_key else None

    rows: list[tuple[Any, float]] | None = None
    exact, scope_size = True, None
    if within is not None:
        scope = scope.filter(asset_id__in=within.values("pk"))
        rows, scope_size = _sql_scan(scope, query, order, limit), scope.count()
    elif (
        order == "most"
        and state is not None
        and state.indexed_model_key == model_key
        and (known_size or 0) > similarity_settings.EXACT_SEARCH_MAX_ROWS
    ):
        rows = _index_scan(scope, query, limit)
        scope_size = known_size if len(rows) == limit else scope.count()
        if len(rows) < min(limit, scope_size):
            rows = None  # the graph came back short: answer exactly instead
        exact = rows is None
    if rows is None:
        size = known_size if known_size is not None else scope.count()
        if exact_engine.fits(size, query.dims):
            version = (state.updated, state.embedded) if state else object()
            matrix = exact_engine.get_matrix(project_id, model_key, query.dims, version)
            rows = exact_engine.top_k(matrix, _as_array(query.vector), limit,
                                      least=order == "least")
            scope_size = len(matrix.ids)
        else:
            rows, scope_size = _sql_scan(scope, query, order, limit), size
    if order == "most":
        rows = _query_first(rows, asset.pk, limit)

    assets = registry.asset_queryset().in_bulk([pk for pk, _ in rows])
    matches = [
        Match(asset=assets[pk], similarity=1.0 - float(dist), distance=float(dist))
        for pk, dist in rows
        if pk in assets
    ]
    return SearchResult(
        query=asset,
        order=order,
        limit=limit,
        matches=matches,
        exact=exact,
        model_key=model_key,
        project_id=project_id,
        scope_size=scope_size,
        readiness=state,
    )


def _as_array(vector: Any) -> np.ndarray:
    return np.asarray(vector.to_list() if hasattr(vector, "to_list") else vector, dtype=np.float32)


def _sql_scan(scope: QuerySet, query: Embedding, order: str, limit: int):
    """Exact scan in PostgreSQL. The distance is on the uncast column, so the planner can
    never answer it with a (cast) HNSW index and filter rows away afterwards."""
    distance = CosineDistance("vector", query.vector)
    ordering = ("distance", "asset_id") if order == "most" else ("-distance", "asset_id")
    values = scope.annotate(distance=distance).order_by(*ordering)
    return list(values.values_list("asset_id", "distance")[:limit])


def _index_scan(scope: QuerySet, query: Embedding, limit: int) -> list[tuple[Any, float]]:
    """The project's own HNSW index (same cast expression), with ef_search raised."""
    expression = Cast("vector", HalfVectorField(dimensions=query.dims))
    ef_search = max(int(similarity_settings.HNSW_EF_SEARCH), limit)
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SELECT set_config('hnsw.ef_search', %s, true)", [str(ef_search)])
        return list(
            scope.annotate(distance=CosineDistance(expression, query.vector))
            .order_by("distance")
            .values_list("asset_id", "distance")[:limit]
        )


def _query_first(rows: list[tuple[Any, float]], query_pk: Any, limit: int):
    """The query image leads "most similar", even when exact duplicates tie with it."""
    own = [row for row in rows if row[0] == query_pk] or [(query_pk, 0.0)]
    others = [row for row in rows if row[0] != query_pk]
    return (own[:1] + others)[:limit]
