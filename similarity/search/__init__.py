"""Similarity search: the one ranking every door calls, its query vectors, the largest
score gap, and queries with an image from outside the project.

The public names live here (``from similarity.search import find_similar``); each is
defined in the module that says what it holds: ``ranking`` (the searches), ``query``
(query vectors, the serving model), ``results`` (answers and refusals), ``scope`` and
``strategies`` (how a scope is ranked), ``gaps``, ``outside``.
"""

from similarity.search.query import (
    NEGATIVE_WEIGHT,
    combine,
    query_embedding,
    selection_vector,
    serving,
    serving_key,
)
from similarity.search.ranking import find_similar, find_similar_to_selection, rank
from similarity.search.results import (
    ORDERS,
    Match,
    NotAnImage,
    NotEmbedded,
    SearchError,
    SearchResult,
    validate,
)

__all__ = [
    "NEGATIVE_WEIGHT",
    "ORDERS",
    "Match",
    "NotAnImage",
    "NotEmbedded",
    "SearchError",
    "SearchResult",
    "combine",
    "find_similar",
    "find_similar_to_selection",
    "query_embedding",
    "rank",
    "selection_vector",
    "serving",
    "serving_key",
    "validate",
]
