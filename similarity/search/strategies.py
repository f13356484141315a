"""The three ways a scope is ranked, and the one rule that chooses between them.

- ``by_index``: the project's own HNSW index (``similarity.vectors.hnsw``) for most-similar
  in projects above ``EXACT_SEARCH_MAX_ROWS``; not exact, and it answers only when it found
  enough rows and the query image itself (else the next strategy answers).
- ``in_memory``: exact, in NumPy over the project's cached vectors
  (``similarity.vectors.exact``, float32 or int8 with an exact re-rank): scopes that fit
  the cache, and every least-similar search (index
  scans only run ascending; "nearest to -q" through HNSW measured recall 0.12-0.47).
- ``in_sql``: exact, in PostgreSQL, for a scope too big for the cache.

Each answers ``Ranked`` (asset id, distance) rows, best first, possibly including the
query's own assets (the caller drops them), or None when it cannot answer.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from pgvector.django import CosineDistance

from similarity.conf import similarity_settings
from similarity.models import Embedding
from similarity.search.scope import Scope
from similarity.vectors import exact, hnsw
from similarity.vectors.math import halfvec
from similarity.vectors.model_keys import text_model_key

logger = logging.getLogger(__name__)


@dataclass
class Ranked:
    rows: list[tuple[Any, float]]  # (asset id, cosine distance), best first
    candidates: int  # rows a complete answer ranks (the query's own left out)
    exact: bool


@dataclass(frozen=True)
class Query:
    vector: np.ndarray  # unit
    order: str  # "most" or "least"
    k: int  # rows wanted, the query's own assets included
    anchor: Any = None  # an asset whose own vector is the query (a one-image search)


Strategy = Callable[[Scope, Query], Ranked | None]


def by_index(scope: Scope, query: Query) -> Ranked | None:
    """Most similar through the project's HNSW index, or None when the graph came back
    short or never reached the query image itself (its region is poorly linked: on
    tightly clustered data this returned another cluster's rows, recall 0)."""
    rows = hnsw.scan(scope.rows, query.vector, query.k)
    excluded = set(scope.exclude)
    wanted = min(query.k - len(scope.exclude), scope.candidates)
    found_anchor = query.anchor is None or any(row[0] == query.anchor for row in rows)
    if found_anchor and sum(1 for row in rows if row[0] not in excluded) >= wanted:
        return Ranked(rows, scope.candidates, exact=False)
    logger.info("HNSW scan of project %s came back %s: answering exactly", scope.project_id,
                "short" if found_anchor else "without the query image")
    return None


def in_memory(scope: Scope, query: Query) -> Ranked:
    """Exact, over the per-process cache of the project's vectors (keyed by the
    readiness version every write moves), narrowed and with the query's own rows left out
    in NumPy."""
    state = scope.state
    version = (state.updated, state.embedded) if state else object()
    layout = exact.layout_for(scope.full_size, scope.dims) or "float32"
    matrix = exact.get_matrix(scope.project_id, scope.model_key, scope.dims, version, layout)
    allowed = scope.allowed_row_ids
    picked = exact.top_k(matrix, query.vector, query.k, least=query.order == "least",
                         allowed=allowed, excluded=scope.excluded_row_ids)
    asset_of = dict(
        Embedding.objects.filter(pk__in=[row for row, _ in picked]).values_list("pk", "asset_id")
    )
    rows = [(asset_of[row], distance) for row, distance in picked if row in asset_of]
    in_scope = len(matrix.ids) if allowed is None else int(
        np.isin(allowed, matrix.ids, assume_unique=True).sum()
    )
    return Ranked(rows, max(0, in_scope - len(scope.excluded_row_ids)), exact=True)


def in_sql(scope: Scope, query: Query) -> Ranked:
    """Exact scan in PostgreSQL. The distance is on the uncast column, so the planner can
    never answer it with a (cast) HNSW index and filter rows away afterwards."""
    distance = CosineDistance("vector", halfvec(query.vector))
    ordering = ("distance", "pk") if query.order == "most" else ("-distance", "pk")
    rows = list(
        scope.rows.exclude(asset_id__in=scope.exclude).annotate(distance=distance)
        .order_by(*ordering).values_list("asset_id", "distance")[:query.k]
    )
    return Ranked(rows, scope.candidates, exact=True)


def choose(scope: Scope, order: str) -> tuple[Strategy, ...]:
    """The strategies for this scope and order, in the order they are tried: the index
    (when it applies) falls back to the exact strategy that fits."""
    fallback: Strategy = in_memory if exact.layout_for(scope.full_size, scope.dims) else in_sql
    state = scope.state
    if (
        order == "most"
        and scope.narrowing is None
        and state is not None
        # the image model's index is named by the readiness once built; the text model's
        # rows (text search) are searched through theirs whenever it exists and is valid
        and (state.indexed_model_key == scope.model_key
             or scope.model_key == text_model_key())
        and scope.size > similarity_settings.EXACT_SEARCH_MAX_ROWS
        # an index left invalid by a killed CREATE INDEX CONCURRENTLY is never used
        and hnsw.index_exists(hnsw.index_name(scope.project_id, scope.model_key))
    ):
        return (by_index, fallback)
    return (fallback,)


def run(strategies: tuple[Strategy, ...], scope: Scope, query: Query) -> Ranked:
    """The first answer of the chosen strategies (the last one always answers)."""
    for strategy in strategies:
        ranked = strategy(scope, query)
        if ranked is not None:
            return ranked
    raise AssertionError("the last strategy always answers")  # pragma: no cover
