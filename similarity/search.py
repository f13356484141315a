"""The one similarity search that pages, the API, the admin and commands all call.

Most similar: cosine distance ascending within the query asset's project. Three paths:

- exact, in NumPy over the project's cached vectors (``similarity.exact``): small
  scopes, and every least-similar search;
- the project's own HNSW index (``similarity.indexing``), with ``hnsw.ef_search`` raised
  for the request: most-similar in projects above ``EXACT_SEARCH_MAX_ROWS``;
- exact, in SQL: a scope narrowed with ``within``, or one too big for the cache.

The query image is the reference, never a ranked result: both orders rank the other
embedded images of the scope, and every search returns exactly ``min(limit, candidates)``
rows, where candidates are the scope's embedded images other than the query images that
the user may see (the access policy's ``filter_assets``, for hosts with per-asset
permissions). If an index scan comes back short, the exact path answers instead. Least
similar is always exact: index scans only run ascending, and "nearest to -q" through HNSW
measured recall 0.12-0.47.

Every ranked asset is re-read through the host's own table, filtered by its current
project, before it is returned: an asset another process moved out of the scope or
deleted since our rows were last written never comes back, and the search asks for more
candidates to keep the count exact.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from django.db import connection, transaction
from django.db.models import QuerySet
from django.db.models.functions import Cast
from django.utils.translation import gettext as _
from pgvector import HalfVector
from pgvector.django import CosineDistance, HalfVectorField

from similarity import exact as exact_engine
from similarity import indexing, links, registry
from similarity.access import get_access_policy
from similarity.conf import similarity_settings
from similarity.embedders import current_model_key
from similarity.models import Embedding, ProjectReadiness

logger = logging.getLogger(__name__)

ORDERS = ("most", "least")
#: Weight of the counter-examples: q = mean(positives) - NEGATIVE_WEIGHT * mean(negatives).
NEGATIVE_WEIGHT = 0.5


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
    project_id: str
    scope_size: int
    readiness: ProjectReadiness | None = None
    queries: list[Any] = field(default_factory=list)
    negatives: list[Any] = field(default_factory=list)

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


def query_embedding(
    row: Embedding | None, label: str | None = None, state: ProjectReadiness | None = None
) -> Embedding:
    """The query asset's row for the serving model, or NotEmbedded saying why not."""
    if row is not None and row.status == Embedding.Status.DONE and row.vector is not None:
        return row
    name = f"“{label}”" if label else _("This image")
    if state is not None and state.error and (row is None or row.status != Embedding.Status.FAILED):
        # The worker cannot embed anything (a model that does not load): say so, not "soon".
        raise NotEmbedded(
            _("%(name)s is not embedded because similarity search is unavailable: %(reason)s")
            % {"name": name, "reason": state.error_summary}
        )
    if row is not None and row.status == Embedding.Status.FAILED:
        raise NotEmbedded(
            _("%(name)s could not be embedded, so it cannot be searched: %(reason)s")
            % {"name": name, "reason": row.error or _("unknown error")}
        )
    raise NotEmbedded(
        _("%(name)s has not been embedded yet; it becomes searchable once the worker has "
          "processed it.") % {"name": name}
    )


def _serving(project_id: str) -> tuple[ProjectReadiness | None, str]:
    state = ProjectReadiness.objects.filter(project_id=project_id).first()
    return state, (state.active_model_key if state else "") or current_model_key()


def serving_key(project_id: str) -> str:
    """The model whose vectors the project's searches use now (the previous one until
    the project is ready on a new one)."""
    return _serving(str(project_id))[1]


def find_similar(
    asset: Any,
    *,
    order: str = "most",
    limit: int = 100,
    within: QuerySet | None = None,
    user: Any = None,
) -> SearchResult:
    """Up to ``limit`` image assets of the asset's project ordered by cosine similarity.

    ``within`` narrows the scope to a queryset of host assets (e.g. one dataset or
    collection); ``user`` applies the access policy's per-asset filter, if it has one.
    """
    return find_similar_to_selection(
        [asset], order=order, limit=limit, within=within, user=user
    )


def find_similar_to_selection(
    assets: Iterable[Any],
    *,
    negatives: Iterable[Any] = (),
    order: str = "most",
    limit: int = 100,
    within: QuerySet | None = None,
    user: Any = None,
) -> SearchResult:
    """Rank the scope against several examples and, optionally, counter-examples.

    The query vector is ``normalise(mean(p) - NEGATIVE_WEIGHT * mean(n))`` over the unit
    vectors of the positives ``p`` and negatives ``n``: the centroid of what the user wants,
    pushed away from what they don't. The examples themselves are never ranked.
    """
    order, limit = validate(order, limit)
    positives, negatives = list(assets), list(negatives)
    query, project_id, state, model_key = selection_vector(positives, negatives)
    result = rank(
        project_id,
        query,
        order=order,
        limit=limit,
        exclude=[item.pk for item in positives + negatives],
        within=within,
        user=user,
        state=state,
        model_key=model_key,
        anchor=positives[0].pk if len(positives) == 1 and not negatives else None,
    )
    result.query = positives[0]
    result.queries = positives
    result.negatives = negatives
    return result


def selection_vector(
    assets: Iterable[Any],
    negatives: Iterable[Any] = (),
    *,
    image: np.ndarray | None = None,
    project_id: str | None = None,
) -> tuple[np.ndarray, str, ProjectReadiness | None, str]:
    """The unit query vector of examples and counter-examples, and what it was made with.

    Returns ``(vector, project_id, readiness, model_key)``: the formula of
    ``find_similar_to_selection``, for callers that keep the query (saved searches,
    exports). ``image`` is an outside image's unit vector (of ``project_id``): one more
    positive, so ``normalise(mean([image, *p]) - NEGATIVE_WEIGHT * mean(n))``, and the
    only one when no asset is given. Raises SearchError / NotAnImage / NotEmbedded like a
    search.
    """
    positives, negatives = list(assets), list(negatives)
    if not positives and image is None:
        raise SearchError(_("Select at least one image to search with."))
    if {item.pk for item in positives} & {item.pk for item in negatives}:
        raise SearchError(_("An image cannot be both an example and a counter-example."))
    for item in positives + negatives:
        if not registry.is_image(item):
            raise NotAnImage(_("Similarity search is currently only supported for images."))
    scopes = {registry.project_id_of(item) for item in positives + negatives}
    if image is not None:
        scopes.add(str(project_id))
    if len(scopes) != 1:
        raise SearchError(_("All the images of a search must belong to the same project."))
    project_id = scopes.pop()
    state, model_key = _serving(project_id)
    rows = {
        row.asset_id: row
        for row in Embedding.objects.filter(
            asset_id__in=[item.pk for item in positives + negatives], model_key=model_key
        )
    }
    single = len(positives) == 1 and not negatives and image is None
    seen_dims = set() if image is None else {int(image.shape[0])}

    def vectors(items: list[Any]) -> np.ndarray:
        found = [
            query_embedding(rows.get(item.pk), None if single else links.asset_label(item), state)
            for item in items
        ]
        seen_dims.update(row.dims for row in found)  # examples, counter-examples and image
        if len(seen_dims) > 1:
            raise NotEmbedded(_("The selected images were embedded by different models."))
        return np.stack([_unit(_as_array(row.vector)) for row in found])

    examples = [vectors(positives)] if positives else []
    if image is not None:
        examples.insert(0, _unit(image)[None])
    counter = vectors(negatives) if negatives else None
    return combine(np.vstack(examples), counter), project_id, state, model_key


def combine(positives: np.ndarray, negatives: np.ndarray | None = None) -> np.ndarray:
    """``normalise(mean(p) - NEGATIVE_WEIGHT * mean(n))`` over rows of unit vectors: the
    query of every multi-example search (and of saved searches recomputed by the worker)."""
    query = np.asarray(positives, dtype=np.float32).mean(axis=0)
    if negatives is not None and len(negatives):
        query = query - NEGATIVE_WEIGHT * np.asarray(negatives, dtype=np.float32).mean(axis=0)
    if float(np.linalg.norm(query)) < 1e-6:
        raise SearchError(_("The examples and counter-examples cancel out; remove some."))
    return _unit(query)


def rank(
    project_id: str,
    vector: np.ndarray,
    *,
    order: str = "most",
    limit: int = 100,
    exclude: Iterable[Any] = (),
    within: QuerySet | None = None,
    user: Any = None,
    state: ProjectReadiness | None = None,
    model_key: str | None = None,
    anchor: Any = None,
) -> SearchResult:
    """Rank a scope's embedded images against a unit query vector (the shared core).

    ``anchor`` is an asset of the scope whose own vector is the query (a one-image
    search): an index scan that does not find it missed the query's region of the graph,
    and the exact path answers instead.
    """
    project_id = str(project_id)
    if model_key is None:
        state, model_key = _serving(project_id)
    dims = int(vector.shape[0])
    exclude = list(exclude)
    scope = Embedding.objects.filter(
        project_id=project_id, model_key=model_key, status=Embedding.Status.DONE, dims=dims
    )
    narrowing = within
    policy = get_access_policy()
    if user is not None and policy.narrows_assets:
        base = within if within is not None else registry.project_assets(project_id)
        narrowing = policy.filter_assets(user, base)
    known_size = state.embedded if state and state.model_key == model_key else None
    live = registry.project_assets(project_id)
    if narrowing is not None:
        live = live.filter(pk__in=narrowing.values("pk"))

    exact = True
    want = limit
    excluded = set(exclude)
    for _round in range(4):
        ranked, candidates, exact = _rank_rows(
            project_id, scope, vector, order, want + len(exclude), exclude, narrowing,
            state, model_key, known_size, anchor,
        )
        ranked = [(pk, dist) for pk, dist in ranked if pk not in excluded]
        assets = live.in_bulk([pk for pk, _ in ranked])
        kept = [(pk, dist) for pk, dist in ranked if pk in assets]
        if len(kept) >= min(limit, candidates) or len(ranked) < want:
            break
        want = want * 4 + 16  # some rows were stale (moved or deleted meanwhile): ask for more
    matches = [
        Match(asset=assets[pk], similarity=1.0 - float(dist), distance=float(dist))
        for pk, dist in kept[:limit]
    ]
    return SearchResult(
        query=None,
        order=order,
        limit=limit,
        matches=matches,
        exact=exact,
        model_key=model_key,
        project_id=project_id,
        scope_size=max(0, candidates - (len(ranked) - len(kept))),
        readiness=state,
    )


def _rank_rows(
    project_id: str,
    scope: QuerySet,
    vector: np.ndarray,
    order: str,
    k: int,
    exclude: list[Any],
    narrowing: QuerySet | None,
    state: ProjectReadiness | None,
    model_key: str,
    known_size: int | None,
    anchor: Any = None,
) -> tuple[list[tuple[Any, float]], int, bool]:
    """(asset id, distance) of the k best rows, the number of candidates, and exactness."""
    dims = int(vector.shape[0])
    excluded_in_scope = scope.filter(asset_id__in=exclude)
    # The cache holds the whole scope, narrowed or not: its size decides whether it fits.
    full_size = known_size if known_size is not None else scope.count()
    size = full_size
    if narrowing is not None:
        scope = scope.filter(asset_id__in=narrowing.values("pk"))
        size = scope.count()
    if (
        narrowing is None
        and order == "most"
        and state is not None
        and state.indexed_model_key == model_key
        and size > similarity_settings.EXACT_SEARCH_MAX_ROWS
        # an index left invalid by a killed CREATE INDEX CONCURRENTLY is never used
        and indexing.index_exists(indexing.index_name(project_id, model_key))
    ):
        rows = _index_scan(scope, vector, k)
        candidates = size - excluded_in_scope.count()
        wanted = min(k - len(exclude), candidates)
        excluded = set(exclude)
        found_anchor = anchor is None or any(row[0] == anchor for row in rows)
        if found_anchor and sum(1 for row in rows if row[0] not in excluded) >= wanted:
            return rows, candidates, False
        # The graph came back short, or never reached the query image itself (its region
        # is poorly linked: on tightly clustered data this returned another cluster's
        # rows, recall 0): answer exactly instead.
        logger.info("HNSW scan of project %s came back %s: answering exactly", project_id,
                    "short" if found_anchor else "without the query image")
    if exact_engine.fits(full_size, dims):
        version = (state.updated, state.embedded) if state else object()
        matrix = exact_engine.get_matrix(project_id, model_key, dims, version)
        allowed = None
        if narrowing is not None:
            allowed = np.fromiter(scope.values_list("pk", flat=True), dtype=np.int64)
        excluded_rows = np.fromiter(excluded_in_scope.values_list("pk", flat=True), dtype=np.int64)
        picked = exact_engine.top_k(
            matrix, vector, k, least=order == "least", allowed=allowed, excluded=excluded_rows
        )
        asset_of = dict(
            Embedding.objects.filter(pk__in=[row for row, _ in picked]).values_list(
                "pk", "asset_id"
            )
        )
        rows = [(asset_of[row], dist) for row, dist in picked if row in asset_of]
        in_scope = len(matrix.ids) if allowed is None else int(
            np.isin(allowed, matrix.ids, assume_unique=True).sum()
        )
        return rows, max(0, in_scope - len(excluded_rows)), True
    rows = _sql_scan(scope.exclude(asset_id__in=exclude), vector, order, k)
    return rows, size - excluded_in_scope.count(), True


def _unit(vector: np.ndarray) -> np.ndarray:
    vector = np.asarray(vector, dtype=np.float32)
    return vector / (float(np.linalg.norm(vector)) or 1.0)


def _as_array(vector: Any) -> np.ndarray:
    return np.asarray(vector.to_list() if hasattr(vector, "to_list") else vector, dtype=np.float32)


def _sql_scan(scope: QuerySet, vector: np.ndarray, order: str, limit: int):
    """Exact scan in PostgreSQL. The distance is on the uncast column, so the planner can
    never answer it with a (cast) HNSW index and filter rows away afterwards."""
    distance = CosineDistance("vector", HalfVector(vector.astype(np.float16)))
    ordering = ("distance", "pk") if order == "most" else ("-distance", "pk")
    values = scope.annotate(distance=distance).order_by(*ordering)
    return list(values.values_list("asset_id", "distance")[:limit])


def _index_scan(scope: QuerySet, vector: np.ndarray, limit: int) -> list[tuple[Any, float]]:
    """The project's own HNSW index (same cast expression), with ef_search raised."""
    expression = Cast("vector", HalfVectorField(dimensions=int(vector.shape[0])))
    ef_search = max(int(similarity_settings.HNSW_EF_SEARCH), limit)
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SELECT set_config('hnsw.ef_search', %s, true)", [str(ef_search)])
        return list(
            scope.annotate(distance=CosineDistance(expression, HalfVector(vector.astype(np.float16))))
            .order_by("distance")
            .values_list("asset_id", "distance")[:limit]
        )
