"""The one similarity search that pages, the API, the admin, commands and tasks all call.

Most similar: cosine distance ascending within the query's project; least similar:
descending. ``rank`` builds the search's scope once (``similarity.search.scope``), lets
``strategies.choose`` pick how to rank it (the project's HNSW index, an exact scan in
NumPy, or one in SQL) and runs that choice inside one loop that asks for more candidates
when some came back stale.

The query image is the reference, never a ranked result: both orders rank the other
embedded images of the scope, and every search returns exactly ``min(limit, candidates)``
rows, where candidates are the scope's embedded images other than the query images that
the user may see (the access policy's ``filter_assets``, for hosts with per-asset
permissions). Every ranked asset is re-read through the host's own table, filtered by its
current project, before it is returned: an asset another process moved out of the scope
or deleted since our rows were last written never comes back.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
from django.db.models import QuerySet

from similarity.models import ProjectReadiness
from similarity.search import strategies
from similarity.search.query import selection_vector, serving
from similarity.search.results import Match, SearchResult, validate
from similarity.search.scope import build_scope

#: Rounds of asking for more candidates when ranked rows turned out stale.
MAX_ROUNDS = 4


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

    ``state`` and ``model_key`` are what ``search.query.serving`` answers, when the caller
    read them already. ``anchor`` is an asset of the scope whose own vector is the query
    (a one-image search): an index scan that does not find it missed the query's region
    of the graph, and an exact scan answers instead.
    """
    project_id = str(project_id)
    if model_key is None:
        state, model_key = serving(project_id)
    scope = build_scope(project_id, int(vector.shape[0]), model_key=model_key, state=state,
                        exclude=list(exclude), within=within, user=user)
    chosen = strategies.choose(scope, order)
    excluded = set(scope.exclude)
    want = limit
    for _round in range(MAX_ROUNDS):
        query = strategies.Query(vector, order, want + len(scope.exclude), anchor)
        ranked = strategies.run(chosen, scope, query)
        rows = [(pk, distance) for pk, distance in ranked.rows if pk not in excluded]
        assets = scope.live.in_bulk([pk for pk, _ in rows])
        kept = [(pk, distance) for pk, distance in rows if pk in assets]
        if len(kept) >= min(limit, ranked.candidates) or len(rows) < want:
            break
        want = want * 4 + 16  # some rows were stale (moved or deleted meanwhile): ask for more
    matches = [
        Match(asset=assets[pk], similarity=1.0 - float(distance), distance=float(distance))
        for pk, distance in kept[:limit]
    ]
    return SearchResult(
        query=None,
        order=order,
        limit=limit,
        matches=matches,
        exact=ranked.exact,
        model_key=model_key,
        project_id=project_id,
        scope_size=max(0, ranked.candidates - (len(rows) - len(kept))),
        readiness=state,
    )
