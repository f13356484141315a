"""The unit vectors of chosen rows of a scope, for the features that compare sets of
images (curation, leakage) rather than rank the scope against one query.

From the per-process exact cache when the scope fits ``EXACT_CACHE_MB`` (the same matrix
search reads, kept current incrementally), else straight from PostgreSQL, ``CHUNK`` rows
per statement, so no statement or result set grows with the scope.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from similarity.models import Embedding
from similarity.vectors import exact
from similarity.vectors.math import as_array

#: Rows per statement when the vectors are read from the database.
CHUNK = 20_000


def row_vectors(
    project_id: str, model_key: str, dims: int, row_ids: np.ndarray, *, version: Any,
    scope_rows: int,
) -> tuple[np.ndarray, np.ndarray]:
    """``(found_ids, vectors)``: the rows of ``row_ids`` (ascending) that are still
    embedded, and their unit vectors (float32, aligned). ``version`` keys the cache like a
    search's; ``scope_rows`` (the scope's embedded rows) decides whether it fits."""
    row_ids = np.asarray(row_ids, dtype=np.int64)
    if not len(row_ids):
        return row_ids, np.zeros((0, dims), dtype=np.float32)
    if exact.fits(scope_rows, dims):
        matrix = exact.get_matrix(project_id, model_key, dims, version)
        at = np.searchsorted(matrix.ids, row_ids)
        at = np.minimum(at, max(len(matrix.ids) - 1, 0))
        ok = matrix.ids[at] == row_ids if len(matrix.ids) else np.zeros(len(row_ids), bool)
        return row_ids[ok], matrix.vectors[at[ok]]
    found: list[int] = []
    vectors: list[np.ndarray] = []
    for start in range(0, len(row_ids), CHUNK):
        chunk = row_ids[start:start + CHUNK].tolist()
        for pk, vector in (
            Embedding.objects.filter(pk__in=chunk, dims=dims, status=Embedding.Status.DONE)
            .order_by("pk").values_list("pk", "vector")
        ):
            if vector is None:
                continue
            found.append(pk)
            vectors.append(as_array(vector))
    if not vectors:
        return np.zeros(0, dtype=np.int64), np.zeros((0, dims), dtype=np.float32)
    stacked = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(stacked, axis=1, keepdims=True)
    stacked /= np.where(norms == 0, 1, norms)
    return np.asarray(found, dtype=np.int64), stacked


def nearest_similarity(
    queries: np.ndarray, reference: np.ndarray, *, block: int = 2048, columns: int = 16384,
) -> tuple[np.ndarray, np.ndarray]:
    """For each row of ``queries``, its highest cosine similarity to any row of
    ``reference`` and that row's position (-inf / -1 when ``reference`` is empty).

    Blocked matrix products (a tile is at most ``block`` x ``columns`` float32, 128 MiB),
    through torch when present: exact, and memory independent of either set's size.
    """
    n = len(queries)
    best = np.full(n, -np.inf, dtype=np.float32)
    where = np.full(n, -1, dtype=np.int64)
    if not n or not len(reference):
        return best, where
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a dependency of the embedder
        torch = None
    for start in range(0, n, block):
        rows = queries[start:start + block]
        for column in range(0, len(reference), columns):
            part = reference[column:column + columns]
            if torch is not None:
                values, positions = (torch.from_numpy(np.ascontiguousarray(rows))
                                     @ torch.from_numpy(np.ascontiguousarray(part)).T).max(dim=1)
                values, positions = values.numpy(), positions.numpy()
            else:  # pragma: no cover
                tile = rows @ part.T
                positions = tile.argmax(axis=1)
                values = tile[np.arange(len(rows)), positions]
            better = values > best[start:start + len(rows)]
            best[start:start + len(rows)][better] = values[better]
            where[start:start + len(rows)][better] = positions[better] + column
    return best, where
