"""The one similarity search that pages, the API, the admin and commands all call.

Most similar: cosine distance ascending within the query asset's project. Small scopes
(and any narrowed or least-similar search) are an exact scan; big projects with their
own HNSW index use it with ``hnsw.ef_search`` raised for the request. Every search
returns exactly ``min(limit, embedded images in scope)`` rows: if an index scan comes
back short, the exact scan answers instead. Least similar is always exact: index scans
only run ascending, and "nearest to -q" through HNSW measured recall 0.12-0.47.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.db import transaction
from django.db.models import QuerySet
from django.db.models.functions import Cast
from django.utils.translation import gettext as _
from pgvector.django import CosineDistance, HalfVectorField

from similarity import indexing, readiness, registry
from similarity.conf import similarity_settings
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
    notes: list[str] = field(default_factory=list)

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


def query_embedding(asset: Any, model_key: str) -> Embedding:
    """The query asset's vector for the serving model, or NotEmbedded saying why not."""
    row = Embedding.objects.filter(asset_id=asset.pk, model_key=model_key).first()
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
    project_id = registry.project_id_of(asset)
    state = ProjectReadiness.objects.filter(project_id=project_id).first()
    model_key = readiness.serving_model_key(project_id)
    query = query_embedding(asset, model_key)

    scope = Embedding.objects.filter(
        project_id=project_id, model_key=model_key, status=Embedding.Status.DONE
    )
    if within is not None:
        scope = scope.filter(asset_id__in=within.values("pk"))
    scope_size = scope.count()
    wanted = min(limit, scope_size)

    rows: list[tuple[Any, float]] | None = None
    exact = True
    if order == "most" and within is None and scope_size > similarity_settings.EXACT_SEARCH_MAX_ROWS:
        rows = _index_scan(scope, query, project_id, model_key, limit)
        if rows is not None and len(rows) < wanted:
            rows = None  # the graph came back short: answer exactly instead
        exact = rows is None
    if rows is None:
        distance = CosineDistance("vector", query.vector)  # no cast: never the HNSW index
        ordering = ("distance", "asset_id") if order == "most" else ("-distance", "asset_id")
        rows = list(
            scope.annotate(distance=distance).order_by(*ordering).values_list("asset_id", "distance")[
                :limit
            ]
        )
    if order == "most":
        rows = _query_first(rows, asset.pk, limit)

    assets = registry.get_asset_model()._default_manager.in_bulk([pk for pk, _ in rows])
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


def _index_scan(
    scope: QuerySet, query: Embedding, project_id: int, model_key: str, limit: int
) -> list[tuple[Any, float]] | None:
    name = indexing.index_name(project_id, model_key)
    if not indexing.index_exists(name):
        return None
    expression = Cast("vector", HalfVectorField(dimensions=query.dims))
    ef_search = max(int(similarity_settings.HNSW_EF_SEARCH), limit)
    with transaction.atomic():
        from django.db import connection

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
